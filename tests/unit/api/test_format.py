"""The client commands' text output and argument parsing."""

from __future__ import annotations

import argparse

import pytest

from debtgate.cli.commands import add_client_commands
from debtgate.cli.format import (
    ago,
    format_overrides,
    format_status,
    format_tree,
    human,
    parse_duration,
    table,
)
from tests.unit.api.sample import sample_status


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("3d", 259200),
    ("1w", 604800), (" 2H ", 7200), ("1d 2h", 93600)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "2x", "-5m", "0", "0s", "h", "2h junk", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_human_and_ago() -> None:
    assert human(None) == "-" and human("x") == "-"
    assert human(0.0123) == "0.0123s" and human(42) == "42s"
    assert human(93784) == "1d 2h" and human(3600) == "1h" and human(125) == "2m 5s"
    assert ago(None) == "never" and ago(1000, now=1012) == "12s ago"
    assert ago("1970-01-01T00:16:40Z", now=1000 + 7200) == "2h ago"


def test_table_alignment() -> None:
    text = table(["set", "desired", "kernel"], [["blocked_v4", 12, 12], ["warn_v6", 1000, None]])
    assert text.splitlines() == [
        "set         desired  kernel",
        "blocked_v4       12      12",
        "warn_v6        1000       -",
    ]


def test_status_page() -> None:
    text = format_status(sample_status())
    assert text.startswith("debtgate 0.1.0, up 1d 2h")
    assert "postgres: connected, last event 12s ago" in text
    assert "rejected rows: bad_address=3, address_conflict=1" in text
    assert "subscribers active=1200, warn=30, blocked=12" in text
    assert [ln for ln in text.splitlines() if "warn_v4" in ln][0].endswith("DIFFERS")
    assert "bras-1" in text and "session-not-found=3" in text
    assert "SERVFAIL" in text and "not holding" in text
    assert "  radius:bras-2: no answer for 60 s" in text


def test_status_page_guard_and_empty() -> None:
    st = sample_status()
    st["guard"] = {"holding": True, "held_restrictions": 250, "since": None}
    st["degraded"] = {}
    st["feed"]["connected"] = False
    text = format_status(st)
    assert "HOLDING 250 restrictions" in text and "debtgate approve" in text
    assert "DISCONNECTED" in text and "degraded    none" in text
    assert format_status({}).startswith("debtgate ?, up -")


def test_tree_and_overrides() -> None:
    text = format_tree({"account": "A1", "state": "blocked", "addresses": ["10.0.0.1", "::1"],
                        "sets": {"blocked_v4": True}, "history": [
                            {"at": "t1", "new": "warn"}, {"at": "t2", "new": "blocked"}]})
    assert "addresses  10.0.0.1, ::1" in text and "  blocked_v4  yes" in text
    assert "history:\n  at  new" in text
    assert format_overrides([]) == "no overrides"
    text = format_overrides([{"id": "ov1", "account": "A1", "action": "restrict",
                              "expires_at": None, "author": "alice (unix:root)",
                              "reason": "fraud"}])
    assert text.splitlines()[1].split() == ["ov1", "A1", "restrict", "never", "alice",
                                            "(unix:root)", "fraud"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="debtgate")
    add_client_commands(p.add_subparsers(dest="command", required=True))
    return p


def test_parser() -> None:
    args = parser().parse_args(["override", "add", "A1", "--restrict", "--reason", "r",
                                "--ttl", "2h", "--json", "--socket", "/tmp/x.sock"])
    assert args.restrict and not args.release and args.ttl == "2h" and args.json
    assert str(args.socket) == "/tmp/x.sock" and callable(args.func)
    for bad in (["override", "add", "A1", "--reason", "r"],
                ["override", "add", "A1", "--restrict", "--release", "--reason", "r"],
                ["override", "add", "A1", "--restrict", "--reason", "r", "--ttl", "1h",
                 "--until", "2030-01-01"],
                ["status", "--socket", "/x", "--url", "http://h:1"], ["override"]):
        with pytest.raises(SystemExit):
            parser().parse_args(bad)
