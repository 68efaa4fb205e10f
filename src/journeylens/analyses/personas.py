"""Behavioural personas: persons clustered by how their journeys went, set against the declared personas.

Usage::

    result = run(ws, PersonasSpec())
    result.table        # one row per cluster: size, mean of every feature, its most common declared persona
    result.crosstab     # cluster x declared persona: persons, shares
    result.selection    # per k tried: silhouette and inertia
    result.k, result.adjusted_rand, result.purity

**Method** (deterministic: the same data and seed give the same clusters on every engine):

1. *Features*, one row per person, computed in the engine over the journeys the filters keep:
   ``journeys`` and ``touchpoints`` (counts), ``phase_reached`` (the furthest phase index, −1 for none),
   ``converted`` (1 when a journey converted), ``days_to_purchase`` (from the start of the person's first
   converted journey to its conversion), and ``share_<channel>``: the share of the person's touchpoints on
   each of the ``max_channels`` busiest channels, the rest in ``share_other``; and ``type_<journey type>``:
   the share of the person's journeys of each journey type (the ``max_journey_types`` commonest; 0 for none).
2. *Transform*: log(1 + x) of the counts and of days_to_purchase, then each feature standardised (mean 0,
   sd 1 over the fitting sample; a constant feature stays 0). A person without a conversion gets the
   converters' mean days_to_purchase (0 after standardising), so ``converted`` alone tells them apart.
3. *Fitting sample*: the first ``max_fit`` persons in the order of md5(person_id), a pseudo-random order that
   is the same on every engine.
4. *k-means* (Lloyd's algorithm in numpy until no label changes, ``n_init`` k-means++ starts drawn from a
   generator seeded with ``seed``, the start with the least inertia kept). k is ``k`` if given, else the k in ``k_min..k_max``
   with the highest mean silhouette (Euclidean, on the first ``silhouette_sample`` persons of the fitting
   sample; ties go to the smaller k). Clusters are numbered 1.. by size in the fitting sample.
5. *Assignment*: every person (not only the sample) goes to the nearest centroid, in the engine; profiles
   and the crosstab are engine aggregates over all persons.

**Agreement with declared personas** (persons with a persona; ``(unknown)`` ones are left out): the
adjusted Rand index (Hubert & Arabie 1985; 1 = the same partition, about 0 = chance) and purity (the share of
persons in their cluster's most common persona).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field, model_validator
from scipy.spatial.distance import cdist

from journeylens.analyses.base import Filters, Result, Spec, execute
from journeylens.errors import SpecError

if TYPE_CHECKING:
    from journeylens.store import Workspace

SECONDS_PER_DAY = 86_400
UNKNOWN = "(unknown)"
BASE_FEATURES = ("journeys", "touchpoints", "phase_reached", "converted", "days_to_purchase")
LOGGED = ("journeys", "touchpoints", "days_to_purchase")


class PersonasSpec(Spec):
    """How persons are described (features) and clustered."""

    kind: ClassVar[str] = "personas"

    k: int | None = Field(
        default=None, ge=2, le=20, description="number of clusters; default: chosen by silhouette"
    )
    k_min: int = Field(default=2, ge=2, le=20)
    k_max: int = Field(default=6, ge=2, le=20)
    max_channels: int = Field(
        default=8, ge=1, le=30, description="channel-share features for this many busiest channels"
    )
    max_journey_types: int = Field(
        default=8, ge=0, le=30, description="journey-type-share features for this many commonest types"
    )
    seed: int = Field(default=0, ge=0)
    n_init: int = Field(default=4, ge=1, le=100, description="k-means++ starts per k; the best is kept")
    max_fit: int = Field(default=10_000, ge=10, description="persons in the fitting sample")
    silhouette_sample: int = Field(default=2_000, ge=10, le=20_000)
    filters: Filters = Filters()

    @model_validator(mode="after")
    def _k_range(self) -> PersonasSpec:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        return self


class PersonasResult(Result):
    def __init__(
        self,
        spec: PersonasSpec,
        table: pa.Table,
        *,
        crosstab: pa.Table,
        selection: pa.Table,
        k: int,
        adjusted_rand: float,
        purity: float,
        features: list[str],
        centroids: np.ndarray,
        sql: str = "",
    ) -> None:
        extra = {"k": k, "adjusted_rand": adjusted_rand, "purity": purity, "features": features}
        super().__init__(spec, table, sql=sql, extra=extra)
        self.crosstab = crosstab
        self.selection = selection
        self.k = k
        self.adjusted_rand = adjusted_rand
        self.purity = purity
        self.features = features
        #: centroids in standardised feature space, one row per cluster (cluster 1 first)
        self.centroids = centroids


# -- in the engine ----------------------------------------------------------------------------------------


def _column_name(value: str, taken: set[str], prefix: str = "share_") -> str:
    base = prefix + (re.sub(r"\W+", "_", value.lower()).strip("_") or "value")
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _commonest(t: ir.Table, column: str, limit: int) -> list[str]:
    if limit == 0:
        return []
    counts = t.group_by(column).aggregate(n=t.count()).to_pyarrow().to_pylist()
    counts = [r for r in counts if r[column] is not None]
    counts.sort(key=lambda r: (-r["n"], str(r[column])))
    return [r[column] for r in counts[:limit]]


def top_values(ws: Workspace, spec: PersonasSpec) -> tuple[list[str], list[str]]:
    """The ``max_channels`` busiest channels (most touchpoints, then by name) and the
    ``max_journey_types`` commonest journey types (most journeys, then by name)."""
    return (
        _commonest(spec.filters.touchpoints(ws), "channel", spec.max_channels),
        _commonest(spec.filters.journeys(ws), "journey_type", spec.max_journey_types),
    )


def features_expr(
    ws: Workspace, spec: PersonasSpec, channels: list[str], journey_types: list[str]
) -> tuple[ir.Table, list[str]]:
    """One row per person: person_id, persona and the raw features (see the module's docstring)."""
    j = spec.filters.journeys(ws)
    conv_days = (j.converted_at.epoch_seconds() - j.start.epoch_seconds()) / SECONDS_PER_DAY
    taken: set[str] = set()
    type_names = [_column_name(v, taken, "type_") for v in journey_types]
    type_shares = {
        name: (j.journey_type == v).cast("float64").sum() / j.count()
        for name, v in zip(type_names, journey_types, strict=True)
    }
    per = j.group_by("person_id").aggregate(
        **type_shares,
        journeys=j.count(),
        touchpoints=j.touchpoints.sum(),
        phase_reached=j.phase_reached.max(),
        converted=j.converted_at.notnull().cast("int64").max(),
        days_to_purchase=conv_days.argmin(j.converted_at),
    )
    t = spec.filters.touchpoints(ws)
    names = [_column_name(c, taken) for c in channels]
    shares = {
        name: (t.channel == c).cast("float64").sum() / t.count()
        for name, c in zip(names, channels, strict=True)
    }
    ch = t.group_by("person_id").aggregate(**shares)
    other = _column_name("other", taken)
    ch = ch.mutate(**{other: 1.0 - sum((ch[n] for n in names), ibis.literal(0.0))})
    f = per.join(ch, "person_id")
    persons = ws.persons.select(_pid="person_id", _persona="persona")
    f = f.left_join(persons, f.person_id == persons._pid)
    feature_names = [*BASE_FEATURES, *names, other, *type_names]
    f = f.select(
        "person_id",
        persona=f._persona.fill_null(UNKNOWN),
        journeys=f.journeys.cast("float64"),
        touchpoints=f.touchpoints.cast("float64"),
        phase_reached=f.phase_reached.fill_null(-1).cast("float64"),
        converted=f.converted.fill_null(0).cast("float64"),
        days_to_purchase=f.days_to_purchase.cast("float64"),
        **{n: f[n].fill_null(0.0) for n in [*names, other, *type_names]},
    )
    return f, feature_names


def _transformed(f: ir.Table, feature: str, fill_days: float) -> ir.FloatingValue:
    x = f[feature]
    if feature == "days_to_purchase":
        x = x.fill_null(fill_days)
    if feature in LOGGED:
        x = (x + 1.0).ln()
    return x


def expr(ws: Workspace, spec: PersonasSpec) -> ir.Table:
    """The persons' features (one row per person; used for the fitting sample, ordered by md5)."""
    f, _ = features_expr(ws, spec, *top_values(ws, spec))
    return f.order_by([f.person_id.hexdigest("md5"), f.person_id])


# -- in Python: fitting ----------------------------------------------------------------------------------


def _transform(frame: pd.DataFrame, features: list[str], fill_days: float) -> np.ndarray:
    x = frame[features].to_numpy(np.float64).copy()
    for i, name in enumerate(features):
        if name == "days_to_purchase":
            x[:, i] = np.where(np.isnan(x[:, i]), fill_days, x[:, i])
        if name in LOGGED:
            x[:, i] = np.log1p(x[:, i])
    return x


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987), Euclidean; a point alone in its cluster scores 0."""
    d = cdist(x, x)
    ks = np.unique(labels)
    if ks.size < 2:
        return float("nan")
    mean_to = np.stack([d[:, labels == k].sum(axis=1) for k in ks], axis=1)
    sizes = np.array([(labels == k).sum() for k in ks], dtype=np.float64)
    own = np.searchsorted(ks, labels)
    own_size = sizes[own]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = mean_to[np.arange(len(x)), own] / (own_size - 1)
        other = mean_to / sizes
    other[np.arange(len(x)), own] = np.inf
    b = other.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
    s = np.where(np.isnan(s), 0.0, s)
    return float(s.mean())


def _sq_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of every row of x to every centre (one elementwise pass per centre:
    no BLAS call, whose threads only get in each other's way on a busy machine)."""
    return np.stack([((x - c) ** 2).sum(axis=1) for c in centres], axis=1)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray | None:
    """k-means++ starting centres (Arthur & Vassilvitskii 2007); None when x has fewer than k distinct rows."""
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            return None
        pick = x[rng.choice(len(x), p=d2 / total)]
        centres.append(pick)
        d2 = np.minimum(d2, ((x - pick) ** 2).sum(axis=1))
    return np.stack(centres)


def _lloyd(
    x: np.ndarray, centres: np.ndarray, max_iter: int = 300, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray] | None:
    """Lloyd's iterations until no label changes or the centres move less than ``tol`` (squared, summed
    over centres; the features are standardised, so this is scikit-learn's default tolerance); the labels
    returned are those of the nearest final centres. None when a cluster runs empty."""
    k = len(centres)
    labels = _sq_distances(x, centres).argmin(axis=1)
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=k)
        if (counts == 0).any():
            return None
        moved = np.stack([x[labels == c].mean(axis=0) for c in range(k)])
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        new = _sq_distances(x, centres).argmin(axis=1)  # ties go to the lower cluster, as in the engine
        if np.array_equal(new, labels) or shift < tol:
            labels = new
            break
        labels = new
    if (np.bincount(labels, minlength=k) == 0).any():
        return None
    return centres, labels


def kmeans(x: np.ndarray, k: int, *, seed: int, n_init: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Centroids, labels and inertia of the best of ``n_init`` k-means++ starts (deterministic).

    Lloyd's algorithm in numpy, run until the labels stop changing (at most 300 rounds); a start whose
    cluster runs empty is dropped. Raises SpecError when no start gives ``k`` non-empty clusters."""
    rng = np.random.default_rng([seed, k])
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        start = _plus_plus(x, k, rng)
        fitted = None if start is None else _lloyd(x, start)
        if fitted is None:
            continue
        centres, labels = fitted
        inertia = float(_sq_distances(x, centres)[np.arange(len(x)), labels].sum())
        if best is None or inertia < best[2] - 1e-9:
            best = (centres, labels, inertia)
    if best is None:
        raise SpecError(
            f"personas: k-means found no {k} non-empty clusters in {len(x)} persons; try a smaller k"
        )
    return best


def adjusted_rand(contingency: np.ndarray) -> float:
    """The adjusted Rand index from a contingency table (rows: clusters, columns: classes)."""
    c = np.asarray(contingency, dtype=np.float64)
    n = c.sum()
    if n < 2:
        return float("nan")

    def pairs(v: np.ndarray) -> float:
        return float((v * (v - 1) / 2).sum())

    index = pairs(c)
    rows, cols = pairs(c.sum(axis=1)), pairs(c.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2)
    maximum = (rows + cols) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def purity(contingency: np.ndarray) -> float:
    c = np.asarray(contingency, dtype=np.float64)
    n = c.sum()
    return float(c.max(axis=1).sum() / n) if n else float("nan")


# -- run --------------------------------------------------------------------------------------------------


def run(ws: Workspace, spec: PersonasSpec) -> PersonasResult:
    f, features = features_expr(ws, spec, *top_values(ws, spec))
    sample_expr = f.order_by([f.person_id.hexdigest("md5"), f.person_id]).limit(spec.max_fit)
    sample, sql = execute(sample_expr)
    frame = sample.to_pandas()
    ks = [spec.k] if spec.k is not None else list(range(spec.k_min, spec.k_max + 1))
    if len(frame) < max(ks) + 1:
        raise SpecError(
            f"personas: {len(frame)} persons is too few to form {max(ks)} clusters; expected at least {max(ks) + 1}"
        )

    days = frame["days_to_purchase"].to_numpy(np.float64)
    fill_days = float(np.nanmean(days)) if np.isfinite(days).any() else 0.0
    x = _transform(frame, features, fill_days)
    mu = x.mean(axis=0)
    sd = x.std(axis=0, ddof=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    z = (x - mu) / sd

    m = min(len(z), spec.silhouette_sample)
    selection = []
    fits: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    for k in ks:
        try:
            fits[k] = kmeans(z, k, seed=spec.seed, n_init=spec.n_init)
        except SpecError:
            if len(ks) == 1:
                raise
            # fewer distinct behaviours than k: this k cannot be fitted, the others may
            selection.append({"k": k, "silhouette": float("nan"), "inertia": float("nan")})
            continue
        score = silhouette(z[:m], fits[k][1][:m]) if len(ks) > 1 else float("nan")
        selection.append({"k": k, "silhouette": score, "inertia": fits[k][2]})
    if not fits:
        raise SpecError(
            f"personas: k-means found no {ks[0]}..{ks[-1]} non-empty clusters in {len(z)} persons"
        )
    if len(ks) > 1:
        fitted = [r for r in selection if r["k"] in fits]
        k = max(fitted, key=lambda r: (np.nan_to_num(r["silhouette"], nan=-2.0), -r["k"]))["k"]
    else:
        k = ks[0]
    for row in selection:
        row["chosen"] = row["k"] == k
    centroids, labels, _ = fits[k]
    # number the clusters by size in the sample (then by centroid, for ties)
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(np.round(centroids[c], 9))))
    centroids = centroids[order]

    assigned = _assign(f, features, fill_days, mu, sd, centroids)
    profiles_raw = _profiles_expr(assigned, features).to_pyarrow().to_pandas()
    cross_raw = (
        assigned.group_by(["cluster", "persona"]).aggregate(persons=assigned.count()).to_pyarrow().to_pandas()
    )

    crosstab, contingency = _crosstab(cross_raw)
    table = _profiles(profiles_raw, crosstab, features, centroids)
    return PersonasResult(
        spec,
        pa.Table.from_pandas(table, preserve_index=False),
        crosstab=pa.Table.from_pandas(crosstab, preserve_index=False),
        selection=pa.Table.from_pandas(pd.DataFrame(selection), preserve_index=False),
        k=int(k),
        adjusted_rand=adjusted_rand(contingency) if contingency.size else float("nan"),
        purity=purity(contingency) if contingency.size else float("nan"),
        features=features,
        centroids=centroids,
        sql=sql,
    )


def _assign(
    f: ir.Table, features: list[str], fill_days: float, mu: np.ndarray, sd: np.ndarray, centroids: np.ndarray
) -> ir.Table:
    """Each person's nearest centroid (1-based cluster number; ties go to the lower number), in the engine."""
    zs = [(_transformed(f, name, fill_days) - float(mu[i])) / float(sd[i]) for i, name in enumerate(features)]
    dist = {}
    for c, centre in enumerate(centroids):
        dist[f"_d{c}"] = sum(((z - float(centre[i])) ** 2 for i, z in enumerate(zs)), ibis.literal(0.0))
    g = f.mutate(**dist)
    branches = []
    for c in range(len(centroids)):
        cond = ibis.literal(True)
        for o in range(len(centroids)):
            if o < c:
                cond = cond & (g[f"_d{c}"] < g[f"_d{o}"])
            elif o > c:
                cond = cond & (g[f"_d{c}"] <= g[f"_d{o}"])
        branches.append((cond, c + 1))
    g = g.mutate(cluster=ibis.cases(*branches[:-1], else_=len(centroids)))
    return g.drop(*dist)


def _profiles_expr(assigned: ir.Table, features: list[str]) -> ir.Table:
    a = assigned
    converted_days = ibis.ifelse(a.converted > 0, a.days_to_purchase, ibis.null("float64"))
    aggs = {name: a[name].mean() for name in features if name != "days_to_purchase"}
    aggs["days_to_purchase"] = converted_days.mean()
    return a.group_by("cluster").aggregate(persons=a.count(), **aggs)


def _crosstab(raw: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    raw = raw.copy()
    raw["cluster"] = raw["cluster"].astype("int64")
    raw["persons"] = raw["persons"].astype("int64")
    raw = raw.sort_values(["cluster", "persona"], kind="stable").reset_index(drop=True)
    raw["share_of_cluster"] = raw["persons"] / raw.groupby("cluster")["persons"].transform("sum")
    raw["share_of_persona"] = raw["persons"] / raw.groupby("persona")["persons"].transform("sum")
    known = raw[raw["persona"] != UNKNOWN]
    contingency = known.pivot_table(
        index="cluster", columns="persona", values="persons", aggfunc="sum", fill_value=0
    )
    return raw[
        ["cluster", "persona", "persons", "share_of_cluster", "share_of_persona"]
    ], contingency.to_numpy()


def _profiles(
    raw: pd.DataFrame, crosstab: pd.DataFrame, features: list[str], centroids: np.ndarray
) -> pd.DataFrame:
    raw = raw.copy()
    raw["cluster"] = raw["cluster"].astype("int64")
    raw = raw.set_index("cluster").reindex(range(1, len(centroids) + 1))
    out = pd.DataFrame({"cluster": np.arange(1, len(centroids) + 1, dtype=np.int64)})
    persons = raw["persons"].fillna(0).to_numpy(np.int64)
    out["persons"] = persons
    out["share"] = persons / persons.sum() if persons.sum() else np.nan
    for name in features:
        out[name] = raw[name].to_numpy(np.float64)
    top = crosstab.sort_values(
        ["cluster", "persons", "persona"], ascending=[True, False, True]
    ).drop_duplicates("cluster")
    top = top.set_index("cluster")
    out["top_persona"] = [top["persona"].get(c) for c in out["cluster"]]
    out["top_persona_share"] = [top["share_of_cluster"].get(c, np.nan) for c in out["cluster"]]
    out["description"] = [_describe(centroids[i], features) for i in range(len(centroids))]
    return out


def _describe(centre: np.ndarray, features: list[str], top: int = 3) -> str:
    """The features that set a cluster apart: the largest standardised centroid values, e.g.
    ``touchpoints +1.8 sd, share_store +1.2 sd``."""
    order = sorted(range(len(features)), key=lambda i: (-abs(centre[i]), features[i]))[:top]
    return ", ".join(f"{features[i]} {centre[i]:+.1f} sd" for i in order)
