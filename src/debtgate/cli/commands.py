"""CLI commands that talk to a running daemon's management API.

``debtgate status | explain KEY | approve | resync | override add|list|delete``;
each takes ``--socket PATH`` (default /run/debtgate/api.sock, or
``$DEBTGATE_API_SOCKET``) or ``--url http://ADDR:PORT --token-file F``, and
``--json`` for scripts. Errors raise :class:`~debtgate.errors.DebtgateError`,
which ``debtgate.cli.main.main`` prints and turns into exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from debtgate.cli.client import DEFAULT_SOCKET, Client
from debtgate.cli.format import format_overrides, format_status, format_tree, parse_duration
from debtgate.errors import DebtgateError

Command = Callable[[argparse.Namespace], int]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("daemon connection")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path,
                       default=Path(os.environ.get("DEBTGATE_API_SOCKET", DEFAULT_SOCKET)),
                       help="management Unix socket (default: %(default)s)")
    where.add_argument("--url", help="management TCP listener, http://ADDRESS:PORT")
    group.add_argument("--token-file", type=Path, help="file holding the bearer token (--url)")
    group.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def client_of(args: argparse.Namespace) -> Client:
    if args.url is None:
        return Client(socket=args.socket, timeout=args.timeout)
    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DebtgateError(f"cannot read --token-file {args.token_file}: "
                                f"{exc.strerror}") from None
    return Client(socket=None, url=args.url, token=token, timeout=args.timeout)


def _out(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> int:
    if args.json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(text(data))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    return _out(args, client_of(args).call("GET", "/status"), format_status)


def cmd_explain(args: argparse.Namespace) -> int:
    key = urllib.parse.quote(args.key, safe="")
    return _out(args, client_of(args).call("GET", f"/subscribers/{key}"), format_tree)


def cmd_approve(args: argparse.Namespace) -> int:
    return _out(args, client_of(args).call("POST", "/guard/approve"), format_tree)


def cmd_resync(args: argparse.Namespace) -> int:
    data = client_of(args).call("POST", "/resync")
    return _out(args, data, lambda _: "resync requested; `debtgate status` shows its progress")


def cmd_override_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"account": args.account, "reason": args.reason,
                            "action": "restrict" if args.restrict else "release"}
    if args.ttl is not None:
        try:
            body["ttl_seconds"] = parse_duration(args.ttl)
        except ValueError as exc:
            raise DebtgateError(f"--ttl: {exc}") from None
    if args.until is not None:
        try:
            when = datetime.fromisoformat(args.until)
        except ValueError:
            raise DebtgateError(f"--until: not an ISO 8601 date-time: {args.until!r}") from None
        body["expires_at"] = (when if when.tzinfo else when.astimezone()).isoformat()
    created = client_of(args).call("POST", "/overrides", body)
    return _out(args, created, lambda o: f"override {o.get('id')} added\n" + format_tree(o))


def cmd_override_list(args: argparse.Namespace) -> int:
    return _out(args, client_of(args).call("GET", "/overrides"), format_overrides)


def cmd_override_delete(args: argparse.Namespace) -> int:
    oid = urllib.parse.quote(args.id, safe="")
    client_of(args).call("DELETE", f"/overrides/{oid}")
    return _out(args, {"deleted": args.id}, lambda _: f"override {args.id} deleted")


def add_client_commands(sub: Any) -> None:
    """Register the client commands on the ``debtgate`` subparsers."""
    common = _common()

    def add(parent: Any, name: str, func: Command, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, parents=[common])
        p.set_defaults(func=func)
        return p

    add(sub, "status", cmd_status, "what the running daemon is doing")
    p = add(sub, "explain", cmd_explain, "why a subscriber is in its state")
    p.add_argument("key", metavar="ADDRESS|ACCOUNT")
    add(sub, "approve", cmd_approve, "release the restrictions the mass-block guard holds")
    add(sub, "resync", cmd_resync, "ask the billing feed for a full resync")
    over = sub.add_parser("override", help="manual restrict/release overrides")
    osub = over.add_subparsers(dest="override_command", required=True, metavar="COMMAND")
    p = add(osub, "add", cmd_override_add, "restrict or release an account by hand")
    p.add_argument("account", metavar="ACCOUNT")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--restrict", action="store_true", help="restrict whatever billing says")
    action.add_argument("--release", action="store_true", help="release whatever billing says")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    expiry = p.add_mutually_exclusive_group()
    expiry.add_argument("--ttl", help="lifetime: 90s, 15m, 2h, 1h30m, 3d (default: until removed)")
    expiry.add_argument("--until", help="expiry, ISO 8601 (local time if no offset)")
    add(osub, "list", cmd_override_list, "the overrides in force")
    p = add(osub, "delete", cmd_override_delete, "remove an override")
    p.add_argument("id", metavar="ID")
