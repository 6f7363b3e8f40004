"""Vendor profiles as data: which request each intent sends, with which attributes.

A profile is a TOML file (see ``docs/radius.md``)::

    description = "..."
    identify = ["session_id", "user_name", "framed_ip"]   # preference order
    identify_all = false        # send every known identifier, not only the first
    [vars]
    address_list = "debtors"
    [restrict]
    type = "coa"                # coa | disconnect | none
    fallback_disconnect = true
    attributes = [{ name = "Mikrotik-Address-List", value = "{address_list}" }]

``[warn]`` may be omitted: warn then does what ``[restore]`` does.
"""

from __future__ import annotations

import functools
import ipaddress
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pyrad.dictionary import Dictionary

from debtgate.config.base import Section, problems_of
from debtgate.errors import RadiusError

INTENTS = ("restrict", "warn", "restore")
SUBSCRIBER_FIELDS = frozenset(
    {"user_name", "session_id", "framed_ip", "account", "nas_ip", "nas_identifier"}
)
IDENTIFIERS = {
    "session_id": "Acct-Session-Id",
    "user_name": "User-Name",
    "framed_ip": "Framed-IP-Address",
}
SHIPPED_DIR = Path(__file__).parent / "profiles"
_FORMATTER = string.Formatter()


class ProfileError(RadiusError):
    """A profile is invalid or cannot be filled for a subscriber."""


@dataclass(frozen=True, slots=True)
class Action:
    """What one intent sends."""

    kind: Literal["coa", "disconnect", "none"]
    attributes: tuple[tuple[str, str], ...] = ()
    fallback_disconnect: bool = False


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated vendor profile."""

    name: str
    description: str
    identify: tuple[str, ...]
    identify_all: bool
    vars: Mapping[str, str]
    actions: Mapping[str, Action] = field(default_factory=dict)

    def action(self, intent: str) -> Action:
        """The action for ``intent``; warn falls back to restore."""
        if intent == "warn" and "warn" not in self.actions:
            intent = "restore"
        return self.actions[intent]


@functools.lru_cache(maxsize=4096)
def template_fields(template: str) -> frozenset[str]:
    """Placeholders used by ``template``; rejects attribute access and format specs."""
    names: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ProfileError(f"bad template {template!r}: {exc}") from exc
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise ProfileError(f"bad placeholder {{{name}}} in {template!r}: use plain {{name}}")
        names.add(name)
    return frozenset(names)


def fill(template: str, values: Mapping[str, str | None]) -> str:
    """Fill a template; a missing or empty value is a :class:`ProfileError`."""
    fields = template_fields(template)
    if not fields:
        return template
    for name in fields:
        if not values.get(name):
            raise ProfileError(f"template {template!r} needs {{{name}}}, which is not known")
    return template.format_map({k: values[k] for k in fields})


def attribute_type(dictionary: Dictionary, name: str) -> str:
    """The dictionary type of ``name`` (a ``Name:tag`` key is accepted)."""
    base = name.split(":", 1)[0]
    if base not in dictionary.attributes:
        raise ProfileError(f"unknown attribute {base!r} (not in the RADIUS dictionaries)")
    return str(dictionary.attributes[base].type)


def convert(atype: str, value: str) -> Any:
    """Convert a filled template to the value pyrad encodes for ``atype``."""
    try:
        if atype in ("integer", "date"):
            return int(value)
        if atype == "ipaddr":
            return str(ipaddress.IPv4Address(value))
        if atype == "ipv6addr":
            return str(ipaddress.IPv6Address(value))
        if atype == "octets":
            return value.encode()
    except ValueError as exc:
        raise ProfileError(f"value {value!r} is not a valid {atype}") from exc
    return value


class AttributeSpec(Section):
    """One attribute of a CoA: a RADIUS dictionary name and a value template."""

    name: str = Field(min_length=1)
    """The attribute (``Name`` or ``Name:tag``), as the RADIUS dictionaries spell it."""
    value: str
    """The value, with ``{placeholders}`` from the subscriber and the profile's vars."""


class ActionSpec(Section):
    """What one intent (``[restrict]``, ``[warn]``, ``[restore]``) sends."""

    type: Literal["coa", "disconnect", "none"]
    """``coa`` (CoA-Request with attributes), ``disconnect`` or ``none``."""
    attributes: list[AttributeSpec] = []
    """The CoA's attributes (a Disconnect-Request carries identification only)."""
    fallback_disconnect: bool = False
    """When the NAS refuses the CoA, disconnect the session (type = coa only)."""

    @model_validator(mode="after")
    def _consistent(self) -> ActionSpec:
        if self.type == "disconnect" and self.attributes:
            raise ValueError("a Disconnect-Request carries identification only")
        if self.type == "coa" and not self.attributes:
            raise ValueError("a CoA needs at least one attribute")
        if self.fallback_disconnect and self.type != "coa":
            raise ValueError("fallback_disconnect: only for type = coa")
        return self


class ProfileSpec(Section):
    """A vendor profile file: the same strict machinery as the config (unknown keys are
    errors naming their key path). Validated with the RADIUS dictionary in the context:
    every attribute must exist there and every fixed value must convert to its type."""

    description: str = ""
    """What the profile is for (one line, for the operator)."""
    identify: list[Literal["session_id", "user_name", "framed_ip"]] = Field(
        default=["session_id", "user_name", "framed_ip"], min_length=1)
    """The session identifiers to send, in order of preference."""
    identify_all: bool = False
    """Send every known identifier, not only the first."""
    vars: dict[str, str] = {}
    """Profile variables for the templates (an NAS may override them)."""
    restrict: ActionSpec
    """What a restricted subscriber's session gets."""
    warn: ActionSpec | None = None
    """What a warned subscriber's session gets (default: what ``[restore]`` does)."""
    restore: ActionSpec
    """What a subscriber back in good standing gets."""

    @field_validator("vars")
    @classmethod
    def _not_subscriber_fields(cls, value: dict[str, str]) -> dict[str, str]:
        clash = set(value) & SUBSCRIBER_FIELDS
        if clash:
            raise ValueError(f"{sorted(clash)} are subscriber fields")
        return value

    @field_validator("restrict", "warn", "restore")
    @classmethod
    def _attributes_known(cls, spec: ActionSpec | None,
                          info: ValidationInfo) -> ActionSpec | None:
        dictionary = (info.context or {}).get("dictionary")
        if dictionary is None or spec is None:
            return spec
        names = set(SUBSCRIBER_FIELDS) | set(info.data.get("vars") or {})
        for n, item in enumerate(spec.attributes):
            try:
                atype = attribute_type(dictionary, item.name)
                used = template_fields(item.value)
                if used - names:
                    raise ProfileError(f"unknown placeholders {sorted(used - names)}")
                if not used:
                    convert(atype, item.value)
            except ProfileError as exc:
                raise ValueError(f"attributes[{n}]: {exc}") from None
        return spec


def parse_profile(name: str, data: dict[str, Any], dictionary: Dictionary) -> Profile:
    """Validate a decoded profile; every error names the profile and the key path."""
    try:
        spec = ProfileSpec.model_validate(data, context={"dictionary": dictionary})
    except ValidationError as exc:
        raise ProfileError("; ".join(problems_of(exc, f"profile {name}"))) from None
    actions = {i: Action(a.type, tuple((x.name, x.value) for x in a.attributes),
                         a.fallback_disconnect)
               for i in INTENTS if (a := getattr(spec, i)) is not None}
    return Profile(name=name, description=spec.description, identify=tuple(spec.identify),
                   identify_all=spec.identify_all, vars=dict(spec.vars), actions=actions)


def load_profile(path: Path, dictionary: Dictionary) -> Profile:
    """Read and validate one profile file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    try:
        return parse_profile(path.stem, data, dictionary)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from None


def load_profiles(dictionary: Dictionary, extra_dir: Path | None = None) -> dict[str, Profile]:
    """Shipped profiles, overridden by same-named files in ``extra_dir``."""
    profiles: dict[str, Profile] = {}
    for directory in (SHIPPED_DIR, extra_dir):
        if directory is None:
            continue
        for path in sorted(directory.glob("*.toml")):
            profiles[path.stem] = load_profile(path, dictionary)
    return profiles
