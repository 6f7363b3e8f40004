"""The reload registry: a part is called only when a section it follows changed."""

from __future__ import annotations

import logging

import pytest

from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.errors import ConfigError


def cfg(**sections: dict[str, object]) -> Config:
    return Config.model_validate(sections)


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Config, Config]] = []

    def make(self, name: str):  # type: ignore[no-untyped-def]
        async def fn(old: Config, new: Config) -> None:
            self.seen.append((name, old, new))
        return fn


async def test_only_the_parts_of_changed_sections_are_called() -> None:
    calls = Calls()
    r = Reloads(cfg())
    r.on("guard", ["guard"], calls.make("guard"))
    r.on("log", ["daemon.log_level"], calls.make("log"))
    r.on("garden", ["garden.cidrs"], calls.make("garden"))
    new = cfg(guard={"share": 0.2}, daemon={"reconcile_interval": 60})
    assert await r.reload(new) == ["guard"]
    assert [c[0] for c in calls.seen] == ["guard"]
    assert calls.seen[0][2] is new and r.current is new
    assert await r.reload(new) == []  # the same again: nothing
    newer = cfg(guard={"share": 0.2}, daemon={"log_level": "debug"})
    assert await r.reload(newer) == ["log"]


async def test_a_refusing_check_keeps_the_running_config_for_every_part() -> None:
    calls = Calls()
    first = cfg()
    r = Reloads(first)

    async def refuse(_old: Config, new: Config) -> None:
        if new.guard.share > 0.5:
            raise ConfigError(["guard.share: too generous for this test"])

    r.check("share", ["guard"], refuse)
    r.on("guard", ["guard"], calls.make("guard"))
    r.on("log", ["daemon.log_level"], calls.make("log"))
    with pytest.raises(ConfigError, match="too generous"):
        await r.reload(cfg(guard={"share": 0.9}, daemon={"log_level": "debug"}))
    assert r.current is first and calls.seen == []
    assert await r.reload(cfg(guard={"share": 0.1})) == ["guard"]


async def test_what_a_part_reads_beside_the_config_fires_it_too() -> None:
    calls = Calls()
    secret = {"value": "one"}

    def outside(_config: Config) -> str:
        if secret["value"] == "":
            raise ConfigError(["api.token_file: empty"])
        return secret["value"]

    same = cfg()
    r = Reloads(same)
    r.on("api", ["api.listen"], calls.make("api"), outside=outside)
    assert await r.reload(same) == []
    secret["value"] = "two"
    assert await r.reload(same) == ["api"]
    assert await r.reload(same) == []
    secret["value"] = ""
    with pytest.raises(ConfigError, match="empty"):
        await r.reload(same)
    assert len(calls.seen) == 1


def test_a_registration_names_real_sections() -> None:
    r = Reloads(cfg())

    async def nothing(_old: Config, _new: Config) -> None:
        return None

    with pytest.raises(ValueError, match="no config section 'gaurd'"):
        r.on("typo", ["gaurd"], nothing)
    with pytest.raises(ValueError, match="no config section 'garden.cidr'"):
        r.check("typo", ["garden.cidr"], nothing)
    with pytest.raises(ValueError, match="at least one"):
        r.live("nothing", [])


async def test_a_change_nobody_applies_is_named_as_taking_effect_on_restart(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = Calls()
    r = Reloads(cfg())
    r.on("garden", ["garden.cidrs"], calls.make("garden"))
    r.live("read where used", ["daemon.reconcile_interval"])
    new = cfg(garden={"cidrs": ["198.18.0.0/24"], "domains": ["pay.example.net"]},
              daemon={"reconcile_interval": 30}, radius={"profiles_dir": "/etc/x"})
    assert r.unfollowed(r.current, new) == ["garden.domains", "radius.profiles_dir"]
    with caplog.at_level(logging.INFO, logger="debtgate.config.reloads"):
        assert await r.reload(new) == ["garden"]
    assert "garden.domains, radius.profiles_dir changed but no part applies it" in caplog.text
    assert "takes effect on restart" in caplog.text
