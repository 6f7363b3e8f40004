"""Subscribers in memory, indexed by account and by address (pure data).

Most subscribers of a large billing are active with one IPv4 host and nothing
the gateway needs to show: they are kept *lean* (account -> host text, no
:class:`Subscriber` object) and built on demand by :meth:`Inventory.get`.

Over 400 lines on purpose: one data structure and its four indexes (accounts, lean
hosts, host owners, prefixes), with every operation that must keep them consistent in
one place; split, that invariant would span modules.
"""

from __future__ import annotations

import ipaddress
import operator
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from itertools import compress, repeat
from typing import Any

from debtgate.model import State, Subscriber

_ACCOUNT = operator.attrgetter("account")


class _Accounts(Mapping[str, Subscriber]):
    """Every account, lean ones built on access (a read-only view)."""

    __slots__ = ("_inv",)

    def __init__(self, inv: Inventory) -> None:
        self._inv = inv

    def __getitem__(self, account: str) -> Subscriber:
        sub = self._inv.get(account)
        if sub is None:
            raise KeyError(account)
        return sub

    def __contains__(self, account: object) -> bool:
        inv = self._inv
        return account in inv.full or account in inv.lean

    def __len__(self) -> int:
        return len(self._inv)

    def __iter__(self) -> Iterator[str]:
        yield from self._inv.full
        yield from self._inv.lean


def _address(version: int, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


class Inventory:
    """Accounts and an address index with longest-prefix lookup."""

    def __init__(self, default_currency: str = "") -> None:
        self.full: dict[str, Subscriber] = {}
        self.lean: dict[str, str] = {}
        """Active accounts with one host (or none: ''), nothing else known."""
        self.default_currency = default_currency
        self.accounts: Mapping[str, Subscriber] = _Accounts(self)
        self._hosts: dict[str, str] = {}
        # (version, prefixlen) -> {network int: account}
        self._nets: dict[tuple[int, int], dict[int, str]] = {}

    def __len__(self) -> int:
        return len(self.full) + len(self.lean)

    def lean_subscriber(self, account: str, host: str) -> Subscriber:
        return Subscriber(account, (host,) if host else (), State.ACTIVE,
                          currency=self.default_currency)

    def get(self, account: str) -> Subscriber | None:
        sub = self.full.get(account)
        if sub is not None:
            return sub
        host = self.lean.get(account)
        return None if host is None else self.lean_subscriber(account, host)

    def replace_all(self, subs: Mapping[str, Subscriber],
                    lean: dict[str, str] | None = None,
                    hosts: dict[str, str] | None = None) -> None:
        """``hosts``: the host index of every host of ``lean`` and ``subs``, built by
        validation (then only the prefixes are indexed here: at a million accounts
        indexing the 100,000 restricted hosts again took 0.11 s of the snapshot's
        slice)."""
        self.full = dict(subs)
        self.lean = lean if lean is not None else {}
        self._nets = {}
        if hosts is not None:
            self._hosts = hosts
            for sub in self.full.values():
                for addr in sub.addresses:
                    if "/" in addr:
                        self._index_net(addr, sub.account)
            return
        # The lean index first, then the others over it.
        self._hosts = {host: acc for acc, host in self.lean.items() if host}
        for sub in self.full.values():
            self._index(sub)

    def put(self, sub: Subscriber) -> Subscriber | None:
        old = self.get(sub.account)
        if old is not None:
            self._unindex(old)
        self.lean.pop(sub.account, None)
        self.full[sub.account] = sub
        self._index(sub)
        return old

    def put_many(self, subs: Iterable[Subscriber]) -> None:
        """:meth:`put` of each (in order), without building the old lean subscribers."""
        full, lean, hosts = self.full, self.lean, self._hosts
        for sub in subs:
            account = sub.account
            old = full.get(account)
            if old is not None:
                self._unindex(old)
            else:
                host = lean.pop(account, None)
                if host and hosts.get(host) == account:
                    del hosts[host]
            full[account] = sub
            for addr in sub.addresses:
                if "/" in addr:
                    self._index(sub)
                    break
                hosts[addr] = account

    def remove(self, account: str) -> Subscriber | None:
        old = self.get(account)
        if old is not None:
            self.full.pop(account, None)
            self.lean.pop(account, None)
            self._unindex(old)
        return old

    def _index(self, sub: Subscriber) -> None:
        for addr in sub.addresses:
            if "/" in addr:
                self._index_net(addr, sub.account)
            else:
                self._hosts[addr] = sub.account

    def _index_net(self, addr: str, account: str) -> None:
        net = ipaddress.ip_network(addr)
        table = self._nets.setdefault((net.version, net.prefixlen), {})
        table[int(net.network_address)] = account

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

    def owners(self, hosts: Sequence[str]) -> list[str | None]:
        """:meth:`owner` of each host (one C loop while no prefix is held)."""
        if not any(self._nets.values()):
            return list(map(self._hosts.get, hosts))
        return [self.owner(host) for host in hosts]

    def claimed_by_other(self, sub: Subscriber) -> str | None:
        """An address of ``sub`` another account holds exactly (the same host, or the
        same prefix), if any. Containment is not a clash: see :meth:`covering`."""
        for addr in sub.addresses:
            if "/" not in addr:
                held = self._hosts.get(addr)
            else:
                net = ipaddress.ip_network(addr)
                held = self._nets.get((net.version, net.prefixlen), {}).get(
                    int(net.network_address))
            if held is not None and held != sub.account:
                return addr
        return None

    def has_prefixes(self) -> bool:
        return any(self._nets.values())

    def covering(self, addr: str) -> list[tuple[str, str]]:
        """(account, prefix) of every held prefix strictly wider than ``addr`` that
        contains it (one, unless the billing's prefixes overlap)."""
        net = ipaddress.ip_network(addr)
        value, out = int(net.network_address), []
        for (version, plen), table in self._nets.items():
            if version != net.version or plen >= net.prefixlen or not table:
                continue
            shift = net.max_prefixlen - plen
            network = (value >> shift) << shift
            owner = table.get(network)
            if owner is not None:
                out.append((owner, f"{_address(version, network)}/{plen}"))
        return out

    def covering_many(self, addrs: Iterable[str]) -> Iterator[tuple[str, str, str]]:
        """(address, account, prefix) of :meth:`covering` for each of ``addrs``; plain
        IPv4 hosts without an ``ipaddress`` object each (a storm's 100,000 hosts against
        a few business prefixes: 40 ms instead of 2 s)."""
        v4 = [(32 - plen, table) for (version, plen), table in self._nets.items()
              if version == 4 and table]
        aton, of = socket.inet_aton, int.from_bytes
        for addr in addrs:
            if "/" in addr or ":" in addr:
                for owner, prefix in self.covering(addr):
                    yield addr, owner, prefix
                continue
            value = of(aton(addr), "big")
            for shift, table in v4:
                network = (value >> shift) << shift
                holder = table.get(network)
                if holder is not None:
                    yield addr, holder, f"{_address(4, network)}/{32 - shift}"

    def covered(self, prefixes: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """prefix -> (element, account) of every held host or narrower prefix inside it.
        IPv4 prefixes of /16 or narrower are probed address by address; otherwise the
        hosts of that family are scanned once for all ``prefixes``."""
        wanted: dict[tuple[int, int], dict[int, str]] = {}
        for text in prefixes:
            net = ipaddress.ip_network(text)
            wanted.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = text
        out: dict[str, list[tuple[str, str]]] = {}
        if not wanted:
            return out

        def probe(version: int, plen: int, value: int, elem: str, account: str) -> None:
            for (v, pl), table in wanted.items():
                if v == version and pl < plen:
                    shift = (32 if v == 4 else 128) - pl
                    hit = table.get((value >> shift) << shift)
                    if hit is not None:
                        out.setdefault(hit, []).append((elem, account))

        hosts = self._hosts
        v4 = [(pl, table) for (v, pl), table in wanted.items() if v == 4]
        if v4 and all(pl >= 16 for pl, _ in v4):
            for pl, table in v4:
                for network, text in table.items():
                    for value in range(network, network + (1 << (32 - pl))):
                        host = f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}." \
                               f"{value & 255}"
                        held = hosts.get(host)
                        if held is not None:
                            out.setdefault(text, []).append((host, held))
        elif v4:
            for host, held in hosts.items():
                if ":" not in host:
                    probe(4, 32, int(ipaddress.IPv4Address(host)), host, held)
        if any(v == 6 for v, _ in wanted):
            for host, held in hosts.items():
                if ":" in host:
                    probe(6, 128, int(ipaddress.IPv6Address(host)), host, held)
        for (version, plen), table in self._nets.items():
            for value, held in table.items():
                probe(version, plen, value, f"{_address(version, value)}/{plen}", held)
        return out

    def clashes(self, subs: Iterable[Subscriber]) -> dict[str, str]:
        """:meth:`claimed_by_other` of many subscribers: account -> the clashing address.
        While the inventory holds no prefix and each subscriber one host (a storm), the
        owners are looked up in one C loop and compared in another."""
        subs = list(subs)
        firsts: list[Any] = [sub.addresses[0] if len(sub.addresses) == 1 else None
                             for sub in subs]
        if (not any(self._nets.values()) and None not in firsts
                and not any("/" in a for a in firsts)):
            held_by: Callable[[Any], str | None] = self._hosts.get
            owners = list(map(held_by, firsts))
            accounts = list(map(_ACCOUNT, subs))
            differ = map(operator.ne, owners, accounts)
            known = map(operator.is_not, owners, repeat(None))
            return {accounts[i]: firsts[i]
                    for i in compress(range(len(subs)), map(operator.and_, differ, known))}
        out: dict[str, str] = {}
        for sub in subs:
            clash = self.claimed_by_other(sub)
            if clash is not None:
                out[sub.account] = clash
        return out

    def find(self, key: str) -> Subscriber | None:
        """By account id, else by address."""
        sub = self.get(key)
        if sub is not None:
            return sub
        owner = self.owner(key)
        return self.get(owner) if owner else None

    def values(self) -> Iterable[Subscriber]:
        return self.accounts.values()


class Placements(MutableMapping[str, State]):
    """The state each account is enforced as, compact at a million accounts: only
    the non-active placements are stored (``other``); an account of the inventory
    without one is placed active."""

    __slots__ = ("_inv", "other")

    def __init__(self, inv: Inventory, other: Mapping[str, State] | None = None) -> None:
        self._inv = inv
        self.other: dict[str, State] = {}
        if other:
            self.update(other)

    def get(self, account: str, default: State | None = None) -> State | None:  # type: ignore[override]
        state = self.other.get(account)
        if state is not None:
            return state
        inv = self._inv
        if account in inv.lean or account in inv.full:
            return State.ACTIVE
        return default

    def __getitem__(self, account: str) -> State:
        state = self.get(account)
        if state is None:
            raise KeyError(account)
        return state

    def __setitem__(self, account: str, state: State) -> None:
        if state is State.ACTIVE:
            self.other.pop(account, None)
        else:
            self.other[account] = state

    def __delitem__(self, account: str) -> None:
        del self.other[account]

    def pop(self, account: str, default: object = None) -> object:  # type: ignore[override]
        state = self.get(account)
        self.other.pop(account, None)
        return default if state is None else state

    def update(self, other: Mapping[str, State] | Iterable[tuple[str, State]] = (),  # type: ignore[override]
               **kwargs: State) -> None:
        items = other.items() if isinstance(other, Mapping) else other
        store, active = self.other, State.ACTIVE
        for account, state in items:
            if state is active:
                store.pop(account, None)
            else:
                store[account] = state
        for account, state in kwargs.items():
            self[account] = state

    def __contains__(self, account: object) -> bool:
        return account in self.other or account in self._inv.accounts

    def __iter__(self) -> Iterator[str]:
        yield from self.other
        for account in self._inv.accounts:
            if account not in self.other:
                yield account

    def __len__(self) -> int:
        inv = self._inv.accounts
        return len(self._inv) + sum(1 for a in self.other if a not in inv)

    def __bool__(self) -> bool:
        return bool(self.other) or len(self._inv) > 0

    def counts(self) -> dict[str, int]:
        """Accounts per state, as ``Counter(self.values())`` gives while every placed
        account is in the inventory (the engine places only accounts it holds), in C
        loops: the status page asks often, and at a million accounts a pass over all
        of them held the event loop for a second; this takes ~12 ms."""
        other, values = self.other, self.other.values()
        out = {state.value: n for state in State if (n := operator.countOf(values, state))}
        active = len(self._inv) - len(other)
        if active > 0:
            out[State.ACTIVE.value] = active
        return out


class PreviousView(Mapping[str, Subscriber]):
    """The inventory's subscribers of some accounts (a lazy view: lean ones are built
    only when read)."""

    __slots__ = ("_inv", "_keys")

    def __init__(self, inv: Inventory, keys: set[str]) -> None:
        self._inv = inv
        self._keys = keys

    def __getitem__(self, account: str) -> Subscriber:
        sub = self._inv.get(account) if account in self._keys else None
        if sub is None:
            raise KeyError(account)
        return sub

    def get(self, account: str, default: Any = None) -> Any:
        sub = self._inv.get(account) if account in self._keys else None
        return default if sub is None else sub

    def __contains__(self, account: object) -> bool:
        inv = self._inv
        return account in self._keys and (account in inv.full or account in inv.lean)

    def __iter__(self) -> Iterator[str]:
        inv = self._inv
        return (a for a in self._keys if a in inv.full or a in inv.lean)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return bool(self._keys)  # may hold none of them: only ever a cheap hint
