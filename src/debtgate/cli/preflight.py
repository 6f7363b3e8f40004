"""What ``debtgate check-config`` checks beyond the schema: the files the daemon (and the
portal) read when they start, read with the very functions they use.

Every problem names the key path and the file; secrets themselves are never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from debtgate.api.extension import read_token
from debtgate.billing.pgfetch import load_dsn
from debtgate.config import Config
from debtgate.config.radius import read_secret
from debtgate.errors import DebtgateError
from debtgate.portal.security import load_secret
from debtgate.radius.dispatcher import CoaDispatcher


def _problem(key: str, path: Path, reader: Callable[[Path], object]) -> str | None:
    """``key: message`` if ``reader(path)`` fails, else None."""
    try:
        reader(path)
    except DebtgateError as exc:
        detail = "; ".join(getattr(exc, "problems", None) or [str(exc)])
        # the readers' messages may start with their own key path: keep ours only
        prefix = detail.split(": ", 1)
        if len(prefix) == 2 and prefix[0].replace(".", "").replace("_", "").isalnum() \
                and "/" not in prefix[0] and " " not in prefix[0]:
            detail = prefix[1]
        return f"{key}: {detail}"
    except OSError as exc:
        return f"{key}: cannot read {path}: {exc.strerror}"
    return None


def _readable(path: Path) -> object:
    with path.open("rb") as f:
        return f.read(1)


def _min_bytes(what: str, size: int) -> Callable[[Path], object]:
    def read(path: Path) -> object:
        data = path.read_bytes().strip()
        if len(data) < size:
            raise DebtgateError(f"{what} {path} holds fewer than {size} bytes")
        return None
    return read


def startup_problems(config: Config) -> list[str]:
    """Every problem the daemon or the portal would refuse at start, one line each."""
    out: list[str | None] = []
    if not config.nft.ruleset.exists():
        out.append(f"nft.ruleset: {config.nft.ruleset} does not exist")
    api = config.api
    if api.listen is not None and api.token_file is None:
        out.append("api.listen needs api.token_file (the bearer token)")
    if api.token_file is not None:
        out.append(_problem("api.token_file", api.token_file, read_token))
    pg = config.source.postgres
    if config.source.kind == "postgres" and pg is not None and pg.dsn_file is not None:
        out.append(_problem("source.postgres.dsn_file", pg.dsn_file,
                            lambda p: load_dsn(None, p)))
    portal = config.portal
    if portal.csrf_secret_file is not None:
        out.append(_problem("portal.csrf_secret_file", portal.csrf_secret_file, load_secret))
    for key in ("tls_cert_file", "tls_key_file"):
        path = getattr(portal, key)
        if path is not None:
            out.append(_problem(f"portal.{key}", path, _readable))
    radius = config.radius
    secrets_ok = True
    if radius.enabled:
        for i, nas in enumerate(radius.nas):
            got = _problem(f"radius.nas[{i}] ({nas.name}).secret_file", nas.secret_file,
                           read_secret)
            secrets_ok &= got is None
            out.append(got)
        if radius.accounting is not None:
            got = _problem("radius.accounting.secret_file", radius.accounting.secret_file,
                           read_secret)
            secrets_ok &= got is None
            out.append(got)
    ss = config.selfservice
    if ss.enabled:
        hook = ss.hook
        if hook.dsn_file is not None:
            out.append(_problem("selfservice.hook.dsn_file", hook.dsn_file,
                                lambda p: load_dsn(None, p)))
        if hook.kind == "http" and hook.secret_file is not None:
            out.append(_problem("selfservice.hook.secret_file", hook.secret_file,
                                _min_bytes("the hook secret file", 16)))
    if radius.enabled and secrets_ok:
        try:  # profiles, dictionaries: what the dispatcher refuses at start
            CoaDispatcher(radius)
        except DebtgateError as exc:
            out.append(f"radius: {exc}")
    return [p for p in out if p is not None]
