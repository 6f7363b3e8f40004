"""A NAS that never answers, or goes silent after answering, shows as degraded in the
status and in /metrics; it recovers when answers return. Real UDP peers on loopback."""

from __future__ import annotations

import asyncio
import socket

from conftest import SECRET, make_config, running, wait_until
from fakenas import Answer, FakeNas
from prometheus_client.parser import text_string_to_metric_families

from debtgate.api.metrics import make_registry, render
from debtgate.config import Config
from debtgate.daemon.extensions import Radius
from debtgate.model import Session, State
from debtgate.radius.intent import Intent
from debtgate.radius.packets import load_dictionary

DICT = load_dictionary()


def intent(account: str) -> Intent:
    return Intent(account, State.BLOCKED, Session(session_id=f"s-{account}"), ("10.0.0.9",))


def status_of(ext: Radius) -> dict[str, object]:
    out: dict[str, object] = {"degraded": {}}
    ext.status(out)
    return out


def degraded_samples(status: dict[str, object]) -> dict[str, float]:
    body, _ = render(make_registry(lambda: status))
    return {s.labels["component"]: s.value
            for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples if s.name == "debtgate_degraded"}


def radius_ext(tmp_path, port: int, **nas: object) -> Radius:  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path, port, "mikrotik", timeout=0.1, retries=1,
                      degraded_after=0.5, **nas)
    return Radius(Config(radius=cfg))


async def test_never_answering_nas_is_degraded(tmp_path) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # a real socket that reads nothing and answers nothing
    ext = radius_ext(tmp_path, silent.getsockname()[1])
    try:
        async with running(ext.dispatcher) as d:
            for i in range(5):
                d.submit(intent(f"q{i}"))
            await asyncio.sleep(0.2)
            assert "radius:bras1" not in status_of(ext)["degraded"]  # type: ignore[operator]
            await wait_until(lambda: "radius:bras1" in status_of(ext)["degraded"],  # type: ignore[operator]
                             timeout=3)
            st = status_of(ext)
            why = st["degraded"]["radius:bras1"]  # type: ignore[index]
            assert why.startswith("no answer for ") and "never answered" in why
            assert degraded_samples(st) == {"radius:bras1": 1.0}
    finally:
        silent.close()


async def test_nas_silent_after_answering_is_degraded_then_recovers(tmp_path) -> None:
    mode = {"answer": True}
    nas = FakeNas(SECRET.encode(), DICT, lambda pkt, seen: Answer(drop=not mode["answer"]))
    ext = radius_ext(tmp_path, await nas.start())
    try:
        async with running(ext.dispatcher) as d:
            d.submit(intent("a1"))
            await wait_until(lambda: d.status()["nas"]["bras1"]["ack"] == 1)
            mode["answer"] = False
            d.submit(intent("a2"))
            await wait_until(lambda: "radius:bras1" in status_of(ext)["degraded"],  # type: ignore[operator]
                             timeout=3)
            st = status_of(ext)
            why = st["degraded"]["radius:bras1"]  # type: ignore[index]
            assert why.startswith("no answer for ") and "never" not in why
            assert degraded_samples(st) == {"radius:bras1": 1.0}
            mode["answer"] = True
            d.submit(intent("a3"))
            await wait_until(lambda: d.status()["nas"]["bras1"]["ack"] == 2)
            st = status_of(ext)
            assert st["degraded"] == {}
            assert degraded_samples(st) == {}
    finally:
        nas.close()
