"""The nftables adapter: plans in, one atomic transaction each.

libnftables (through the ``nftables`` ctypes binding) runs every transaction
in-process; ``nft -f -`` is the fallback when the library cannot be loaded.
Plans on host sets only take the netlink fast path (:mod:`.nftnl`), which skips
nft's parser and evaluator. Blocking calls run in a worker thread. Only
``table inet debtgate`` is ever named in a command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from debtgate.core.reconcile import Plan
from debtgate.errors import ApplyError
from debtgate.kernel.nftnl import BatchAborted, NftnlBackend

log = logging.getLogger(__name__)

TABLE = "inet debtgate"


class NftBackend(Protocol):
    """Runs nft scripts; raises ApplyError with nft's message on failure."""

    def run(self, script: str, *, json_out: bool = False) -> str: ...


class LibNftBackend:
    """libnftables in-process (no fork per transaction)."""

    def __init__(self) -> None:
        import nftables  # noqa: PLC0415 - optional native library

        self._lock = threading.Lock()
        self._nft = nftables.Nftables()
        self._nft.set_handle_output(False)

    def run(self, script: str, *, json_out: bool = False) -> str:
        with self._lock:
            self._nft.set_json_output(json_out)
            rc, out, err = self._nft.cmd(script)
        if rc != 0:
            raise ApplyError(f"nft: {err.strip()[:2000]}")
        return str(out)


class CliNftBackend:
    """``nft -f -``: one process per transaction (fallback)."""

    def __init__(self, binary: str = "nft") -> None:
        self._binary = shutil.which(binary) or binary

    def run(self, script: str, *, json_out: bool = False) -> str:
        args = [self._binary] + (["-j"] if json_out else []) + ["-f", "-"]
        proc = subprocess.run(args, input=script, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ApplyError(f"nft: {proc.stderr.strip()[:2000]}")
        return proc.stdout


def open_fast_path() -> NftnlBackend | None:
    """The netlink fast path, or None (logged) when the kernel refuses the socket."""
    try:
        return NftnlBackend()
    except OSError as exc:
        log.warning("netlink fast path unavailable (%s); host sets go through libnftables", exc)
        return None


def default_backend() -> NftBackend:
    try:
        return LibNftBackend()
    except (ImportError, OSError) as exc:
        log.warning("libnftables unavailable (%s); using the nft command", exc)
        return CliNftBackend()


_DEFINES = re.compile(r"# BEGIN defines\n.*?# END defines\n", re.S)
_V6_DNAT = re.compile(r"dnat ip6 to \[[0-9a-fA-F:.]+\]:\d+")


def render_ruleset(template: str, *, portal_v4: str, portal_v6: str | None, portal_port: int,
                   portal_tls_port: int) -> str:
    """The shipped ruleset with this gateway's values."""
    # `redefine`: libnftables keeps symbols between commands of one context, so a second
    # load (reload, table rebuilt) would fail with "redefinition of symbol".
    defines = (f"# BEGIN defines\nredefine PORTAL_V4 = {portal_v4}\n"
               f"redefine PORTAL_V6 = {portal_v6 or 'fd00:255::1'}\n"
               f"redefine PORTAL_PORT = {portal_port}\n"
               f"redefine PORTAL_TLS_PORT = {portal_tls_port}\n# END defines\n")
    text, count = _DEFINES.subn(lambda _m: defines, template)
    if count != 1:
        raise ApplyError("ruleset: the '# BEGIN defines' ... '# END defines' block is missing")
    lines = []
    for line in text.splitlines():
        if "# if:portal_v6" in line:
            if portal_v6 is None:
                continue
            line = _V6_DNAT.sub(f"dnat ip6 to [{portal_v6}]:{portal_port}", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _elements(items: Iterable[str], timeout: int | None = None) -> str:
    if not timeout:
        return ", ".join(items)
    suffix = f" timeout {timeout}s"
    return ", ".join(f"{e}{suffix}" for e in items)


def plan_script(plan: Plan) -> str:
    """One transaction for a plan. A delete is preceded by an add of the same
    elements, so deleting an element already gone cannot fail the batch."""
    out: list[str] = []
    for delta in plan.changes:
        if delta.whole is not None:
            out.append(f"flush set {TABLE} {delta.name}")
            if delta.whole:
                out.append(f"add element {TABLE} {delta.name} {{ {_elements(delta.whole)} }}")
        elif delta.delete:
            elems = _elements(delta.delete)
            out.append(f"add element {TABLE} {delta.name} {{ {elems} }}")
            out.append(f"delete element {TABLE} {delta.name} {{ {elems} }}")
    for delta in plan.changes:
        if delta.add and delta.whole is None:
            out.append(f"add element {TABLE} {delta.name} {{ {_elements(delta.add)} }}")
    return "\n".join(out) + "\n"


def _parse_elem(item: Any) -> str | None:
    if isinstance(item, dict) and "elem" in item:
        item = item["elem"]["val"]
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and "prefix" in item:
        pfx = item["prefix"]
        return f"{pfx['addr']}/{pfx['len']}"
    if isinstance(item, dict) and "range" in item:
        lo, hi = item["range"]
        return f"{lo}-{hi}"
    return None


class NftAdapter:
    """The daemon's view of its own table."""

    def __init__(self, backend: NftBackend | None = None,
                 fast: NftnlBackend | bool | None = None) -> None:
        """``fast``: the netlink fast path for plans on host sets. By default it is on
        with the default backend (the kernel of this namespace) and off with an
        injected one (a stand-in must not have the real kernel written behind it)."""
        self.backend = backend or default_backend()
        if fast is None:
            fast = backend is None
        self.fast: NftnlBackend | None = (open_fast_path() if fast is True
                                          else fast or None)

    async def _run(self, script: str, json_out: bool = False) -> str:
        return await asyncio.to_thread(self.backend.run, script, json_out=json_out)

    async def check_ruleset(self, text: str) -> None:
        """``nft -c``: validate without touching the kernel."""
        nft = shutil.which("nft")
        if nft is None:
            raise ApplyError("nft: the nft command is not installed")
        proc = await asyncio.create_subprocess_exec(
            nft, "-c", "-f", "-", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        _, err = await proc.communicate(text.encode())
        if proc.returncode != 0:
            raise ApplyError(f"ruleset rejected by nft -c: {err.decode(errors='replace')[:2000]}")

    async def load_ruleset(self, text: str) -> None:
        """Check, then load the ruleset in one transaction (sets keep their elements)."""
        await self.check_ruleset(text)
        await self._run(text)

    async def table_exists(self) -> bool:
        try:
            await self._run(f"list table {TABLE}", json_out=True)
        except ApplyError:
            return False
        return True

    async def apply(self, plan: Plan) -> None:
        """One transaction: the netlink fast path when it takes the plan, else libnftables.

        A batch the kernel refused was aborted whole (nothing applied), so the plan is
        tried once more through libnftables: that applies it if the refusal was the
        fast path's own, or fails with nft's message naming the problem. A batch whose
        outcome is unknown (acks lost) is not retried; its ApplyError goes up as is.
        """
        if plan.empty:
            return
        if self.fast is not None:
            try:
                if await asyncio.to_thread(self.fast.apply, plan):
                    return
            except BatchAborted as exc:
                log.warning("%s; retrying the plan through libnftables", exc)
                try:
                    await self._run(plan_script(plan))
                except ApplyError as again:
                    raise ApplyError(f"{again} (netlink fast path: {exc})") from None
                return
        await self._run(plan_script(plan))

    async def add_timed(self, name: str, elements: Iterable[str], seconds: int) -> None:
        elems = list(elements)
        if elems:
            await self._run(f"add element {TABLE} {name} {{ {_elements(elems, seconds)} }}\n")

    async def refresh_timed(self, name: str, elements: Iterable[str], seconds: int) -> None:
        """(Re)set elements with a fresh timeout: delete and add in one transaction, since
        re-adding alone does not refresh a timeout before Linux 6.12."""
        elems = list(elements)
        if elems:
            plain = _elements(elems)
            await self._run(f"add element {TABLE} {name} {{ {plain} }}\n"
                            f"delete element {TABLE} {name} {{ {plain} }}\n"
                            f"add element {TABLE} {name} {{ {_elements(elems, seconds)} }}\n")

    async def delete_elements(self, name: str, elements: Iterable[str]) -> None:
        elems = _elements(elements)
        if elems:
            await self._run(f"add element {TABLE} {name} {{ {elems} }}\n"
                            f"delete element {TABLE} {name} {{ {elems} }}\n")

    async def read_set(self, name: str) -> set[str]:
        out = await self._run(f"list set {TABLE} {name}", json_out=True)
        return _decode_set(out)

    async def read_sets(self, names: Iterable[str]) -> dict[str, set[str]]:
        """The kernel's content of each set (one set at a time; only on full reconcile)."""
        return {name: await self.read_set(name) for name in names}


def _decode_set(text: str) -> set[str]:
    data = json.loads(text)
    content: set[str] = set()
    for obj in data.get("nftables", []):
        if "set" in obj:
            for item in obj["set"].get("elem", []):
                elem = _parse_elem(item)
                if elem is not None:
                    content.add(_normal(elem))
    return content


def _normal(elem: str) -> str:
    if elem.endswith("/32") and "." in elem:
        return elem[:-3]
    if elem.endswith("/128"):
        return elem[:-4]
    return elem


def read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ApplyError(f"ruleset {path}: {exc.strerror}") from None
