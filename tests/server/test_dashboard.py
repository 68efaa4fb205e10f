"""The dashboard at GET /: static files, and the page itself in headless Chromium against a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from server_helpers import ServerProcess, app_client, make_keys
from test_queries import XSS, seed_workspace

CHROMIUM = "/usr/bin/chromium"


def test_static_files_need_no_key(ws_dir: Path, keys) -> None:
    with app_client(ws_dir) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/static/plotly.min.js" in page.text and "Content-Security-Policy" in page.headers
        js = client.get("/static/plotly.min.js")
        assert (
            js.status_code == 200
            and "javascript" in js.headers["content-type"]
            and len(js.content) > 1_000_000
        )
        assert client.get("/static/dashboard.js").status_code == 200
        assert client.get("/static/dashboard.css").status_code == 200
        assert client.get("/static/../app.py").status_code == 404
        assert client.get("/static/secret.py").status_code == 404
        assert client.get("/v1/analyses").status_code == 401


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium at /usr/bin/chromium")
def test_the_dashboard_in_chromium(tmp_path: Path, browser) -> None:
    ws = tmp_path / "ws"
    seed_workspace(ws)
    keys = make_keys(ws)
    with ServerProcess(ws) as server:
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def on_dialog(d) -> None:
                dialogs.append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)
            page.goto(server.url + "/")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("#key", keys.read)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            assert page.evaluate("sessionStorage.getItem('journeylens.key')") == keys.read

            def funnel_data() -> str:
                return json.dumps(
                    page.evaluate("document.getElementById('fig-funnel').data.map(t => [t.x, t.y])")
                )

            before = funnel_data()
            assert "reached" not in before  # data, not labels only
            assert page.locator("#panel-funnel table.data tbody tr").count() > 0
            assert page.locator("#fig-attribution .main-svg").count() > 0

            page.select_option("select[name=persona]", "high_involvement")
            page.click("#filters button[type=submit]")
            page.wait_for_selector("body[data-ready='2']", timeout=60_000)
            assert funnel_data() != before
            assert "persona high_involvement" in page.inner_text("#filter-text")

            page.select_option("select[name=persona]", "")
            page.click("#filters button[type=submit]")
            page.wait_for_selector("body[data-ready='3']", timeout=60_000)
            page.select_option("#paths-level", "touchpoint")
            cells = page.locator("#panel-paths table.data td", has_text="alert(1)")
            cells.first.wait_for(timeout=30_000)
            assert XSS in [c.text_content() for c in cells.all()]
            shot = os.environ.get("JOURNEYLENS_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "dashboard.png"), full_page=True)
            assert dialogs == []
            assert errors == []
        finally:
            page.close()
