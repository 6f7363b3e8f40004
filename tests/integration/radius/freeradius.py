"""A throw-away FreeRADIUS acting as a NAS's CoA/Disconnect server, for tests and benches.

The config is written to a temporary directory; the server listens on
loopback, on the port given, with a virtual server that ACKs requests for
known Acct-Session-Ids and NAKs the others with Error-Cause 503. With
``debug=True`` it runs ``-X`` and :meth:`received` parses the attributes of
every request it got from its output.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

BINARY = shutil.which("freeradius") or (
    "/usr/sbin/freeradius" if Path("/usr/sbin/freeradius").exists() else None
)
REPO = Path(__file__).resolve().parents[3]

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 2
max_requests = 1048576
hostname_lookups = no
log {{
    destination = stdout
    colourise = no
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}
thread pool {{
    start_servers = {threads}
    max_servers = {threads}
    min_spare_servers = 1
    max_spare_servers = {threads}
    max_requests_per_server = 0
    max_queue_size = 262144
}}
modules {{
    always ok {{
        rcode = ok
    }}
    always reject {{
        rcode = reject
    }}
}}
client localhost {{
    ipaddr = 127.0.0.1
    secret = {secret}
    require_message_authenticator = {require_ma}
}}
server coa {{
    listen {{
        type = coa
        ipaddr = 127.0.0.1
        port = {port}
{recv_buff}    }}
    recv-coa {{
        if (&request:Acct-Session-Id && &request:Acct-Session-Id =~ /^({known})$/) {{
            ok
        }}
        else {{
            update reply {{
                &Error-Cause := Session-Context-Not-Found
            }}
            reject
        }}
    }}
    send-coa {{
        ok
    }}
}}
"""

# accel-ppp's l4-redirect attributes are not in FreeRADIUS's dictionaries
LOCAL_DICTIONARY = (
    "ATTRIBUTE\tL4-Redirect\t\t225\tinteger\n"
    "ATTRIBUTE\tL4-Redirect-Ipset\t226\tstring\n"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FreeRadius:
    """Start/stop a FreeRADIUS CoA server; parse what it received (debug mode)."""

    def __init__(self, directory: Path, secret: str, port: int, known: list[str],
                 debug: bool = True, threads: int = 4,
                 require_ma: str = "yes", known_pattern: str | None = None,
                 recv_buff: int | None = None) -> None:
        self.directory = directory
        self.secret = secret
        self.port = port
        self.known = known
        self.debug = debug
        self.threads = threads
        self.require_ma = require_ma
        self.known_pattern = known_pattern
        self.recv_buff = recv_buff
        """SO_RCVBUF of the CoA socket (FreeRADIUS ``recv_buff``); None: kernel default."""
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 20.0) -> None:
        assert BINARY is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        known = self.known_pattern or "|".join(re.escape(k) for k in self.known) or "-none-"
        (self.directory / "radiusd.conf").write_text(RADIUSD_CONF.format(
            dir=self.directory, secret=self.secret, port=self.port, known=known,
            threads=self.threads, require_ma=self.require_ma,
            recv_buff=f"        recv_buff = {self.recv_buff}\n" if self.recv_buff else ""))
        (self.directory / "dictionary").write_text(LOCAL_DICTIONARY)
        args = [BINARY, "-X" if self.debug else "-f", "-l", "stdout", "-d", str(self.directory)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        threading.Thread(target=self._reader, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("freeradius did not start:\n" + "\n".join(self.lines[-40:]))

    def _reader(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.debug or len(self.lines) < 500:
                self.lines.append(line.rstrip("\n"))
            if "Ready to process requests" in line:
                self._ready.set()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def received(self, wait: float = 2.0, count: int = 1) -> list[dict[str, object]]:
        """Requests seen so far: ``{"type", "id", "attrs": [(name, value), ...]}``."""
        deadline = time.monotonic() + wait
        while True:
            packets = self._parse()
            if len(packets) >= count or time.monotonic() > deadline:
                return packets
            time.sleep(0.05)

    def _parse(self) -> list[dict[str, object]]:
        packets: list[dict[str, object]] = []
        current: dict[str, object] | None = None
        head = re.compile(r"Received (CoA-Request|Disconnect-Request) Id (\d+) from")
        attr = re.compile(r"^(?:\(\d+\))?\s+&?([A-Za-z0-9-]+(?::\d+)?) = (.*)$")
        for line in list(self.lines):
            m = head.search(line)
            if m:
                current = {"type": m.group(1), "id": int(m.group(2)), "attrs": []}
                packets.append(current)
                continue
            if current is not None:
                a = attr.match(line)
                if a:
                    value = a.group(2).strip()
                    if value.startswith('"') and value.endswith('"'):
                        value = value[1:-1]
                    current["attrs"].append((a.group(1), value))  # type: ignore[union-attr]
                else:
                    current = None
        return packets
