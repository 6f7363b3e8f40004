"""A misbehaving NAS: an asyncio UDP CoA server built on pyrad's packet classes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pyrad import packet as rp
from pyrad.dictionary import Dictionary


@dataclass
class Answer:
    """How to answer one received datagram."""

    ack: bool = True
    cause: int | None = None
    delay: float = 0.0
    drop: bool = False
    bad_secret: bool = False
    """Sign the reply with a wrong secret (then the real answer if ``then_good``)."""
    wrong_source: bool = False
    """Send the reply from another socket (then the real answer if ``then_good``)."""
    then_good: bool = False


Policy = Callable[[rp.CoAPacket, int], Answer]


@dataclass
class FakeNas(asyncio.DatagramProtocol):
    secret: bytes
    dictionary: Dictionary
    policy: Policy = field(default=lambda pkt, seen: Answer())
    raws: list[bytes] = field(default_factory=list)
    requests: list[rp.CoAPacket] = field(default_factory=list)
    seen: Counter[bytes] = field(default_factory=Counter)
    invalid: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    transport: asyncio.DatagramTransport | None = None
    other: asyncio.DatagramTransport | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        # asyncio reads one datagram per loop iteration: room for bursts of hundreds
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.other, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        for t in (self.transport, self.other):
            if t is not None:
                t.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = rp.CoAPacket(packet=data, secret=self.secret, dict=self.dictionary)
        if not pkt.VerifyCoARequest() or not pkt.message_authenticator \
                or not pkt.verify_message_authenticator():
            self.invalid += 1
            return
        self.raws.append(data)
        self.seen[data] += 1
        if self.seen[data] == 1:
            self.requests.append(pkt)
        answer = self.policy(pkt, self.seen[data])
        if answer.drop:
            return
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        if answer.delay:
            asyncio.get_running_loop().call_later(answer.delay, self._answer, pkt, answer, addr)
        else:
            self._answer(pkt, answer, addr)

    def _reply(self, pkt: rp.CoAPacket, answer: Answer, secret: bytes) -> bytes:
        reply = pkt.CreateReply()
        reply.secret = secret
        if not answer.ack:
            reply.code = rp.CoANAK if pkt.code == rp.CoARequest else rp.DisconnectNAK
        if answer.cause is not None:
            reply["Error-Cause"] = answer.cause
        reply.message_authenticator = True
        return reply.ReplyPacket()

    def _answer(self, pkt: rp.CoAPacket, answer: Answer, addr: tuple[str, int]) -> None:
        self.concurrent -= 1
        if self.transport is None or self.other is None:
            return
        if answer.bad_secret:
            self.transport.sendto(self._reply(pkt, answer, b"wrong-secret"), addr)
        if answer.wrong_source:
            self.other.sendto(self._reply(pkt, answer, self.secret), addr)
        if answer.then_good or not (answer.bad_secret or answer.wrong_source):
            self.transport.sendto(self._reply(pkt, answer, self.secret), addr)

    def session_ids(self) -> list[str]:
        return [p["Acct-Session-Id"][0] for p in self.requests if "Acct-Session-Id" in p]
