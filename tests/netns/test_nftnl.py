"""The netlink fast path (debtgate.kernel.nftnl) against the real kernel.

Each namespace gets the shipped ruleset and a worker process (this file run with
``--serve``) that holds the adapters inside it, so every netlink and libnftables
socket belongs to the namespace. ``fast`` takes plans through ``NftAdapter`` with
the fast path; ``ref`` through libnftables only, as the reference.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debtgate_lab.netlab import can_run, sh

pytestmark = pytest.mark.netns
RULESET = Path(__file__).resolve().parents[2] / "nft-rules" / "debtgate.nft"
HOST_SETS = [f"{c}_v{f}_host" for c in ("blocked", "locked", "warn") for f in (4, 6)]
Changes = list[tuple[str, list[str], list[str]]]


def serve() -> None:
    """The worker: one JSON request a line on stdin, one JSON answer a line on stdout."""
    import asyncio
    from datetime import UTC, datetime

    from debtgate.core.reconcile import Plan, SetDelta
    from debtgate.kernel.nft import NftAdapter

    fast, ref = NftAdapter(fast=True), NftAdapter(fast=False)
    assert fast.fast is not None and ref.fast is None
    nl = fast.fast
    for line in sys.stdin:
        req = json.loads(line)
        plan = Plan(datetime.now(UTC), tuple(SetDelta(n, tuple(a), tuple(d))
                                             for n, a, d in req.get("changes", ())))
        before, gen = nl.applied, nl.generation()
        out: dict[str, Any] = {"ok": True}
        try:
            if req["via"] == "raw":
                out["taken"] = nl.apply(plan)
            else:
                asyncio.run((fast if req["via"] == "fast" else ref).apply(plan))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out.update(ok=False, kind=type(exc).__name__, error=str(exc))
        out.update(batches=nl.applied - before, messages=nl.last_messages,
                   gens=nl.generation() - gen)
        print(json.dumps(out), flush=True)


class Worker:
    def __init__(self, ns: str) -> None:
        self.ns = ns
        sh("nft", "-f", str(RULESET), ns=ns)
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, __file__,
                                      "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def apply(self, changes: Changes, via: str = "fast") -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"via": via, "changes": changes}) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def elements(self, name: str) -> set[str]:
        """The set's content, read until two reads agree: a dump that overlaps the
        kernel's background resize of a hash set can miss elements (seen with
        ``nft -f`` as with the fast path, right after 100,000 inserts)."""
        last = self._read(name)
        for _ in range(20):
            now = self._read(name)
            if now == last:
                return now
            last = now
            time.sleep(0.1)
        return last

    def _read(self, name: str) -> set[str]:
        out = sh("nft", "-j", "list", "set", "inet", "debtgate", name, ns=self.ns).stdout
        found: set[str] = set()
        for obj in json.loads(out)["nftables"]:
            for item in obj.get("set", {}).get("elem", []):
                if isinstance(item, dict) and "prefix" in item:
                    item = f"{item['prefix']['addr']}/{item['prefix']['len']}"
                found.add(str(item))
        return found

    def contents(self) -> dict[str, set[str]]:
        return {name: self.elements(name) for name in HOST_SETS}

    def reset(self) -> None:
        sh("nft", "delete", "table", "inet", "debtgate", ns=self.ns)
        sh("nft", "-f", str(RULESET), ns=self.ns)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def workers() -> Iterator[dict[str, Worker]]:
    why = can_run()
    if why:
        pytest.skip(why)
    tag = random.randbytes(3).hex()
    made: dict[str, Worker] = {}
    try:
        for role in ("fast", "ref"):
            ns = f"dgnl{tag}{role}"
            sh("ip", "netns", "add", ns)
            made[role] = Worker(ns)
        yield made
    finally:
        for role in ("fast", "ref"):
            if role in made:
                made[role].stop()
            sh("ip", "netns", "del", f"dgnl{tag}{role}", check=False)


@pytest.fixture
def fast(workers: dict[str, Worker]) -> Worker:
    workers["fast"].reset()
    return workers["fast"]


def v4(n: int, base: str = "10.0.0.0") -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    return [str(ipaddress.IPv4Address(start + i)) for i in range(n)]


def v6(n: int, base: str = "2001:db8::") -> list[str]:
    start = int(ipaddress.IPv6Address(base))
    return [str(ipaddress.IPv6Address(start + i)) for i in range(n)]


def test_protocol_constants_match_pyroute2() -> None:
    import pyroute2.netlink as nl
    import pyroute2.netlink.nfnetlink as nfnl
    import pyroute2.netlink.nfnetlink.nftsocket as nft

    from debtgate.kernel import nftnl

    for mod, names in ((nl, ["NETLINK_NETFILTER", "NLM_F_REQUEST", "NLM_F_ACK", "NLM_F_CREATE",
                             "NLM_F_CAPPED", "NLM_F_ACK_TLVS", "NLMSG_ERROR", "NLMSG_MIN_TYPE"]),
                       (nfnl, ["NFNL_SUBSYS_NFTABLES"]),
                       (nft, ["NFPROTO_INET", "NFT_MSG_NEWSETELEM", "NFT_MSG_DELSETELEM",
                              "NFT_MSG_NEWGEN", "NFT_MSG_GETGEN"])):
        for name in names:
            assert getattr(nftnl, name) == getattr(mod, name), name


def test_adds_and_deletes_of_v4_and_v6_hosts_land_exactly(fast: Worker) -> None:
    r = fast.apply([("blocked_v4_host", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], []),
                    ("locked_v6_host", ["2001:db8:1::5"], []),
                    ("warn_v6_host", ["2001:db8::1", "2001:db8::2"], [])])
    assert r["ok"] and r["batches"] == 1 and r["gens"] == 1, r
    r = fast.apply([("blocked_v4_host", ["10.0.0.4"], ["10.0.0.2"]),
                    ("warn_v6_host", [], ["2001:db8::1"]),
                    ("warn_v4_host", ["192.0.2.7"], [])])
    assert r["ok"] and r["batches"] == 1 and r["gens"] == 1, r
    assert fast.contents() == {
        "blocked_v4_host": {"10.0.0.1", "10.0.0.3", "10.0.0.4"}, "blocked_v6_host": set(),
        "locked_v4_host": set(), "locked_v6_host": {"2001:db8:1::5"},
        "warn_v4_host": {"192.0.2.7"}, "warn_v6_host": {"2001:db8::2"}}


def test_deleting_absent_and_adding_present_elements_do_not_fail(fast: Worker) -> None:
    assert fast.apply([("blocked_v4_host", ["10.0.0.1"], [])])["ok"]
    r = fast.apply([("blocked_v4_host", ["10.0.0.1", "10.0.0.2"], ["10.9.9.9"]),
                    ("blocked_v6_host", [], ["2001:db8::99"])])
    assert r["ok"] and r["batches"] == 1, r
    assert fast.elements("blocked_v4_host") == {"10.0.0.1", "10.0.0.2"}
    assert fast.elements("blocked_v6_host") == set()


def test_100000_hosts_in_one_transaction_of_several_messages(fast: Worker) -> None:
    hosts = v4(100_000, "100.64.0.0")
    r = fast.apply([("blocked_v4_host", hosts, [])])
    assert r["ok"] and r["batches"] == 1, r
    assert r["messages"] >= 25 and r["gens"] == 1  # one generation: one transaction
    assert fast.elements("blocked_v4_host") == set(hosts)
    r = fast.apply([("blocked_v4_host", [], hosts[:60_000]), ("blocked_v6_host", v6(20_000), [])])
    assert r["ok"] and r["batches"] == 1 and r["gens"] == 1, r
    assert fast.elements("blocked_v4_host") == set(hosts[60_000:])
    assert len(fast.elements("blocked_v6_host")) == 20_000


def test_a_missing_set_fails_the_whole_batch_and_applies_nothing(fast: Worker) -> None:
    assert fast.apply([("blocked_v4_host", ["10.0.0.1", "10.0.0.2"], [])])["ok"]
    before = fast.contents()
    plan: Changes = [("blocked_v4_host", v4(10_000, "100.64.0.0"), ["10.0.0.1"]),
                     ("missing_v4_host", ["10.1.1.1"], []),
                     ("warn_v6_host", ["2001:db8::1"], [])]
    r = fast.apply(plan, via="raw")
    assert not r["ok"] and r["kind"] == "BatchAborted" and r["gens"] == 0, r
    assert "missing_v4_host" in r["error"] and "errno 2" in r["error"]
    assert fast.contents() == before
    # Through the adapter: refused again by libnftables, whose message names the set.
    r = fast.apply(plan)
    assert not r["ok"] and r["kind"] == "ApplyError" and r["gens"] == 0, r
    assert "nft:" in r["error"] and "missing_v4_host" in r["error"]
    assert fast.contents() == before


def test_other_sets_and_bad_elements_go_through_libnftables(fast: Worker) -> None:
    plan: Changes = [("blocked_v4_net", ["100.64.0.0/24"], []),
                     ("blocked_v4_host", ["10.0.0.1"], [])]
    r = fast.apply(plan, via="raw")
    assert r["ok"] and r["taken"] is False and r["batches"] == 0 and r["gens"] == 0, r
    r = fast.apply(plan)
    assert r["ok"] and r["batches"] == 0 and r["gens"] == 1, r
    assert fast.elements("blocked_v4_net") == {"100.64.0.0/24"}
    assert fast.elements("blocked_v4_host") == {"10.0.0.1"}
    for bad in ("2001:db8::1", "10.0.0.256", "host.example", "10.0.0.2/33"):
        r = fast.apply([("blocked_v4_host", ["10.0.0.2", bad], [])], via="raw")
        assert r["ok"] and r["taken"] is False, r
    # libnftables names the problem (an element nft rejects without a DNS lookup).
    r = fast.apply([("blocked_v4_host", ["10.0.0.2", "10.0.0.2/33"], [])])
    assert not r["ok"] and r["kind"] == "ApplyError" and r["batches"] == 0, r
    assert "nft:" in r["error"]
    assert fast.apply([("warn_v6_host", ["10.0.0.1"], [])], via="raw")["taken"] is False
    assert fast.elements("blocked_v4_host") == {"10.0.0.1"}


def test_same_result_as_libnftables_for_a_random_plan_sequence(
        workers: dict[str, Worker]) -> None:
    fast, ref = workers["fast"], workers["ref"]
    fast.reset()
    ref.reset()
    rng = random.Random(20261130)
    pools = {"4": v4(300), "6": v6(300)}
    model: dict[str, set[str]] = {name: set() for name in HOST_SETS}
    for round_ in range(30):
        big = round_ % 10 == 9
        changes: Changes = []
        for name in rng.sample(HOST_SETS, rng.randint(1, len(HOST_SETS))):
            pool = v4(12_000, "100.64.0.0") if big and "v4" in name else pools[name[-6]]
            picked = rng.sample(pool, rng.randint(0, len(pool) // (2 if big else 10)))
            cut = rng.randint(0, len(picked))
            add, delete = sorted(picked[:cut]), sorted(picked[cut:])
            if add or delete:
                changes.append((name, add, delete))
                model[name] = (model[name] - set(delete)) | set(add)
        a, b = fast.apply(changes), ref.apply(changes, via="ref")
        assert a["ok"] and b["ok"], (a, b)
        assert a["batches"] == (1 if changes else 0) and b["batches"] == 0
        if round_ % 5 == 4:
            assert fast.contents() == ref.contents() == model
    assert fast.contents() == ref.contents() == model


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
