"""Docs that run: the Python example of docs/scaling.md on local Spark, and the README's test command in CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"


@pytest.mark.spark
def test_scaling_example_runs_on_local_spark(tmp_path, spark_session, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    session = spark_session.newSession()
    database = "jl_docs_scaling"
    session.sql(f"CREATE DATABASE IF NOT EXISTS {database} LOCATION '{(tmp_path / database).as_uri()}'")
    session.catalog.setCurrentDatabase(database)
    # the example builds its own session with getOrCreate(); hand it this test's session
    from pyspark.sql import SparkSession

    class Builder:
        def master(self, *_):
            return self

        def config(self, *_):
            return self

        def getOrCreate(self):
            return session

    monkeypatch.setattr(SparkSession, "builder", Builder())
    try:
        exec(compile(code, str(DOC), "exec"), {"DATA": tmp_path, "MASTER": "local[1]"})
    finally:
        session.catalog.setCurrentDatabase("default")
        session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")
    out = capsys.readouterr().out
    # the five-phase funnel: five phases, the first one reached by every journey that has a phase
    assert re.search(r"awareness\s+\d+\s+1\.0", out), out
    assert all(p in out for p in ("awareness", "consideration", "purchase", "service", "loyalty"))


def test_ci_runs_the_readme_test_command():
    # CI must run exactly the test command the README gives a fresh machine (the second command block)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    command = blocks[1].strip()
    assert "pytest" in command, command
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert command in ci, f".ci/run does not run the README's test command {command!r}"
