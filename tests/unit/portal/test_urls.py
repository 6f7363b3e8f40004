"""The original URL: sanitising hostile input."""

from __future__ import annotations

import pytest

from debtgate.portal.urls import (
    MAX_URL,
    Original,
    host_only,
    original_url,
    points_to,
    portal_redirect,
    sanitize_url,
)


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "//evil.example/",
        "\\\\evil.example/",
        "/\\evil.example",
        "/relative/path",
        "http:evil.example",
        "http:/evil.example",
        "http:///evil.example",
        "https:\\\\evil.example",
        "http://evil.example\\@good.example/",
        "http://user:pass@good.example/",
        "http://good.example@evil.example/",
        "http://good.example/<script>alert(1)</script>",
        'http://good.example/"onload="x',
        "http://good.example/\r\nSet-Cookie: a=b",
        "http://good.example/%0d%0a\nx",
        "http://good.example/\x00",
        "http://good.example/a b",
        "http://-bad.example/",
        "http://bad_.example:0/",
        "http://good.example:65536/",
        "http://good.example:abc/",
        "http://[::1/",
        "http://" + "a" * 64 + ".example/",
        "http://good.example/" + "a" * MAX_URL,
        "ftp://good.example/",
        "file:///etc/passwd",
        "",
        None,
    ],
)
def test_hostile_urls_are_dropped(raw):
    assert sanitize_url(raw) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("http://example.com", "http://example.com/"),
        ("HTTP://Example.COM:80/A?b=C", "http://example.com/A?b=C"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("http://example.com/p#frag", "http://example.com/p"),
        ("http://example.com/a'b|c", "http://example.com/a%27b%7Cc"),
        ("http://example.com/?q=%3Cscript%3E", "http://example.com/?q=%3Cscript%3E"),
        ("http://пример.рф/путь", "http://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C"),
        ("http://[2001:DB8::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("http://10.0.0.1/", "http://10.0.0.1/"),
    ],
)
def test_good_urls_are_normalised(raw, clean):
    assert sanitize_url(raw) == clean


def test_length_cap_is_exact():
    base = "http://example.com/"
    assert sanitize_url(base + "a" * (MAX_URL - len(base))) is not None
    assert sanitize_url(base + "a" * (MAX_URL - len(base) + 1)) is None


def test_original_url_rebuilds_intercepted_requests():
    assert original_url("News.Example:8080", "/a?b=1") == "http://news.example:8080/a?b=1"
    assert original_url("news.example", "/a", secure=True) == "https://news.example/a"
    assert original_url("news.example", "//evil.example/") is None
    assert original_url(None, "/") is None
    assert original_url("a b", "/") is None


def test_host_only_and_points_to():
    assert host_only("Portal.Example:8080") == "portal.example"
    assert host_only("[::1]:80") == "[::1]"
    assert host_only("portal.example.") == "portal.example"
    assert points_to("http://PORTAL.example:9/x", {"portal.example"})
    assert not points_to("http://portal.example.evil/", {"portal.example"})


def test_portal_redirect_escapes_everything():
    url = portal_redirect("http://10.255.255.1:8080/",
                          Original("http://a.example/?x=1&y=<", "5f.a-b_c+="), "en")
    assert url == ("http://10.255.255.1:8080/?url=http%3A%2F%2Fa.example%2F%3Fx%3D1%26y%3D%3C"
                   "&sig=5f.a-b_c%2B%3D&lang=en")
    assert portal_redirect("http://p/", None) == "http://p/"
    assert portal_redirect("http://p/?a=1", Original("http://b/", "1.x")) \
        == "http://p/?a=1&url=http%3A%2F%2Fb%2F&sig=1.x"
