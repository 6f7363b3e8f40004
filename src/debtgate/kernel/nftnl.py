"""The netlink fast path: a plan on host sets as one nfnetlink batch.

A plan whose every change is on a plain hash set of hosts (``*_v4_host``,
``*_v6_host``) is sent as NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWSETELEM and
NFT_MSG_DELSETELEM messages of table ``inet debtgate``, NFNL_MSG_BATCH_END: one
nftables transaction, all or nothing, as ``plan_script`` through libnftables would
make it, without nft's parser and evaluator. As there, a delete is preceded by an
add of the same elements, so deleting an element already gone cannot fail the batch,
and adds carry no NLM_F_EXCL. Only the batch's last message asks for an ack (the
kernel reports an error for any message anyway, and a failed commit against the
batch's first): the acks of a large batch cost a system call each, and each call
hands the interpreter lock to whatever else runs. Any other plan, or an element
that does not parse, is declined (:meth:`NftnlBackend.apply` returns False) and goes
through libnftables.

Why not pyroute2 (pyroute2.netlink.nfnetlink.nftsocket, 0.9.7): its
``nft_set_elem_list_msg`` encodes attributes in pure Python at ~50 us per element
(measured: 5 s for 100,000 hosts, 12x ``nft -f``), and ``NFTSocket.commit()``
sends a batch without reading the acks. So the element list is packed with
``struct``: a fixed 12-byte template per element (NFTA_LIST_ELEM >
NFTA_SET_ELEM_KEY > NFTA_DATA_VALUE) plus the 4 or 16 address bytes, ~0.2 us per
element (20 ms for 100,000), on a plain ``socket.AF_NETLINK`` socket.

Kernel behaviour this relies on: one sendmsg is one batch (nfnetlink parses a
batch within one skb; a batch cannot span send calls), so the send buffer is
raised to the batch size with SO_SNDBUFFORCE (root) like nft does; an nlattr
length is 16 bits, so elements are split over several messages of the batch; the
batch is processed inside sendmsg, so every ack is queued when it returns and is
read without waiting, as nft does. Any error ack means the kernel aborted the
whole transaction (:class:`BatchAborted`); lost or missing acks leave the outcome
unknown (plain :class:`ApplyError`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from functools import partial

from debtgate.core.reconcile import Plan
from debtgate.errors import ApplyError

log = logging.getLogger(__name__)

TABLE = b"debtgate\0"
HOST_SET = re.compile(r"[a-z]+_v([46])_host")
"""Plain hash sets of hosts (nft-rules/debtgate.nft); the digit is the family."""

# Kernel ABI (linux/netlink.h, linux/netfilter/nfnetlink.h, nf_tables.h); the test checks
# them against pyroute2's, whose import alone costs ~150 ms.
NETLINK_NETFILTER, SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 12, 270, 10, 11
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_CAPPED, NLM_F_ACK_TLVS = 1, 4, 0x400, 0x100, 0x200
NLMSG_ERROR, NLMSG_MIN_TYPE, NFNL_SUBSYS_NFTABLES, NFPROTO_INET = 2, 16, 10, 1
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM, NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 12, 14, 15, 16
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = NLMSG_MIN_TYPE, NLMSG_MIN_TYPE + 1
NESTED = 0x8000
MAX_ATTR = 0xFFFF
"""An nlattr length is 16 bits: the element list of one message must fit."""

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NLA = struct.Struct("=HH")  # nlattr: len, type
_ELEM = {  # family -> (address family, template of one element before its address)
    "4": (socket.AF_INET, struct.pack("=6H", 16, 1 | NESTED, 12, 1 | NESTED, 8, 1)),
    "6": (socket.AF_INET6, struct.pack("=6H", 28, 1 | NESTED, 24, 1 | NESTED, 20, 1)),
}


class BatchAborted(ApplyError):
    """The kernel refused the batch (or never got it): nothing of it was applied."""


def _attr(kind: int, value: bytes) -> bytes:
    pad = b"\0" * (-len(value) % 4)
    return _NLA.pack(4 + len(value), kind) + value + pad


def _msg(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body


def _nfgen(family: int, res_id: int = 0) -> bytes:
    return struct.pack("!BBH", family, 0, res_id)


def _element_lists(fam: str, texts: Sequence[str]) -> Iterator[bytes]:
    """NFTA_SET_ELEM_LIST_ELEMENTS payloads; OSError/ValueError if a text does not parse."""
    af, head = _ELEM[fam]
    per = (MAX_ATTR - 4) // (len(head) + (4 if fam == "4" else 16))
    pton = partial(socket.inet_pton, af)
    for i in range(0, len(texts), per):
        yield head + head.join(map(pton, texts[i:i + per]))


class NftnlBackend:
    """One NETLINK_NETFILTER socket of this network namespace; one lock around it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self._sndbuf = self._rcvbuf = 0
        self._seq = int.from_bytes(os.urandom(3), "big")
        self.applied = 0
        """Batches committed (for tests and stats)."""
        self.last_messages = 0
        """Set element messages in the last batch sent."""
        try:
            self._sock.bind((0, 0))
            for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):  # small acks, with the kernel's text
                self._sock.setsockopt(SOL_NETLINK, opt, 1)
            self._grow(1 << 20, 1 << 20)
            self.generation()  # the kernel answers (nf_tables present, CAP_NET_ADMIN)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def _grow(self, send: int, recv: int) -> None:
        """Buffers of at least these sizes (FORCE as root, else capped by the sysctls)."""
        if send <= self._sndbuf and recv <= self._rcvbuf:
            return  # no system call: each one lets another thread take the interpreter
        for want, have, force, plain in ((send, self._sndbuf, SO_SNDBUFFORCE, socket.SO_SNDBUF),
                                         (recv, self._rcvbuf, SO_RCVBUFFORCE, socket.SO_RCVBUF)):
            if want > have:
                try:
                    self._sock.setsockopt(socket.SOL_SOCKET, force, want)
                except PermissionError:
                    self._sock.setsockopt(socket.SOL_SOCKET, plain, want)
        # The kernel doubles the value asked for (bookkeeping overhead).
        self._sndbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2
        self._rcvbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2

    def _next_seq(self, count: int) -> int:
        first = self._seq
        self._seq = (self._seq + count) % (1 << 31)
        return first

    def generation(self) -> int:
        """The ruleset generation id (NFT_MSG_GETGEN); raises OSError if refused."""
        with self._lock:
            self._drain()
            seq = self._next_seq(1)
            kind = NFNL_SUBSYS_NFTABLES << 8
            self._sock.send(_msg(kind | NFT_MSG_GETGEN, NLM_F_REQUEST, seq,
                                 _nfgen(socket.AF_UNSPEC)))
            poll = select.poll()
            poll.register(self._sock, select.POLLIN)
            while poll.poll(5000):
                data = self._sock.recv(1 << 16)
                _, mtype, _, mseq, _ = _HDR.unpack_from(data)
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", data, _HDR.size)[0]
                    raise OSError(err, f"NFT_MSG_GETGEN: {os.strerror(err)}")
                if mtype == kind | NFT_MSG_NEWGEN:
                    _, _, gen = struct.unpack_from("=HHI", data, _HDR.size + 4)  # NFTA_GEN_ID
                    return socket.ntohl(gen)
            raise OSError(errno.ETIMEDOUT, "NFT_MSG_GETGEN: no answer")

    def apply(self, plan: Plan) -> bool:
        """Commit the plan as one batch; False (nothing sent) if it is not for this path."""
        fams: dict[str, str] = {}
        for delta in plan.changes:
            found = HOST_SET.fullmatch(delta.name)
            if found is None:
                return False
            fams[delta.name] = found[1]
        ops = [(kind, d.name, d.delete) for d in plan.changes if d.delete
               for kind in (NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM)]
        ops += [(NFT_MSG_NEWSETELEM, d.name, d.add) for d in plan.changes if d.add]
        try:
            lists = [(kind, name, len(texts), list(_element_lists(fams[name], texts)))
                     for kind, name, texts in ops]
        except (OSError, ValueError):
            return False  # libnftables names the bad element
        if not lists:
            return True
        with self._lock:
            self._send(lists)
        return True

    def _send(self, lists: list[tuple[int, str, int, list[bytes]]]) -> None:
        count = sum(len(chunks) for *_, chunks in lists)
        first = self._next_seq(count + 2)
        parts = [_msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first,
                      _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))]
        what: dict[int, str] = {first: "batch"}
        seq, last = first, first + count
        for kind, name, total, chunks in lists:
            flags = NLM_F_REQUEST | (NLM_F_CREATE if kind == NFT_MSG_NEWSETELEM else 0)
            head = _nfgen(NFPROTO_INET) + _attr(1, TABLE) + _attr(2, name.encode() + b"\0")
            verb = "add" if kind == NFT_MSG_NEWSETELEM else "delete"
            for chunk in chunks:
                seq += 1
                what[seq] = f"{verb} of {total} elements in set inet debtgate {name}"
                body = head + _NLA.pack(4 + len(chunk), 3 | NESTED) + chunk
                parts.append(_msg(NFNL_SUBSYS_NFTABLES << 8 | kind,
                                  flags | (NLM_F_ACK if seq == last else 0), seq, body))
        parts.append(_msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1,
                          _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES)))
        batch = b"".join(parts)
        self._grow(len(batch) + 4096, (count + 16) * 2048)
        self._drain()
        self.last_messages = count
        try:
            self._sock.send(batch)
        except OSError as exc:
            raise BatchAborted(f"nftnl: sending a batch of {len(batch)} bytes: "
                               f"{exc.strerror} (errno {exc.errno})") from None
        self._collect(what, {last})
        self.applied += 1
        log.debug("netlink batch committed: %s messages, %s bytes", count, len(batch))

    def _collect(self, what: dict[int, str], pending: set[int]) -> None:
        errors: list[tuple[int, int, str]] = []
        # The last message's ack is queued after every other report of the batch.
        while pending:
            try:
                data = self._sock.recv(1 << 17, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                raise ApplyError(f"nftnl: acks lost ({exc.strerror}); the outcome of the "
                                 "batch is unknown") from None
            for seq, err, text in _acks(data):
                if seq in what:
                    pending.discard(seq)
                    if err:
                        errors.append((seq, err, text))
        if errors:
            seq, err, text = min(errors)
            more = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
            detail = f": {text}" if text else ""
            raise BatchAborted(f"nftnl: {what[seq]}: {os.strerror(err)} (errno {err}){detail}"
                               f"{more}; the batch was aborted")
        if pending:
            raise ApplyError("nftnl: the batch's last message was not acknowledged; the "
                             "outcome of the batch is unknown")

    def _drain(self) -> None:
        """Drop anything left on the socket (acks of an earlier, interrupted call)."""
        while True:
            try:
                self._sock.recv(1 << 17, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # reported once (acks were lost); go on
                    raise


def _acks(data: bytes) -> Iterator[tuple[int, int, str]]:
    """(seq, errno, extended ack text) of each NLMSG_ERROR in a datagram."""
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, flags, seq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            return
        if kind == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, off + _HDR.size)[0]
            text = ""
            if flags & NLM_F_ACK_TLVS:
                orig = _HDR.size if flags & NLM_F_CAPPED else \
                    _HDR.unpack_from(data, off + _HDR.size + 4)[0]
                pos, end = off + _HDR.size + 4 + orig, off + length
                while pos + 4 <= end:
                    alen, atype = _NLA.unpack_from(data, pos)
                    if alen < 4:
                        break
                    if atype == 1:  # NLMSGERR_ATTR_MSG
                        text = data[pos + 4:pos + alen].rstrip(b"\0").decode(errors="replace")
                    pos += (alen + 3) & ~3
            yield seq, err, text
        off += (length + 3) & ~3
