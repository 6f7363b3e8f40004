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

from pyrad.dictionary import Dictionary

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
_TOP_KEYS = {"description", "identify", "identify_all", "vars", *INTENTS}
_ACTION_KEYS = {"type", "attributes", "fallback_disconnect"}
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


def _action(where: str, raw: Any, names: set[str], dictionary: Dictionary) -> Action:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a table")
    unknown = set(raw) - _ACTION_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    kind = raw.get("type")
    if kind not in ("coa", "disconnect", "none"):
        raise ProfileError(f"{where}.type: must be coa, disconnect or none, not {kind!r}")
    attrs: list[tuple[str, str]] = []
    for i, item in enumerate(raw.get("attributes", [])):
        at = f"{where}.attributes[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise ProfileError(f"{at}: must be {{ name = ..., value = ... }}")
        name, value = str(item["name"]), str(item["value"])
        try:
            atype = attribute_type(dictionary, name)
            used = template_fields(value)
            if used - names:
                raise ProfileError(f"unknown placeholders {sorted(used - names)}")
            if not used:
                convert(atype, value)
        except ProfileError as exc:
            raise ProfileError(f"{at}: {exc}") from None
        attrs.append((name, value))
    if kind == "disconnect" and attrs:
        raise ProfileError(f"{where}: a Disconnect-Request carries identification only")
    if kind == "coa" and not attrs:
        raise ProfileError(f"{where}: a CoA needs at least one attribute")
    fallback = raw.get("fallback_disconnect", False)
    if not isinstance(fallback, bool) or (fallback and kind != "coa"):
        raise ProfileError(f"{where}.fallback_disconnect: a boolean, only for type = coa")
    return Action(kind, tuple(attrs), fallback)


def parse_profile(name: str, data: dict[str, Any], dictionary: Dictionary) -> Profile:
    """Validate a decoded profile; every error names the profile and key."""
    where = f"profile {name}"
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    pvars = data.get("vars", {})
    if not isinstance(pvars, dict) or not all(isinstance(v, str) for v in pvars.values()):
        raise ProfileError(f"{where}.vars: must be a table of strings")
    clash = set(pvars) & SUBSCRIBER_FIELDS
    if clash:
        raise ProfileError(f"{where}.vars: {sorted(clash)} are subscriber fields")
    identify = data.get("identify", ["session_id", "user_name", "framed_ip"])
    if not identify or any(i not in IDENTIFIERS for i in identify):
        raise ProfileError(f"{where}.identify: a non-empty list of {sorted(IDENTIFIERS)}")
    for intent in ("restrict", "restore"):
        if intent not in data:
            raise ProfileError(f"{where}: [{intent}] is missing")
    names = set(SUBSCRIBER_FIELDS) | set(pvars)
    actions = {
        i: _action(f"{where}.{i}", data[i], names, dictionary) for i in INTENTS if i in data
    }
    return Profile(
        name=name,
        description=str(data.get("description", "")),
        identify=tuple(identify),
        identify_all=bool(data.get("identify_all", False)),
        vars=dict(pvars),
        actions=actions,
    )


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
