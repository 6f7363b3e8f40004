"""The extension base: ``run`` is required, the rest adds nothing unless overridden."""

from __future__ import annotations

import pytest

from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.daemon.extensions import default_extensions
from debtgate.host import Extension, ExtensionHost
from debtgate.model import State, Subscriber


class Quiet(Extension):
    async def run(self, daemon: ExtensionHost) -> None:
        return None


def test_run_is_required() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Extension()  # type: ignore[abstract]


def test_the_defaults_add_nothing() -> None:
    ext, out = Quiet(), {"version": "x"}
    ext.status(out)
    ext.explain(Subscriber("a", ("10.0.0.1",), State.BLOCKED), out)
    reloads = Reloads(Config())
    ext.watch(reloads)
    assert out == {"version": "x"} and reloads.unfollowed(Config(), Config()) == []


def test_the_shipped_parts_are_extensions() -> None:
    parts = default_extensions(Config())
    assert parts and all(isinstance(p, Extension) for p in parts)
