"""The product table of docs/BENCHMARKS.md, rendered from one run of ``bench/product.py``.

The table lives between the ``BEGIN``/``END`` markers below; everything else in the
file is left as it is.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

BEGIN = "<!-- product-benchmarks:begin (bench/product.py --write-docs rewrites this) -->"
END = "<!-- product-benchmarks:end -->"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s"


def _ms(group: dict[str, Any]) -> str:
    if not group.get("trials"):
        return "no trials"
    return (f"p50 {group['p50_ms']} / p99 {group['p99_ms']} / max {group['max_ms']} ms "
            f"({group['trials']} trials)")


def _ratio(v: float | None, floor: float | None) -> str:
    return "" if v is None or not floor else f"{v / floor:.2f}x"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _le(v: float | None, limit: float) -> bool | None:
    return None if v is None else v <= limit


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _range(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    return f"{min(vals):.3f}-{max(vals):.3f}" if vals else "n/a"


NOT_RUN: dict[str, Any] = {
    "resync": [], "quiet": {"trials": 0}, "payments_overall": {"trials": 0},
    "during_resync": {"trials": 0},
    "storm": {"rounds": [{"enforced_sample_s": None, "kernel_count_s": None,
                          "settled_s": None, "rss_peak_mb": None}], "payments": {"trials": 0}},
    "restart": {"ready_readyz_s": None, "ready_sd_notify_s": None,
                "kernel_writes_2s_later": None,
                "periodic_resync": {"daemon_resync_s": None, "kernel_writes": None}},
    "reboot": {"kernel_count_s": None, "enforced_sample_s": None},
}
"""What an interrupted run lacks (its rows read n/a)."""


def rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    r = {**NOT_RUN, **r}
    fl, first, st = r["floors"], r["first_start"], r["storm"]
    quiet, during, storm_pay, overall = (r["quiet"], r["during_resync"], st["payments"],
                                         r["payments_overall"])
    rounds = st["rounds"]
    enf = [x["enforced_sample_s"] for x in rounds]
    cnt = [x["kernel_count_s"] for x in rounds]
    settled = [x["settled_s"] for x in rounds]
    peak = max((x["rss_peak_mb"] for x in rounds if x["rss_peak_mb"]), default=None)
    nft_storm, nft_all = fl["nft_storm"]["median_s"], fl["nft_restricted"]["median_s"]
    first_enf = first["kernel_count_s"]
    rs, rb = r["restart"], r["reboot"]
    ready = max(v for v in (first["ready_sd_notify_s"], first["ready_readyz_s"]) if v) \
        if first["ready_readyz_s"] else None
    rready = rs["ready_readyz_s"]
    resync = r["resync"]
    resync_s = _median([x["seen_s"] for x in resync])
    resync_w = sum(x["kernel_writes"] for x in resync)
    per = rs["periodic_resync"]
    return [
        ("a", "payment -> next packet, quiet", _ms(quiet), "", "",
         "p99 <= 30 ms", _met(_le(quiet.get("p99_ms"), 30))),
        ("a", "payment -> next packet, 0-2 s after a storm commits", _ms(storm_pay), "", "",
         "", ""),
        ("a", "payment -> next packet, during a full resync (`POST /resync`)", _ms(during),
         "", "", "", ""),
        ("a", "payment -> next packet, all groups", _ms(overall), "", "",
         "p50 <= 10, p99 <= 100, max <= 250 ms",
         _met(None if not overall.get("trials") else overall["p50_ms"] <= 10
              and overall["p99_ms"] <= 100 and overall["max_ms"] <= 250)),
        ("b", "restart, kernel holding the state: spawn -> ready (readyz; sd_notify); "
         "kernel writes; spawn -> the first snapshot applied",
         f"{_s(rready)} ({_s(rs['ready_sd_notify_s'])}); "
         f"{rs['kernel_writes_2s_later']} writes; synced {_s(rs.get('synced_s'))}, "
         f"{rs.get('kernel_writes_at_sync')} writes", "", "", "<= 5 s, 0 writes",
         _met(None if rready is None else rready <= 5 and rs["kernel_writes_2s_later"] == 0
              and not rs.get("kernel_writes_at_sync"))),
        ("b", "reboot (no table, billing down): spawn -> every restriction restored "
         "(kernel count; sample)", f"{_s(rb['kernel_count_s'])} ({_s(rb['enforced_sample_s'])})",
         f"`nft -f` of the {r['meta']['blocked']:,} {nft_all:.3f} s",
         _ratio(rb["kernel_count_s"], nft_all), "<= 2 s", _met(_le(rb["kernel_count_s"], 2))),
        ("b", "first start (empty kernel, no state): spawn -> every restriction enforced "
         "(kernel count; sample)", f"{_s(first_enf)} ({_s(first['enforced_sample_s'])})",
         f"psql fetch {fl['psql_fetch_restricted_s']:.3f} s + `nft -f` {nft_all:.3f} s",
         _ratio(first_enf, fl["first_start_s"]), "<= 5 s", _met(_le(first_enf, 5))),
        ("b", "first start: spawn -> ready (the later of readyz 200 and sd_notify READY=1; "
         "READY=1 alone in brackets); spawn -> the whole first snapshot applied",
         f"{_s(ready)} ({_s(first['ready_sd_notify_s'])}); synced {_s(first.get('synced_s'))}",
         "", "", "ready <= 15 s", _met(_le(ready, 15))),
        ("c", f"storm: {r['meta']['blocked']:,} blocked in one UPDATE, commit -> all enforced "
         f"(kernel count; median of {len(rounds)} rounds)",
         f"{_s(_median(cnt))} (rounds {_range(cnt)}; sample {_range(enf)})",
         f"`nft -f` of the same {nft_storm:.3f} s", _ratio(_median(cnt), nft_storm),
         "<= 3 s", _met(_le(_median(cnt), 3))),
        ("c", "storm: commit -> every side effect settled (status, audit, persisted state)",
         f"{_s(_median(settled))} (rounds {_range(settled)})", "", "", "<= 8 s",
         _met(_le(_median(settled), 8))),
        ("d", f"full resync (`POST /resync`, median of {len(resync)}): seen in the status; "
         "kernel writes",
         f"{_s(resync_s)}; {resync_w} writes", "", "", "<= 1 s, 0 writes",
         _met(None if resync_s is None else resync_s <= 1 and resync_w == 0)),
        ("d", "periodic (fingerprint) resync, the daemon's own `last_resync_seconds`",
         f"{_s(per['daemon_resync_s'])}; {per['kernel_writes']} writes", "", "",
         "<= 1 s, 0 writes",
         _met(None if per["daemon_resync_s"] is None
              else per["daemon_resync_s"] <= 1 and per["kernel_writes"] == 0)),
        ("e", "RSS at rest after the first sync (peak of the first start, VmHWM)",
         f"{first['rss_rest_mb']} MB ({first.get('rss_hwm_mb')} MB)", "", "",
         "<= 400 MB", _met(_le(first["rss_rest_mb"], 400))),
        ("e", "RSS peak during the storms (50 ms samples)", f"{peak} MB", "", "",
         "<= 600 MB", _met(_le(peak, 600))),
    ]


def render(r: dict[str, Any]) -> str:
    m = r["meta"]
    head = (f"Measured {m['date']} on the current engine (commit {m['commit']}"
            f"{', engine modified' if m['dirty'] else ''}): {m['subscribers']:,} subscribers, "
            f"{m['blocked']:,} blocked; {m['machine']}; load average before "
            f"{m['load_before']:.2f}. Command: `sudo .venv/bin/python {m['command']}`.")
    lines = [BEGIN, "", head, "",
             "| | measure | result | floor (same run) | ratio | target | met? |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(r)]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(path: Path, result: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        raise SystemExit(f"{path}: no product-benchmarks markers")
    path.write_text(text[:start] + render(result) + text[end + len(END):], encoding="utf-8")
