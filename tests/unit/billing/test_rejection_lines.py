"""Every rejection of a file's row names its line (CSV) or row (JSON)."""

from __future__ import annotations

import json

from debtgate.billing.base import Snapshot
from debtgate.billing.file import parse_text
from tests.unit.helpers import Harness

CSV = (b"account,addresses,state,currency\n"
       b"a,10.0.0.1,active,\n"
       b"b,10.0.0.2,owing,\n"
       b"\n"
       b"c,not-an-ip,blocked,\n"
       b"d,10.0.0.4,blocked,RUBLES\n"
       b"a,10.0.0.5,active,\n")


async def test_csv_rejections_name_their_line() -> None:
    h = Harness()
    await h.engine.handle(Snapshot(parse_text(CSV, "csv")))
    details = {r["account"]: r["detail"] for r in h.engine.last_rejections}
    assert details["b"].startswith("line 3: state")
    assert details["c"].startswith("line 5: address")
    assert details["d"].startswith("line 6: currency")
    assert details["a"].startswith("line 7: ")  # the duplicate, not the first row


async def test_json_rejections_name_their_row() -> None:
    rows = [{"account": "a", "addresses": "10.0.0.1", "state": "active"},
            {"account": "b", "addresses": "10.0.0.2", "state": "owing"}]
    h = Harness()
    await h.engine.handle(Snapshot(parse_text(json.dumps(rows).encode(), "json")))
    assert h.engine.last_rejections[-1]["detail"].startswith("row 2: state")
