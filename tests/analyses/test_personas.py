"""Behavioural personas: features, a deterministic clustering, profiles, and agreement with declared personas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylens.analyses.base import parse_spec
from journeylens.analyses.cli_insights import register
from journeylens.analyses.personas import PersonasSpec, adjusted_rand, kmeans, purity, run, silhouette
from journeylens.errors import SpecError
from journeylens.store import Workspace


def load(con, tables: dict[str, pa.Table], folder: Path, only: tuple[str, ...] | None = None) -> Workspace:
    """A workspace on ``con`` holding built tables (those named in ``only``, default all).

    Spark reads them from Parquet files in ``folder`` as temporary views: ibis 12's PySpark backend turns a
    nullable int64 column into all NULLs when it loads an Arrow table or a memtable."""
    for name in only or tuple(tables):
        if con.name == "pyspark":
            pq.write_table(tables[name], folder / f"{name}.parquet")
            con.read_parquet(str(folder / f"{name}.parquet"), table_name=name)
        else:
            con.create_table(name, tables[name], overwrite=True)
    return Workspace.from_backend(con, create=False)


def iso(t: datetime) -> str:
    return t.isoformat()


def people_and_persons():
    """11 store buyers (4 store visits, then a purchase 5 to 7.5 days after the first) and 11 web browsers
    (2 site visits, no purchase), declared as such but for one browser without a persona. Within a group
    only the time to purchase varies, so two clusters describe the data best."""
    start = datetime(2024, 1, 1, 10, tzinfo=UTC)
    people, persons = {}, {}
    for i in range(11):
        t = start + timedelta(days=i)
        visits = [("store_visit", iso(t + timedelta(days=d)), "store") for d in range(4)]
        bought = t + timedelta(days=5, hours=6 * i)
        people[f"buyer{i:02d}"] = [*visits, ("purchase", iso(bought), "store", {"revenue": 500.0})]
        persons[f"buyer{i:02d}"] = {"persona": "store_buyer"}
    for i in range(11):
        t = start + timedelta(days=i)
        people[f"browser{i:02d}"] = [
            ("site_visit", iso(t), "website"),
            ("site_visit", iso(t + timedelta(days=1)), "website"),
        ]
        persons[f"browser{i:02d}"] = {"persona": "browser"} if i < 10 else {}
    return people, persons


@pytest.fixture(scope="module")
def tables(helpers):
    return helpers.built_tables(*people_and_persons())


def test_two_behaviours_are_found(backend, tables, tmp_path):
    ws = load(backend, tables, tmp_path, only=("journeys", "journey_touchpoints", "persons"))
    result = run(ws, PersonasSpec(n_init=4))
    assert result.k == 2  # the silhouette prefers 2 of 2..6
    profiles = result.table.to_pylist()
    # clusters are numbered by size, then by centroid: 11 and 11, and the browsers' centroid comes first
    # (journeys are equal, their standardised touchpoint count is lower)
    assert [(p["cluster"], p["persons"], p["top_persona"]) for p in profiles] == [
        (1, 11, "browser"),
        (2, 11, "store_buyer"),
    ]
    browsers, buyers = profiles
    assert (buyers["converted"], browsers["converted"]) == (1.0, 0.0)
    assert buyers["share_store"] == 1.0 and browsers["share_website"] == 1.0
    assert (buyers["touchpoints"], browsers["touchpoints"]) == (5.0, 2.0)
    # days to purchase 5 + 0.25 i for i = 0..10: mean 5 + 0.25 * 5 = 6.25
    assert buyers["days_to_purchase"] == pytest.approx(6.25)
    assert browsers["days_to_purchase"] is None  # nobody converted
    assert buyers["phase_reached"] == 2.0  # purchase
    crosstab = [(r["cluster"], r["persona"], r["persons"]) for r in result.crosstab.to_pylist()]
    assert crosstab == [(1, "(unknown)", 1), (1, "browser", 10), (2, "store_buyer", 11)]
    # against the declared personas (the unknown one left out) the clusters agree perfectly
    assert result.adjusted_rand == 1.0 and result.purity == 1.0
    assert [r["k"] for r in result.selection.to_pylist() if r["chosen"]] == [2]


def test_deterministic_and_fixed_k(tables, tmp_path):
    con = ibis.duckdb.connect()
    try:
        ws = load(con, tables, tmp_path)
        first = run(ws, PersonasSpec(k=3, seed=5))
        again = run(ws, PersonasSpec(k=3, seed=5))
        assert first.table.equals(again.table) and first.crosstab.equals(again.crosstab)
        assert first.k == 3 and sum(first.table.column("persons").to_pylist()) == 22
        assert np.array_equal(first.centroids, again.centroids)
        # two distinct behaviours (and the buyers' purchase times) leave no room for 20 clusters
        with pytest.raises(
            SpecError, match="k-means found no 20 non-empty clusters in 22 persons; try a smaller k"
        ):
            run(ws, PersonasSpec(k=20))
        with pytest.raises(
            SpecError, match="12 persons is too few to form 12 clusters; expected at least 13"
        ):
            run(ws, PersonasSpec(k=12, max_fit=12))
        only_buyers = run(ws, PersonasSpec(k=2, filters={"personas": ["store_buyer"]}))
        assert sum(only_buyers.table.column("persons").to_pylist()) == 11
    finally:
        con.disconnect()


def test_spec_is_strict():
    with pytest.raises(SpecError, match="personas: k: Input should be greater than or equal to 2"):
        parse_spec(PersonasSpec, {"k": 1})
    with pytest.raises(SpecError, match=r"k_min \(5\) must not exceed k_max \(3\)"):
        parse_spec(PersonasSpec, {"k_min": 5, "k_max": 3})


# -- the agreement measures and the silhouette, against brute force ---------------------------------------


def test_adjusted_rand_worked_examples():
    # contingency tables (rows: clusters, columns: classes)
    assert adjusted_rand(np.array([[2, 0], [0, 2]])) == 1.0
    # clusters {0,0,1,2} vs classes {0,0,1,1}: a = 1 pair together in both, b = 0, c = 1, d = 4
    # ARI = 2(ad − bc) / ((a+b)(b+d) + (a+c)(c+d)) = 8 / (4 + 10) = 0.571429
    assert adjusted_rand(np.array([[2, 0], [0, 1], [0, 1]])) == pytest.approx(4 / 7)
    assert adjusted_rand(np.array([[1, 1, 1, 1]]).T) == 0.0  # one class, every cluster a singleton
    assert purity(np.array([[3, 1], [1, 2]])) == pytest.approx(5 / 7)


def pair_ari(u: list[int], v: list[int]) -> float:
    """Hubert & Arabie's ARI by counting pairs: 2(ad − bc) / ((a+b)(b+d) + (a+c)(c+d))."""
    a = b = c = d = 0
    for i, j in combinations(range(len(u)), 2):
        same_u, same_v = u[i] == u[j], v[i] == v[j]
        a += same_u and same_v
        b += same_u and not same_v
        c += same_v and not same_u
        d += not same_u and not same_v
    denom = (a + b) * (b + d) + (a + c) * (c + d)
    return 1.0 if denom == 0 else 2 * (a * d - b * c) / denom


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=40))
def test_adjusted_rand_matches_pair_counting(pairs):
    u, v = [p[0] for p in pairs], [p[1] for p in pairs]
    table = np.zeros((4, 4))
    for x, y in pairs:
        table[x, y] += 1
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    assert adjusted_rand(table) == pytest.approx(pair_ari(u, v), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 30), st.integers(2, 4))
def test_silhouette_matches_brute_force(seed, n, k):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    labels = rng.integers(0, k, n)
    if len(set(labels.tolist())) < 2:
        assert np.isnan(silhouette(x, labels))
        return
    scores = []
    for i in range(n):
        own = [j for j in range(n) if labels[j] == labels[i] and j != i]
        if not own:
            scores.append(0.0)
            continue
        a = np.mean([np.linalg.norm(x[i] - x[j]) for j in own])
        b = min(
            np.mean([np.linalg.norm(x[i] - x[j]) for j in range(n) if labels[j] == other])
            for other in set(labels.tolist()) - {labels[i]}
        )
        scores.append((b - a) / max(a, b))
    assert silhouette(x, labels) == pytest.approx(float(np.mean(scores)))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5))
def test_kmeans_finds_separated_blobs(seed, k):
    rng = np.random.default_rng(seed)
    centres = np.arange(k)[:, None] * 10.0 + np.zeros((k, 3))  # 10 apart along every axis
    truth = np.repeat(np.arange(k), 20)
    x = centres[truth] + rng.normal(scale=0.5, size=(len(truth), 3))
    fitted, labels, inertia = kmeans(x, k, seed=seed, n_init=3)
    # the same partition as the truth (up to the numbering), each label the nearest centre, same on a rerun
    contingency = np.zeros((k, k))
    np.add.at(contingency, (labels, truth), 1)
    assert adjusted_rand(contingency) == 1.0
    nearest = ((x[:, None, :] - fitted[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    assert np.array_equal(labels, nearest)
    again = kmeans(x, k, seed=seed, n_init=3)
    assert np.array_equal(again[0], fitted) and again[2] == inertia


# -- the command line --------------------------------------------------------------------------------------


def test_cli(tmp_path, tables):
    path = tmp_path / "ws"
    ws = Workspace(path)
    load(ws.con, tables, tmp_path)
    ws.close()
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    out = runner.invoke(app, ["personas", "-w", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [(r["cluster"], r["persons"]) for r in json.loads(out.output)] == [(1, 11), (2, 11)]

    out = runner.invoke(
        app, ["personas", "-w", str(path), "--view", "crosstab", "--format", "csv", "--k", "2"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[3] == "2,store_buyer,11,1.0,1.0"

    out = runner.invoke(app, ["personas", "-w", str(path)])
    assert out.exit_code == 0, out.output
    assert "k = 2; against declared personas: adjusted Rand index 1.000, purity 1.000" in out.output
