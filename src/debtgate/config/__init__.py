"""Typed configuration: one TOML file, every field documented.

``load_config(path)`` returns a frozen :class:`Config` or raises
:class:`~debtgate.errors.ConfigError` listing every problem with its key path,
unknown keys included. ``docs/configuration.md`` documents every field; a unit
test keeps the two in step.
"""

from __future__ import annotations

import codecs
import ipaddress
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    IPvAnyAddress,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from debtgate.config.base import Section, problems_of
from debtgate.config.portal import PortalConfig
from debtgate.config.postgres import PostgresSourceSection
from debtgate.config.radius import RadiusConfig
from debtgate.config.selfservice import SelfServiceSection
from debtgate.errors import ConfigError

DETECTION_HOSTS = frozenset({
    "connectivitycheck.gstatic.com", "connectivitycheck.android.com", "clients3.google.com",
    "www.google.com", "google.com", "captive.apple.com", "www.apple.com", "apple.com",
    "www.msftconnecttest.com", "msftconnecttest.com", "www.msftncsi.com", "msftncsi.com",
    "detectportal.firefox.com", "nmcheck.gnome.org", "network-test.debian.org",
    "connectivity-check.ubuntu.com",
})
"""Operating-system captive-portal probes: never walled-garden entries."""

def _default_ruleset() -> Path:
    """The shipped ruleset: in the source tree, or where ``pip install`` put its data files."""
    in_tree = Path(__file__).resolve().parents[3] / "nft-rules" / "debtgate.nft"
    installed = Path(sys.prefix) / "share" / "debtgate" / "nft-rules" / "debtgate.nft"
    return in_tree if in_tree.exists() or not installed.exists() else installed


DEFAULT_RULESET = _default_ruleset()


class DaemonSection(Section):
    state_dir: Path = Path("/var/lib/debtgate")
    """Where the daemon keeps its persistent state (last applied state, overrides, audit)."""
    reconcile_interval: float = Field(300.0, gt=0)
    """Seconds between full reconciles: kernel read back, drift repaired, billing resynced."""
    shutdown_grace: float = Field(10.0, gt=0)
    """Seconds the daemon waits for its tasks to finish on SIGTERM before it exits anyway."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the daemon's own messages."""
    fail_open: bool = False
    """After a reboot (kernel table empty) start with nobody restricted until billing
    answers, instead of restoring the last applied state (the default, fail-closed)."""
    readiness_budget: float = Field(900.0, gt=0)
    """Seconds without a successful billing sync after which /readyz reports not ready."""


class GuardSection(Section):
    enabled: bool = True
    """Hold a sync that would newly restrict too many subscribers at once."""
    share: float = Field(0.05, gt=0, le=1)
    """Hold when more than this share of all subscribers would be newly restricted."""
    count: int | None = Field(None, ge=1)
    """Hold when more than this many would be newly restricted (unset: the share only)."""
    min_count: int = Field(10, ge=0)
    """Never hold this many or fewer: small changes always apply."""


class FileSourceSection(Section):
    path: Path = Path("/etc/debtgate/subscribers.json")
    """The subscriber file: JSON (a list of rows, or {"subscribers": [...]}) or CSV
    with a header row."""
    format: Literal["auto", "json", "csv"] = "auto"
    """File format; ``auto`` picks by the file name's ending (.csv is CSV, anything else JSON)."""
    poll_interval: float = Field(0.25, gt=0, le=5)
    """Seconds between checks of the file for a change (an edit takes effect within this)."""
    encoding: str = "utf-8"
    """The file's text encoding, a Python codec name (``utf-8``, ``cp1251``, ``koi8-r``,
    ...). A row holding bytes it does not decode is rejected (``bad_encoding``, naming
    the line and the byte); the other rows apply."""

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except LookupError:
            info = None
        if info is None or not getattr(info, "_is_text_encoding", True):  # base64, rot13
            raise ValueError(f"{value[:40]!r} is not a text encoding Python knows (e.g. "
                             "utf-8, cp1251, koi8-r)")
        return value


class SourceSection(Section):
    kind: Literal["file", "postgres"] = "file"
    """Where subscriber states come from: the local ``file`` or a ``postgres`` billing."""
    file: FileSourceSection = FileSourceSection()
    """The local file source (``kind = "file"``)."""
    postgres: PostgresSourceSection | None = None
    """The PostgreSQL billing feed (``kind = "postgres"``): DSN, the snapshot and
    accounts queries, the NOTIFY channel; see docs/billing-postgres.md."""


class NetworkSection(Section):
    serves: list[IPvAnyNetwork] = []
    """Prefixes this gateway enforces; addresses outside them are left to other gateways.
    Empty means every address."""
    min_prefix_v4: int = Field(24, ge=8, le=32)
    """The widest IPv4 prefix a billing row may carry (a wider one is rejected)."""
    min_prefix_v6: int = Field(48, ge=16, le=128)
    """The widest IPv6 prefix a billing row may carry (a wider one is rejected)."""
    default_currency: str = Field("RUB", pattern=r"^[A-Za-z]{3}$")
    """ISO 4217 currency (three letters) of amounts whose row names none."""

    @field_validator("serves")
    @classmethod
    def _no_default_route(cls, value: list[Any]) -> list[Any]:
        for net in value:
            if net.prefixlen == 0:
                raise ValueError(f"{net} would make this gateway enforce every address; "
                                 "leave serves empty for that")
        return value


class NftSection(Section):
    table: Literal["debtgate"] = "debtgate"
    """The nftables table (``inet debtgate``); debtgate never touches any other table."""
    ruleset: Path = DEFAULT_RULESET
    """The ruleset file loaded (after ``nft -c``) at start and on reload."""
    portal_v4: ipaddress.IPv4Address = ipaddress.IPv4Address("10.255.255.1")
    """IPv4 address restricted subscribers' web requests are DNATed to (the portal)."""
    portal_v6: ipaddress.IPv6Address | None = None
    """IPv6 portal address; without one, restricted IPv6 web gets a TCP reset (browsers
    fall back to IPv4 at once)."""
    portal_port: int = Field(8080, ge=1, le=65535)
    """The portal's HTTP port (DNAT target)."""
    portal_tls_port: int = Field(8443, ge=1, le=65535)
    """The portal's HTTPS port (RFC 8908 API), reachable by restricted subscribers."""
    ack_timeout: int = Field(3600, ge=1, le=30 * 86400)
    """Seconds a warned subscriber browses freely after pressing Continue, before the
    notice comes back."""
    conntrack: bool = True
    """Cut a subscriber's tracked connections on every change, so old flows obey the new state."""


class GardenSection(Section):
    cidrs: list[IPvAnyNetwork] = []
    """Walled-garden networks restricted subscribers may reach on tcp/80 and 443
    (personal cabinet, payment gateways)."""
    resolvers: list[IPvAnyAddress] = []
    """DNS resolvers restricted subscribers may query (udp and tcp 53)."""
    domains: list[str] = []
    """Walled-garden domains; the daemon resolves them and keeps their addresses, honouring TTL."""
    dns_servers: list[IPvAnyAddress] = []
    """Servers the daemon asks to resolve ``domains``; empty means the system's resolv.conf."""
    refresh_min: float = Field(30.0, ge=1)
    """The shortest interval between two resolutions of one domain, whatever its TTL."""
    ttl_slack: int = Field(60, ge=0)
    """Seconds added to a record's TTL for its addresses' expiry in the garden set."""

    @field_validator("cidrs")
    @classmethod
    def _no_default_route(cls, value: list[Any]) -> list[Any]:
        for net in value:
            if net.prefixlen < (8 if net.version == 4 else 16):
                raise ValueError(f"{net} is too wide for a walled garden")
        return value

    @field_validator("domains")
    @classmethod
    def _no_detection_hosts(cls, value: list[str]) -> list[str]:
        out = []
        for name in value:
            host = name.strip().lower().rstrip(".")
            if host in DETECTION_HOSTS:
                raise ValueError(f"{host} is an operating system's captive-portal probe; "
                                 "in the garden it would hide the portal from phones")
            if not host or any(c in host for c in "/: "):
                raise ValueError(f"{name!r} is not a domain name")
            out.append(host)
        return out


class ApiSection(Section):
    socket: Path = Path("/run/debtgate/api.sock")
    """The management API's Unix socket (root only); the CLI talks to it."""
    portal_socket: Path = Path("/run/debtgate/portal.sock")
    """The Unix socket the portal asks subscriber views from."""
    portal_socket_group: str | None = None
    """Group owning the portal socket (the portal's user is in it); mode 0660."""
    listen: str | None = None
    """Optional TCP listener for the management API, ``ADDRESS:PORT``; needs ``token_file``."""
    token_file: Path | None = None
    """File holding the bearer token required on the TCP listener."""


class Config(Section):
    daemon: DaemonSection = DaemonSection()
    """Process-wide settings."""
    source: SourceSection = SourceSection()
    """The billing source."""
    network: NetworkSection = NetworkSection()
    """What this gateway serves and what billing rows may carry."""
    nft: NftSection = NftSection()
    """nftables enforcement."""
    garden: GardenSection = GardenSection()
    """The walled garden and DNS."""
    guard: GuardSection = GuardSection()
    """The mass-change guard."""
    api: ApiSection = ApiSection()
    """Local sockets and the management API."""
    portal: PortalConfig = PortalConfig()
    """The captive portal (``debtgate portal``): pages, payment ways, security."""
    radius: RadiusConfig = RadiusConfig()
    """RADIUS CoA / Disconnect-Message to the BRAS/NAS, and the accounting listener."""
    selfservice: SelfServiceSection = SelfServiceSection()
    """Self-service from the stub page: promised payment and resuming a pause, decided
    by the billing's hook; see docs/selfservice.md."""

    @model_validator(mode="after")
    def _portal_v6_reachable(self) -> Config:
        v6 = self.nft.portal_v6
        portal = self.portal
        # with trusted_proxies a proxy in front may be the one listening on portal_v6
        if v6 is not None and not portal.trusted_proxies and not portal.listens_on(v6):
            raise ValueError(
                f"nft.portal_v6 = {v6} is the DNAT target of restricted IPv6 web, but "
                f"portal.listen = {portal.listen!r} does not listen there: set "
                "portal.listen = \"\" (every address, IPv4 and IPv6) or remove "
                "nft.portal_v6")
        return self


def parse_config(data: dict[str, Any], origin: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, origin)) from None


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))
