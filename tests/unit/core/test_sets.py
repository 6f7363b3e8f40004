"""The set layout: every address has exactly one enforcement set per category."""

from __future__ import annotations

import pytest

from debtgate.core.sets import (
    ACK_SETS,
    CATEGORY_OF_STATE,
    ENFORCEMENT_SETS,
    SET_NAMES,
    Category,
    family,
    set_name,
)
from debtgate.model import State


@pytest.mark.parametrize(("elem", "name"), [
    ("10.0.0.5", "blocked_v4_host"), ("10.0.1.0/24", "blocked_v4_net"),
    ("2001:db8::5", "blocked_v6_host"), ("2001:db8:1::/56", "blocked_v6_net"),
])
def test_set_name_by_family_and_kind(elem: str, name: str) -> None:
    assert set_name(Category.BLOCKED, elem) == name
    assert SET_NAMES[Category.BLOCKED, ":" in elem, "/" in elem] == name


def test_the_lookup_table_is_set_name() -> None:
    for (category, v6, net), name in SET_NAMES.items():
        elem = ("2001:db8::" if v6 else "10.0.0.0") + ("/64" if v6 and net else
                                                       "/24" if net else "")
        assert set_name(category, elem) == name
    assert set(SET_NAMES.values()) == set(ENFORCEMENT_SETS) and len(ENFORCEMENT_SETS) == 12


def test_states_and_categories() -> None:
    assert CATEGORY_OF_STATE[State.BLOCKED] is Category.BLOCKED
    assert CATEGORY_OF_STATE[State.PAUSED] is CATEGORY_OF_STATE[State.DISABLED] is Category.LOCKED
    assert CATEGORY_OF_STATE[State.WARN] is Category.WARN
    assert State.ACTIVE not in CATEGORY_OF_STATE  # active is in no set
    assert family("::1") == "v6" and family("192.0.2.1") == "v4"
    assert not set(ACK_SETS) & set(ENFORCEMENT_SETS)
