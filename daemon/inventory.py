"""Subscribers in memory, indexed by account and by address (pure data)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from .model import Subscriber


class Inventory:
    """Accounts and an address index with longest-prefix lookup."""

    def __init__(self) -> None:
        self.accounts: dict[str, Subscriber] = {}
        self._hosts: dict[str, str] = {}
        # (version, prefixlen) -> {network int: account}
        self._nets: dict[tuple[int, int], dict[int, str]] = {}

    def __len__(self) -> int:
        return len(self.accounts)

    def get(self, account: str) -> Subscriber | None:
        return self.accounts.get(account)

    def replace_all(self, subs: Mapping[str, Subscriber]) -> None:
        self.accounts = dict(subs)
        self._hosts = {}
        self._nets = {}
        for sub in self.accounts.values():
            self._index(sub)

    def put(self, sub: Subscriber) -> Subscriber | None:
        old = self.accounts.get(sub.account)
        if old is not None:
            self._unindex(old)
        self.accounts[sub.account] = sub
        self._index(sub)
        return old

    def remove(self, account: str) -> Subscriber | None:
        old = self.accounts.pop(account, None)
        if old is not None:
            self._unindex(old)
        return old

    def _index(self, sub: Subscriber) -> None:
        for addr in sub.addresses:
            if "/" in addr:
                net = ipaddress.ip_network(addr)
                table = self._nets.setdefault((net.version, net.prefixlen), {})
                table[int(net.network_address)] = sub.account
            else:
                self._hosts[addr] = sub.account

    def _unindex(self, sub: Subscriber) -> None:
        for addr in sub.addresses:
            if "/" in addr:
                net = ipaddress.ip_network(addr)
                table = self._nets.get((net.version, net.prefixlen), {})
                if table.get(int(net.network_address)) == sub.account:
                    del table[int(net.network_address)]
            elif self._hosts.get(addr) == sub.account:
                del self._hosts[addr]

    def owner(self, address: str) -> str | None:
        """The account holding an address (a host, or inside one of its prefixes)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        text = str(ip)
        account = self._hosts.get(text)
        if account is not None:
            return account
        value = int(ip)
        best: tuple[int, str] | None = None
        for (version, plen), table in self._nets.items():
            if version != ip.version or not table:
                continue
            shift = ip.max_prefixlen - plen
            found = table.get((value >> shift) << shift)
            if found is not None and (best is None or plen > best[0]):
                best = (plen, found)
        return best[1] if best else None

    def claimed_by_other(self, sub: Subscriber) -> str | None:
        """An address of ``sub`` already held by another account, if any."""
        for addr in sub.addresses:
            probe = addr.split("/", 1)[0]
            owner = self.owner(probe)
            if owner is not None and owner != sub.account:
                return addr
            if addr in self._hosts and self._hosts[addr] != sub.account:
                return addr
        return None

    def find(self, key: str) -> Subscriber | None:
        """By account id, else by address."""
        sub = self.accounts.get(key)
        if sub is not None:
            return sub
        owner = self.owner(key)
        return self.accounts.get(owner) if owner else None

    def values(self) -> Iterable[Subscriber]:
        return self.accounts.values()
