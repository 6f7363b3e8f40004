"""Walled garden by domain: resolve the configured domains, honouring TTL.

Payment pages live on CDNs whose addresses change. Each domain is resolved
(A and AAAA) and its addresses are put in ``gardendns_v4/v6`` with an element
timeout a little above the record's TTL, so a CDN's old addresses age out in
the kernel by themselves. A failed resolution keeps what is there until it
expires, and is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.host import Extension, ExtensionHost

log = logging.getLogger(__name__)


class DnsGarden(Extension):
    def __init__(self, config: Config) -> None:
        self.apply_config(config)
        self.state: dict[str, dict[str, Any]] = {}

    def apply_config(self, config: Config) -> None:
        g = config.garden
        self.domains = list(g.domains)
        self.refresh_min = g.refresh_min
        self.slack = g.ttl_slack
        self.resolver = dns.asyncresolver.Resolver(configure=not g.dns_servers)
        if g.dns_servers:
            self.resolver.nameservers = [str(s) for s in g.dns_servers]
        self.resolver.lifetime = 5.0

    async def resolve(self, domain: str) -> tuple[list[str], list[str], int]:
        v4: list[str] = []
        v6: list[str] = []
        ttl = 0
        errors = []
        for rdtype, out in (("A", v4), ("AAAA", v6)):
            try:
                answer = await self.resolver.resolve(domain, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                errors.append(f"{rdtype}: {exc}")
                continue
            out.extend(str(r.address) for r in answer)
            ttl = max(ttl, int(answer.rrset.ttl) if answer.rrset is not None else 0)
        if errors and not v4 and not v6:
            raise dns.exception.DNSException("; ".join(errors))  # type: ignore[no-untyped-call]
        return v4, v6, ttl

    async def refresh(self, daemon: ExtensionHost, domain: str) -> float:
        """Resolve one domain and refresh its elements; returns seconds until the next time."""
        try:
            v4, v6, ttl = await self.resolve(domain)
        except dns.exception.DNSException as exc:
            log.warning("garden domain %s: resolution failed, keeping its addresses until "
                        "they expire: %s", domain, exc)
            self.state.setdefault(domain, {})["error"] = str(exc)
            return self.refresh_min
        timeout = max(ttl, 1) + self.slack
        nft = daemon.nft
        for name, addrs in (("gardendns_v4", v4), ("gardendns_v6", v6)):
            if addrs:
                await nft.refresh_timed(name, addrs, timeout)
        self.state[domain] = {"addresses": len(v4) + len(v6), "v4": v4, "v6": v6, "ttl": ttl,
                              "expires_at": time.time() + timeout, "error": None}
        log.debug("garden domain %s: %s (ttl %d s)", domain, v4 + v6, ttl)
        return max(float(ttl), self.refresh_min)

    async def run(self, daemon: ExtensionHost) -> None:
        due = {d: 0.0 for d in self.domains}
        while True:
            now = time.monotonic()
            for domain in list(self.domains):
                if due.get(domain, 0.0) <= now:
                    due[domain] = now + await self.refresh(daemon, domain)
            wait = min((t for t in due.values()), default=now + 60) - time.monotonic()
            await asyncio.sleep(max(0.2, min(wait, 60.0)))

    def watch(self, reloads: Reloads) -> None:
        reloads.on("the garden's domains", ["garden.domains", "garden.dns_servers",
                                            "garden.refresh_min", "garden.ttl_slack"],
                   self._reload)

    async def _reload(self, _old: Config, new: Config) -> None:
        self.apply_config(new)

    def status(self, out: dict[str, Any]) -> None:
        now = time.time()
        # every configured domain, the ones not resolved yet with no addresses: a
        # dashboard or an alert sees the domain from the start, not after its first answer
        state = {d: self.state.get(d, {}) for d in self.domains}
        state.update(self.state)
        out["garden"]["domains"] = {
            d: {"addresses": s.get("addresses", 0),
                "expires_in": round(s["expires_at"] - now, 1) if "expires_at" in s else None,
                "error": s.get("error")}
            for d, s in state.items()}
