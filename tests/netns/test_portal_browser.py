"""Headless Chromium in each subscriber's namespace: each state, both languages, phone and
desktop widths. Facts are read from the DOM; screenshots are kept under artifacts/."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from debtgate_lab.netlab import sh

from .lab_fixture import Lab, lab  # noqa: F401

pytestmark = [pytest.mark.netns, pytest.mark.chromium]
PROBE = str(Path(__file__).with_name("browser_probe.py"))
ARTIFACTS = Path("artifacts/screenshots")

CASES = {
    # host: (state, facts that must be visible in ru, in en)
    "blk": ("blocked", ["1 250,00 ₽", "•••002"], ["RUB 1,250.00", "•••002"]),
    "wrn": ("warn", ["300,00 ₽"], ["RUB 300.00"]),
    "pau": ("paused", ["•••004"], ["•••004"]),
    "dis": ("disabled", ["+7 800 000-00-00"], ["+7 800 000-00-00"]),
}


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (bash examples/install.sh --test)")


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("host", sorted(CASES))
def test_state_page_in_browser(lab: Lab, host: str, lang: str) -> None:  # noqa: F811
    state, ru_facts, en_facts = CASES[host]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = sh(sys.executable, PROBE, "http://198.18.0.10/some/page", str(ARTIFACTS.resolve()),
             f"{state}", lang, ns=lab.ns(host), timeout=90)
    facts = json.loads(out.stdout)
    for size in ("phone", "desktop"):
        f = facts[size]
        assert f["url"].startswith("http://10.255.255.1:8080/"), f["url"]
        assert f["lang"] == lang
        assert f["h1_visible"]
        assert not f["overflow_x"], f"{state}/{lang}/{size} scrolls sideways"
        for fact in ru_facts if lang == "ru" else en_facts:
            assert fact in f["text"], (size, fact)
        if state == "blocked":
            assert f["qr_visible"], "the SBP QR code is not visible"
            assert f["pay_visible"], "no visible pay action"
        if state == "warn":
            assert f["pay_visible"], "no visible Continue button"
        assert (ARTIFACTS / f"{state}-{lang}-{size}.png").stat().st_size > 5000
