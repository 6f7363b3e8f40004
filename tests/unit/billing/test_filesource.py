"""The file source on real files: encodings, undecodable lines and rows, broken files.

Each test runs :class:`~debtgate.billing.file.FileSource` (its poll loop, its reads in
a thread) on files in a temporary directory and validates what it emitted with the
real validation (pure), as the engine does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from debtgate.billing.base import Event, Snapshot
from debtgate.billing.file import FileSource
from debtgate.billing.rows import Policy
from debtgate.billing.validate import Outcome, validate_batch
from debtgate.config import parse_config
from debtgate.daemon.app import make_source
from debtgate.errors import ConfigError
from debtgate.model import State, Subscriber

HEADER = "account,addresses,state,amount_due,name\n"


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, Snapshot)
        self.snapshots.append(event)


@contextlib.asynccontextmanager
async def running(source: FileSource) -> AsyncIterator[Recorder]:
    rec = Recorder()
    task = asyncio.create_task(source.run(rec))
    try:
        yield rec
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled(), "the source's loop ended on its own (it raised)"


async def until(pred: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def first_snapshot(path: Path, encoding: str = "utf-8") -> tuple[FileSource, Snapshot]:
    source = FileSource(path, poll_interval=0.02, encoding=encoding)
    async with running(source) as rec:
        await until(lambda: rec.snapshots or source.health.last_error, "a read of the file")
    assert source.health.last_error is None, source.health.last_error
    return source, rec.snapshots[0]


def validated(snap: Snapshot, previous: dict[str, Subscriber] | None = None) -> Outcome:
    return validate_batch(snap.rows, Policy(), previous)


def accounts(out: Outcome) -> set[str]:
    return set(out.subscribers) | set(out.lean)


async def test_a_cp1251_csv_reads_with_the_encoding_key(tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_bytes((HEADER + "a1,10.0.0.1,blocked,5,Иванов Иван\n"
                      "a2,10.0.0.2,active,,Пётр\n").encode("cp1251"))
    _, snap = await first_snapshot(path, "cp1251")
    out = validated(snap)
    assert out.rejections == []
    assert out.subscribers["a1"].name == "Иванов Иван" and out.subscribers["a2"].name == "Пётр"


async def test_one_undecodable_line_rejects_that_line_only(tmp_path: Path) -> None:
    """The acceptance report: one cp1251 byte in a UTF-8 file made the whole file
    unusable ("CSV: not UTF-8 ... byte 0xc8") and every other change was ignored."""
    path = tmp_path / "subs.csv"
    path.write_bytes(HEADER.encode() + b"a1,10.0.0.1,blocked,5,Ann\n"
                     + b"a2,10.0.0.2,blocked,7," + "Иванов".encode("cp1251") + b"\n"
                     + "a3,10.0.0.3,warn,,Пётр\n".encode())
    source, snap = await first_snapshot(path)
    assert source.health.connected and source.health.extra["undecodable_rows"] == 1
    before = Subscriber("a2", ("10.0.0.2",), State.ACTIVE)
    out = validated(snap, {"a2": before})
    assert accounts(out) == {"a1", "a2", "a3"}
    assert out.subscribers["a2"] is before  # rejected: the last good version stays
    assert out.subscribers["a3"].name == "Пётр" and out.subscribers["a1"].state is State.BLOCKED
    [rej] = out.rejections
    assert (rej.account, rej.reason) == ("a2", "bad_encoding")
    assert "line 3" in rej.detail and "utf-8" in rej.detail and "0xc8" in rej.detail
    assert "encoding" in rej.detail.replace("utf-8", "")  # names the key to set


async def test_an_undecodable_account_is_rejected_without_a_name(tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_bytes(HEADER.encode() + "Ан".encode("cp1251") + b",10.0.0.1,blocked,,x\n"
                     + b'a2,10.0.0.2,blocked,,"' + "Ив\nанов".encode("cp1251") + b'"\n'
                     + b"a3,10.0.0.3,blocked,,ok\n")  # line 2; lines 3-4 (quoted); line 5
    _, snap = await first_snapshot(path)
    out = validated(snap)
    assert accounts(out) == {"a3"}
    got = [(r.account, r.reason, r.detail.split(":")[0]) for r in out.rejections]
    assert got == [(None, "bad_encoding", "line 2"), ("a2", "bad_encoding", "line 3")]


async def test_an_undecodable_header_or_broken_quoting_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(HEADER + "a1,10.0.0.1,blocked,,Ann\n")
    source = FileSource(path, poll_interval=0.02)
    async with running(source) as rec:
        await until(lambda: rec.snapshots, "the good file")
        path.write_bytes("account,addresses,state,имя\n".encode("cp1251")
                         + b"a1,10.0.0.1,active,x\n")
        await until(lambda: source.health.last_error, "the bad header")
        error = str(source.health.last_error)
        assert "line 1" in error and "0xe8" in error
        path.write_text(HEADER + 'a1,10.0.0.1,blocked,,"' + "x" * 200_000 + "\na2,10.0.0.2\n")
        await until(lambda: "field" in str(source.health.last_error), "the broken quoting")
        assert str(source.health.last_error).startswith("CSV: line 2")
        assert len(rec.snapshots) == 1  # the last good state stays
        path.write_text(HEADER + "a1,10.0.0.1,active,,Ann\n")
        await until(lambda: len(rec.snapshots) == 2, "the mended file")
        assert source.health.last_error is None


def _json_rows() -> list[dict[str, Any]]:
    return [{"account": "j1", "addresses": "10.0.0.1", "state": "blocked", "name": "Ann"},
            {"account": "j2", "addresses": "10.0.0.2", "state": "blocked", "name": "@"},
            {"account": "j3", "addresses": "10.0.0.3", "state": "active"}]


async def test_an_unpaired_surrogate_escape_rejects_its_row_only(tmp_path: Path) -> None:
    """The acceptance report: one \\ud800 escape refused the whole file with "JSON:
    Input data was truncated"."""
    path = tmp_path / "subs.json"
    path.write_text(json.dumps(_json_rows()).replace('"@"', '"Bo\\ud800b"'))
    source, snap = await first_snapshot(path)
    out = validated(snap)
    assert accounts(out) == {"j1", "j3"}
    [rej] = out.rejections
    assert (rej.account, rej.reason) == ("j2", "bad_encoding")
    assert rej.detail.startswith("row 2: name:") and "\\ud800" in rej.detail
    assert "truncated" not in rej.detail and source.health.extra["undecodable_rows"] == 1


async def test_json_bytes_not_in_the_encoding_reject_their_row(tmp_path: Path) -> None:
    path = tmp_path / "subs.json"
    path.write_bytes(json.dumps(_json_rows()).replace('"@"', '"\\u0418"').encode()
                     .replace(b"\\u0418", "Иван".encode("cp1251")))
    _, snap = await first_snapshot(path)
    [rej] = validated(snap).rejections
    assert (rej.account, rej.reason) == ("j2", "bad_encoding")
    assert "row 2" in rej.detail and "0xc8" in rej.detail and "utf-8" in rej.detail
    _, snap = await first_snapshot(path, "cp1251")
    out = validated(snap)
    assert out.rejections == [] and out.subscribers["j2"].name == "Иван"


@pytest.mark.parametrize("text", ['[{"account": "j1", "addresses": "10.0.0.1", "sta',
                                  "[" * 100_000, '[{"account": "\\ud800'])
async def test_broken_json_keeps_the_last_good_state(tmp_path: Path, text: str) -> None:
    path = tmp_path / "subs.json"
    path.write_text(json.dumps(_json_rows()))
    source = FileSource(path, poll_interval=0.02)
    async with running(source) as rec:
        await until(lambda: rec.snapshots, "the good file")
        path.write_text(text)
        await until(lambda: source.health.last_error, "the broken file")
        assert str(source.health.last_error).startswith("JSON: ")
        assert "line 1" in str(source.health.last_error) or "deeply" in str(
            source.health.last_error)
        assert len(rec.snapshots) == 1 and not source.health.connected


def test_the_encoding_key_is_checked_at_load_and_reaches_the_source(tmp_path: Path) -> None:
    for bad in ("cp-1251-nope", "base64"):
        with pytest.raises(ConfigError) as err:
            parse_config({"source": {"file": {"encoding": bad}}})
        [problem] = err.value.problems
        assert "source.file.encoding" in problem and repr(bad) in problem
    config = parse_config({"source": {"file": {"path": str(tmp_path / "s.csv"),
                                               "encoding": "cp1251"}}})
    source = make_source(config)
    assert isinstance(source, FileSource) and source.encoding == "cp1251"
    assert parse_config({}).source.file.encoding == "utf-8"
