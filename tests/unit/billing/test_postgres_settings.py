"""Settings of the PostgreSQL source that an upgrade must keep loading."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from debtgate.billing.postgres import PostgresSourceSection


def test_removed_options_still_load_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    section = PostgresSourceSection(dsn="postgresql:///billing", storm_helper=True)
    assert section.lane is True and section.restrictions_first is True
    assert "storm_helper is deprecated and ignored" in caplog.text
    assert not PostgresSourceSection(dsn="postgresql:///billing",
                                     restrictions_first=False).restrictions_first


def test_an_unknown_option_is_still_an_error() -> None:
    with pytest.raises(ValidationError, match="storm_helpers"):
        PostgresSourceSection(dsn="postgresql:///billing", storm_helpers=True)  # type: ignore[call-arg]
