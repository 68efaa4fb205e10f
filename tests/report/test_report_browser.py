"""The report and the journey map in headless Chromium: no console errors, no network, every section drawn,
the numbers on the page equal the results, script-tag names stay text, PNG and PDF export.

Marked ``browser``; skipped (with the reason) only when /usr/bin/chromium is absent. The report is the one of
the workspace with script-tag names (conftest.py ``xss_report``), built once."""

from __future__ import annotations

import math
from typing import Any

import pytest

from journeylens.analyses.journeymap import JourneyMapSpec, run
from journeylens.report.export import export_map

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def opened(browser, xss_report) -> Any:
    """The report opened in a page, with everything the page logged, requested and popped up."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    seen: dict[str, list[Any]] = {"console": [], "errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))

    def dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(xss_report.path.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
    yield page, seen
    page.close()


def test_opens_without_console_errors_or_network(opened, xss_report):
    page, seen = opened
    assert seen["errors"] == []
    assert [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert seen["requests"] == [xss_report.path.as_uri()]


def test_every_section_is_present_and_drawn(opened, xss_report):
    page, _ = opened
    assert page.locator('[data-section="journey-map"] .jm').count() >= 1
    for s in xss_report.report.sections:
        box = page.locator(f'section[data-section="{s.id}"]')
        assert box.count() == 1, s.id
        assert box.locator("p.how").inner_text().strip()
        if s.error is None:
            assert box.locator(".js-plotly-plot .main-svg").count() >= 1, s.id
        else:
            assert "Not available" in box.inner_text()


def dom_tables(page: Any) -> dict[str, list[dict[str, str]]]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('table.data')].map(t => [t.dataset.table,
            [...t.querySelectorAll('tbody tr')].map(tr => Object.fromEntries([...tr.querySelectorAll('td')]
                .map(td => [td.dataset.col, td.dataset.value])))]))"""
    )


def same(shown: str, value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return shown == ""
    if isinstance(value, bool):
        return shown == ("true" if value else "false")
    if isinstance(value, int | float):
        return float(shown) == float(value)
    return shown == str(value)


def test_numbers_on_the_page_equal_the_results(opened, xss_report):
    page, _ = opened
    tables = dom_tables(page)
    checked = 0
    for s in xss_report.report.sections:
        if s.error is not None:
            continue
        rows = s.table.to_pylist() if hasattr(s.table, "to_pylist") else s.table.to_dict("records")
        shown = tables[s.id]
        assert len(shown) == min(len(rows), 40), s.id
        for got, want in zip(shown, rows, strict=False):
            for c in s.columns:
                assert same(got[c.name], want.get(c.name)), (s.id, c.name, got[c.name], want.get(c.name))
                checked += 1
    assert checked > 100


def test_journey_map_numbers_equal_the_result(opened, xss_report):
    page, _ = opened
    overview = xss_report.report.overview
    shown = page.evaluate(
        """() => [...document.querySelectorAll('#map-all [data-lane="kpis"]')].map(c => [c.dataset.phase,
            Object.fromEntries([...c.querySelectorAll('[data-kpi]')].map(k => [k.dataset.kpi, k.dataset.value]))])"""
    )
    rows = overview.table.to_pylist()
    assert [p for p, _ in shown] == [r["phase"] for r in rows]
    for (_, kpis), r in zip(shown, rows, strict=True):
        for key, value in kpis.items():
            assert same(value, r[key]), (r["phase"], key)
    curve = page.evaluate(
        "() => [...document.querySelectorAll('#map-all g[data-series]')].map(g => [g.dataset.phase, g.dataset.value])"
    )
    assert [(p, v) for p, v in curve] == [
        (r["phase"], "" if r["emotion"] is None else repr(r["emotion"])) for r in rows
    ]
    head = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#map-all .jm-kpi')].map(k => [k.dataset.kpi, k.dataset.value]))"
    )
    for metric, value in head.items():
        assert same(value, overview.kpi(metric)), metric


def test_map_tabs_switch_panels(opened, xss_report):
    page, _ = opened
    labels = [m.label for m in xss_report.report.maps]
    assert "low_involvement vs high_involvement" in labels
    page.get_by_role("tab", name="low_involvement vs high_involvement").click()
    assert page.locator("#map-compare").is_visible()
    assert not page.locator("#map-all").is_visible()
    cmp = next(m.comparison for m in xss_report.report.maps if m.comparison is not None)
    with_answers = sum(v is not None for v in cmp.b.table["emotion"].to_pylist())
    assert page.locator('#map-compare g[data-series="high_involvement"]').count() == with_answers
    page.get_by_role("tab", name="All personas").click()
    assert page.locator("#map-all").is_visible()


def test_script_names_show_as_text_and_never_run(opened, fixture_data, xss_report):
    page, seen = opened
    xss = fixture_data.xss
    tab = [m for m in xss_report.report.maps if m.label == xss]
    assert tab, "the persona named like a script tag has a map of its own"
    page.get_by_role("tab", name=xss).click()
    panel = page.locator(f"#{tab[0].id}")
    assert panel.is_visible()
    entries = panel.locator('[data-lane="touchpoints"] li')
    assert xss in entries.first.inner_text()
    assert entries.first.is_visible()
    assert xss in panel.locator(".jm-title").inner_text()
    # in a Plotly figure too: the channel is a node of the process map, drawn as text
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#fig-process text')].map(t => t.textContent)"
    )
    assert any(xss in x for x in labels)
    assert (
        page.evaluate(
            "() => document.querySelectorAll('script:not([type]), script[type=\"text/javascript\"]').length"
        )
        == 2
    )
    assert seen["dialogs"] == []
    page.get_by_role("tab", name="All personas").click()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_export(small_ws, tmp_path, suffix, magic, browser):
    result = run(small_ws, JourneyMapSpec(persona="low_involvement", min_n=1))
    out = export_map(result, tmp_path / f"map{suffix}", scale=1, browser=browser)
    assert out.read_bytes()[:4] == magic
    assert out.stat().st_size > 10_000


def test_cli_map_png_in_a_fresh_process(browser, tmp_path, fixture_data):
    """``journeylens map`` end to end: its own Chromium, in a process of its own (this one drives the test's)."""
    import subprocess
    import sys

    ws = tmp_path / "ws"
    fixture_data.make_workspace(ws, fixture_data.people, fixture_data.personas).close()
    out = tmp_path / "map.png"
    code = (
        "import sys, typer; from journeylens.cli_report import register; app = typer.Typer(); register(app); "
        "app(sys.argv[1:])"
    )
    args = [
        "map",
        "-w",
        str(ws),
        "--persona",
        "low_involvement",
        "--compare",
        "high_involvement",
        "--out",
        str(out),
    ]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
