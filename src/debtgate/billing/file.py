"""The embedded default source: a local JSON or CSV file, watched for changes.

An edit takes effect within ``poll_interval``. A file that cannot be read or
parsed keeps the last good state; the error is logged and shown on status. Rows
holding text the configured ``encoding`` does not decode are rejected one by one
(:mod:`debtgate.billing.filerows`); the rest of the file applies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from debtgate.billing.base import Row, Sink, Snapshot, SourceHealth, Urgent, no_urgent
from debtgate.billing.filerows import decode_csv, decode_json
from debtgate.errors import SourceError

log = logging.getLogger(__name__)


def parse_text(text: str | bytes, fmt: str, encoding: str = "utf-8",
               problems: list[str] | None = None) -> Sequence[Row]:
    """Rows from file content (in columns when the file is well-formed); raises
    SourceError for a file that is not usable as a whole. Bytes are read in
    ``encoding``; a row holding text it does not decode is rejected on its own
    (``problems`` collects a line per such row)."""
    if fmt != "csv":
        return decode_json(text, encoding, problems)
    return decode_csv(text, encoding, problems)


class FileSource:
    """Polls the file's identity (inode, size, mtime) and rereads it on change."""

    def __init__(self, path: Path, fmt: str = "auto", poll_interval: float = 0.25,
                 encoding: str = "utf-8") -> None:
        self.path = path
        self.encoding = encoding
        self.format = fmt if fmt != "auto" else ("csv" if path.suffix.lower() == ".csv" else "json")
        self.poll_interval = poll_interval
        self.health = SourceHealth(kind="file", extra={"path": str(path),
                                                        "encoding": encoding})
        self._resync = asyncio.Event()
        self._seen: tuple[int, int, int] | None = None

    def request_resync(self, full: bool = False) -> None:
        del full  # every read of the file is a full snapshot
        self._resync.set()

    def prefer_restricted(self) -> None:
        """Nothing to do: the file is read whole in one step."""

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self, problems: list[str]) -> Sequence[Row]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read: {exc}") from None
        return parse_text(data, self.format, self.encoding, problems)

    async def _emit(self, sink: Sink, changed_ns: int | None = None) -> None:
        """Read and hand over the file; ``changed_ns`` (the file's mtime when it changed)
        sets ``lag``: seconds from the file's change to its application."""
        problems: list[str] = []
        try:
            rows = await asyncio.to_thread(self._read, problems)
        except SourceError as exc:
            if self.health.last_error != str(exc):
                log.error("subscriber file %s unusable, keeping the last good state: %s",
                          self.path, exc)
            self.health.last_error = str(exc)
            self.health.connected = self.health.listening = False
            return
        if self.health.last_error:
            log.info("subscriber file %s is readable again", self.path)
        self.health.last_error = None
        self.health.connected = self.health.listening = True
        if problems:
            # Each such row is rejected (and logged) by validation; this names the
            # likely cause once per version of the file.
            log.warning("subscriber file %s: %d row(s) not valid %s text, rejected "
                        "(first: %s)", self.path, len(problems), self.encoding, problems[0])
            self.health.extra["undecodable_rows"] = len(problems)
        else:
            self.health.extra.pop("undecodable_rows", None)
        now = time.time()
        self.health.last_snapshot = self.health.last_event = now
        await sink(Snapshot(rows))
        if changed_ns is not None:
            self.health.lag = round(max(0.0, time.time() - changed_ns / 1e9), 3)

    async def run(self, sink: Sink, urgent: Urgent = no_urgent) -> None:
        while True:
            stamp = self._stat()
            if stamp != self._seen or self._resync.is_set():
                self._resync.clear()
                changed = stamp is not None and stamp != self._seen
                self._seen = stamp
                if stamp is None:
                    msg = f"{self.path}: missing"
                    if self.health.last_error != msg:
                        log.error("subscriber file %s is missing, keeping the last good state",
                                  self.path)
                    self.health.last_error = msg
                    self.health.connected = self.health.listening = False
                else:
                    await self._emit(sink, stamp[2] if changed else None)
            try:
                await asyncio.wait_for(self._resync.wait(), self.poll_interval)
            except TimeoutError:
                pass
