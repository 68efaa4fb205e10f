"""Phase models: loading, validation with file:line messages, rule compilation on DuckDB and Spark, coverage."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pandas as pd
import pytest

from journeylens.errors import ConfigError, SpecError
from journeylens.journeys.models import (
    Matcher,
    coverage_report,
    list_phase_models,
    load_phase_model,
    parse_phase_model,
    validate_phase_model_file,
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

BUILTINS = [
    "three-phase",
    "five-phase",
    "buyer-journey",
    "see-think-do-care",
    "6b",
    "aida",
    "consumer-decision-journey",
]

# Every touchpoint of the demo vocabulary, with a plausible channel and content type, and the phase each
# built-in model gives it, worked out by hand from the YAML (later phases win; "-" = neutral, NULL).
# review_written carries the content type "review" (consideration content) on purpose: the touchpoint rule
# of the later phase must win. newsletter_signup carries "newsletter" (loyalty content): the loyalty rules
# leave it out with touchpoint_not.
DEMO = """
touchpoint            channel         content_type        three-phase   five-phase    buyer-journey  see-think-do-care 6b         aida      consumer-decision-journey
ad_view               display         ad                  orientation   awareness     awareness      see    bezoeken   attention  trigger
ad_click              paid_search     ad                  orientation   awareness     awareness      see    bezoeken   attention  initial_consideration
social_post_view      social          social_post         orientation   awareness     orientation    see    bezoeken   attention  trigger
article_read          website         blog_article        orientation   awareness     orientation    see    bezoeken   attention  trigger
search_click          organic_search  -                   orientation   awareness     orientation    see    bezoeken   attention  initial_consideration
site_visit            website         -                   consideration consideration consideration  think  bezoeken   interest   initial_consideration
tutorial_view         website         tutorial            consideration consideration consideration  think  boeien     interest   active_evaluation
whitepaper_download   website         whitepaper          consideration consideration consideration  think  boeien     interest   active_evaluation
comparison_view       review_site     comparison          consideration consideration consideration  think  boeien     interest   active_evaluation
review_read           review_site     review              consideration consideration consideration  think  boeien     interest   active_evaluation
webinar_attend        website         webinar             consideration consideration consideration  think  boeien     interest   active_evaluation
newsletter_signup     email           newsletter          consideration consideration consideration  think  boeien     interest   initial_consideration
video_view            social          video               decision      purchase      decision       do     beslissen  desire     active_evaluation
product_view          website         product_sheet       decision      purchase      decision       do     beslissen  desire     active_evaluation
demo_request          website         demo                decision      purchase      decision       do     beslissen  desire     active_evaluation
quote_request         email           quote               decision      purchase      decision       do     beslissen  desire     active_evaluation
store_visit           store           -                   decision      purchase      decision       do     beslissen  desire     active_evaluation
sales_call            call_centre     -                   decision      purchase      decision       do     beslissen  desire     active_evaluation
add_to_cart           website         -                   decision      purchase      decision       do     beslissen  desire     purchase
checkout              website         -                   decision      purchase      decision       do     bestellen  action     purchase
purchase              website         -                   decision      purchase      decision       do     betalen    action     purchase
login                 app             -                   -             -             -              -      -          -          -
delivery              email           delivery_update     decision      service       promoter       care   binden     action     post_purchase
manual_view           website         manual              decision      service       promoter       care   binden     action     post_purchase
support_call          call_centre     support_article     decision      service       promoter       care   binden     action     post_purchase
support_chat          chat            -                   decision      service       promoter       care   binden     action     post_purchase
complaint             call_centre     -                   decision      service       promoter       care   binden     action     post_purchase
repair_request        website         -                   decision      service       promoter       care   binden     action     post_purchase
return_request        website         -                   decision      service       promoter       care   binden     action     post_purchase
refund                website         -                   decision      service       promoter       care   binden     action     post_purchase
service_request       app             -                   decision      service       promoter       care   binden     action     post_purchase
survey_response       email           -                   -             -             -              -      -          -          -
newsletter_open       email           newsletter          decision      loyalty       promoter       care   binden     action     post_purchase
review_written        review_site     review              decision      loyalty       promoter       care   binden     action     post_purchase
referral              referral        referral_programme  decision      loyalty       promoter       care   binden     action     post_purchase
vacancy_view          website         vacancy             consideration consideration consideration  think  boeien     interest   active_evaluation
employer_story_view   social          employer_story      orientation   awareness     orientation    see    bezoeken   attention  trigger
application_submitted website         -                   decision      purchase      decision       do     beslissen  action     purchase
interview             partner         -                   decision      purchase      decision       do     beslissen  action     purchase
hired                 partner         -                   decision      purchase      decision       do     beslissen  action     purchase
"""


def _demo() -> tuple[list[dict], dict[str, list[str | None]]]:
    lines = [line.split() for line in DEMO.strip().splitlines()]
    header, body = lines[0], lines[1:]
    rows, expected = [], {name: [] for name in header[3:]}
    for i, cells in enumerate(body):
        # one person per row, an hour apart: audience rules (earlier purchases) do not fire here
        rows.append(
            {
                "event_id": f"e{i:02d}",
                "person_id": f"p{i:02d}",
                "timestamp": pd.Timestamp("2024-03-01T09:00Z") + pd.Timedelta(hours=i),
                "channel": cells[1],
                "touchpoint": cells[0],
                "content_type": None if cells[2] == "-" else cells[2],
                "journey_type": None,
                "properties": None,
            }
        )
        for name, phase in zip(header[3:], cells[3:], strict=True):
            expected[name].append(None if phase == "-" else phase)
    return rows, expected


def _table(rows: list[dict]) -> ibis.Table:
    df = pd.DataFrame(rows, columns=list(SCHEMA))
    return ibis.memtable(df, schema=SCHEMA)


def _at(**rows: tuple[str, ...]) -> list[dict]:
    """Rows of one person, one an hour apart: name=(touchpoint, channel, content_type[, properties])."""
    out = []
    for i, (event_id, spec) in enumerate(rows.items()):
        touchpoint, channel, content_type, *props = spec
        out.append(
            {
                "event_id": event_id,
                "person_id": "anna",
                "timestamp": pd.Timestamp("2024-01-01T10:00Z") + pd.Timedelta(hours=i),
                "channel": channel,
                "touchpoint": touchpoint,
                "content_type": content_type,
                "journey_type": None,
                "properties": props[0] if props else None,
            }
        )
    return out


@pytest.fixture(scope="module")
def con() -> ibis.BaseBackend:
    return ibis.duckdb.connect()


def _phases(con, t: ibis.Table, model, **kwargs) -> list[str | None]:
    result = con.execute(t.select("event_id", phase=model.phase_expr(t, **kwargs)).order_by("event_id"))
    return [None if pd.isna(v) else v for v in result["phase"]]


# -- built-in models -------------------------------------------------------------------------------------


def test_every_builtin_model_is_listed_and_loads():
    listed = {info.name: info for info in list_phase_models()}
    assert sorted(listed) == sorted(BUILTINS)
    assert listed["see-think-do-care"].phases == ["see", "think", "do", "care"]
    assert listed["6b"].phases == ["bezoeken", "boeien", "beslissen", "bestellen", "betalen", "binden"]
    assert listed["consumer-decision-journey"].phases == [
        "trigger",
        "initial_consideration",
        "active_evaluation",
        "purchase",
        "post_purchase",
    ]
    for name in BUILTINS:
        model = load_phase_model(name)
        assert model.name == name
        assert listed[name].description == model.description != ""
        for phase in model.phases:
            assert phase.questions, f"{name}.{phase.name} has no questions"
            assert phase.description, f"{name}.{phase.name} has no description"
    assert load_phase_model("6b").phase("binden").label == "Binden"
    assert load_phase_model("three-phase").phase("orientation").intended_content == [
        "ad",
        "blog_article",
        "social_post",
    ]


def test_unknown_builtin_name():
    with pytest.raises(ConfigError) as exc:
        load_phase_model("four-phase")
    assert str(exc.value) == (
        "unknown phase model 'four-phase'; expected one of 6b, aida, buyer-journey, consumer-decision-journey, "
        "five-phase, see-think-do-care, three-phase or the path of a .yaml file"
    )


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_model_classifies_every_demo_touchpoint(con, name):
    rows, expected = _demo()
    t = _table(rows)
    assert _phases(con, t, load_phase_model(name)) == expected[name]


@pytest.mark.parametrize("name", BUILTINS)
def test_plain_python_classify_agrees_with_the_expression(name):
    rows, expected = _demo()
    model = load_phase_model(name)
    assert [model.classify(r) for r in rows] == expected[name]


def test_phase_index_and_lookups(con):
    model = load_phase_model("five-phase")
    rows = _at(a=("ad_view", "display", "ad"), b=("login", "app", None), c=("refund", "website", None))
    t = _table(rows)
    got = con.execute(t.select("event_id", i=model.phase_index_expr(t)).order_by("event_id"))
    assert [None if pd.isna(v) else int(v) for v in got["i"]] == [0, None, 3]
    assert model.index("loyalty") == 4
    with pytest.raises(
        SpecError, match=r"unknown phase 'kare' in phase model 'five-phase'; expected one of awareness"
    ):
        model.phase("kare")


def test_loyalty_loop_expected_phases():
    cdj = load_phase_model("consumer-decision-journey")
    assert cdj.loyalty_loop is True
    assert cdj.expected_phases() == cdj.phase_names
    assert cdj.expected_phases(repeat=True) == ["trigger", "purchase", "post_purchase"]
    five = load_phase_model("five-phase")
    assert five.expected_phases(repeat=True) == five.phase_names


# -- audience rules and carrying the phase forward ---------------------------------------------------------


def test_see_think_do_care_audience_rule_counts_earlier_purchases(con):
    model = load_phase_model("see-think-do-care")
    rows = _at(
        a=("ad_view", "display", "ad"),  # see
        b=("purchase", "website", None),  # do (0 earlier purchases)
        c=("site_visit", "website", None),  # think (1)
        d=("purchase", "store", None),  # do (1 earlier: the second purchase itself is not yet Care)
        e=("ad_view", "display", "ad"),  # care (2 earlier purchases)
        f=("login", "app", None),  # care: audience rules come before neutral
    )
    rows.append({**rows[0], "event_id": "g", "person_id": "bert"})  # another person: no purchases
    t = _table(rows)
    assert _phases(con, t, model) == ["see", "do", "think", "do", "care", "care", "see"]


def test_buyer_journey_repeat_purchase_is_promoter(con):
    model = load_phase_model("buyer-journey")
    rows = _at(
        a=("purchase", "website", None),
        b=("site_visit", "website", None),
        c=("purchase", "website", None),
    )
    assert _phases(con, _table(rows), model) == ["decision", "consideration", "promoter"]


def test_audience_rule_reads_the_person_column_named(con):
    model = load_phase_model("see-think-do-care")
    rows = _at(
        a=("purchase", "website", None), b=("purchase", "website", None), c=("site_visit", "website", None)
    )
    for i, row in enumerate(rows):  # three devices of one stitched person
        row["person_id"], row["stitched"] = f"device{i}", "anna"
    df = pd.DataFrame(rows)
    t = ibis.memtable(df, schema={**SCHEMA, "stitched": "string"})
    assert _phases(con, t, model) == ["do", "do", "think"]
    assert _phases(con, t, model, person="stitched") == ["do", "do", "care"]


def test_with_phases_carries_the_previous_phase_forward(con):
    model = load_phase_model("five-phase")
    rows = _at(
        a=("login", "app", None),  # nothing before it, no default phase: stays NULL
        b=("support_call", "call_centre", None),  # service
        c=("survey_response", "email", None),  # neutral: scores the service phase
        d=("mystery", "website", None),  # unmatched: keeps service too
        e=("product_view", "website", "product_sheet"),  # purchase
        f=("login", "app", None),  # purchase
    )
    rows.append({**rows[2], "event_id": "g", "person_id": "bert"})  # bert's survey has no phase before it
    rows.append({**rows[3], "event_id": "h", "person_id": None})  # anonymous: nobody's history
    rows.append({**rows[4], "event_id": "i", "person_id": None})
    t = _table(rows)
    got = con.execute(model.with_phases(t).order_by("event_id"))
    assert [None if pd.isna(v) else v for v in got["phase"]] == [
        None,
        "service",
        "service",
        "service",
        "purchase",
        "purchase",
        None,
        None,
        "purchase",
    ]
    assert [None if pd.isna(v) else int(v) for v in got["phase_index"]] == [
        None,
        3,
        3,
        3,
        2,
        2,
        None,
        None,
        2,
    ]
    plain = con.execute(model.with_phases(t, carry_forward=False).order_by("event_id"))
    assert [None if pd.isna(v) else v for v in plain["phase"]] == [
        None,
        "service",
        None,
        None,
        "purchase",
        None,
        None,
        None,
        "purchase",
    ]
    by_journey = t.mutate(journey_id=ibis.ifelse(t.event_id.isin(["a", "b", "c"]), "j1", "j2"))
    got = con.execute(model.with_phases(by_journey, by="journey_id").order_by("event_id"))
    # d (unmatched) opens journey j2: nothing to carry within it
    assert [None if pd.isna(v) else v for v in got["phase"]][:6] == [
        None,
        "service",
        "service",
        None,
        "purchase",
        "purchase",
    ]


# -- precedence, negations, properties ----------------------------------------------------------------------

PRECEDENCE = """\
name: precedence
phases:
  - name: early
    rules:
      - channel: [email]
      - touchpoint: [shared]
  - name: late
    rules:
      - touchpoint: [shared, late_only]
      - content_type: [offer]
        channel_not: [email]
neutral:
  - touchpoint: [ping]
default_phase: early
"""


def test_precedence_later_phases_then_neutral_then_default(con):
    model = parse_phase_model(PRECEDENCE)
    rows = _at(
        a=("shared", "website", None),  # both phases' rules match: the later phase wins
        b=("news", "email", None),  # early by channel
        c=("news", "email", "offer"),  # offer, but on email: the late rule's negation fails -> early
        d=("news", "website", "offer"),  # late
        e=("ping", "email", None),  # neutral: NULL, although the early channel rule matches too
        f=("unknown", "website", None),  # nothing matches: the default phase
        g=("news", None, "offer"),  # a NULL channel passes channel_not
    )
    assert _phases(con, _table(rows), model) == ["late", "early", "early", "late", None, "early", "late"]


def test_negations_treat_missing_values_as_not_listed(con):
    model = parse_phase_model(
        """\
name: negations
phases:
  - name: content
    rules:
      - content_type_not: [ad]
        touchpoint_not: [purchase, refund]
  - name: other
    rules:
      - touchpoint: [purchase]
"""
    )
    rows = _at(
        a=("site_visit", "website", None),  # no content type: not an ad -> content
        b=("ad_view", "display", "ad"),  # an ad -> nothing
        c=("purchase", "website", None),  # other
        d=("refund", "website", "manual"),  # excluded touchpoint -> nothing
    )
    assert _phases(con, _table(rows), model) == ["content", None, "other", None]


PROPERTIES_MODEL = """\
name: properties
phases:
  - name: paid
    rules:
      - property: {key: utm_medium, equals: cpc}
  - name: owned
    rules:
      - property: {key: utm_medium, in: [email, newsletter]}
  - name: counted
    rules:
      - property: [{key: visits, equals: 3}, {key: returning, equals: true}]
  - name: nested
    rules:
      - property: {key: utm.source, equals: partner}
  - name: tagged
    rules:
      - property: {key: campaign, exists: true}
        property_not: {key: test, exists: true}
"""

PROPERTY_ROWS = {
    "a": ("site_visit", "website", None, json.dumps({"utm_medium": "cpc"})),
    "b": ("site_visit", "website", None, json.dumps({"utm_medium": "email", "visits": 3})),
    "c": ("site_visit", "website", None, json.dumps({"returning": True, "visits": 3})),
    "d": ("site_visit", "website", None, json.dumps({"returning": False, "visits": 3})),
    "e": ("site_visit", "website", None, json.dumps({"utm": {"source": "partner"}})),
    "f": ("site_visit", "website", None, json.dumps({"campaign": "spring"})),
    "g": ("site_visit", "website", None, json.dumps({"campaign": "spring", "test": 1})),
    "h": ("site_visit", "website", None, json.dumps({"campaign": None})),
    "i": ("site_visit", "website", None, None),
    "j": ("site_visit", "website", None, "{}"),
    "k": ("site_visit", "website", None, json.dumps({"utm_medium": "CPC", "visits": "3"})),
    "l": ("site_visit", "website", None, json.dumps({"utm_medium": "cpc", "campaign": "x"}, sort_keys=True)),
}
# later phases win: l is paid and tagged -> tagged
PROPERTY_EXPECTED = [
    "paid",
    "owned",
    "counted",
    None,
    "nested",
    "tagged",
    None,
    None,
    None,
    None,
    None,
    "tagged",
]


def test_property_conditions(con):
    model = parse_phase_model(PROPERTIES_MODEL)
    t = _table(_at(**PROPERTY_ROWS))
    assert _phases(con, t, model) == PROPERTY_EXPECTED


def test_property_conditions_in_plain_python_agree():
    model = parse_phase_model(PROPERTIES_MODEL)
    assert [model.classify(r) for r in _at(**PROPERTY_ROWS)] == PROPERTY_EXPECTED


def test_matcher_accepts_single_names_and_mappings():
    m = Matcher.model_validate({"touchpoint": "purchase", "property": {"key": "a", "exists": True}})
    assert m.touchpoint == ["purchase"]
    assert m.property is not None and m.property[0].key == "a"
    assert m.columns() == {"touchpoint", "properties"}


# -- validation messages ---------------------------------------------------------------------------------

TYPO = """\
name: mymodel
description: a model with a typo
phases:
  - name: see
    rules:
      - touchpoint: [ad_view]
  - name: think
    rules:
      - touchpoint: [site_visit]
  - name: do
    rules:
      - contnet_type: [quote]
"""


def test_typo_in_a_rule_names_file_line_field_and_expected(tmp_path: Path):
    path = tmp_path / "mymodel.yaml"
    path.write_text(TYPO, encoding="utf-8")
    message = (
        f"{path}:12: phases[2].rules[0]: unknown field 'contnet_type'; expected one of touchpoint, "
        "touchpoint_not, channel, channel_not, content_type, content_type_not, journey_type, journey_type_not, "
        "property, property_not"
    )
    with pytest.raises(ConfigError) as exc:
        load_phase_model(path)
    assert str(exc.value) == message
    assert exc.value.code == "invalid_config"
    problems = validate_phase_model_file(path)
    assert [str(p) for p in problems] == [message]
    assert (problems[0].line, problems[0].path, problems[0].code) == (
        12,
        "phases[2].rules[0]",
        "unknown_field",
    )


def test_unknown_phase_in_audience_rule_and_default(tmp_path: Path):
    text = """\
name: stdc
phases:
  - {name: see, rules: [{content_type: [ad]}]}
  - {name: think, rules: [{content_type: [tutorial]}]}
  - {name: do, rules: [{touchpoint: [purchase]}]}
  - {name: care, rules: [{content_type: [manual]}]}
default_phase: sea
audience_rules:
  - phase: kare
    min_purchases: 2
    purchase: {touchpoint: [purchase]}
"""
    path = tmp_path / "stdc.yaml"
    path.write_text(text, encoding="utf-8")
    assert [str(p) for p in validate_phase_model_file(path)] == [
        f"{path}:7: default_phase: unknown phase 'sea'; expected one of see, think, do, care",
        f"{path}:9: audience_rules[0].phase: unknown phase 'kare'; expected one of see, think, do, care",
    ]


def test_duplicate_and_empty_phases():
    with pytest.raises(ConfigError) as exc:
        parse_phase_model("name: x\nphases:\n  - name: a\n  - name: b\n  - name: a\n", "dup.yaml")
    assert str(exc.value) == "dup.yaml:5: phases[2].name: duplicate phase name 'a' (also phases[0])"
    with pytest.raises(ConfigError) as exc:
        parse_phase_model("name: x\nphases: []\n", "empty.yaml")
    assert str(exc.value) == "empty.yaml:2: phases: a phase model needs at least one phase, got none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "m.yaml:1: expected a mapping of fields, got an empty file"),
        ("- a\n- b\n", "m.yaml:1: expected a mapping of fields, got a list"),
        (
            "name: x\nphases: [\n",
            "m.yaml:2: invalid YAML: expected the node content, but found the end of the file",
        ),
        ("phases:\n  - name: a\n", "m.yaml:1: missing field 'name'"),
        (
            "name: x\nname: y\nphases:\n  - name: a\n",
            "m.yaml:2: duplicate key 'name'; each field may appear once",
        ),
        (
            "name: x\nphases:\n  - name: my phase\n",
            "m.yaml:3: phases[0].name: expected a name of letters, digits and _ that starts with a letter, got 'my phase'",
        ),
        (
            "name: x\nphases:\n  - name: a\n    rules:\n      - touchpoint: []\n",
            "m.yaml:5: phases[0].rules[0].touchpoint: expected at least one entry, got an empty list (which would match nothing)",
        ),
        (
            "name: x\nphases:\n  - name: a\n    rules:\n      - property: {key: k, equals: 1, exists: true}\n",
            "m.yaml:5: phases[0].rules[0].property: a property condition needs exactly one of equals, in, exists; got equals, exists",
        ),
        (
            "name: x\nphases:\n  - name: a\naudience_rules:\n  - {phase: a, min_purchases: 0, purchase: {touchpoint: p}}\n",
            "m.yaml:5: audience_rules[0].min_purchases: expected at least 1, got 0",
        ),
        (
            "name: x\nphases:\n  - name: a\nloyalty_loop: maybe\n",
            "m.yaml:4: loyalty_loop: expected true or false, got 'maybe'",
        ),
        (
            "name: x\nphases:\n  - name: a\nloyalty_loop: true\n",
            "m.yaml:4: loyalty_loop: loyalty_loop is true but loyalty_loop_skips names no phase; "
            "expected the phases a repeat journey may skip",
        ),
    ],
)
def test_validation_messages(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_phase_model(text, "m.yaml")
    assert str(exc.value) == message


def test_models_built_in_python_check_across_fields_too():
    from pydantic import ValidationError

    from journeylens.journeys.models import PhaseModel

    with pytest.raises(ValidationError, match=r"default_phase: unknown phase 'sea'; expected one of see, do"):
        PhaseModel.model_validate(
            {"name": "x", "phases": [{"name": "see"}, {"name": "do"}], "default_phase": "sea"}
        )


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: no such file"):
        load_phase_model(path)
    assert [p.code for p in validate_phase_model_file(path)] == ["unusable_file"]


def test_builtin_files_validate_clean():
    from journeylens.journeys.models.phase_model import builtin_dir

    for name in BUILTINS:
        assert validate_phase_model_file(builtin_dir() / f"{name}.yaml") == []


# -- coverage ----------------------------------------------------------------------------------------------


def test_coverage_report_counts_unmatched_and_overlaps():
    model = parse_phase_model(PRECEDENCE.replace("default_phase: early\n", ""))
    summary = pd.DataFrame(
        [
            ("shared", "website", None, 40),  # early and late -> overlap, late wins
            ("news", "email", "offer", 25),  # early only (the late rule excludes email)
            ("news", "social", "offer", 7),  # late only
            ("ping", "email", None, 90),  # neutral and early -> overlap, neutral wins
            ("mystery", "website", None, 12),  # nothing
            ("other", "app", None, 300),  # nothing
        ],
        columns=["touchpoint", "channel", "content_type", "count"],
    )
    warnings = coverage_report(model, summary)
    assert [(w.kind, w.touchpoint, w.count, w.phases, w.winner) for w in warnings] == [
        ("unmatched", "other", 300, (), None),
        ("unmatched", "mystery", 12, (), None),
        ("overlap", "ping", 90, ("(neutral)", "early"), "(neutral)"),
        ("overlap", "shared", 40, ("early", "late"), "late"),
    ]
    assert str(warnings[0]) == (
        "touchpoint 'other' on channel 'app' with content type none: 300 touchpoints match no phase rule; "
        "they keep the previous phase or stay unassigned"
    )
    assert str(warnings[3]) == (
        "touchpoint 'shared' on channel 'website' with content type none: 40 touchpoints match the rules of "
        "early and late; they go to late (later phases come first)"
    )


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_models_leave_no_demo_touchpoint_unmatched(name):
    rows, _ = _demo()
    summary = pd.DataFrame(rows)[["touchpoint", "channel", "content_type"]].assign(count=1)
    warnings = coverage_report(load_phase_model(name), summary)
    assert [w.touchpoint for w in warnings if w.kind == "unmatched"] == []


def test_coverage_report_needs_the_summary_columns():
    with pytest.raises(SpecError, match="missing content_type, count"):
        coverage_report(load_phase_model("aida"), pd.DataFrame({"touchpoint": [], "channel": []}))


# -- Spark -----------------------------------------------------------------------------------------------


def _all_models_select(t: ibis.Table) -> ibis.Table:
    columns = {name.replace("-", "_"): load_phase_model(name).phase_expr(t) for name in BUILTINS}
    columns["properties_model"] = parse_phase_model(PROPERTIES_MODEL).phase_expr(t)
    return t.select("event_id", **columns).order_by("event_id")


def _spark_test_table() -> ibis.Table:
    rows, _ = _demo()
    more = _at(**PROPERTY_ROWS)
    for row in more:
        row["event_id"] = "z" + row["event_id"]
    # a person with repeat purchases, for the audience rules
    repeat = _at(
        r1=("purchase", "website", None), r2=("purchase", "website", None), r3=("ad_view", "display", "ad")
    )
    for row in repeat:
        row["event_id"], row["person_id"] = "z" + row["event_id"], "bert"
    return _table(rows + more + repeat)


@pytest.mark.parametrize("name", BUILTINS)
def test_phase_expr_compiles_for_pyspark(name):
    model = load_phase_model(name)
    t = _spark_test_table()
    sql = ibis.to_sql(t.select(model.phase_expr(t), model.phase_index_expr(t)), dialect="pyspark")
    assert "CASE" in sql
    ibis.to_sql(model.with_phases(t), dialect="pyspark")


def test_property_conditions_compile_without_python_udfs():
    t = _spark_test_table()
    sql = ibis.to_sql(t.select(parse_phase_model(PROPERTIES_MODEL).phase_expr(t)), dialect="pyspark")
    assert "GET_JSON_OBJECT" in sql
    assert "UNWRAP_JSON" not in sql.upper()


@pytest.fixture(scope="module")
def spark_con():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    return ibis.pyspark.connect(session)


@pytest.mark.spark
def test_phase_expr_gives_the_same_phases_on_spark_and_duckdb(con, spark_con):
    t = _spark_test_table()
    expr = _all_models_select(t)
    on_duckdb = con.execute(expr)
    on_spark = spark_con.execute(expr)
    pd.testing.assert_frame_equal(on_spark.fillna("-"), on_duckdb.fillna("-"), check_dtype=False)
    # and both are the hand-worked phases
    rows, expected = _demo()
    n = len(rows)
    assert list(on_duckdb["five_phase"][:n].fillna("-")) == [p or "-" for p in expected["five-phase"]]
    assert list(on_duckdb["properties_model"][n : n + len(PROPERTY_ROWS)].fillna("-")) == [
        p or "-" for p in PROPERTY_EXPECTED
    ]
    assert list(on_duckdb["see_think_do_care"][-3:]) == ["do", "do", "care"]

    carried = (
        load_phase_model("five-phase")
        .with_phases(t)
        .select("event_id", "phase", "phase_index")
        .order_by("event_id")
    )
    pd.testing.assert_frame_equal(
        spark_con.execute(carried).fillna(-1), con.execute(carried).fillna(-1), check_dtype=False
    )
