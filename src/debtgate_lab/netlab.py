"""Network namespaces for the lab and the tests: a gateway, subscriber hosts, upstream hosts.

Everything lives in namespaces this module creates (names carry a unique tag)
and is removed by :meth:`Topology.teardown`. Addresses come from documentation
and shared ranges; no packet leaves the namespaces.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

GW_LAN_V4 = "100.64.0.1"
GW_LAN_V6 = "2001:db8:100::1"
GW_UP_V4 = "198.18.0.1"
GW_UP_V6 = "2001:db8:ff::1"
PORTAL_V4 = "10.255.255.1"
PORTAL_V6 = "fd00:255::1"


def sh(*args: str, check: bool = True, ns: str | None = None,
       timeout: float = 30) -> subprocess.CompletedProcess[str]:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc


@dataclass
class Host:
    name: str
    ns: str
    v4: list[str] = field(default_factory=list)
    v6: list[str] = field(default_factory=list)
    upstream: bool = False


@dataclass
class Topology:
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def gw(self) -> str:
        return f"dg{self.tag}gw"

    def _ns(self, name: str) -> str:
        return f"dg{self.tag}{name}"

    def build_gateway(self) -> None:
        gw = self.gw
        sh("ip", "netns", "add", gw)
        for cmd in (["sysctl", "-qw", "net.ipv4.ip_forward=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"],
                    ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"],
                    ["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "add", "br0", "type", "bridge"],
                    ["ip", "link", "add", "br1", "type", "bridge"],
                    ["ip", "addr", "add", f"{GW_LAN_V4}/16", "dev", "br0"],
                    ["ip", "-6", "addr", "add", f"{GW_LAN_V6}/40", "dev", "br0", "nodad"],
                    ["ip", "addr", "add", f"{GW_UP_V4}/24", "dev", "br1"],
                    ["ip", "-6", "addr", "add", f"{GW_UP_V6}/64", "dev", "br1", "nodad"],
                    ["ip", "addr", "add", f"{PORTAL_V4}/32", "dev", "lo"],
                    ["ip", "-6", "addr", "add", f"{PORTAL_V6}/128", "dev", "lo", "nodad"],
                    ["ip", "link", "set", "br0", "up"],
                    ["ip", "link", "set", "br1", "up"]):
            sh(*cmd, ns=gw)

    def add_host(self, name: str, v4: list[str], v6: list[str], upstream: bool = False,
                 routes6: list[str] | None = None) -> Host:
        ns = self._ns(name)
        idx = len(self.hosts)
        inner, outer = f"e{self.tag}{idx}", f"p{self.tag}{idx}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", outer, "netns", self.gw)
        sh("ip", "link", "set", outer, "master", "br1" if upstream else "br0", ns=self.gw)
        sh("ip", "link", "set", outer, "up", ns=self.gw)
        sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "set", inner, "name", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        plen4, plen6 = ("24", "64") if upstream else ("16", "40")
        for addr in v4:
            sh("ip", "addr", "add", f"{addr}/{plen4}", "dev", "eth0", ns=ns)
        for addr in v6:
            sh("ip", "-6", "addr", "add", f"{addr}/{plen6}", "dev", "eth0", "nodad", ns=ns)
        sh("ip", "route", "add", "default", "via", GW_UP_V4 if upstream else GW_LAN_V4, ns=ns)
        if v6:
            sh("ip", "-6", "route", "add", "default", "via",
               GW_UP_V6 if upstream else GW_LAN_V6, ns=ns)
        for net in routes6 or []:
            sh("ip", "-6", "route", "add", net, "dev", "br0", ns=self.gw)
        host = Host(name, ns, v4, v6, upstream)
        self.hosts[name] = host
        return host

    def serve_http(self, host: str, body: str, ports: tuple[int, ...] = (80, 443)) -> None:
        """A tiny web server answering ``body`` on any path, both families."""
        self.serve_text(self.hosts[host].ns, body, ports)

    def serve_text(self, ns: str, body: str, ports: tuple[int, ...]) -> None:
        for port in ports:
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "debtgate_lab.netlab", "serve",
                 str(port), body], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def popen(self, ns: str, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *args], **kwargs)
        self.procs.append(proc)
        return proc

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for host in self.hosts.values():
            sh("ip", "netns", "del", host.ns, check=False)
        sh("ip", "netns", "del", self.gw, check=False)


def can_run() -> str | None:
    """Why namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "nft"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode != 0:
            return f"needs the {tool} command"
    return None


def _serve(port: int, body: str) -> None:
    import socket  # noqa: PLC0415
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    payload = (body + "\n").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real web server

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

        def server_bind(self) -> None:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    Server(("::", port), Handler).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]), sys.argv[3])
