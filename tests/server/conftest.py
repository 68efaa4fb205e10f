"""Fixtures of the server tests: a workspace with one key per scope, and an in-process client.

Makes ``server_helpers`` importable (the suite runs with ``--import-mode=importlib``). The tests need
FastAPI (the server's extra); without it they are reported as skipped, with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

pytest.importorskip("fastapi", reason="the HTTP server needs fastapi and uvicorn (the [server] extra)")

from server_helpers import Keys, app_client, make_keys  # noqa: E402

from journeylens.server import ServerConfig  # noqa: E402


@pytest.fixture
def ws_dir(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def keys(ws_dir: Path) -> Keys:
    return make_keys(ws_dir)


@pytest.fixture
def client(ws_dir: Path, keys: Keys):
    """A TestClient on a fresh workspace (the app's lifespan runs: the workspace is closed after)."""
    with app_client(ws_dir) as c:
        yield c


@pytest.fixture
def make_client(ws_dir: Path, keys: Keys):
    """make_client(config=ServerConfig(...), cors_origins=...) -> a started TestClient."""
    opened = []

    def make(config: ServerConfig | None = None, **options):
        c = app_client(ws_dir, config=config, **options)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
