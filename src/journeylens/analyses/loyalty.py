"""Loyalty and advocacy: repeat purchases, cohort retention, promoters, referrals, customer lifetime value.

Usage::

    result = run(ws, LoyaltySpec())
    result.table         # metric, value, low, high, n, too_thin: the headline figures
    result.cohorts       # first-purchase month x months since: share purchasing again, revenue
    result.cohort_summary  # per cohort: customers, repeat customers, revenue, revenue per customer
    result.advocacy      # promoters / passives / detractors (latest NPS answer per person), with referrals
    result.clv           # historic customer lifetime value per persona and for all customers

**Definitions** (all on the touchpoints of the journeys the filters keep; UTC calendar months):

- *purchase*: a touchpoint named in ``purchase_touchpoints`` (default ``purchase``); a person's purchases are
  ordered by (timestamp, event_id). A *buyer* (customer) has at least one.
- *repeat-purchase rate*: buyers with 2 or more purchases / buyers (Wilson interval).
- *time between purchases*: the gaps between a buyer's consecutive purchases, in days; the median and the
  90th percentile are exact (linear interpolation, the same on DuckDB and Spark).
- *cohort*: the month of a buyer's first purchase. For ``months_since`` m (0 = the cohort's own month),
  ``purchasers`` counts the cohort's buyers with a purchase other than their first in month cohort + m, and
  ``retention`` = purchasers / cohort size (Wilson interval). Months after the data's last month are not
  reported; the data's last month is reported with ``complete`` false (it may be partly observed).
  ``revenue`` is the sum of every revenue value (refunds are negative) of the cohort's buyers in that month;
  revenue before a buyer's first-purchase month is left out.
- *promoters / passives / detractors*: each person's latest NPS answer (9–10 / 7–8 / 0–6), whatever it was
  about; ``referrers`` counts the persons of each class with a referral touchpoint.
- *referrals*: touchpoints named in ``referral_touchpoints`` (default ``referral``), and the persons who made
  them; the share of buyers who referred someone.
- *customer lifetime value* (historic): per buyer the sum of all their revenue values, refunds included;
  mean (t interval), median, total per persona (``persons.persona``; ``(unknown)`` when missing) and for all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from journeylens.analyses import stats
from journeylens.analyses.base import Filters, Result, Spec, execute

if TYPE_CHECKING:
    from journeylens.store import Workspace

SECONDS_PER_DAY = 86_400
UNKNOWN = "(unknown)"
ALL = "(all)"
NPS_CLASSES = ("promoter", "passive", "detractor")


class LoyaltySpec(Spec):
    """Which touchpoints are purchases and referrals, and how far cohorts are followed."""

    kind: ClassVar[str] = "loyalty"

    purchase_touchpoints: list[str] = Field(default=["purchase"], min_length=1)
    referral_touchpoints: list[str] = Field(default=["referral"], min_length=1)
    max_months: int = Field(default=12, ge=0, le=120, description="follow each cohort this many months")
    min_n: int = Field(default=30, ge=1, description="fewer persons than this flag a figure too_thin")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    filters: Filters = Filters()


class LoyaltyResult(Result):
    def __init__(
        self,
        spec: LoyaltySpec,
        table: pa.Table,
        *,
        cohorts: pa.Table,
        cohort_summary: pa.Table,
        advocacy: pa.Table,
        clv: pa.Table,
        sql: str = "",
    ) -> None:
        super().__init__(spec, table, sql=sql)
        self.cohorts = cohorts
        self.cohort_summary = cohort_summary
        self.advocacy = advocacy
        self.clv = clv

    def metric(self, name: str) -> float:
        """One headline figure by name, e.g. ``result.metric("repeat_purchase_rate")``."""
        rows = [r for r in self.table.select(["metric", "value"]).to_pylist() if r["metric"] == name]
        if not rows:
            raise KeyError(
                f"no metric {name!r}; expected one of {', '.join(self.table['metric'].to_pylist())}"
            )
        value = rows[0]["value"]
        return float("nan") if value is None else float(value)


# -- in the engine ----------------------------------------------------------------------------------------


def _month(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0: year * 12 + month - 1 (UTC)."""
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


def purchases(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    """Every purchase with its number in the person's purchases (0-based), the gap to the previous one
    in seconds, and its month."""
    t = spec.filters.touchpoints(ws)
    p = t.filter(t.touchpoint.isin(spec.purchase_touchpoints))
    w = ibis.window(group_by=p.person_id, order_by=[p.timestamp, p.event_id])
    ts = p.timestamp.epoch_seconds()
    return p.select(
        "person_id",
        "event_id",
        "timestamp",
        "revenue",
        seq=ibis.row_number().over(w),
        gap_seconds=(ts - ts.lag().over(w)),
        month=_month(p.timestamp),
    )


def buyers(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    """One row per buyer: purchases, first-purchase month (the cohort), total revenue, persona."""
    p = purchases(ws, spec)
    b = p.group_by("person_id").aggregate(purchases=p.count(), cohort=p.month.min())
    t = spec.filters.touchpoints(ws)
    rev = t.filter(t.revenue.notnull()).group_by("person_id").aggregate(revenue=t.revenue.sum())
    b = b.left_join(rev, b.person_id == rev.person_id).drop("person_id_right")
    persons = ws.persons.select(_pid="person_id", _persona="persona")
    b = b.left_join(persons, b.person_id == persons._pid)
    return b.select(
        "person_id",
        "purchases",
        "cohort",
        revenue=b.revenue.fill_null(0.0),
        persona=b._persona.fill_null(UNKNOWN),
    )


def _summary_expr(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    p = purchases(ws, spec)
    b = buyers(ws, spec)
    t = spec.filters.touchpoints(ws)
    gaps = p.filter(p.gap_seconds.notnull())
    gap_days = gaps.gap_seconds / SECONDS_PER_DAY
    refs = t.filter(t.touchpoint.isin(spec.referral_touchpoints))
    referrers = refs.select("person_id").distinct()
    buyer_referrers = b.semi_join(referrers, "person_id")
    parts = [
        b.aggregate(
            buyers=b.count(),
            repeat_buyers=(b.purchases >= 2).cast("int64").sum(),
            purchases=b.purchases.sum(),
            purchases_sq=(b.purchases * b.purchases).sum(),
        ),
        gaps.aggregate(
            gaps=gaps.count(),
            gap_mean=gap_days.mean(),
            gap_median=gap_days.quantile(0.5),
            gap_p90=gap_days.quantile(0.9),
        ),
        refs.aggregate(referrals=refs.count(), referrers=refs.person_id.nunique()),
        buyer_referrers.aggregate(buyer_referrers=buyer_referrers.count()),
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.cross_join(part)
    return out


def _cohort_expr(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    """Per (cohort, months_since): repeat purchasers and revenue; months_since = -1 rows carry cohort sizes."""
    p = purchases(ws, spec)
    b = buyers(ws, spec).select("person_id", "cohort")
    again = p.filter(p.seq >= 1)
    again = again.join(b, "person_id")
    active = again.group_by([again.cohort, (again.month - again.cohort).name("months_since")]).aggregate(
        purchasers=again.person_id.nunique()
    )
    t = spec.filters.touchpoints(ws)
    rev = t.filter(t.revenue.notnull()).select("person_id", "revenue", month=_month(t.timestamp))
    rev = rev.join(b, "person_id")
    rev = rev.mutate(months_since=rev.month - rev.cohort)
    rev = rev.filter(rev.months_since >= 0)
    revenue = rev.group_by(["cohort", "months_since"]).aggregate(revenue=rev.revenue.sum())
    sizes = b.group_by("cohort").aggregate(customers=b.count())
    cells = ibis.union(
        active.select("cohort", "months_since"), revenue.select("cohort", "months_since"), distinct=True
    )
    cells = cells.left_join(active, ["cohort", "months_since"]).select("cohort", "months_since", "purchasers")
    cells = cells.left_join(revenue, ["cohort", "months_since"]).select(
        "cohort", "months_since", "purchasers", "revenue"
    )
    cells = cells.mutate(customers=ibis.null("int64"))
    sizes = sizes.select(
        "cohort",
        months_since=ibis.literal(-1, "int64"),
        purchasers=ibis.null("int64"),
        revenue=ibis.null("float64"),
        customers="customers",
    )
    return ibis.union(cells.select(*sizes.columns), sizes)


def _advocacy_expr(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    t = spec.filters.touchpoints(ws)
    a = t.filter((t.scale == "nps") & t.satisfaction.notnull())
    w = ibis.window(group_by=a.person_id, order_by=[ibis.desc(a.timestamp), ibis.desc(a.event_id)])
    a = a.mutate(_r=ibis.row_number().over(w))
    latest = a.filter(a._r == 0)
    latest = latest.select(
        "person_id",
        nps_class=ibis.cases(
            (latest.satisfaction >= 9, "promoter"), (latest.satisfaction >= 7, "passive"), else_="detractor"
        ),
    )
    refs = t.filter(t.touchpoint.isin(spec.referral_touchpoints))
    referrers = refs.select(_rp="person_id").distinct()
    latest = latest.left_join(referrers, latest.person_id == referrers._rp)
    return latest.group_by("nps_class").aggregate(
        persons=latest.count(), referrers=latest._rp.notnull().cast("int64").sum()
    )


def _clv_expr(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    b = buyers(ws, spec)

    def figures(x: ir.Table) -> dict[str, ir.Value]:
        return {
            "customers": x.count(),
            "total": x.revenue.sum(),
            "total_sq": (x.revenue * x.revenue).sum(),
            "median": x.revenue.quantile(0.5),
        }

    per = b.group_by("persona").aggregate(**figures(b))
    everyone = b.aggregate(**figures(b)).mutate(persona=ibis.literal(ALL))
    return ibis.union(per, everyone.select(*per.columns))


def expr(ws: Workspace, spec: LoyaltySpec) -> ir.Table:
    """The headline aggregate (one row); the other tables come from their own small aggregates."""
    return _summary_expr(ws, spec)


# -- in Python, on the aggregates -------------------------------------------------------------------------


def run(ws: Workspace, spec: LoyaltySpec) -> LoyaltyResult:
    summary, sql = execute(_summary_expr(ws, spec))
    s = summary.to_pylist()[0] if summary.num_rows else {}
    cohort_rows = _cohort_expr(ws, spec).to_pyarrow().to_pandas()
    advocacy_rows = _advocacy_expr(ws, spec).to_pyarrow().to_pandas()
    clv_rows = _clv_expr(ws, spec).to_pyarrow().to_pandas()
    end = ws.touchpoints.aggregate(m=_month(ws.touchpoints.timestamp.max())).to_pyarrow().to_pylist()[0]["m"]

    conf, min_n = spec.confidence, spec.min_n

    def num(key: str) -> float:
        return float(s.get(key) or 0)  # a sum over no rows is NULL: 0 here

    n_buyers = num("buyers")
    rows: list[dict] = []

    def add(metric: str, value: float, low: float = np.nan, high: float = np.nan, n: float = np.nan) -> None:
        rows.append({"metric": metric, "value": float(value), "low": float(low), "high": float(high), "n": n})

    add("buyers", n_buyers, n=n_buyers)
    low, high = stats.wilson(num("repeat_buyers"), n_buyers, conf)
    add("repeat_purchase_rate", stats.share(num("repeat_buyers"), n_buyers), low, high, n_buyers)
    mean, low, high = stats.t_interval(n_buyers, num("purchases"), num("purchases_sq"), conf)
    add("purchases_per_buyer", mean, low, high, n_buyers)
    n_gaps = num("gaps")
    add("days_between_purchases_median", _nan(s.get("gap_median")), n=n_gaps)
    add("days_between_purchases_p90", _nan(s.get("gap_p90")), n=n_gaps)
    add("days_between_purchases_mean", _nan(s.get("gap_mean")), n=n_gaps)

    advocacy = _advocacy(advocacy_rows, conf, min_n)
    counts = advocacy.set_index("nps_class")["persons"]
    answered = float(counts.sum())
    nps, low, high = stats.nps_interval(counts.get("promoter", 0), counts.get("detractor", 0), answered, conf)
    add("nps", nps, low, high, answered)
    add("referrals", num("referrals"), n=num("referrers"))
    add("referrers", num("referrers"), n=num("referrers"))
    low, high = stats.wilson(num("buyer_referrers"), n_buyers, conf)
    add("buyers_referring_share", stats.share(num("buyer_referrers"), n_buyers), low, high, n_buyers)

    clv = _clv(clv_rows, conf, min_n)
    everyone = clv[clv["persona"] == ALL]
    if len(everyone):
        e = everyone.iloc[0]
        add("clv_mean", e["mean"], e["mean_low"], e["mean_high"], e["customers"])
        add("clv_median", e["median"], n=e["customers"])
        add("revenue", e["revenue"], n=e["customers"])
    else:  # no buyers
        add("clv_mean", np.nan, n=0)
        add("clv_median", np.nan, n=0)
        add("revenue", 0.0, n=0)

    table = pd.DataFrame(rows)
    table["n"] = table["n"].fillna(0).astype("int64")
    table["too_thin"] = table["n"] < min_n
    cohorts, cohort_summary = _cohorts(cohort_rows, end, spec)
    return LoyaltyResult(
        spec,
        pa.Table.from_pandas(table, preserve_index=False),
        cohorts=pa.Table.from_pandas(cohorts, preserve_index=False),
        cohort_summary=pa.Table.from_pandas(cohort_summary, preserve_index=False),
        advocacy=pa.Table.from_pandas(advocacy, preserve_index=False),
        clv=pa.Table.from_pandas(clv, preserve_index=False),
        sql=sql,
    )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def month_label(index: int) -> str:
    """``2024-03`` for a month index (year * 12 + month - 1)."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _cohorts(
    rows: pd.DataFrame, end_month: int | None, spec: LoyaltySpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    sizes = rows[rows["months_since"] == -1].set_index("cohort")["customers"].astype("int64").sort_index()
    cells = rows[rows["months_since"] >= 0].set_index(["cohort", "months_since"])
    out: list[dict] = []
    summary: list[dict] = []
    for cohort, size in sizes.items():
        cohort = int(cohort)
        last = (int(end_month) - cohort) if end_month is not None else 0
        for m in range(min(spec.max_months, last) + 1):
            cell = cells.loc[(cohort, m)] if (cohort, m) in cells.index else None
            purchasers = int(_nan_to(cell["purchasers"] if cell is not None else 0))
            revenue = float(_nan_to(cell["revenue"] if cell is not None else 0.0))
            out.append(
                {"cohort": month_label(cohort), "months_since": m, "customers": int(size), "purchasers": purchasers,
                 "revenue": revenue, "complete": cohort + m < int(end_month or 0)}
            )  # fmt: skip
        own = cells.xs(cohort, level="cohort") if cohort in cells.index.get_level_values("cohort") else None
        revenue = float(own["revenue"].fillna(0).sum()) if own is not None else 0.0
        summary.append({"cohort": month_label(cohort), "customers": int(size), "revenue": revenue})
    cohorts = pd.DataFrame(
        out, columns=["cohort", "months_since", "customers", "purchasers", "revenue", "complete"]
    )
    cohorts["retention"] = stats.share(cohorts["purchasers"], cohorts["customers"])
    cohorts["retention_low"], cohorts["retention_high"] = stats.wilson(
        cohorts["purchasers"], cohorts["customers"], spec.confidence
    )
    cohorts["revenue_per_customer"] = stats.share(cohorts["revenue"], cohorts["customers"])
    cohorts["too_thin"] = cohorts["customers"] < spec.min_n
    cohorts = cohorts[
        ["cohort", "months_since", "customers", "purchasers", "retention", "retention_low", "retention_high",
         "revenue", "revenue_per_customer", "complete", "too_thin"]
    ]  # fmt: skip
    summary_frame = pd.DataFrame(summary, columns=["cohort", "customers", "revenue"])
    summary_frame["revenue_per_customer"] = stats.share(summary_frame["revenue"], summary_frame["customers"])
    summary_frame["too_thin"] = summary_frame["customers"] < spec.min_n
    return cohorts.reset_index(drop=True), summary_frame


def _nan_to(value: object, default: float = 0.0) -> float:
    return default if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _advocacy(rows: pd.DataFrame, confidence: float, min_n: int) -> pd.DataFrame:
    by = rows.set_index("nps_class") if len(rows) else pd.DataFrame(columns=["persons", "referrers"])
    persons = np.array([_nan_to(by["persons"].get(c, 0)) for c in NPS_CLASSES])
    referrers = np.array([_nan_to(by["referrers"].get(c, 0)) for c in NPS_CLASSES])
    total = persons.sum()
    out = pd.DataFrame({"nps_class": list(NPS_CLASSES), "persons": persons.astype("int64")})
    out["share"] = stats.share(persons, total)
    out["share_low"], out["share_high"] = stats.wilson(persons, total, confidence)
    out["referrers"] = referrers.astype("int64")
    out["referral_rate"] = stats.share(referrers, persons)
    out["referral_rate_low"], out["referral_rate_high"] = stats.wilson(referrers, persons, confidence)
    out["too_thin"] = persons < min_n
    return out


def _clv(rows: pd.DataFrame, confidence: float, min_n: int) -> pd.DataFrame:
    rows = rows[rows["customers"].fillna(0) > 0].copy()
    rows["_all"] = rows["persona"] == ALL
    rows = rows.sort_values(["_all", "persona"], kind="stable").reset_index(drop=True)
    n = rows["customers"].to_numpy(np.float64)
    mean, low, high = stats.t_interval(n, rows["total"].fillna(0), rows["total_sq"].fillna(0), confidence)
    return pd.DataFrame(
        {
            "persona": rows["persona"].astype(str),
            "customers": rows["customers"].astype("int64"),
            "mean": mean,
            "mean_low": low,
            "mean_high": high,
            "median": rows["median"].astype(np.float64),
            "revenue": rows["total"].fillna(0).astype(np.float64),
            "too_thin": n < min_n,
        }
    )
