"""The base of every config section: strict, frozen, documented.

Every section of the TOML config is a subclass of :class:`Section`. Unknown
keys are errors naming their key path; each field carries a docstring that
``docs/configuration.md`` is checked against.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """A strict config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )


def key_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a key path: ``radius.nas[0].secret_file``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def problems_of(exc: ValidationError, origin: str) -> list[str]:
    """Every problem of a failed validation, each with its key path."""
    problems = []
    for err in exc.errors():
        where = key_path(tuple(err["loc"]))
        msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"])
        problems.append(f"{origin}: {where}: {msg.removeprefix('Value error, ')}")
    return problems

