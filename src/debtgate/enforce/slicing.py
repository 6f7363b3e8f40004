"""Bulk validation in slices on the event loop, so urgent work goes on between them.

A thread would not do: validation is mostly long C calls (set and list builds over a
column), during which the interpreter lock is not handed back, so a payment that
arrives while a thread validates a storm waited for most of it (measured on the
shipped daemon, 60,000 blocks in one UPDATE: a payment read 50 ms after the storm's
commit passed after 1.0-1.1 s; validated in slices of :data:`ROWS` rows with the loop
free between them it passes in tens of milliseconds, the storm's own time unchanged).

Rows can be validated apart only when no row can bear on another: no account and no
host twice, no prefix (which could hold another row's host). Otherwise the rows are
validated together, in a thread (the rare case: a conflict to resolve).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence

from debtgate.billing.base import Columns, Row
from debtgate.billing.validate import Outcome
from debtgate.enforce.turn import Turn

log = logging.getLogger(__name__)

ROWS = 1_000
"""Rows validated per slice (a few milliseconds each)."""


CHECK_ROWS = 20_000
"""Rows checked per step by :func:`entangled_sliced` (~8 ms each: a payment needs several
loop hops, and each may wait for one step)."""


def _entangled_steps(cols: Columns, step: int) -> Iterator[bool | None]:
    """:func:`entangled` over ``step`` rows at a time: None after each step, then the
    answer."""
    accounts: set[object] = set()
    hosts: set[str] = set()
    named = counted = 0
    for at in range(0, len(cols), step):
        try:
            part = cols.account[at:at + step]
            accounts.update(part)
            named += len(part) - part.count(None)
            text = " ".join(filter(None, cols.addresses[at:at + step]))  # TypeError for a list
        except TypeError:
            yield True
            return
        accounts.discard(None)
        if len(accounts) != named or "/" in text:
            yield True
            return
        split = text.split()
        hosts.update(split)
        counted += len(split)
        if len(hosts) != counted:
            yield True
            return
        yield None
    yield False


def entangled(cols: Columns) -> bool:
    """Whether some rows of ``cols`` bear on others (see the module docstring)."""
    return bool(list(_entangled_steps(cols, max(len(cols), 1)))[-1])


async def entangled_sliced(cols: Columns) -> bool:
    """:func:`entangled`, the event loop free between steps of :data:`CHECK_ROWS`."""
    for answer in _entangled_steps(cols, CHECK_ROWS):
        if answer is not None:
            return answer
        await asyncio.sleep(0)
    return False


def merge(into: Outcome, part: Outcome) -> None:
    """Add the outcome of some rows to the outcome of others (no row shared)."""
    into.subscribers.update(part.subscribers)
    into.lean.update(part.lean)
    into.rejections.extend(part.rejections)
    into.foreign_accounts.extend(part.foreign_accounts)
    into.foreign_addresses += part.foreign_addresses
    if into.hosts is not None:
        if part.hosts is None:
            into.hosts = None
        else:
            into.hosts.update(part.hosts)


async def validate_sliced(rows: Sequence[Row], validate: Callable[[Sequence[Row]], Outcome],
                          turn: Turn) -> Outcome:
    """``validate(rows)``, one :meth:`Turn.slice` at a time when the rows allow it."""
    if not isinstance(rows, Columns) or len(rows) <= ROWS:
        async with turn.slice():
            return validate(rows)
    if await entangled_sliced(rows):
        log.debug("%d rows validated together (some bear on others)", len(rows))
        return await asyncio.to_thread(validate, rows)
    out = Outcome(hosts={})
    for at in range(0, len(rows), ROWS):
        async with turn.slice():  # urgent work first, and the loop reads its sockets
            merge(out, validate(rows.pick(range(at, min(at + ROWS, len(rows))))))
    return out
