"""A throwaway PostgreSQL for tests: ``pg = start_pg(tmp)`` / pytest fixtures.

Other test packages use it too::

    from tests.pgserver import pg_server   # a session-scoped fixture
    # or: server = PgServer(); server.start(); ...; server.cleanup()

The server runs from the local PostgreSQL binaries (``initdb``/``pg_ctl``; as
the ``postgres`` user when the tests run as root), listens on a Unix socket in
its own directory and on a free loopback port, and trusts every local
connection. Tests are skipped when the binaries are missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from debtgate_lab.pglab import PgServer, pg_bindir, start_lab_billing

__all__ = ["PgServer", "billing_db", "pg_server", "reference_billing", "require_pg",
           "start_lab_billing"]


def require_pg() -> None:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One empty server for the test session (databases are the test's business)."""
    require_pg()
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@contextlib.contextmanager
def reference_billing() -> Iterator[PgServer]:
    """A fresh server with the reference billing schema and the sample rows."""
    require_pg()
    server = PgServer()
    server.start()
    try:
        server.load_schema(sample=True)
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def billing_db() -> Iterator[PgServer]:
    """A fresh reference billing for one test."""
    with reference_billing() as server:
        yield server
