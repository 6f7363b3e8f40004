"""A small synchronous client of the management API, for the ``debtgate`` CLI.

Talks HTTP over the root-only Unix socket (no token) or to a TCP listener with
a bearer token, using only the standard library so the CLI starts fast.
"""

from __future__ import annotations

import getpass
import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debtgate.errors import DebtgateError

DEFAULT_SOCKET = Path("/run/debtgate/api.sock")
AUTHOR_HEADER = "X-Debtgate-Author"


class DaemonUnreachable(DebtgateError):
    """Nothing answers at the management address."""


class ApiError(DebtgateError):
    """The daemon answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{message} (HTTP {status})")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def who() -> str:
    """The person behind the command (``sudo`` keeps the real user in SUDO_USER)."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


@dataclass(frozen=True)
class Client:
    socket: Path | None = DEFAULT_SOCKET
    url: str | None = None
    token: str | None = None
    timeout: float = 10.0

    @property
    def where(self) -> str:
        return self.url or f"unix:{self.socket}"

    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        if self.url is None:
            return _UnixConnection(str(self.socket), self.timeout), ""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DebtgateError(f"--url must be http://ADDRESS:PORT, not {self.url!r}")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        return cls(parts.hostname, parts.port, timeout=self.timeout), parts.path.rstrip("/")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; returns (status, decoded JSON or text)."""
        conn, prefix = self._connection()
        headers = {"Accept": "application/json", AUTHOR_HEADER: who()}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, prefix + path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnreachable(f"cannot reach the daemon at {self.where} ({exc.strerror}); "
                                    "is it running? (systemctl status debtgate)") from None
        except PermissionError:
            raise DaemonUnreachable(f"permission denied on {self.where}: the management "
                                    "socket is root only (use sudo)") from None
        except TimeoutError:
            raise DaemonUnreachable(f"the daemon at {self.where} did not answer "
                                    f"within {self.timeout:.0f} s") from None
        except OSError as exc:
            raise DaemonUnreachable(f"cannot talk to the daemon at {self.where}: {exc}") from None
        finally:
            conn.close()
        text = raw.decode("utf-8", "replace")
        try:
            data: Any = json.loads(text) if text else None
        except ValueError:
            data = text
        return resp.status, data

    def call(self, method: str, path: str, body: Any = None,
             ok: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        """Like :meth:`request` but raises :class:`ApiError` on an unexpected status."""
        status, data = self.request(method, path, body)
        if status in ok:
            return data
        if status == 401:
            raise ApiError(status, "the daemon refused the token (check --token-file)")
        message = data.get("error") if isinstance(data, dict) else None
        raise ApiError(status, str(message or data or "error"))
