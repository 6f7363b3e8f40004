from __future__ import annotations

from pathlib import Path

import pytest

from debtgate.config.radius import NasConfig
from debtgate.radius.packets import Facts, identification, load_dictionary, request_attributes
from debtgate.radius.profiles import (
    ProfileError,
    fill,
    load_profile,
    load_profiles,
    parse_profile,
    template_fields,
)

D = load_dictionary()
NAS = NasConfig(name="b", address="192.0.2.1", secret_file=Path("/x"), profile="cisco-isg",
                vars={"redirect_service": "OPERATOR-SVC"})


def test_all_shipped_profiles_load() -> None:
    profiles = load_profiles(D)
    assert set(profiles) == {"mikrotik", "cisco-isg", "juniper-mx", "accel-ppp-ipoe",
                             "accel-ppp-pppoe", "huawei", "generic-disconnect"}
    assert profiles["huawei"].action("warn") is profiles["huawei"].action("restore")


def test_fill_and_missing_value() -> None:
    assert fill("svc={svc} {{literal}}", {"svc": "X"}) == "svc=X {literal}"
    with pytest.raises(ProfileError, match="needs {framed_ip}"):
        fill("{framed_ip}", {"framed_ip": None})


def test_template_rejects_attribute_access_and_specs() -> None:
    with pytest.raises(ProfileError, match="plain"):
        template_fields("{account.__class__}")
    with pytest.raises(ProfileError, match="plain"):
        template_fields("{account!r}")
    assert template_fields("a{user_name}b{nas_ip}") == {"user_name", "nas_ip"}


@pytest.mark.parametrize(("data", "message"), [
    ({"restore": {"type": "disconnect"}}, "restrict: Field required"),
    ({"restrict": {"type": "kick"}, "restore": {"type": "none"}},
     "restrict.type: Input should be 'coa', 'disconnect' or 'none'"),
    ({"restrict": {"type": "coa", "attributes": [{"name": "No-Such", "value": "1"}]},
      "restore": {"type": "none"}}, r"restrict: attributes\[0\]: unknown attribute 'No-Such'"),
    ({"restrict": {"type": "coa", "attributes": [{"name": "Filter-Id", "value": "{nope}"}]},
      "restore": {"type": "none"}}, r"unknown placeholders \['nope'\]"),
    ({"restrict": {"type": "disconnect", "attributes": [{"name": "Filter-Id", "value": "x"}]},
      "restore": {"type": "none"}}, "identification only"),
    ({"restrict": {"type": "coa", "attributes": [{"name": "L4-Redirect", "value": "yes"}]},
      "restore": {"type": "none"}}, "not a valid integer"),
    ({"restrict": {"type": "disconnect", "fallback_disconnect": True},
      "restore": {"type": "none"}}, "only for type = coa"),
    ({"restrict": {"type": "none"}, "restore": {"type": "none"}, "colour": 1},
     "colour: unknown key"),
    ({"identify": ["mac"], "restrict": {"type": "none"}, "restore": {"type": "none"}},
     "identify"),
    ({"vars": {"account": "x"}, "restrict": {"type": "none"}, "restore": {"type": "none"}},
     "subscriber fields"),
])
def test_validation_errors_name_the_problem(data: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile("p", data, D)


def test_load_profile_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[restrict]\ntype = 'coa'\n")
    with pytest.raises(ProfileError, match=str(path)):
        load_profile(path, D)


def test_operator_profile_overrides_shipped(tmp_path: Path) -> None:
    (tmp_path / "huawei.toml").write_text(
        "[restrict]\ntype = 'coa'\nattributes = [{ name = 'Filter-Id', value = 'blk-{account}' }]"
        "\n[restore]\ntype = 'coa'\nattributes = [{ name = 'Filter-Id', value = 'ok' }]\n")
    profile = load_profiles(D, tmp_path)["huawei"]
    attrs = request_attributes(NAS, profile, profile.action("restrict"),
                               Facts("A1", session_id="s1"), D, "coa")
    assert attrs == [("NAS-IP-Address", "192.0.2.1"), ("Acct-Session-Id", "s1"),
                     ("Filter-Id", "blk-A1")]


def test_identification_fallbacks_and_nas_vars() -> None:
    cisco = load_profiles(D)["cisco-isg"]
    attrs = request_attributes(NAS, cisco, cisco.action("restrict"),
                               Facts("A", user_name="bob", framed_ip="10.0.0.1"), D, "coa")
    assert ("User-Name", "bob") in attrs and ("Framed-IP-Address", "10.0.0.1") not in attrs
    assert ("Cisco-AVPair", "subscriber:service-name=OPERATOR-SVC") in attrs
    only_ip = identification(NAS, cisco, Facts("A", framed_ip="10.0.0.1"))
    assert only_ip[-1] == ("Framed-IP-Address", "10.0.0.1")
    with pytest.raises(ProfileError, match="no session identifier"):
        identification(NAS, cisco, Facts("A"))
    disconnect = request_attributes(NAS, cisco, cisco.action("restrict"),
                                    Facts("A", session_id="s"), D, "disconnect")
    assert disconnect == [("NAS-IP-Address", "192.0.2.1"), ("Acct-Session-Id", "s")]
