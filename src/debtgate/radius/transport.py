"""Own asyncio UDP transport towards one NAS (pyrad is used only as a codec, off the hot path).

* each request gets an Identifier on one of the transport's sockets; a socket
  has 256 Identifiers, so more than 256 requests in flight open more sockets;
* a retransmission resends the very same bytes (same Identifier, same Request
  Authenticator, same Event-Timestamp), every ``timeout`` seconds, ``retries``
  times;
* a datagram is accepted only from the NAS's address and port, for an
  outstanding Identifier, of the reply type matching the request, with a valid
  Response Authenticator (and Message-Authenticator when present); anything
  else is counted and ignored.

Built for throughput: no task or future per request. Sockets are plain
non-blocking sockets watched with ``loop.add_reader``; one readiness event
drains every queued datagram. Outstanding requests sit in a per-Identifier
table and in one deadline-ordered deque (the timeout is the same for every
request of a NAS), served by a single timer. The owner is called back with
the verified reply, or ``None`` after the last retransmission timed out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from pyrad.dictionary import Dictionary

from debtgate.radius.hotpath import verify_reply
from debtgate.radius.packets import Reply
from debtgate.radius.stats import NasStats

log = logging.getLogger(__name__)

Callback = Callable[[Any, Reply | None, float], None]
"""``callback(token, reply or None, seconds from first transmission)``."""

_DRAIN = 512  # datagrams read per readiness event at most (fairness towards other NASes)


class Outstanding:
    """One request awaiting its reply."""

    __slots__ = ("sock", "pkt_id", "raw", "auth", "reply_codes", "tries_left", "deadline",
                 "sent_at", "done", "callback", "token")

    def __init__(self, sock: _Socket, pkt_id: int, raw: bytes, auth: bytes,
                 reply_codes: tuple[int, int], tries_left: int, deadline: float,
                 sent_at: float, callback: Callback, token: Any) -> None:
        self.sock = sock
        self.pkt_id = pkt_id
        self.raw = raw
        self.auth = auth
        self.reply_codes = reply_codes
        self.tries_left = tries_left
        self.deadline = deadline
        self.sent_at = sent_at
        self.done = False
        self.callback = callback
        self.token = token


class _Socket:
    __slots__ = ("sock", "fd", "free", "pending", "index")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.free: deque[int] = deque(range(256))
        self.pending: list[Outstanding | None] = [None] * 256
        self.index = index


class NasTransport:
    """Sends requests to one NAS and matches verified replies."""

    def __init__(
        self, name: str, address: str, port: int, stats: NasStats, secret: bytes,
        timeout: float, retries: int, source_address: str | None = None,
        dictionary: Dictionary | None = None,
    ) -> None:
        self.name = name
        self.address = ipaddress.ip_address(address)
        self._address_text = str(self.address)
        self.port = port
        self._dest = (self._address_text, port)
        self.stats = stats
        self._secret = secret
        self.timeout = timeout
        self.retries = retries
        self.source_address = source_address
        self._dictionary = dictionary
        self._sockets: list[_Socket] = []
        self._order: deque[Outstanding] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.outstanding = 0

    @property
    def sockets(self) -> int:
        return len(self._sockets)

    def allocate(self) -> tuple[_Socket, int]:
        """A free (socket, Identifier); opens another socket when all 256 are in use."""
        for sock in self._sockets:
            if sock.free:
                return sock, sock.free.popleft()
        sock = self._open()
        return sock, sock.free.popleft()

    def release(self, sock: _Socket, pkt_id: int) -> None:
        """Return an Identifier that was allocated but not sent."""
        sock.free.append(pkt_id)

    def _open(self) -> _Socket:
        loop = self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if self.address.version == 6 else socket.AF_INET
        local = self.source_address or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        raw = socket.socket(family, socket.SOCK_DGRAM)
        try:
            raw.setblocking(False)
            try:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            except OSError:  # pragma: no cover - capped by the kernel, harmless
                pass
            raw.bind((local, 0))
        except BaseException:
            raw.close()
            raise
        sock = _Socket(raw, len(self._sockets))
        loop.add_reader(sock.fd, self._readable, sock)
        self._sockets.append(sock)
        log.debug("nas=%s opened socket %d", self.name, len(self._sockets))
        return sock

    def send(self, sock: _Socket, pkt_id: int, raw: bytes, auth: bytes,
             reply_codes: tuple[int, int], callback: Callback, token: Any) -> Outstanding:
        """Transmit ``raw`` (built for ``pkt_id``); ``callback`` gets the outcome once."""
        loop = self._loop
        assert loop is not None
        now = loop.time()
        out = Outstanding(sock, pkt_id, raw, auth, reply_codes, self.retries,
                          now + self.timeout, now, callback, token)
        sock.pending[pkt_id] = out
        self.outstanding += 1
        stats = self.stats
        stats.sent += 1
        stats.send_rate.add()
        stats.note_sent()
        self._transmit(sock, raw)
        self._order.append(out)
        if self._timer is None:
            self._arm(out.deadline)
        return out

    def _transmit(self, sock: _Socket, raw: bytes) -> None:
        try:
            sock.sock.sendto(raw, self._dest)
        except (BlockingIOError, InterruptedError):
            # send buffer full: as if lost on the way; the retransmission timer resends
            log.debug("nas=%s send buffer full, datagram dropped", self.name)
        except OSError as exc:
            log.debug("nas=%s send failed: %s", self.name, exc)

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        order = self._order
        while order:
            out = order[0]
            if out.done:
                order.popleft()
                continue
            if out.deadline > now:
                break
            order.popleft()
            if out.tries_left > 0:
                out.tries_left -= 1
                out.deadline = now + self.timeout
                self.stats.retransmits += 1
                self._transmit(out.sock, out.raw)
                order.append(out)
            else:
                self._finish(out, None, now)
        if order:
            self._arm(order[0].deadline)

    def _finish(self, out: Outstanding, reply: Reply | None, now: float) -> None:
        out.done = True
        sock = out.sock
        sock.pending[out.pkt_id] = None
        sock.free.append(out.pkt_id)
        self.outstanding -= 1
        order = self._order
        while order and order[0].done:
            order.popleft()
        out.callback(out.token, reply, now - out.sent_at)

    def _readable(self, sock: _Socket) -> None:
        recv = sock.sock.recvfrom
        for _ in range(_DRAIN):
            try:
                data, addr = recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors queued on the socket
                log.debug("nas=%s socket error: %s", self.name, exc)
                continue
            self._received(sock, data, addr)

    def _received(self, sock: _Socket, data: bytes, addr: tuple[Any, ...]) -> None:
        if addr[1] != self.port or addr[0] != self._address_text:
            source_ok = False
            if addr[1] == self.port:
                try:  # another spelling of the same address (e.g. IPv6 zero compression)
                    source_ok = ipaddress.ip_address(str(addr[0]).split("%")[0]) == self.address
                except ValueError:
                    source_ok = False
            if not source_ok:
                self.stats.bad_source += 1
                log.warning("nas=%s reply from unexpected source %s ignored", self.name,
                            addr[:2])
                return
        out = sock.pending[data[1]] if len(data) >= 20 else None
        if out is None:
            self.stats.unexpected += 1
            return
        reply = verify_reply(data, out.pkt_id, out.reply_codes, out.auth, self._secret,
                             self._dictionary)
        if reply is None:
            self.stats.bad_reply += 1
            log.warning("nas=%s reply id=%d failed verification, ignored", self.name, data[1])
            return
        assert self._loop is not None
        self.stats.note_answer()
        self._finish(out, reply, self._loop.time())

    def close(self) -> None:
        """Close every socket; outstanding requests are abandoned (no callbacks)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for out in self._order:
            out.done = True
        self._order.clear()
        for sock in self._sockets:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fd)
            sock.sock.close()
        self._sockets.clear()
        self.outstanding = 0
