"""The base of every config section: strict, frozen, documented.

Every section of the TOML config is a subclass of :class:`Section`. Unknown
keys are errors naming their key path; each field carries a docstring that
``docs/configuration.md`` is checked against.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A strict config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )
