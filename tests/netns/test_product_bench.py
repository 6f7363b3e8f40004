"""Smoke test of the product benchmarks (bench/product.py) at 2,000 subscribers.

Runs every scenario once with few trials against the shipped ``debtgate run`` and a
throwaway PostgreSQL, and checks the figures are sane (not the targets: a shared
machine decides those), and that the docs table renders.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import pytest

from debtgate_lab.netlab import can_run
from debtgate_lab.pglab import pg_bindir

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [pytest.mark.netns, pytest.mark.postgres, pytest.mark.timeout(180)]


def test_product_benchmark_small() -> None:
    why = can_run()
    if why:
        pytest.skip(why)
    if pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries")
    sys.path.insert(0, str(BENCH))
    import product  # noqa: PLC0415
    import product_docs  # noqa: PLC0415

    args = argparse.Namespace(subscribers=2000, quiet=3, storm=3, resync=3, log=None, json=None,
                              resyncs=1, max_rounds=2, only=[])
    result = asyncio.run(product.run(args))
    first, storm = result["first_start"], result["storm"]
    assert first["kernel_count_s"] is not None and first["kernel_count_s"] < 30
    assert first["ready_readyz_s"] is not None and 0 < first["rss_rest_mb"] < 400
    assert first["synced_s"] is not None and first["synced_s"] >= first["ready_readyz_s"] - 1
    assert result["quiet"]["trials"] == 3 and 0 < result["quiet"]["p50_ms"] < 2000
    assert result["during_resync"]["trials"] + \
        result["during_resync"]["after_the_snapshot"]["trials"] >= 3
    assert all(r["kernel_count_s"] is not None and r["settled_s"] is not None
               for r in storm["rounds"])
    assert storm["payments"]["trials"] >= 3 and storm["kernel_after"] == 200
    assert result["restart"]["kernel_writes_2s_later"] == 0
    assert result["restart"]["synced_s"] is not None
    assert result["restart"]["kernel_writes_at_sync"] == 0
    assert all(r["kernel_writes"] == 0 for r in result["resync"])
    assert result["reboot"]["kernel_count_s"] is not None
    assert result["reboot"]["readyz_while_billing_down"] == 503
    result["meta"] = product.meta(argparse.Namespace(subscribers=2000))
    text = product_docs.render(result)
    assert text.startswith(product_docs.BEGIN) and "payment" in text
