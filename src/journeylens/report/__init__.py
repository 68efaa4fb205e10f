"""Figures, the journey map and the HTML report: rendered from analysis results only.

``write_report(ws, out, model=None, filters=Filters())`` writes the self-contained HTML report;
``journeylens.report.journeymap`` renders a journey map, ``journeylens.report.figures`` the Plotly figures,
``journeylens.report.export`` a map as PNG or PDF through headless Chromium. Plotly and Playwright are
imported only when a figure or an export is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from journeylens.analyses.base import Filters
    from journeylens.store import Workspace


def write_report(
    ws: Workspace, out: str | Path, *, model: str | None = None, filters: Filters | None = None
) -> Path:
    """Build the report for the workspace and write it to ``out``; see :mod:`journeylens.report.report`."""
    from journeylens.analyses.base import Filters
    from journeylens.report.report import write_report as _write

    return _write(ws, out, model=model, filters=filters or Filters())


def __getattr__(name: str) -> Any:
    if name in ("build_report", "render_report"):
        from journeylens.report import report

        return getattr(report, name)
    raise AttributeError(f"module 'journeylens.report' has no attribute {name!r}")


__all__ = ["build_report", "render_report", "write_report"]
