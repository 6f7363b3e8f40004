"""A throwaway PostgreSQL server for the lab, the tests and the benchmarks.

:class:`PgServer` runs ``initdb`` and ``pg_ctl`` from the local PostgreSQL
installation in a private directory, listening on a Unix socket in that
directory and on a loopback TCP port, with ``trust`` authentication (it is a
lab: never expose it). PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user (``runuser``).

``await start_lab_billing(workdir)`` starts one with the reference billing
schema (``examples/billing/schema.sql``) and a few sample subscribers, and
returns its DSN.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "billing" / "schema.sql"
SAMPLE = SCHEMA.with_name("sample.sql")
DATABASE = "billing"


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live (``pg_config --bindir``, else the newest Debian path)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True,
                       key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0):
        if Path(cand, "initdb").exists():
            return Path(cand)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=False).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One throwaway cluster: ``start()``, ``stop()``, ``dsn``, ``psql()``, ``cleanup()``."""

    def __init__(self, base: Path | None = None, port: int | None = None,
                 database: str = DATABASE) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.base = Path(base or tempfile.mkdtemp(prefix="debtgate-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        self.port = port or free_port()
        self.database = database
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def socket_dir(self) -> str:
        return str(self.base)

    @property
    def dsn(self) -> str:
        """TCP on loopback."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def socket_dsn(self) -> str:
        """The Unix socket (reachable from any network namespace of this host)."""
        return f"postgresql://{self.user}@/{self.database}?host={self.base}&port={self.port}"

    def _run(self, *args: str, check: bool = True, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, input=input,
                              timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed: {proc.stderr.strip()[-2000:]}")
        return proc

    def start(self) -> PgServer:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            os.chmod(self.base, 0o755)  # noqa: S103 - clients of other users reach the socket
            if self._run("test", "-x", str(self.base), check=False).returncode != 0:
                raise RuntimeError(
                    f"the postgres user cannot reach {self.base}: a parent directory is not "
                    "searchable by it (chmod o+x the parents, or put the server elsewhere)")
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", self.user, "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else
                      "--locale=C", "--no-sync")
            opts = (f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.base}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n"
                    "shared_buffers = 256MB\nmax_connections = 40\nlog_min_messages = warning\n"
                    "work_mem = 64MB\nmax_wal_size = 2GB\n")
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(opts)
            self._pg_ctl("start")
            self._run(str(self.bindir / "createdb"), "-h", self.socket_dir, "-p",
                      str(self.port), "-U", self.user, self.database)
        else:
            self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                  "-l", str(self.base / "server.log"), action, *extra)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def running(self) -> bool:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status",
                         check=False).returncode == 0

    def psql(self, sql: str, *args: str, database: str | None = None) -> str:
        """Run SQL through psql on the socket (stops on the first error); returns stdout."""
        return self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                         "-p", str(self.port), "-U", self.user, "-d",
                         database or self.database, *args, input=sql).stdout

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); returns its TCP DSN."""
        extra = ["-T", template] if template else []
        self._run(str(self.bindir / "createdb"), "-h", self.socket_dir, "-p", str(self.port),
                  "-U", self.user, *extra, name)
        return self.dsn_for(name)

    def load_schema(self, sample: bool = False) -> None:
        self.psql(SCHEMA.read_text(encoding="utf-8"))
        if sample:
            self.psql(SAMPLE.read_text(encoding="utf-8"))

    def cleanup(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    return any(x.lower() in ("c.utf8", "c.utf-8") for x in out.split())


async def start_lab_billing(workdir: Path, sample: bool = True) -> tuple[PgServer, str]:
    """Start a throwaway billing with the reference schema (and sample rows).

    Returns the server (``stop()``/``cleanup()`` it when done) and a DSN on its
    Unix socket, usable from any network namespace of this host.
    """
    def start() -> PgServer:
        server = PgServer(Path(workdir) / "billing-pg")
        try:
            server.start()
            server.load_schema(sample=sample)
        except BaseException:
            if server.running():  # no half-set-up server left behind; its files stay
                server.stop("immediate")
            raise
        return server

    server = await asyncio.to_thread(start)
    return server, server.socket_dsn
