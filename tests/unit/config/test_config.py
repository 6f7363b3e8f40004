"""Config: strict keys with paths, documented fields, bad files refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debtgate.config import Config, load_config, parse_config
from debtgate.config.doc import render
from debtgate.errors import ConfigError

ROOT = Path(__file__).parents[3]


def test_docs_match_the_code() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), (
        "regenerate: python -m debtgate.config.doc > docs/configuration.md")


def _fields(model: type, prefix: str = "") -> list[tuple[str, str | None]]:
    out = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        out.append((prefix + name, field.description))
    return out


def test_every_field_has_a_docstring() -> None:
    missing = []
    stack: list[tuple[str, type]] = [("", Config)]
    while stack:
        prefix, model = stack.pop()
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not (field.description or "").strip():
                missing.append(prefix + name)
            ann = field.annotation
            for cand in (ann, *getattr(ann, "__args__", ())):
                if isinstance(cand, type) and hasattr(cand, "model_fields"):
                    stack.append((f"{prefix}{name}.", cand))
    assert missing == []


def test_unknown_keys_are_errors_with_their_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"daemon": {"bogus": 1}, "nft": {"portal_v4": "x"},
                      "portal": {"contacts": {"fax": "1"}}})
    problems = "\n".join(err.value.problems)
    assert "daemon.bogus: unknown key" in problems
    assert "nft.portal_v4:" in problems
    assert "portal.contacts.fax: unknown key" in problems


def test_detection_hosts_and_default_routes_refused_in_garden() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"garden": {"domains": ["connectivitycheck.gstatic.com"],
                                 "cidrs": ["0.0.0.0/0"]},
                      "network": {"serves": ["::/0"]}})
    text = "\n".join(err.value.problems)
    assert "captive-portal probe" in text and "too wide" in text and "every address" in text


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "examples" / "debtgate.toml")
    assert config.source.kind == "file"
    assert [str(n) for n in config.network.serves] == ["100.64.0.0/16", "2001:db8:100::/40"]


def test_check_config_command_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "debtgate.cli", "check-config",
                           str(ROOT / "examples" / "debtgate.toml")], capture_output=True,
                          text=True, check=False)
    assert good.returncode == 0 and "OK" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nbogus = 1\n[nft]\nack_timeout = "soon"\n')
    res = subprocess.run([sys.executable, "-m", "debtgate.cli", "check-config", str(bad)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "daemon.bogus: unknown key" in res.stderr and "nft.ack_timeout" in res.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[daemon\n")
    res = subprocess.run([sys.executable, "-m", "debtgate.cli", "check-config", str(broken)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "not valid TOML" in res.stderr


def test_the_default_currency_is_three_letters() -> None:
    for bad in ("R$B", "RUBL", "ру"):
        with pytest.raises(ConfigError) as err:
            parse_config({"network": {"default_currency": bad}})
        assert "network.default_currency" in "\n".join(err.value.problems)
    assert parse_config({"network": {"default_currency": "eur"}}).network.default_currency == "eur"


@pytest.mark.parametrize("listen", ["0.0.0.0", "10.255.255.1", "fd00:255::2", "[fd00:255::2]"])
def test_portal_v6_the_portal_does_not_listen_on_is_refused(listen: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"nft": {"portal_v6": "fd00:255::1"}, "portal": {"listen": listen}})
    text = "\n".join(err.value.problems)
    assert "nft.portal_v6 = fd00:255::1" in text and f"portal.listen = {listen!r}" in text
    assert 'portal.listen = ""' in text


@pytest.mark.parametrize("portal", [
    {}, {"listen": ""}, {"listen": "::"}, {"listen": "fd00:255::1"},
    {"listen": "portal.example.net"},
    {"listen": "127.0.0.1", "trusted_proxies": ["127.0.0.1"]},  # a proxy in front
])
def test_portal_v6_reachable_configs_are_accepted(portal: dict[str, object]) -> None:
    config = parse_config({"nft": {"portal_v6": "fd00:255::1"}, "portal": portal})
    assert str(config.nft.portal_v6) == "fd00:255::1"


def test_default_listen_covers_both_families() -> None:
    assert parse_config({}).portal.listen == ""
    assert parse_config({"portal": {"listen": "0.0.0.0"}}).portal.listen == "0.0.0.0"
