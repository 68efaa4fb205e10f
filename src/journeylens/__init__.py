"""journeylens: customer-journey analytics on DuckDB or Spark, through Ibis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Workspace", "__version__"]

if TYPE_CHECKING:
    from journeylens.store import Workspace


def __getattr__(name: str) -> Any:
    # keep `import journeylens` fast: the engine is imported on first use
    if name == "Workspace":
        from journeylens.store import Workspace

        return Workspace
    raise AttributeError(name)
