"""Benchmark of the HTML report (not a test: no timed asserts).

    python benchmarks/bench_report.py --persons 20000
    python benchmarks/bench_report.py --workspace /tmp/demo-ws-r      # an existing built workspace

Generates a demo workspace of ``--persons`` persons (write_demo, import, build with the five-phase model) unless
``--workspace`` names one, then measures, best of ``--repeat``:

- ``build``: running the journey maps and every analysis (``build_report``), with the seconds of each section;
- ``render``: turning the results into the HTML document (``render_report``), and the file's size;
- ``open``: headless Chromium (/usr/bin/chromium) from navigation to every Plotly figure drawn, and to the first
  paint (the journey map shows before Plotly's JavaScript runs).

Targets: the file under 10 MB, open under 3 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MB = 10.0
TARGET_OPEN_S = 3.0


def make_workspace(path: Path, persons: int, seed: int) -> None:
    from journeylens.demo import write_demo
    from journeylens.ingest import ingest
    from journeylens.journeys import build
    from journeylens.store import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        files = write_demo(Path(tmp) / "demo.parquet", persons, seed=seed)
        ws = Workspace(path)
        try:
            ingest(ws, files.touchpoints)
            ingest(ws, files.persons, kind="persons")
            build(ws, model="five-phase")
        finally:
            ws.close()


def open_seconds(path: Path) -> tuple[float, float, int, int]:
    """(seconds to every figure drawn, seconds to the first paint, console errors, requests other than the file)."""
    from playwright.sync_api import sync_playwright

    from journeylens.report.export import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append(r.url))
            expected = path.read_text(encoding="utf-8").count('type="application/json" data-figure=')
            started = time.perf_counter()
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}"
            )
            seconds = time.perf_counter() - started
            paint = page.evaluate(
                "() => performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)[0] || 0"
            )
        finally:
            browser.close()
    return seconds, paint / 1000, len(errors), len([r for r in requests if r != path.as_uri()])


def run(workspace: Path, repeat: int, memory_limit: str | None = None) -> dict[str, Any]:
    from journeylens.report.report import build_report, render_report
    from journeylens.store import Workspace

    best: dict[str, Any] = {}
    out = workspace.resolve().parent / "bench-report.html"
    for _ in range(repeat):
        ws = Workspace(workspace, read_only=True, memory_limit=memory_limit)
        try:
            started = time.perf_counter()
            report = build_report(ws)
            built = time.perf_counter() - started
        finally:
            ws.close()
        started = time.perf_counter()
        text = render_report(report)
        rendered = time.perf_counter() - started
        out.write_text(text, encoding="utf-8")
        opened, painted, errors, requests = open_seconds(out)
        if not best or built + rendered < best["build_s"] + best["render_s"]:
            best = {
                "build_s": round(built, 2),
                "render_s": round(rendered, 3),
                "sections_s": {s.id: round(s.seconds, 2) for s in report.sections},
                "maps": len(report.maps),
                "journeys": int(report.overview.kpi("journeys")) if report.overview else 0,
            }
        best["open_s"] = round(min(best.get("open_s", opened), opened), 2)
        best["first_paint_s"] = round(min(best.get("first_paint_s", painted), painted), 2)
        best["size_mb"] = round(out.stat().st_size / 1e6, 2)
        best["console_errors"] = errors
        best["network_requests"] = requests
    best["file"] = str(out)
    best["within_targets"] = best["size_mb"] < TARGET_MB and best["open_s"] < TARGET_OPEN_S
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, help="an existing built workspace (no generation)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-limit", help="DuckDB memory_limit while the report is built, e.g. 8GB")
    args = parser.parse_args()
    if args.workspace is not None:
        result = run(args.workspace, args.repeat, args.memory_limit)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-report-ws-") as tmp:
            path = Path(tmp) / "ws"
            started = time.perf_counter()
            make_workspace(path, args.persons, args.seed)
            print(f"generated and built {args.persons:,} persons in {time.perf_counter() - started:.1f} s")
            result = run(path, args.repeat, args.memory_limit)
            result["file"] = "(removed with the temporary workspace)"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
