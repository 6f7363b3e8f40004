"""The TCP prober of the product benchmarks: runs inside a subscriber network namespace.

    ip netns exec NS python bench/product_prober.py HOST PORT

Reads one JSON command a line on stdin, ``{"id": n, "want": "pass" | "refused",
"addrs": [...], "timeout": s, "pause": s}``, answers ``{"id": n, "started": t}`` at
once, then connects from each source address in ``addrs`` (bound; round robin) to
HOST:PORT in a tight loop (``pause`` between rounds, default 0.5 ms) until every
address got the wanted outcome, and answers ``{"id": n, "at": {addr: t}, "missing":
[...]}``. A connect that completes is "pass"; a reset (the shipped ruleset answers a
restricted subscriber's TCP with one) or a timeout is "refused". Times are
CLOCK_MONOTONIC seconds, one clock for every namespace of the host, so the
orchestrator compares them with its own.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

LINGER0 = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close sends a reset, no TIME_WAIT left behind per probe."""


def attempt(src: str, dst: tuple[str, int], timeout: float) -> bool:
    """One connect from ``src``: True if it completed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect(dst)
        return True
    except OSError:
        return False
    finally:
        s.close()


def watch(addrs: list[str], want: bool, dst: tuple[str, int], limit: float,
          pause: float = 0.0005) -> tuple[dict[str, float], list[str]]:
    """Probe until every address connects (``want``) or is refused; first times."""
    left = list(addrs)
    seen: dict[str, float] = {}
    end = time.monotonic() + limit
    while left and time.monotonic() < end:
        for src in list(left):
            if attempt(src, dst, 0.2) is want:
                seen[src] = time.monotonic()
                left.remove(src)
        time.sleep(pause)
    return seen, left


def main() -> None:
    dst = (sys.argv[1], int(sys.argv[2]))
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        sys.stdout.write(json.dumps({"id": cmd["id"], "started": time.monotonic()}) + "\n")
        sys.stdout.flush()
        seen, left = watch(cmd["addrs"], cmd["want"] == "pass", dst,
                           float(cmd.get("timeout", 30)), float(cmd.get("pause", 0.0005)))
        sys.stdout.write(json.dumps({"id": cmd["id"], "at": seen, "missing": left}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
