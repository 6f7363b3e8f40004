"""The one root exception and its families.

Transient failures of the outside world (billing down, a NAS silent, nft busy)
are raised as subclasses of :class:`DebtgateError` and *degrade* the daemon:
they are shown on the status endpoint and retried. Anything else is a bug: it
crashes the daemon and systemd restarts it; enforcement stays in the kernel.
"""

from __future__ import annotations


class DebtgateError(Exception):
    """Root of every error debtgate raises on purpose."""


class ConfigError(DebtgateError):
    """The configuration is invalid; ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SourceError(DebtgateError):
    """The billing source could not be read (transient: the last good state is kept)."""


class ApplyError(DebtgateError):
    """The kernel refused a transaction (nft, conntrack)."""


class RadiusError(DebtgateError):
    """A RADIUS peer failed or answered badly."""


class HookError(DebtgateError):
    """A billing hook (promised payment, pause) failed or refused."""
