"""The journey model: the built-in default, the matcher expressions, involvement, file:line messages."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest

from journeylens.errors import ConfigError, SpecError
from journeylens.journeys.models import (
    list_journey_models,
    load_journey_model,
    parse_journey_model,
    validate_journey_model_file,
)

SCHEMA = {
    "event_id": "string",
    "person_id": "string",
    "timestamp": "timestamp('UTC')",
    "channel": "string",
    "touchpoint": "string",
    "content_type": "string",
    "journey_type": "string",
    "properties": "string",
}

# (touchpoint, channel, content_type, journey_type hint) -> what the default model says, worked out by hand:
# the type it opens (hint first, then opening rules in list order), whether it may join an open complaint,
# whether it converts / ends a journey of the type named, and whether it ends a purchase journey per view.
ROWS = [
    # touchpoint           channel        content    hint               opens               complaint member
    ("ad_view", "display", "ad", None, None, False),
    ("purchase", "website", None, None, None, False),
    ("complaint", "call_centre", None, None, "complaint", True),
    ("support_call", "call_centre", None, None, None, True),
    ("survey_response", "email", None, None, None, True),
    ("service_request", "app", None, None, "customer_service", False),
    ("repair_request", "website", None, None, "repair", False),
    ("return_request", "website", None, None, "return", False),
    ("refund", "website", None, None, None, False),
    ("vacancy_view", "website", "vacancy", None, "job_application", False),
    ("site_visit", "website", "vacancy", None, "job_application", False),  # opened by its content type
    ("complaint", "call_centre", None, "return", "return", True),  # the hint wins over the opening rule
    ("site_visit", "website", None, "job_application", "job_application", False),
    ("complaint", "call_centre", None, "warranty", "complaint", True),  # a hint naming no type is ignored
    ("login", "app", None, None, None, False),
]


def _table(rows=ROWS) -> ibis.Table:
    records = [
        {
            "event_id": f"e{i:02d}",
            "person_id": "anna",
            "timestamp": pd.Timestamp("2024-01-01T10:00Z") + pd.Timedelta(hours=i),
            "channel": channel,
            "touchpoint": touchpoint,
            "content_type": content,
            "journey_type": hint,
            "properties": None,
        }
        for i, (touchpoint, channel, content, hint, *_) in enumerate(rows)
    ]
    return ibis.memtable(pd.DataFrame(records, columns=list(SCHEMA)), schema=SCHEMA)


@pytest.fixture(scope="module")
def con() -> ibis.BaseBackend:
    return ibis.duckdb.connect()


def _column(con, t: ibis.Table, expr) -> list:
    got = con.execute(t.select("event_id", v=expr).order_by("event_id"))["v"]
    return [None if pd.isna(v) else v for v in got]


def test_default_model_loads():
    model = load_journey_model()
    assert load_journey_model("default") is model
    assert [info.name for info in list_journey_models()] == ["default"]
    assert model.type_names == [
        "purchase",
        "complaint",
        "customer_service",
        "repair",
        "return",
        "job_application",
    ]
    assert model.view == "customer"
    assert model.default_type.name == "purchase"
    purchase = model.journey_type("purchase")
    assert (purchase.timeout_days, purchase.timeout_seconds, purchase.repeat_after_conversion) == (
        30,
        2_592_000,
        True,
    )
    assert model.journey_type("complaint").timeout_days == 14
    assert model.journey_type("job_application").timeout_days == 60
    assert model.involvement_types == ["purchase"]
    assert model.involvement is not None and model.involvement.high_when_at_least == 2
    assert (
        validate_journey_model_file(
            Path(__file__).parents[2] / "src/journeylens/journeys/models/builtin/journeys-default.yaml"
        )
        == []
    )
    with pytest.raises(
        SpecError,
        match="unknown journey type 'warranty' in journey model 'default'; expected one of purchase",
    ):
        model.journey_type("warranty")


def test_opens_expr_hint_first_then_rules_in_order(con):
    model = load_journey_model()
    t = _table()
    assert _column(con, t, model.opens_expr(t)) == [row[4] for row in ROWS]
    assert [
        model.classify_opening(
            {"touchpoint": r[0], "channel": r[1], "content_type": r[2], "journey_type": r[3]}
        )
        for r in ROWS
    ] == [row[4] for row in ROWS]


def test_opens_expr_without_a_hint_column(con):
    model = load_journey_model()
    t = _table().drop("journey_type")
    assert _column(con, t, model.opens_expr(t))[:4] == [None, None, "complaint", None]


def test_member_conversion_and_ends(con):
    model = load_journey_model()
    t = _table()
    complaint, ret, purchase = (model.journey_type(n) for n in ("complaint", "return", "purchase"))
    assert _column(con, t, complaint.member_expr(t)) == [row[5] for row in ROWS]
    assert all(_column(con, t, purchase.member_expr(t)))  # the default type may take anything
    assert _column(con, t, purchase.conversion_expr(t)) == [tp == "purchase" for tp, *_ in ROWS]
    assert _column(con, t, ret.conversion_expr(t)) == [tp == "refund" for tp, *_ in ROWS]
    # the customer view does not end a purchase journey at the purchase; the buyer view does
    assert not any(_column(con, t, purchase.ends_expr(t, view="customer")))
    assert _column(con, t, purchase.ends_expr(t, view="buyer")) == [tp == "purchase" for tp, *_ in ROWS]
    assert _column(con, t, ret.ends_expr(t)) == [tp == "refund" for tp, *_ in ROWS]


# -- involvement -------------------------------------------------------------------------------------------

# touchpoints before the purchase, days, human contacts, revenue -> level (the default: 2 of 4 criteria)
JOURNEYS = [
    (3, 0.5, 0, 12.5, "low"),  # a mascara: nothing holds
    (8, 2.0, 0, 20.0, "low"),  # many touchpoints, nothing else: 1 of 4
    (8, 21.0, 0, 20.0, "high"),  # many touchpoints over three weeks: 2 of 4
    (2, 1.0, 2, 25_000.0, "high"),  # two store visits, expensive: 2 of 4
    (12, 40.0, 5, 30_000.0, "high"),  # a car: 4 of 4
    (None, None, None, None, "low"),  # no figures: nothing holds
    (7, 20.9, 1, 999.99, "low"),  # just under every bound
]


def test_involvement_level_expr_and_plain_python_agree(con):
    inv = load_journey_model().involvement
    assert inv is not None
    df = pd.DataFrame(JOURNEYS, columns=["n", "days", "human", "revenue", "expected"])
    j = ibis.memtable(
        df,
        schema={
            "n": "int64",
            "days": "float64",
            "human": "int64",
            "revenue": "float64",
            "expected": "string",
        },
    )
    level = inv.level_expr(
        touchpoints_before_conversion=j.n, duration_days=j.days, human_contacts=j.human, revenue=j.revenue
    )
    got = con.execute(j.select(level=level))["level"].tolist()
    assert got == df["expected"].tolist()
    python = [
        inv.level(touchpoints_before_conversion=n, duration_days=d, human_contacts=h, revenue=r)
        for n, d, h, r, _ in JOURNEYS
    ]
    assert python == df["expected"].tolist()
    with pytest.raises(
        SpecError, match="involvement criterion revenue_at_least is set, so level_expr needs revenue"
    ):
        inv.level_expr(touchpoints_before_conversion=j.n, duration_days=j.days, human_contacts=j.human)


def test_human_contact_channels(con):
    inv = load_journey_model().involvement
    assert inv is not None
    t = _table()
    assert _column(con, t, inv.human_contact_expr(t)) == [row[1] in ("store", "call_centre") for row in ROWS]


# -- validation messages ---------------------------------------------------------------------------------

TYPO = """\
name: mine
journey_types:
  - name: purchase
    default: true
    timeout_days: 30
    conversion: {touchpoint: [purchase]}
  - name: complaint
    opens: {touchpoint: [complaint]}
    timout_days: 14
"""


def test_typo_names_file_line_and_expected(tmp_path: Path):
    path = tmp_path / "journeys.yaml"
    path.write_text(TYPO, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_journey_model(path)
    assert str(exc.value) == (
        f"{path}:7: journey_types[1]: missing field 'timeout_days'\n"
        f"{path}:9: journey_types[1]: unknown field 'timout_days'; expected one of name, label, description, "
        "default, timeout_days, opens, members, conversion, ends, repeat_after_conversion"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: m\njourney_types:\n  - {name: a, timeout_days: 1}\n  - {name: b, timeout_days: 1}\n",
            "m.yaml:2: journey_types: exactly one journey type must have default: true, got none",
        ),
        (
            "name: m\njourney_types:\n  - {name: a, default: true, timeout_days: 1}\n  - {name: b, default: true, timeout_days: 1}\n",
            "m.yaml:2: journey_types: exactly one journey type must have default: true, got 2 (a, b)",
        ),
        (
            "name: m\njourney_types:\n  - {name: a, default: true, timeout_days: 1}\n  - {name: a, timeout_days: 2}\n",
            "m.yaml:4: journey_types[1].name: duplicate journey type 'a' (also journey_types[0])",
        ),
        (
            "name: m\njourney_types:\n  - name: a\n    default: true\n    timeout_days: 1\n    repeat_after_conversion: true\n",
            "m.yaml:6: journey_types[0].repeat_after_conversion: repeat_after_conversion needs a conversion; "
            "expected a conversion rule on this journey type",
        ),
        (
            "name: m\nview: shopper\njourney_types:\n  - {name: a, default: true, timeout_days: 1}\n",
            "m.yaml:2: view: expected 'buyer' or 'customer', got 'shopper'",
        ),
        (
            "name: m\njourney_types:\n  - {name: a, default: true, timeout_days: 0}\n",
            "m.yaml:3: journey_types[0].timeout_days: expected more than 0, got 0",
        ),
        (
            "name: m\njourney_types:\n  - name: a\n    default: true\n    timeout_days: 1\n    opens: {touchpont: [x]}\n",
            "m.yaml:6: journey_types[0].opens: unknown field 'touchpont'; expected one of touchpoint, touchpoint_not, "
            "channel, channel_not, content_type, content_type_not, journey_type, journey_type_not, property, property_not",
        ),
        (
            "name: m\njourney_types:\n  - {name: a, default: true, timeout_days: 1}\n"
            "involvement:\n  journey_types: [a, purchse]\n  revenue_at_least: 10\n",
            "m.yaml:5: involvement.journey_types[1]: unknown journey type 'purchse'; expected one of a",
        ),
        (
            "name: m\njourney_types:\n  - {name: a, default: true, timeout_days: 1}\n"
            "involvement:\n  high_when_at_least: 2\n  revenue_at_least: 10\n",
            "m.yaml:5: involvement.high_when_at_least: high_when_at_least is 2 but 1 criteria are set; expected at most 1",
        ),
        (
            "name: m\njourney_types: []\n",
            "m.yaml:2: journey_types: a journey model needs at least one journey type, got none",
        ),
    ],
)
def test_validation_messages(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_journey_model(text, "m.yaml")
    assert str(exc.value) == message


def test_unknown_builtin_journey_model():
    with pytest.raises(
        ConfigError, match="unknown journey model 'b2b'; expected one of default or the path of a .yaml file"
    ):
        load_journey_model("b2b")


# -- Spark -----------------------------------------------------------------------------------------------


def _all_expressions(t: ibis.Table) -> ibis.Table:
    model = load_journey_model()
    inv = model.involvement
    assert inv is not None
    columns = {"opens": model.opens_expr(t), "human": inv.human_contact_expr(t)}
    for jt in model.journey_types:
        columns[f"{jt.name}_member"] = jt.member_expr(t)
        columns[f"{jt.name}_conversion"] = jt.conversion_expr(t)
        columns[f"{jt.name}_ends"] = jt.ends_expr(t, view="buyer")
    return t.select("event_id", **columns).order_by("event_id")


def test_expressions_compile_for_pyspark():
    sql = ibis.to_sql(_all_expressions(_table()), dialect="pyspark")
    assert "CASE" in sql


@pytest.mark.spark
def test_expressions_give_the_same_result_on_spark(con):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    expr = _all_expressions(_table())
    on_spark = ibis.pyspark.connect(session).execute(expr)
    pd.testing.assert_frame_equal(on_spark.fillna("-"), con.execute(expr).fillna("-"), check_dtype=False)
