"""The mass-change guard (pure): hold a sync that would restrict too many at once.

A billing bug that marks 80 % of accounts blocked must not cut a city off.
When one sync would newly restrict more than ``share`` of the subscribers (or
more than ``count``), the restricting part is held until a person approves.
Releases are never held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from debtgate.model import State


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    enabled: bool = True
    share: float = 0.05
    """Hold when more than this share of all subscribers would be newly restricted."""
    count: int | None = None
    """Hold when more than this many would be newly restricted (None: share only)."""
    min_count: int = 10
    """Never hold this many or fewer (small changes are always applied)."""

    def trips(self, restricting: int, total: int) -> bool:
        if not self.enabled or restricting <= self.min_count:
            return False
        if self.count is not None and restricting > self.count:
            return True
        return total > 0 and restricting > self.share * total


def hold(after: dict[str, State], before: Mapping[str, State | None], held: list[str]
         ) -> dict[str, State]:
    """Keep held accounts where they were (a newcomer stays unrestricted)."""
    out = dict(after)
    for acc in held:
        prev = before.get(acc)
        out[acc] = prev if prev is not None and not prev.restricted else (prev or State.ACTIVE)
    return out
