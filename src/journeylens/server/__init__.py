"""The HTTP API: ingest (contract and Segment-compatible), persons, GDPR erasure, API keys.

``create_app(workspace_path, *, cors_origins=(), config=None)`` builds the FastAPI app (imported on first
use: ``import journeylens.server`` does not import FastAPI); ``journeylens serve`` runs it with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServerConfig", "create_app"]

if TYPE_CHECKING:
    from journeylens.server.app import create_app
    from journeylens.server.service import ServerConfig


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from journeylens.server.app import create_app

        return create_app
    if name == "ServerConfig":
        from journeylens.server.service import ServerConfig

        return ServerConfig
    raise AttributeError(name)
