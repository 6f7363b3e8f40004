"""Readable text for the ``debtgate`` client commands: tables, durations, the status page."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from debtgate.api.metrics import number, timestamp

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``2h``, ``1h30m``, ``3d``, ``1w`` to seconds; ValueError."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 2h, 1h30m, 3d)")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def human(seconds: object) -> str:
    """``3d 4h``, ``5m 3s``, ``0.012s``; ``-`` for nothing."""
    value = number(seconds)
    if value is None:
        return "-"
    if abs(value) < 10:
        return f"{value:.3g}s"
    rest, out = int(round(abs(value))), list[str]()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not out):
            out.append(f"{rest // size}{unit}")
            rest %= size
    return ("-" if value < 0 else "") + " ".join(out[:2])


def ago(value: object, now: float | None = None) -> str:
    """How long ago an epoch/ISO timestamp was: ``12s ago``; ``never``."""
    ts = timestamp(value)
    if ts is None:
        return "never"
    return f"{human((now if now is not None else time.time()) - ts)} ago"


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Columns padded to fit; numbers right-aligned."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    present = [[row[i] for row in rows if row[i] is not None] for i in range(len(headers))]
    numeric = [bool(col) and all(number(v) is not None for v in col) for col in present]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric,
                                                                          strict=True)]
        return (indent + "  ".join(out)).rstrip()

    return "\n".join([line(list(headers))] + [line(r) for r in cells])


def _m(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ms(value: object) -> float | None:
    ms = number(value)
    return None if ms is None else ms / 1000


def format_status(st: Mapping[str, Any]) -> str:
    feed, guard = _m(st.get("feed")), _m(st.get("guard"))
    out = [f"debtgate {st.get('version', '?')}, up {human(st.get('uptime'))}", ""]
    sync = _m(st.get("sync"))
    if sync:
        state = "in sync" if sync.get("in_sync") else "not in sync"
        out.append(f"billing     {state} with billing: {sync.get('reason', '?')}")
    out.append(f"feed        {feed.get('kind', '?')}: "
               f"{'connected' if feed.get('connected') else 'DISCONNECTED'}, "
               f"last event {ago(feed.get('last_event'))}, "
               f"last snapshot {ago(feed.get('last_snapshot'))}, lag {human(feed.get('lag'))}")
    if feed.get("last_error"):
        out.append(f"            last error: {feed['last_error']}")
    if _m(feed.get("rejected")):
        out.append(f"            rejected rows: {cell(feed['rejected'])}")
    foreign = _m(feed.get("foreign"))
    if foreign.get("rows") or foreign.get("addresses"):
        out.append(f"            foreign (another gateway's, not enforced here): "
                   f"{cell(foreign.get('rows'))} rows, {cell(foreign.get('addresses'))} "
                   "addresses")
    out.append(f"subscribers {cell(_m(st.get('subscribers')))}")
    out.append(f"engine      applies {cell(st.get('applies'))}, kernel writes "
               f"{cell(st.get('kernel_writes'))}, apply errors {cell(st.get('apply_errors'))}, "
               f"drift repairs {cell(st.get('drift_repairs'))}, last apply "
               f"{human(st.get('last_apply_seconds'))}, conntrack cut "
               f"{cell(st.get('conntrack_cut'))}")
    sets = _m(st.get("sets"))
    if sets:
        rows = [[n, _m(v).get("desired"), _m(v).get("kernel"),
                 "" if _m(v).get("desired") == _m(v).get("kernel") else "DIFFERS"]
                for n, v in sets.items()]
        out += ["", table(["set", "desired", "kernel", ""], rows, "  ")]
    radius = _m(st.get("radius"))
    if radius:
        rows = [[nas, i.get("sent"), i.get("ack"), i.get("nak"), i.get("timeouts"),
                 human(_ms(i.get("latency_avg_ms"))), i.get("queue_depth"), human(i.get("eta_s"))]
                for nas, i in ((n, _m(v)) for n, v in radius.items())]
        out += ["", table(["nas", "sent", "ack", "nak", "timeouts", "latency", "queue", "eta"],
                          rows, "  ")]
    garden = _m(st.get("garden"))
    if garden:
        out += ["", f"garden      static {cell(garden.get('static'))}"]
        doms = _m(garden.get("domains"))
        if doms:
            rows = [[d, _m(i).get("addresses"), human(_m(i).get("expires_in")),
                     _m(i).get("error")] for d, i in doms.items()]
            out.append(table(["domain", "addresses", "expires in", "error"], rows, "  "))
    portal = _m(st.get("portal"))
    out += ["", f"portal      views {cell(portal.get('views'))}, acks {cell(portal.get('acks'))}"]
    if guard.get("holding"):
        out.append(f"guard       HOLDING {cell(guard.get('held_restrictions'))} restrictions "
                   f"since {ago(guard.get('since'))}; review, then `debtgate approve`")
    else:
        out.append(f"guard       not holding (threshold {cell(guard.get('threshold_percent'))}%"
                   f" / {cell(guard.get('threshold_count'))})")
    degraded = _m(st.get("degraded"))
    out.append("degraded    " + ("none" if not degraded else "YES"))
    out += [f"  {k}: {v}" for k, v in degraded.items()]
    return "\n".join(out)


def format_tree(data: Mapping[str, Any], indent: str = "") -> str:
    """Any explanation dict: scalars aligned, lists of dicts as tables, dicts nested."""
    width = max((len(str(k)) for k in data), default=0)
    out = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out += [f"{indent}{key}:", format_tree(value, indent + "  ")]
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            headers = list(dict.fromkeys(k for row in value for k in row))
            out += [f"{indent}{key}:",
                    table(headers, [[row.get(h) for h in headers] for row in value],
                          indent + "  ")]
        else:
            out.append(f"{indent}{str(key).ljust(width)}  {cell(value)}")
    return "\n".join(out)


def format_overrides(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return "no overrides"
    rows = [[o.get("id"), o.get("account"), o.get("action"), o.get("expires_at") or "never",
             o.get("author"), o.get("reason")] for o in items]
    return table(["id", "account", "action", "expires", "author", "reason"], rows)
