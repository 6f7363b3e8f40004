"""Own asyncio UDP transport towards one NAS (pyrad is used only as the codec).

* each request gets an Identifier on one of the transport's sockets; a socket
  has 256 Identifiers, so more than 256 requests in flight open more sockets;
* a retransmission resends the very same bytes (same Identifier, same Request
  Authenticator, same Event-Timestamp), every ``timeout`` seconds, ``retries``
  times;
* a datagram is accepted only from the NAS's address and port, for an
  outstanding Identifier, with a valid Response Authenticator (and
  Message-Authenticator when present); anything else is counted and ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from debtgate.radius.packets import Reply, decode_reply
from debtgate.radius.stats import NasStats
from pyrad import packet as rp

log = logging.getLogger(__name__)

Builder = Callable[[int], tuple[rp.CoAPacket, bytes]]


@dataclass(slots=True)
class _Pending:
    request: rp.CoAPacket
    raw: bytes
    future: asyncio.Future[Reply | None]
    tries_left: int
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Socket:
    transport: asyncio.DatagramTransport | None = None
    free: deque[int] = field(default_factory=lambda: deque(range(256)))
    pending: dict[int, _Pending] = field(default_factory=dict)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: NasTransport, sock: _Socket) -> None:
        self.owner = owner
        self.sock = sock

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.owner._received(self.sock, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("nas=%s socket error: %s", self.owner.name, exc)


class NasTransport:
    """Sends requests to one NAS and matches verified replies."""

    def __init__(
        self, name: str, address: str, port: int, stats: NasStats,
        source_address: str | None = None,
    ) -> None:
        self.name = name
        self.address = ipaddress.ip_address(address)
        self._address_text = str(self.address)
        self.port = port
        self.stats = stats
        self.source_address = source_address
        self._sockets: list[_Socket] = []
        self._opening: asyncio.Lock | None = None

    @property
    def sockets(self) -> int:
        return len(self._sockets)

    async def _allocate(self) -> tuple[_Socket, int]:
        for sock in self._sockets:
            if sock.free:
                return sock, sock.free.popleft()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            for sock in self._sockets:
                if sock.free:
                    return sock, sock.free.popleft()
            sock = await self._open()
            return sock, sock.free.popleft()

    async def _open(self) -> _Socket:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if self.address.version == 6 else socket.AF_INET
        local = self.source_address or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        sock = _Socket()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self, sock), local_addr=(local, 0), family=family
        )
        raw = transport.get_extra_info("socket")
        if raw is not None:
            try:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            except OSError:  # pragma: no cover - capped by the kernel, harmless
                pass
        sock.transport = transport
        self._sockets.append(sock)
        log.debug("nas=%s opened socket %d", self.name, len(self._sockets))
        return sock

    async def request(self, build: Builder, wait: float, retries: int) -> Reply | None:
        """Send a request built for an allocated Identifier; the verified reply or None."""
        sock, pkt_id = await self._allocate()
        loop = asyncio.get_running_loop()
        try:
            request, raw = build(pkt_id)
        except BaseException:
            sock.free.append(pkt_id)
            raise
        pending = _Pending(request, raw, loop.create_future(), retries)
        sock.pending[pkt_id] = pending

        def on_timer() -> None:
            if pending.future.done():
                return
            if pending.tries_left <= 0:
                pending.future.set_result(None)
                return
            pending.tries_left -= 1
            self.stats.retransmits += 1
            self._send(sock, raw)
            pending.timer = loop.call_later(wait, on_timer)

        self.stats.sent += 1
        self.stats.send_rate.add()
        self._send(sock, raw)
        pending.timer = loop.call_later(wait, on_timer)
        try:
            return await pending.future
        finally:
            if pending.timer is not None:
                pending.timer.cancel()
            del sock.pending[pkt_id]
            sock.free.append(pkt_id)

    def _send(self, sock: _Socket, raw: bytes) -> None:
        assert sock.transport is not None
        sock.transport.sendto(raw, (self._address_text, self.port))

    def _received(self, sock: _Socket, data: bytes, addr: tuple[str | object, ...]) -> None:
        source_ok = addr[1] == self.port and addr[0] == self._address_text
        if not source_ok and addr[1] == self.port:
            try:  # another spelling of the same address (e.g. IPv6 zero compression)
                source_ok = ipaddress.ip_address(str(addr[0])) == self.address
            except ValueError:
                source_ok = False
        if not source_ok:
            self.stats.bad_source += 1
            log.warning("nas=%s reply from unexpected source %s ignored", self.name, addr[:2])
            return
        pending = sock.pending.get(data[1]) if len(data) >= 20 else None
        if pending is None or pending.future.done():
            self.stats.unexpected += 1
            return
        reply = decode_reply(pending.request, data)
        if reply is None:
            self.stats.bad_reply += 1
            log.warning("nas=%s reply id=%d failed verification, ignored", self.name, data[1])
            return
        pending.future.set_result(reply)

    def close(self) -> None:
        """Close every socket; outstanding requests end as timeouts."""
        for sock in self._sockets:
            for pending in sock.pending.values():
                if not pending.future.done():
                    pending.future.set_result(None)
            if sock.transport is not None:
                sock.transport.close()
        self._sockets.clear()
