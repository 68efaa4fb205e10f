"""Fixtures of the report tests: a small literal workspace (hand-worked numbers), Chromium when present.

People are literal data (STYLE.md, example 7): ``(touchpoint, when, channel, {more columns})``. They are
ingested through the real import and built with the five-phase model. The hand-worked figures are in
``test_journeymap.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from journeylens.store import Workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
XSS = "<script>alert(1)</script>"


def survey(scale: str, value: float, about: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"scale": scale, "satisfaction": float(value)}
    if about is not None:
        out["properties"] = json.dumps({"about": about})
    return out


# low_involvement: anna (buys), ben (drops in consideration), dan (only an ad); high_involvement: cara
PEOPLE: dict[str, list[tuple[Any, ...]]] = {
    "anna": [
        ("ad_view", "2024-01-01T10:00", "display", {"content_type": "ad"}),
        ("site_visit", "2024-01-02T10:00", "website"),
        ("product_view", "2024-01-03T10:00", "website", {"content_type": "product_sheet"}),
        (
            "purchase",
            "2024-01-04T10:00",
            "website",
            {"revenue": 50.0, "content_type": "ad", **survey("nps", 9)},
        ),
        ("delivery", "2024-01-06T10:00", "email", {"content_type": "delivery_update"}),
        ("survey_response", "2024-01-06T11:00", "email", survey("csat", 2, about="delivery")),
        ("newsletter_open", "2024-01-10T10:00", "email", {"content_type": "newsletter"}),
    ],
    "ben": [
        ("ad_click", "2024-01-01T12:00", "paid_search", {"content_type": "ad"}),
        ("site_visit", "2024-01-02T12:00", "website"),
    ],
    "dan": [
        ("ad_view", "2024-01-05T09:00", "display", {"content_type": "ad"}),
    ],
    "cara": [
        ("social_post_view", "2024-01-01T08:00", "social", {"content_type": "social_post"}),
        ("comparison_view", "2024-01-03T08:00", "website", {"content_type": "comparison"}),
        ("store_visit", "2024-01-08T08:00", "store"),
        ("survey_response", "2024-01-08T09:00", "email", survey("csat", 5, about="store_visit")),
        ("purchase", "2024-01-09T08:00", "store", {"revenue": 900.0}),
    ],
}
PERSONAS = {
    "anna": "low_involvement",
    "ben": "low_involvement",
    "dan": "low_involvement",
    "cara": "high_involvement",
}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def touchpoint_table(people: dict[str, list[tuple[Any, ...]]]) -> pa.Table:
    rows = []
    columns = ("content_type", "revenue", "satisfaction", "scale", "properties")
    for person, touches in people.items():
        for i, (name, at, channel, *more) in enumerate(touches):
            row: dict[str, Any] = dict.fromkeys(columns)
            row.update(
                event_id=f"{person}-{i:02d}",
                person_id=person,
                timestamp=when(at),
                channel=channel,
                touchpoint=name,
            )
            row.update(more[0] if more else {})
            rows.append(row)
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("person_id", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("channel", pa.string()),
            ("touchpoint", pa.string()),
            ("content_type", pa.string()),
            ("revenue", pa.float64()),
            ("satisfaction", pa.float64()),
            ("scale", pa.string()),
            ("properties", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def make_workspace(
    path: Path, people: dict[str, list[tuple[Any, ...]]], personas: dict[str, str]
) -> Workspace:
    ws = Workspace(path)
    ws.ingest(touchpoint_table(people))
    ws.ingest_persons(pa.table({"person_id": list(personas), "persona": list(personas.values())}))
    ws.build(model="five-phase")
    return ws


@pytest.fixture(scope="session")
def small_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The literal workspace above, built once."""
    ws = make_workspace(tmp_path_factory.mktemp("report") / "ws", PEOPLE, PERSONAS)
    yield ws
    ws.close()


@pytest.fixture(scope="session")
def xss_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The literal workspace with a touchpoint, a channel and a persona named like a script tag."""
    people = {k: list(v) for k, v in PEOPLE.items()}
    people["eve"] = [
        (XSS, "2024-01-02T10:00", XSS, {"content_type": "ad"}),  # an ad: awareness
        ("site_visit", "2024-01-03T10:00", "website", {"content_type": XSS}),  # consideration
        ("purchase", "2024-01-04T10:00", "website", {"revenue": 10.0}),
    ]
    ws = make_workspace(tmp_path_factory.mktemp("xss") / "ws", people, {**PERSONAS, "eve": XSS})
    yield ws
    ws.close()


@pytest.fixture(scope="session")
def fixture_data() -> SimpleNamespace:
    """The literal data above (test modules are imported by path, so they cannot import this conftest)."""
    return SimpleNamespace(
        people=PEOPLE, personas=PERSONAS, xss=XSS, make_workspace=make_workspace, chromium=CHROMIUM
    )


@pytest.fixture(scope="session")
def xss_report(xss_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The report of the workspace with script-tag names: its results, its HTML and the file."""
    from journeylens.report.report import build_report, render_report

    report = build_report(xss_ws)
    text = render_report(report)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(text, encoding="utf-8")
    return SimpleNamespace(report=report, html=text, path=path)
