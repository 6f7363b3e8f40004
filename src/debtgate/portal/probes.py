"""Operating-system captive-portal detection probes and the answers they expect.

A probe that gets its expected answer tells the OS "online"; anything else (we send
a 302 to the portal) makes the OS open its sign-in sheet or notification. See
docs/portal.md for what each OS expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from debtgate.portal.urls import host_only


@dataclass(frozen=True, slots=True)
class Probe:
    """The "you are online" answer one detector expects."""

    name: str
    status: int
    body: bytes = b""
    content_type: str = "text/plain"


GENERATE_204 = Probe("android", 204)
APPLE = Probe(
    "apple",
    200,
    b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
    "text/html",
)
WINDOWS_CONNECTTEST = Probe("windows", 200, b"Microsoft Connect Test")
WINDOWS_NCSI = Probe("windows-ncsi", 200, b"Microsoft NCSI")
FIREFOX = Probe("firefox", 200, b"success\n")
FIREFOX_CANONICAL = Probe(
    "firefox-canonical",
    200,
    b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>',
    "text/html",
)
NETWORKMANAGER = Probe("networkmanager", 200, b"NetworkManager is online\n")
FEDORA = Probe("fedora", 200, b"OK")

_APPLE_HOSTS = frozenset({
    "captive.apple.com",
    "www.apple.com",
    "www.appleiphonecell.com",
    "www.itools.info",
    "www.ibook.info",
    "www.airport.us",
    "www.thinkdifferent.us",
})

_EXACT: dict[tuple[str, str], Probe] = {
    ("www.msftconnecttest.com", "/connecttest.txt"): WINDOWS_CONNECTTEST,
    ("ipv6.msftconnecttest.com", "/connecttest.txt"): WINDOWS_CONNECTTEST,
    ("www.msftncsi.com", "/ncsi.txt"): WINDOWS_NCSI,
    ("ipv6.msftncsi.com", "/ncsi.txt"): WINDOWS_NCSI,
    ("detectportal.firefox.com", "/success.txt"): FIREFOX,
    ("detectportal.firefox.com", "/canonical.html"): FIREFOX_CANONICAL,
    ("nmcheck.gnome.org", "/check_network_status.txt"): NETWORKMANAGER,
    ("fedoraproject.org", "/static/hotspot.txt"): FEDORA,
    ("network-test.debian.org", "/nm"): NETWORKMANAGER,
}

_UBUNTU_HOSTS = frozenset({"connectivity-check.ubuntu.com"})


def match_probe(host: str | None, path: str) -> Probe | None:
    """The probe a request for ``host`` + ``path`` is, or None for an ordinary request."""
    hostname = host_only(host)
    if path.endswith(("/generate_204", "/gen_204")):
        return GENERATE_204
    if hostname in _UBUNTU_HOSTS:
        return GENERATE_204
    if hostname in _APPLE_HOSTS and (
        hostname == "captive.apple.com"
        or path.endswith(("/hotspot-detect.html", "/library/test/success.html"))
    ):
        return APPLE
    return _EXACT.get((hostname, path))
