"""Render docs/configuration.md from the config models (fields, types, defaults, docstrings).

``python -m debtgate.config.doc > docs/configuration.md``; a unit test keeps the
committed file equal to this output, so the documentation cannot drift.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic import BaseModel

from debtgate.config import DEFAULT_RULESET, Config

INTRO = """# Configuration

debtgate reads one TOML file (`debtgate run --config FILE`, default
`/etc/debtgate/debtgate.toml`). `debtgate check-config FILE` reports every problem
with its key path, unknown keys included, and exits non-zero. `systemctl reload
debtgate` (SIGHUP) re-reads it: a bad file is refused and the running config kept;
only the sections that changed are applied.

Secrets (the billing DSN's password, NAS secrets, the API token, the CSRF and
webhook secrets) are read from files named here, never written in this file, and
never logged. See `examples/debtgate.toml` for a complete example.

This page is generated from the code (`python -m debtgate.config.doc`); a test
fails when they differ.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: Any) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value == DEFAULT_RULESET:
        return "the shipped `nft-rules/debtgate.nft`"
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "unset"
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    if "PosixPath" in text:
        text = f'"{value}"'
    return f"`{text}`".replace("|", "\\|")


def _section_model(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        for inner in typing.get_args(arg):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def render_model(model: type[BaseModel], path: str, out: list[str]) -> None:
    rows = []
    nested = []
    for name, field in model.model_fields.items():
        sub = _section_model(field.annotation)
        doc = " ".join((field.description or "").split())
        if sub is not None:
            nested.append((name, sub, doc, typing.get_origin(field.annotation) is list))
            continue
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {doc} |")
    if rows:
        out.append(f"\n## `[{path}]`\n" if path else "\n## top level\n")
        doc = " ".join((model.__doc__ or "").split())
        if doc and not doc.startswith("A strict config section"):
            out.append(doc + "\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
    for name, sub, doc, is_list in nested:
        key = f"{path}.{name}" if path else name
        if is_list:
            key = f"[{key}]"
        if doc:
            out.append(f"\n<!-- {key}: {doc} -->")
        render_model(sub, key, out)


def render() -> str:
    out = [INTRO]
    render_model(Config, "", out)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
