"""The persisted applied state: what is saved validates back into the same subscribers."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from debtgate.enforce import persist
from debtgate.enforce.persist import StateFile
from debtgate.model import Session, State, Subscriber

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
        whole = msgspec.json.encode({"version": 1, "generation": 1,
                                     "sets": {k: list(v) for k, v in sets.items()},
                                     "subscribers": subs})
        assert json.loads((tmp_path / "applied.json").read_bytes()) == json.loads(whole)
        loaded = state.load()
        assert loaded is not None and loaded.subscribers == subs and state.writes == 1


async def test_a_write_waits_for_the_bulk_job_then_for_at_most_defer_max(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateFile(tmp_path / "applied.json")
    idle = asyncio.Event()  # a bulk job is under way
    collected: list[int] = []

    def collect() -> None:
        collected.append(1)
        state.take({"blocked_v4_host": {"10.0.0.1"}}, SUBS[:1])

    task = asyncio.create_task(state.run(collect, idle))
    try:
        state.mark()
        await asyncio.sleep(0.3)
        assert collected == [] and state.writes == 0  # waits for the job's end
        idle.set()
        await _until(lambda: state.writes == 1)
        assert collected == [1]
        # A job that does not end: written after DEFER_MAX anyway.
        monkeypatch.setattr(persist, "DEFER_MAX", 0.2)
        idle.clear()
        await asyncio.sleep(1.1)  # the at-most-once-a-second pause
        state.mark()
        await _until(lambda: state.writes == 2, deadline=3)
    finally:
        task.cancel()


async def _until(pred: Any, deadline: float = 2.0) -> None:
    end = asyncio.get_running_loop().time() + deadline
    while not pred():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.02)


def _based(tmp_path: Path) -> StateFile:
    """A state file with a base of SUBS written (a blocked host, a warned host)."""
    state = StateFile(tmp_path / "applied.json")
    state.take({"blocked_v4_host": {"10.0.0.1"}, "warn_v4_host": {"10.0.0.2"}}, SUBS)
    state.save_now()
    return state


async def _written(state: StateFile, changes: list[persist.Change]) -> None:
    """The writer task appends what was recorded (then it is cancelled)."""
    task = asyncio.create_task(state.run(lambda: None))
    try:
        for change in changes:
            state.record(change)
        await _until(lambda: state.appends >= 1 and not state._pending)
    finally:
        task.cancel()


async def test_small_changes_are_appended_and_replayed_onto_the_base(tmp_path: Path) -> None:
    state = _based(tmp_path)
    state._rewrite = False  # the base of this process is written
    paid = persist.Change(delete={"blocked_v4_host": ["10.0.0.1"]}, drop=["A-1"])
    newly = msgspec.structs.replace(SUBS[0], account="A-3", addresses=("10.0.0.3",))
    blocked = persist.Change(add={"blocked_v4_host": ["10.0.0.3"]}, put=[newly])
    await _written(state, [paid, blocked])
    assert state.writes == 1  # the base was not written again
    lines = state.journal.read_bytes().splitlines()
    assert json.loads(lines[0]) == {"base": 1} and len(lines) == 3
    loaded = StateFile(tmp_path / "applied.json").load()
    assert loaded is not None
    assert loaded.sets == {"blocked_v4_host": {"10.0.0.3"}, "warn_v4_host": {"10.0.0.2"}}
    assert sorted(s.account for s in loaded.subscribers) == ["A-2", "A-3"]
    assert next(s for s in loaded.subscribers if s.account == "A-3") == newly


def test_a_journal_of_another_generation_is_ignored(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    state = _based(tmp_path)
    # A crash between the new base and its empty journal: the old journal is left.
    state.journal.write_bytes(b'{"base":0}\n{"delete":{"blocked_v4_host":["10.0.0.1"]},'
                              b'"drop":["A-1"]}\n')
    caplog.set_level("INFO")
    loaded = StateFile(tmp_path / "applied.json").load()
    assert loaded is not None and loaded.sets["blocked_v4_host"] == {"10.0.0.1"}
    assert [s.account for s in loaded.subscribers] == ["A-1", "A-2"]
    assert "follows generation 0, the base is 1: ignored" in caplog.text


def test_a_torn_append_is_ignored_from_there_on(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    state = _based(tmp_path)
    with open(state.journal, "ab") as fh:
        fh.write(b'{"add":{"blocked_v4_host":["10.0.0.7"]}}\n{"add":{"blocked_v4_h')
    loaded = StateFile(tmp_path / "applied.json").load()
    assert loaded is not None and loaded.sets["blocked_v4_host"] == {"10.0.0.1", "10.0.0.7"}
    assert "change 2 unreadable (a torn write?)" in caplog.text


async def test_bulk_work_and_a_long_journal_get_a_new_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _based(tmp_path)
    state._rewrite = False
    monkeypatch.setattr(persist, "REWRITE_PAUSE", 0.05)
    monkeypatch.setattr(persist, "JOURNAL_MAX", 200)
    collected: list[int] = []

    def collect() -> None:
        collected.append(1)
        state.take({"blocked_v4_host": {"10.0.0.9"}}, SUBS[1:])

    task = asyncio.create_task(state.run(collect))
    try:
        state.record(persist.Change(add={"blocked_v4_host": [f"10.0.1.{i}" for i in range(30)]}))
        await _until(lambda: state.appends == 1)
        assert collected == [] and state.writes == 1
        state.record(persist.Change(drop=["A-1"]))  # the journal is over JOURNAL_MAX now
        await _until(lambda: state.writes == 2)
        assert collected == [1] and state.generation == 2
        assert state.journal.read_bytes() == b'{"base":2}\n'
        state.mark()  # bulk work
        await _until(lambda: state.writes == 3)
        assert collected == [1, 1]
    finally:
        task.cancel()
    loaded = StateFile(tmp_path / "applied.json").load()
    assert loaded is not None and loaded.sets == {"blocked_v4_host": {"10.0.0.9"}}
    assert loaded.generation == 3 and loaded.subscribers == SUBS[1:]


async def test_the_first_write_of_a_process_is_a_base(tmp_path: Path) -> None:
    """A journal follows only a base this process wrote (or a start loaded)."""
    state = StateFile(tmp_path / "applied.json")
    task = asyncio.create_task(state.run(
        lambda: state.take({"blocked_v4_host": {"10.0.0.1"}}, SUBS[:1])))
    try:
        state.record(persist.Change(add={"blocked_v4_host": ["10.0.0.1"]}, put=SUBS[:1]))
        await _until(lambda: state.writes == 1)
    finally:
        task.cancel()
    assert state.appends == 0 and state.journal.read_bytes() == b'{"base":1}\n'
