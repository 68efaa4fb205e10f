"""One palette and one type scale for the figures, the journey map and the report.

No web fonts: the font stack names fonts that are installed on the reader's machine, ending with the
generic family, so the report opens without any network access.
"""

from __future__ import annotations

import html
import math
from typing import Any

FONT = 'Inter, "Segoe UI", "Helvetica Neue", "Liberation Sans", Arial, "DejaVu Sans", system-ui, sans-serif'
MONO = '"JetBrains Mono", "SFMono-Regular", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace'

INK = "#1b2333"
MUTED = "#5f6b7d"
FAINT = "#97a1b2"
LINE = "#e3e7ee"
PAPER = "#ffffff"
CANVAS = "#f5f7fa"
ACCENT = "#3b5bdb"
GOOD = "#2b8a3e"
WARN = "#e67700"
BAD = "#c92a2a"

#: categorical series (models, personas, channels): distinguishable, also in grey print
SERIES = ["#3b5bdb", "#f08c00", "#0c8599", "#c2255c", "#5f3dc4", "#2b8a3e", "#e8590c", "#1c7ed6", "#868e96"]
#: the two sides of a comparison
PAIR = ("#3b5bdb", "#e8590c")

#: phase colours: a cool ramp from deep indigo to green; phases take evenly spaced stops
_PHASE_STOPS = ["#364fc7", "#1c7ed6", "#1098ad", "#0ca678", "#37b24d"]

#: a sequential scale for heatmaps (white to indigo)
SEQUENTIAL = [[0.0, "#f4f6fb"], [0.25, "#c5d0f5"], [0.5, "#8ea2ec"], [0.75, "#5472de"], [1.0, "#2b3fb0"]]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    ra, rb = _rgb(a), _rgb(b)
    return _hex(tuple(x + (y - x) * t for x, y in zip(ra, rb, strict=True)))  # type: ignore[arg-type]


def ramp(stops: list[str], t: float) -> str:
    """A colour on a piecewise-linear ramp through ``stops`` (t in 0..1)."""
    t = min(1.0, max(0.0, t))
    if len(stops) == 1:
        return stops[0]
    x = t * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    return mix(stops[i], stops[i + 1], x - i)


def phase_colours(n: int) -> list[str]:
    """``n`` phase colours, evenly spaced on the phase ramp."""
    if n <= 1:
        return [_PHASE_STOPS[0]] * n
    return [ramp(_PHASE_STOPS, i / (n - 1)) for i in range(n)]


def tint(colour: str, amount: float = 0.88) -> str:
    """``colour`` mixed with white (a background tint)."""
    return mix(colour, "#ffffff", amount)


def emotion_colour(value: float | None) -> str:
    """Red (0) through amber (0.5) to green (1); grey without a value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return FAINT
    return ramp([BAD, "#f08c00", "#f59f00", "#74b816", GOOD], value)


# -- text -------------------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_int(value: Any) -> str:
    return "–" if is_missing(value) else f"{int(round(float(value))):,}"


def fmt_pct(value: Any, digits: int = 0) -> str:
    return "–" if is_missing(value) else f"{100 * float(value):.{digits}f}%"


def fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if is_missing(value) else f"{float(value):,.{digits}f}"


def fmt_days(value: Any) -> str:
    if is_missing(value):
        return "–"
    v = float(value)
    if v < 1:
        hours = v * 24
        return f"{hours:.0f} h" if hours >= 1 else "< 1 h"
    return f"{v:.1f} d"


def fmt_money(value: Any) -> str:
    if is_missing(value):
        return "–"
    v = float(value)
    if abs(v) >= 1e6:
        return f"{v / 1e6:,.1f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:,.0f}k"
    return f"{v:,.0f}"


def raw(value: Any) -> str:
    """A value for a ``data-value`` attribute: the number in full, empty when missing."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return esc(value)
