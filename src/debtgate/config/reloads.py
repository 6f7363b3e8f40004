"""Reload by sections: each part says which config sections it follows (Knot Resolver's
manager is the model), and ``systemctl reload`` (SIGHUP) calls only the parts whose
sections changed.

Registrations are keyed by dotted section paths (``"nft"``, ``"source.postgres"``,
``"network.default_currency"``), checked against :class:`~debtgate.config.Config` when
registered (a typo would otherwise never fire):

* a **check** runs before anything changes and refuses the new config by raising
  :class:`~debtgate.errors.DebtgateError` (the ruleset is ``nft -c``-checked this way);
  one refusal keeps the running config for every part;
* a **callback** runs after every check passed, in registration order. ``outside``, when
  given, is what the part reads beside the config file (a token file's content): a change
  there fires the callback too, and an error reading it refuses the reload;
* **live** fields are read where they are used (the resync interval): nothing to call.

A changed field that no part follows is named in the log as taking effect on restart,
never silently ignored. The registry owns the running config (:attr:`current`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from debtgate.config import Config

log = logging.getLogger(__name__)

Callback = Callable[[Config, Config], Awaitable[None]]
"""``callback(old, new)``: apply what changed."""

Outside = Callable[[Config], object]
"""``outside(config)``: what a part reads beside the config file; raises to refuse."""


def section_of(config: Config, path: str) -> Any:
    """The value at a dotted section path (``"source.postgres"``)."""
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def changed(old: Config, new: Config, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` whose value differs between the two configs."""
    return [p for p in paths if section_of(old, p) != section_of(new, p)]


@dataclass
class _Entry:
    name: str
    paths: tuple[str, ...]
    fn: Callback | None
    outside: Outside | None = None
    seen: object = None
    """What ``outside`` read at the last reload (or at registration)."""


class Reloads:
    """The registry of per-section checks and callbacks, and the running config."""

    def __init__(self, config: Config) -> None:
        self.current = config
        self._checks: list[_Entry] = []
        self._callbacks: list[_Entry] = []

    def check(self, name: str, paths: Iterable[str], fn: Callback) -> None:
        """Run ``fn(old, new)`` before a reload that changes one of ``paths``; raising
        refuses the reload."""
        self._checks.append(_Entry(name, _valid(paths), fn))

    def on(self, name: str, paths: Iterable[str], fn: Callback,
           outside: Outside | None = None) -> None:
        """Run ``fn(old, new)`` on a reload that changes one of ``paths`` (or what
        ``outside`` reads)."""
        entry = _Entry(name, _valid(paths), fn, outside)
        if outside is not None:
            entry.seen = outside(self.current)
        self._callbacks.append(entry)

    def live(self, name: str, paths: Iterable[str]) -> None:
        """Fields read where they are used: followed, nothing to call."""
        self._callbacks.append(_Entry(name, _valid(paths), None))

    async def reload(self, new: Config) -> list[str]:
        """Check, then apply ``new``; return the names of the parts called. Raises (a
        :class:`~debtgate.errors.DebtgateError`) to refuse, with nothing applied."""
        old = self.current
        for entry in self._checks:
            if changed(old, new, entry.paths):
                assert entry.fn is not None
                await entry.fn(old, new)
        read = {id(e): e.outside(new) for e in self._callbacks if e.outside is not None}
        self.current = new
        called = []
        for entry in self._callbacks:
            which = changed(old, new, entry.paths)
            if id(entry) in read and read[id(entry)] != entry.seen:
                which.append(f"{entry.name} (outside the config)")
                entry.seen = read[id(entry)]
            if which and entry.fn is not None:
                log.info("reload: %s changed: %s", ", ".join(which), entry.name)
                await entry.fn(old, new)
                called.append(entry.name)
        left = self.unfollowed(old, new)
        if left:
            log.warning("reload: %s changed but no part applies it while running: it takes "
                        "effect on restart", ", ".join(left))
        return called

    def unfollowed(self, old: Config, new: Config) -> list[str]:
        """The changed fields (``section.field``) no registration follows."""
        followed = [p for e in self._callbacks for p in e.paths]

        def covered(path: str) -> bool:
            return any(path == p or path.startswith(p + ".") or p.startswith(path + ".")
                       for p in followed)

        left: list[str] = []
        for name in Config.model_fields:
            section = section_of(new, name)
            if section_of(old, name) == section:
                continue
            fields = type(section).model_fields if isinstance(section, BaseModel) else {}
            paths = changed(old, new, [f"{name}.{f}" for f in fields])
            left += [p for p in paths or [name] if not covered(p)]
        return left


def _valid(paths: Iterable[str]) -> tuple[str, ...]:
    out = tuple(paths)
    if not out:
        raise ValueError("a reload registration needs at least one section")
    default = Config()
    for path in out:
        try:
            section_of(default, path)
        except AttributeError:
            raise ValueError(f"no config section {path!r}") from None
    return out
