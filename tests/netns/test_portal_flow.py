"""The portal end to end: real kernel, real daemon, real unprivileged portal, curl."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .conftest import wait_http
from .lab_fixture import Lab, lab  # noqa: F401

pytestmark = pytest.mark.netns
WEB = "198.18.0.10"


def test_blocked_host_follows_redirect_to_its_own_page(lab: Lab) -> None:  # noqa: F811
    rc, head = lab.curl("blk", f"http://{WEB}/news?id=1", "-si")
    assert rc == 0 and head.startswith("HTTP/1.1 302")
    assert "Location: http://10.255.255.1:8080/?url=http%3A%2F%2F198.18.0.10%2Fnews" in head
    assert "Cache-Control: no-store" in head
    rc, page = lab.curl("blk", f"http://{WEB}/news?id=1", "-sL")
    assert rc == 0
    assert "1 250,00 ₽" in page
    assert "1 ноября 2026" in page
    assert "•••002" in page and "100002" not in page.replace("payee=100002", "").replace(
        "account=100002", "")
    assert "<svg" in page  # the SBP QR code


def test_each_host_sees_only_its_own_data(lab: Lab) -> None:  # noqa: F811
    _, paused = lab.curl("pau", f"http://{WEB}/", "-sL")
    assert "1 250,00" not in paused and "•••004" in paused
    rc, active = lab.curl("act", "http://10.255.255.1:8080/api/state", "-s")
    assert rc == 0 and json.loads(active)["state"] == "active"
    _, blocked_state = lab.curl("blk", "http://10.255.255.1:8080/api/state", "-s")
    assert json.loads(blocked_state) ["state"] == "blocked"
    _, active_page = lab.curl("act", "http://10.255.255.1:8080/", "-s")
    assert "1 250,00" not in active_page and "•••002" not in active_page


def test_blocked_ipv6_host_reaches_portal_over_ipv6(lab: Lab) -> None:  # noqa: F811
    rc, page = lab.curl("blk", "http://[2001:db8:ff::10]/", "-sgL")
    assert rc == 0 and "1 250,00 ₽" in page


def test_warned_host_acknowledges_then_browses_until_expiry(lab: Lab) -> None:  # noqa: F811
    jar = str(lab.workdir / "jar.txt")
    rc, page = lab.curl("wrn", f"http://{WEB}/docs", "-sL", "-c", jar)
    assert rc == 0 and "300" in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    url = re.search(r'name="url" value="([^"]+)"', page)
    assert url is not None and url.group(1) == f"http://{WEB}/docs"
    sig = re.search(r'name="sig" value="([^"]+)"', page)  # the interception signed it
    assert sig is not None
    rc, after = lab.curl("wrn", "http://10.255.255.1:8080/ack", "-sL", "-b", jar,
                         "--data-urlencode", f"csrf={token.group(1)}",
                         "--data-urlencode", f"url={url.group(1)}",
                         "--data-urlencode", f"sig={sig.group(1)}", "--data-urlencode", "lang=en")
    assert rc == 0 and "web host" in after  # followed to the original URL
    assert lab.curl("wrn", f"http://{WEB}/")[1].startswith("web host")
    # The acknowledgement expires (3 s in this lab): the notice comes back.
    time.sleep(3.5)
    rc, head = lab.curl("wrn", f"http://{WEB}/", "-si")
    assert head.startswith("HTTP/1.1 302")


def test_ack_without_csrf_is_refused(lab: Lab) -> None:  # noqa: F811
    rc, head = lab.curl("wrn", "http://10.255.255.1:8080/ack", "-si", "--data", "url=x")
    assert head.startswith("HTTP/1.1 403")


def test_payment_restores_access_and_page_says_so(lab: Lab) -> None:  # noqa: F811
    subs_path = lab.workdir / "subscribers.json"
    original = subs_path.read_text()
    data = json.loads(original)
    for row in data["subscribers"]:
        if row["account"] == "100002":
            row["state"] = "active"
            row["amount_due"] = "0"
    try:
        Path(subs_path).write_text(json.dumps(data))
        wait_http(lab.topo, "blk", f"http://{WEB}/", want="web host", deadline=5)
        # The page polls this; the portal caches a view for at most cache_ttl (2 s).
        state = wait_http(lab.topo, "blk", "http://10.255.255.1:8080/api/state",
                          want='"active"', deadline=4)
        assert json.loads(state)["online"] is True
    finally:
        subs_path.write_text(original)
        wait_http(lab.topo, "blk", "http://10.255.255.1:8080/api/state", want="blocked")
