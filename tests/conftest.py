"""Shared fixtures: a fresh DuckDB workspace per test, and a file writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylens.store import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def write(tmp_path: Path):
    """write("name.csv", text_or_bytes) -> path of a file in the test's temp dir."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return _write
