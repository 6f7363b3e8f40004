"""RADIUS accounting listener: learns sessions for billings that do not know them.

Accounting-Request packets (Start, Interim-Update, Stop, Accounting-On/Off)
from allowed clients are verified with the shared secret (Request
Authenticator, and Message-Authenticator when present), applied to the
:class:`SessionTable`, and answered with an Accounting-Response. Packets that
fail verification are dropped without an answer (RFC 2866 section 3).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from debtgate.config.radius import AccountingConfig
from debtgate.radius.sessions import AcctSession, SessionTable

log = logging.getLogger(__name__)

_STATUS = {1: "Start", 2: "Stop", 3: "Interim-Update", 7: "Accounting-On", 8: "Accounting-Off"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class AccountingListener(asyncio.DatagramProtocol):
    """The UDP accounting server feeding a :class:`SessionTable`."""

    def __init__(
        self, config: AccountingConfig, secret: bytes, dictionary: Dictionary,
        table: SessionTable, nas_by_address: Mapping[str, str],
        nas_by_identifier: Mapping[str, str],
    ) -> None:
        self.config = config
        self._secret = secret
        self.dictionary = dictionary
        self.table = table
        self.nas_by_address = dict(nas_by_address)
        self.nas_by_identifier = dict(nas_by_identifier)
        nets = config.clients or list(nas_by_address)
        self.clients = [ipaddress.ip_network(n, strict=False) for n in nets]
        self.counters: Counter[str] = Counter()
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.config.address, self.config.port)
        )
        log.info("accounting listener on %s port %s", self.config.address, self.config.port)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.clients)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        host = str(addr[0])
        if not self._allowed(host):
            self.counters["refused_client"] += 1
            log.warning("accounting from unlisted client %s dropped", host)
            return
        try:
            pkt = rp.AcctPacket(packet=data, secret=self._secret, dict=self.dictionary)
        except Exception:  # noqa: BLE001 - any malformed datagram is dropped
            self.counters["malformed"] += 1
            return
        ok = pkt.code == rp.AccountingRequest and pkt.VerifyAcctRequest()
        if ok and pkt.message_authenticator:
            ok = pkt.verify_message_authenticator()
        if not ok:
            self.counters["bad_authenticator"] += 1
            log.warning("accounting from %s failed verification, dropped", host)
            return
        self._apply(pkt, host)
        reply = pkt.CreateReply()
        assert self.transport is not None
        self.transport.sendto(reply.ReplyPacket(), addr)

    def _attr(self, pkt: rp.AcctPacket, name: str) -> Any:
        try:
            values = pkt[name]
        except KeyError:
            return None
        return values[0] if values else None

    def _apply(self, pkt: rp.AcctPacket, host: str) -> None:
        status = self._attr(pkt, "Acct-Status-Type")
        status = _STATUS.get(status, str(status)) if isinstance(status, int) else str(status)
        self.counters[status] += 1
        nas_ident = _text(self._attr(pkt, "NAS-Identifier"))
        nas_ip = _text(self._attr(pkt, "NAS-IP-Address"))
        nas = (self.nas_by_identifier.get(nas_ident or "")
               or self.nas_by_address.get(nas_ip or "")
               or self.nas_by_address.get(host) or nas_ip or host)
        if status in ("Accounting-On", "Accounting-Off"):
            dropped = self.table.remove_nas(nas)
            log.info("nas=%s %s: %d sessions forgotten", nas, status, dropped)
            return
        session_id = _text(self._attr(pkt, "Acct-Session-Id"))
        if not session_id:
            self.counters["no_session_id"] += 1
            return
        if status == "Stop":
            self.table.remove(nas, session_id)
            log.debug("nas=%s session=%s stopped", nas, session_id)
            return
        if status not in ("Start", "Interim-Update"):
            return
        account = None
        if self.config.account_attribute:
            account = _text(self._attr(pkt, self.config.account_attribute))
        self.table.upsert(AcctSession(
            nas=nas, session_id=session_id,
            user_name=_text(self._attr(pkt, "User-Name")),
            framed_ip=_text(self._attr(pkt, "Framed-IP-Address")),
            account=account,
        ))
        log.debug("nas=%s session=%s %s account=%s", nas, session_id, status, account)
