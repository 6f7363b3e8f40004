"""PgServer (the lab's and the tests' throwaway PostgreSQL) in a directory the postgres
user cannot reach: a plain error naming the directory, not initdb's "Permission denied";
once the parents are searchable the same server starts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from debtgate_lab.pglab import PgServer
from tests.pgserver import require_pg

pytestmark = pytest.mark.postgres


def test_a_private_parent_is_named_then_works_once_searchable() -> None:
    require_pg()
    if os.geteuid() != 0:
        pytest.skip("only as root does the server run as another user (postgres)")
    private = Path(tempfile.mkdtemp(prefix="debtgate-private-"))  # 0700, like the lab's
    server = PgServer(private / "billing-pg")
    try:
        with pytest.raises(RuntimeError, match=f"postgres user cannot reach {private}/"):
            server.start()
        assert not (server.data / "PG_VERSION").exists()
        private.chmod(0o755)
        server.start()
        assert server.psql("SELECT 40 + 2", "-A", "-t").strip() == "42"
    finally:
        server.cleanup()
        shutil.rmtree(private, ignore_errors=True)
