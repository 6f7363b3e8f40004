"""The persisted applied state: what is saved validates back into the same subscribers."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from debtgate import persist
from debtgate.model import Session, State, Subscriber
from debtgate.persist import StateFile

SUBS = [
    Subscriber("A-1", ("10.0.0.1", "2001:db8::/56"), State.BLOCKED, Decimal("1250.50"), "RUB",
               date(2026, 11, 1), None, "Борис <b>", "ru", "Home 100",
               Session(nas="bras1", session_id="s-1", user_name="boris", framed_ip="10.0.0.1")),
    Subscriber("A-2", ("10.0.0.2",), State.WARN, Decimal(0), "EUR", None, date(2026, 12, 9)),
]


def test_saved_state_restores_the_same_subscribers(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "applied.json")
    sets = {"blocked_v4_host": {"10.0.0.1"}, "warn_v4_host": {"10.0.0.2"}}
    state.take(sets, iter(SUBS))
    sets["blocked_v4_host"].add("10.0.0.9")  # later changes do not leak into the copy
    state.save_now()
    loaded = state.load()
    assert loaded is not None
    assert loaded.sets == {"blocked_v4_host": {"10.0.0.1"}, "warn_v4_host": {"10.0.0.2"}}
    assert loaded.subscribers == SUBS
    assert state.writes == 1 and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("data", [
    b"{ half",
    b'{"version": 1, "sets": {"blocked_v4_host": ["10.0.0.1"]}}',  # no subscribers
    b'{"version": 1, "sets": {}, "subscribers": [{"account": "A", "addresses": [],'
    b' "state": "gone-missing"}]}',  # not a state
])
def test_unreadable_state_is_none(tmp_path: Path, data: bytes,
                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "applied.json").write_bytes(data)
    assert StateFile(tmp_path / "applied.json").load() is None
    assert "persisted state" in caplog.text and "unreadable" in caplog.text


async def test_the_stepwise_write_is_the_document_encoded_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "ENCODE_CHUNK", 2)
    many = [msgspec.structs.replace(SUBS[i % 2], account=f"A-{i}", addresses=(f"10.0.1.{i}",))
            for i in range(7)]
    for subs in ([], SUBS[:1], many):
        state = StateFile(tmp_path / "applied.json")
        sets = {"blocked_v4_host": {s.addresses[0] for s in subs}}
        state.take(sets, subs)
        await state.save()
        whole = msgspec.json.encode({"version": 1, "sets": {k: list(v) for k, v in sets.items()},
                                     "subscribers": subs})
        assert json.loads((tmp_path / "applied.json").read_bytes()) == json.loads(whole)
        loaded = state.load()
        assert loaded is not None and loaded.subscribers == subs and state.writes == 1
