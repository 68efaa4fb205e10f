"""A journey map as PNG or PDF, through headless Chromium (Debian's ``chromium``, driven by Playwright).

The page is the self-contained document of :func:`journeylens.report.journeymap.page`; every network
request is refused, so the picture depends on nothing but the map. ``JOURNEYLENS_CHROMIUM`` names another
Chromium binary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeylens.errors import JourneyLensError

if TYPE_CHECKING:
    from journeylens.analyses.journeymap import JourneyMapComparison, JourneyMapResult

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
FORMATS = (".png", ".pdf", ".html")


class ExportError(JourneyLensError):
    """The map cannot be exported (no Chromium, an unknown file type)."""

    code = "export_failed"
    exit_code = 2


def chromium_path() -> str:
    """The Chromium binary to use; ``ExportError`` with the install command when there is none."""
    path = os.environ.get("JOURNEYLENS_CHROMIUM") or CHROMIUM
    if not Path(path).exists():
        raise ExportError(
            f"headless Chromium is missing ({path}); install it with: apt-get install -y chromium",
            code="chromium_missing",
        )
    return path


def map_document(item: JourneyMapResult | JourneyMapComparison) -> tuple[str, int]:
    """The map's standalone HTML document and its width in CSS pixels."""
    from journeylens.analyses.journeymap import JourneyMapComparison
    from journeylens.report.journeymap import map_width, page, render, render_comparison

    if isinstance(item, JourneyMapComparison):
        body, n, title = (
            render_comparison(item),
            item.a.table.num_rows,
            f"{item.labels[0]} vs {item.labels[1]}",
        )
    else:
        body, n, title = render(item), item.table.num_rows, item.spec.title
    return page(body, f"journey map: {title}"), map_width(n)


def export_map(
    item: JourneyMapResult | JourneyMapComparison, out: str | Path, *, scale: float = 2.0, browser: Any = None
) -> Path:
    """Write the journey map (or a comparison) to ``out``: ``.png``, ``.pdf`` or ``.html``.

    ``browser``: a Playwright ``Browser`` to reuse (several exports, or a test's browser); by default one is
    launched for this export and closed after it."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(
            f"{out}: unknown file type {suffix or '(none)'}; expected one of {', '.join(FORMATS)}",
            code="unknown_format",
        )
    document, width = map_document(item)
    if suffix != ".html" and browser is None:
        chromium_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        out.write_text(document, encoding="utf-8")
        return out
    if browser is not None:
        _render(browser, document, out, width=width, scale=scale)
        return out
    render_file(document, out, width=width, scale=scale)
    return out


def render_file(document: str, out: Path, *, width: int, scale: float = 2.0) -> None:
    """Render an HTML document to a PNG (full page) or a PDF (one page, the size of the content)."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ExportError(
            "the playwright package is missing; install it with: pip install playwright",
            code="playwright_missing",
        ) from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            _render(browser, document, out, width=width, scale=scale)
        finally:
            browser.close()


def _render(browser: Any, document: str, out: Path, *, width: int, scale: float) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=scale)
    try:
        page.route("**/*", _refuse)
        page.set_content(document, wait_until="load")
        if out.suffix.lower() == ".png":
            page.screenshot(path=str(out), full_page=True)
        else:
            size = page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            page.emulate_media(media="screen")
            page.pdf(path=str(out), width=f"{size[0]}px", height=f"{size[1] + 2}px", print_background=True,
                     margin={"top": "0", "right": "0", "bottom": "0", "left": "0"})  # fmt: skip
    finally:
        page.close()


def _refuse(route: Any) -> None:
    route.abort()
