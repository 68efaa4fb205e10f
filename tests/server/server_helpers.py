"""Helpers of the server tests: keys, touchpoints as literal data, a client, a real server process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from journeylens.keys import create_key
from journeylens.store import Workspace

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 in its TestClient; the tests use httpx 0.28 on purpose (FastAPI's docs do)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient


@dataclass(frozen=True)
class Keys:
    admin: str
    read: str
    ingest: str

    def header(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, scope)}"}


def make_keys(ws_dir: Path) -> Keys:
    with Workspace(ws_dir) as ws:
        return Keys(*(create_key(ws, scope, f"test {scope}").key for scope in ("admin", "read", "ingest")))


def app_client(ws_dir: Path, **options: Any) -> TestClient:
    from journeylens.server import create_app

    return TestClient(create_app(ws_dir, **options))


def touch(
    event_id: str | None, person: str | None = "p1", at: str = "2024-03-01T10:00:00Z", **fields: Any
) -> dict[str, Any]:
    """One touchpoint in the contract, with defaults for what a test does not care about."""
    out: dict[str, Any] = {
        "timestamp": at,
        "channel": fields.pop("channel", "website"),
        "touchpoint": fields.pop("touchpoint", "page_view"),
    }
    if event_id is not None:
        out["event_id"] = event_id
    if person is not None:
        out["person_id"] = person
    out.update(fields)
    return out


def rows(ws_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a query on a workspace that no server holds."""
    with Workspace(ws_dir) as ws:
        return ws.con.con.execute(sql, params or []).fetchall()


# -- a real server -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``journeylens serve`` in a subprocess on 127.0.0.1 (only loopback)."""

    def __init__(self, ws_dir: Path, *args: str) -> None:
        self.ws_dir = ws_dir
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "journeylens.cli_server",
            "serve",
            "-w",
            str(self.ws_dir),
            "--host",
            "127.0.0.1",
        ]
        cmd += ["--port", str(self.port), "--log-level", "warning", *self.args]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {err}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the server did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int:
        """SIGTERM: a graceful shutdown (queued work is finished); returns the exit status, 0 when it
        shut down cleanly (uvicorn re-raises the signal after its shutdown, so -SIGTERM is 0 too)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return 0 if self.proc.returncode == -signal.SIGTERM else self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        elif self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
