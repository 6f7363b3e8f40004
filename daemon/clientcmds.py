"""CLI commands that talk to a running daemon's management API (status, explain, approve)."""

from __future__ import annotations

import argparse
from typing import Any


def add_client_commands(sub: Any) -> None:
    """Registered by :mod:`debtgate.cli`; filled in by the management API."""
    del sub


def _unused(args: argparse.Namespace) -> int:  # pragma: no cover
    return 0
