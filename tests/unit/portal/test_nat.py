"""Reading the kernel's NAT record of an accepted connection (SO_ORIGINAL_DST)."""

from __future__ import annotations

import errno
import socket
import struct

from debtgate.portal.nat import SO_ORIGINAL_DST, original_destination, reached_by_dnat


class FakeSocket:
    def __init__(self, family: int, before: str | None) -> None:
        self.family = family
        self.before = before
        self.asked: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, name: int, size: int) -> bytes:
        self.asked.append((level, name, size))
        if self.before is None:
            raise OSError(errno.ENOENT, "no conntrack entry")
        if self.family == socket.AF_INET:
            return struct.pack("!HH4s8x", socket.AF_INET, 80,
                               socket.inet_pton(socket.AF_INET, self.before))
        return struct.pack("!HHI16sI", socket.AF_INET6, 80, 0,
                           socket.inet_pton(socket.AF_INET6, self.before), 0)


class FakeTransport:
    def __init__(self, sock: object, local: tuple[object, ...] | None) -> None:
        self.extra = {"socket": sock, "sockname": local}

    def get_extra_info(self, name: str) -> object:
        return self.extra.get(name)


def test_ipv4_record_is_read_at_sol_ip():
    sock = FakeSocket(socket.AF_INET, "142.250.74.3")
    assert original_destination(sock) == "142.250.74.3"
    assert sock.asked == [(socket.SOL_IP, SO_ORIGINAL_DST, 16)]


def test_ipv6_record_is_read_at_sol_ipv6():
    sock = FakeSocket(socket.AF_INET6, "2001:db8:ff::10")
    assert original_destination(sock) == "2001:db8:ff::10"
    assert sock.asked == [(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)]


def test_no_record_or_no_ip_socket_is_none():
    assert original_destination(FakeSocket(socket.AF_INET, None)) is None
    assert original_destination(FakeSocket(socket.AF_UNIX, "1.2.3.4")) is None
    assert original_destination(object()) is None


def test_dnat_means_another_host_was_dialled():
    assert reached_by_dnat(FakeTransport(FakeSocket(socket.AF_INET, "198.18.0.10"),
                                         ("10.255.255.1", 8080)))
    assert reached_by_dnat(FakeTransport(FakeSocket(socket.AF_INET6, "2001:db8:ff::10"),
                                         ("fd00:255::1", 8080, 0, 0)))


def test_the_portal_itself_or_no_record_is_not_dnat():
    # dialled the portal (a conntrack entry without NAT, or a port redirect on the
    # portal's own address): asked as before
    assert not reached_by_dnat(FakeTransport(FakeSocket(socket.AF_INET, "10.255.255.1"),
                                             ("10.255.255.1", 8080)))
    assert not reached_by_dnat(FakeTransport(FakeSocket(socket.AF_INET6, "fd00:255::1"),
                                             ("fd00:255::1", 8080, 0, 0)))
    assert not reached_by_dnat(FakeTransport(FakeSocket(socket.AF_INET, None),
                                             ("10.255.255.1", 8080)))
    assert not reached_by_dnat(FakeTransport(None, ("10.255.255.1", 8080)))
    assert not reached_by_dnat(None)


def test_real_socket_without_nat():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()):
            conn, _ = server.accept()
            with conn:
                before = original_destination(conn)
                assert before in (None, "127.0.0.1")
                assert not reached_by_dnat(FakeTransport(conn, conn.getsockname()))
