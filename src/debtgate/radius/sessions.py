"""A bounded in-memory table of sessions learnt from RADIUS accounting."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AcctSession:
    """One live session as the NAS reported it."""

    nas: str
    """NAS name from the config (or the NAS's address when it is not configured)."""
    session_id: str
    user_name: str | None = None
    framed_ip: str | None = None
    account: str | None = None
    updated: float = 0.0


class SessionTable:
    """Sessions keyed by (nas, Acct-Session-Id); lookups by address, user and account.

    Beyond ``limit`` sessions the least recently updated one is dropped, so a
    NAS that never sends Stop cannot grow memory without bound.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sessions: OrderedDict[Key, AcctSession] = OrderedDict()
        self._by_ip: dict[str, Key] = {}
        self._by_user: dict[str, Key] = {}
        self._by_account: dict[str, Key] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def _indexes(self, s: AcctSession) -> Iterable[tuple[dict[str, Key], str | None]]:
        return ((self._by_ip, s.framed_ip), (self._by_user, s.user_name),
                (self._by_account, s.account))

    def _unindex(self, key: Key, s: AcctSession) -> None:
        for index, value in self._indexes(s):
            if value is not None and index.get(value) == key:
                del index[value]

    def upsert(self, session: AcctSession) -> None:
        """Add or refresh a session (Start / Interim-Update)."""
        if not session.updated:
            session = AcctSession(session.nas, session.session_id, session.user_name,
                                  session.framed_ip, session.account, time.time())
        key = (session.nas, session.session_id)
        old = self._sessions.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        self._sessions[key] = session
        for index, value in self._indexes(session):
            if value is not None:
                index[value] = key
        while len(self._sessions) > self.limit:
            old_key, evicted = self._sessions.popitem(last=False)
            self._unindex(old_key, evicted)
            self.evicted += 1

    def remove(self, nas: str, session_id: str) -> AcctSession | None:
        """Forget a session (Stop, or a NAK with Error-Cause 503)."""
        key = (nas, session_id)
        old = self._sessions.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _get(self, index: dict[str, Key], value: str | None) -> AcctSession | None:
        key = index.get(value) if value else None
        return self._sessions.get(key) if key else None

    def by_framed_ip(self, ip: str | None) -> AcctSession | None:
        return self._get(self._by_ip, ip)

    def by_user_name(self, name: str | None) -> AcctSession | None:
        return self._get(self._by_user, name)

    def by_account(self, account: str | None) -> AcctSession | None:
        return self._get(self._by_account, account)

    def find(
        self, account: str, addresses: Iterable[str] = (), user_name: str | None = None,
        session_id: str | None = None, nas: str | None = None,
    ) -> AcctSession | None:
        """Best match: session id, user name, account, then any host address."""
        if session_id and nas and (hit := self._sessions.get((nas, session_id))):
            return hit
        if hit := self.by_user_name(user_name):
            return hit
        if hit := self.by_account(account):
            return hit
        for address in addresses:
            if "/" not in address and (hit := self.by_framed_ip(address)):
                return hit
        return None

    def remove_nas(self, nas: str) -> int:
        """Forget every session of a NAS (Accounting-On/Off: it rebooted)."""
        keys = [k for k in self._sessions if k[0] == nas]
        for key in keys:
            self.remove(*key)
        return len(keys)
