"""Phase models: ordered phases, and rules that put each touchpoint in one of them.

A phase model is a YAML file (the built-in ones are in ``builtin/``; any organisation can write its own)::

    name: three-phase
    description: The sales funnel (ToFu / MoFu / BoFu).
    phases:                                  # in order
      - name: orientation                    # an identifier: letters, digits, _
        label: Orientation / awareness
        description: The buyer realises a problem.
        questions: ["How bad is it?"]        # the customer's questions in this phase
        intended_content: [ad, blog_article] # the content types meant to serve it
        rules:                               # matchers (see journeylens.journeys.models.matcher)
          - content_type: [ad, blog_article, social_post]
          - touchpoint: [ad_view, ad_click]
          - channel: [display]
            touchpoint_not: [purchase]
            property: {key: utm_medium, equals: cpc}
    neutral:                                 # touchpoints with no phase of their own (optional)
      - touchpoint: [login]
    default_phase: null                      # or a phase name (optional)
    audience_rules:                          # optional
      - phase: care
        min_purchases: 2
        purchase: {touchpoint: [purchase]}   # what counts as a purchase
        applies_to: {touchpoint: [purchase]} # optional: only these touchpoints move
    loyalty_loop: false                      # optional; see below
    loyalty_loop_skips: []

**How a touchpoint gets its phase** (``PhaseModel.phase_expr``), first hit wins:

1. *audience rules*, in list order: the person has at least ``min_purchases`` purchases strictly before this
   touchpoint (ordered by timestamp, event_id), and the touchpoint matches ``applies_to`` if given;
2. *neutral* touchpoints (a login, a survey answer) get no phase of their own: NULL;
3. *phase rules*, **later phases first**: the phases are tried from the last to the first, and within a
   phase any rule matching is enough. The furthest-along signal wins: a purchase that carries an ad's
   content type is a decision, not awareness. Where a rule of an earlier phase should win, narrow the later
   phase's rule with a ``*_not`` condition; ``coverage_report`` lists every overlap;
4. ``default_phase`` if set, else NULL (*unassigned*).

``phase_expr`` thus gives NULL for neutral and unmatched touchpoints. ``with_phases`` adds the columns
``phase`` and ``phase_index`` and, by default, *carries the previous phase forward*: a NULL takes the phase
of the person's (or journey's) previous touchpoint, and a NULL with no phase before it takes
``default_phase`` (so it stays NULL when there is none). That is what ``default_phase: null`` means: keep
the previous phase, or stay unassigned.

**Loyalty loop** (the consumer decision journey): ``loyalty_loop: true`` says a *repeat* journey (one the
journey model flags as repeat) may skip the phases in ``loyalty_loop_skips``. It does not change how
touchpoints are classified; it changes which phases such a journey is expected to pass through
(``expected_phases(repeat=True)``), so that funnels and drop-off analyses do not count the skipped phases
as drop-offs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from journeylens.errors import SpecError
from journeylens.journeys.models._config import (
    JOURNEY_PREFIX,
    ConfigModel,
    CrossProblem,
    Problem,
    builtin_dir,
    check_name,
    load_model,
    parse_text,
    validate_file,
)
from journeylens.journeys.models.matcher import MatcherList, NameList, any_expr, any_matches, missing_to_none

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd


class Phase(BaseModel):
    """One phase: what it is, what the customer asks in it, what content serves it, and its rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str | None = None
    description: str = ""
    questions: list[str] = []
    intended_content: NameList = []
    rules: MatcherList = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @property
    def title(self) -> str:
        """The label, or the name when there is none."""
        return self.label or self.name

    def matches_expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where any of the phase's rules matches."""
        return any_expr(self.rules, t)


class AudienceRule(BaseModel):
    """Put a person's touchpoints in ``phase`` once they have made ``min_purchases`` purchases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: str
    min_purchases: int = Field(ge=1)
    purchase: MatcherList
    applies_to: MatcherList | None = None

    def expr(self, t: ir.Table, *, person: str = "person_id") -> ir.BooleanValue:
        """True where the person had at least ``min_purchases`` purchases strictly before this touchpoint."""
        import ibis

        bought = any_expr(self.purchase, t).cast("int64")
        window = ibis.cumulative_window(group_by=t[person], order_by=[t.timestamp, t.event_id])
        earlier = bought.sum().over(window) - bought
        cond = t[person].notnull() & (earlier >= self.min_purchases).fill_null(False)
        if self.applies_to:
            cond = cond & any_expr(self.applies_to, t)
        return cond


class PhaseModel(ConfigModel):
    """An ordered list of phases and the rules that classify touchpoints into them."""

    name: str = Field(min_length=1)
    description: str = ""
    phases: list[Phase]
    neutral: MatcherList = []
    default_phase: str | None = None
    audience_rules: list[AudienceRule] = []
    loyalty_loop: bool = False
    loyalty_loop_skips: list[str] = []

    @field_validator("phases")
    @classmethod
    def _some_phases(cls, value: list[Phase]) -> list[Phase]:
        if not value:
            raise ValueError("a phase model needs at least one phase, got none")
        return value

    def cross_problems(self) -> list[CrossProblem]:
        """Problems across fields: duplicate phase names, references to phases that do not exist."""
        problems: list[CrossProblem] = []
        first: dict[str, int] = {}
        for i, phase in enumerate(self.phases):
            if phase.name in first:
                problems.append(
                    CrossProblem(
                        ("phases", i, "name"),
                        f"duplicate phase name '{phase.name}' (also phases[{first[phase.name]}])",
                        "duplicate_phase",
                    )
                )
            first.setdefault(phase.name, i)
        if self.default_phase is not None:
            problems += self._unknown(("default_phase",), self.default_phase)
        for i, rule in enumerate(self.audience_rules):
            problems += self._unknown(("audience_rules", i, "phase"), rule.phase)
        for i, name in enumerate(self.loyalty_loop_skips):
            problems += self._unknown(("loyalty_loop_skips", i), name)
        if self.loyalty_loop and not self.loyalty_loop_skips:
            problems.append(
                CrossProblem(
                    ("loyalty_loop",),
                    "loyalty_loop is true but loyalty_loop_skips names no phase; expected the phases a repeat journey may skip",
                    "invalid_value",
                )
            )
        if self.loyalty_loop_skips and not self.loyalty_loop:
            problems.append(
                CrossProblem(
                    ("loyalty_loop_skips",),
                    "loyalty_loop_skips is set but loyalty_loop is false; expected loyalty_loop: true",
                    "invalid_value",
                )
            )
        return problems

    def _unknown(self, loc: tuple[str | int, ...], name: str) -> list[CrossProblem]:
        if name in self.phase_names:
            return []
        expected = ", ".join(self.phase_names)
        return [CrossProblem(loc, f"unknown phase '{name}'; expected one of {expected}", "unknown_phase")]

    # -- lookups ----------------------------------------------------------------------------------------

    @functools.cached_property
    def phase_names(self) -> list[str]:
        """The phase names, in order."""
        return [p.name for p in self.phases]

    def phase(self, name: str) -> Phase:
        """The phase called ``name``."""
        for p in self.phases:
            if p.name == name:
                return p
        raise SpecError(
            f"unknown phase '{name}' in phase model '{self.name}'; expected one of {', '.join(self.phase_names)}",
            code="unknown_phase",
        )

    def index(self, name: str) -> int:
        """The 0-based position of phase ``name``."""
        return self.phase_names.index(self.phase(name).name)

    def expected_phases(self, *, repeat: bool = False) -> list[str]:
        """The phases a journey is expected to pass through; a repeat journey skips the loyalty loop's."""
        if repeat and self.loyalty_loop:
            return [n for n in self.phase_names if n not in self.loyalty_loop_skips]
        return list(self.phase_names)

    # -- compiling --------------------------------------------------------------------------------------

    def _branches(self, t: ir.Table, person: str) -> list[tuple[ir.BooleanValue, str | None]]:
        branches: list[tuple[ir.BooleanValue, str | None]] = [
            (rule.expr(t, person=person), rule.phase) for rule in self.audience_rules
        ]
        if self.neutral:
            branches.append((any_expr(self.neutral, t), None))
        branches += [(p.matches_expr(t), p.name) for p in reversed(self.phases) if p.rules]
        return branches

    def phase_expr(self, t: ir.Table, *, person: str = "person_id") -> ir.StringValue:
        """An Ibis string: each touchpoint's own phase name (NULL for neutral or unmatched ones).

        ``t`` has the touchpoint columns (``journeylens.schema``) the rules read; audience rules also read
        ``person`` (the person column, e.g. a stitched id), ``timestamp`` and ``event_id``.
        """
        return self._case(t, person, {n: n for n in self.phase_names}, "string").name("phase")

    def phase_index_expr(self, t: ir.Table, *, person: str = "person_id") -> ir.IntegerValue:
        """An Ibis integer: the 0-based position of ``phase_expr``'s phase (NULL where that is NULL)."""
        return self._case(t, person, {n: i for i, n in enumerate(self.phase_names)}, "int64").name(
            "phase_index"
        )

    def _case(self, t: ir.Table, person: str, values: Mapping[str, Any], dtype: str) -> ir.Value:
        import ibis

        null = ibis.null(dtype)
        default = null if self.default_phase is None else ibis.literal(values[self.default_phase], dtype)
        branches = [
            (cond, null if name is None else ibis.literal(values[name], dtype))
            for cond, name in self._branches(t, person)
        ]
        if not branches:
            return default
        return ibis.cases(*branches, else_=default)

    def index_of_expr(self, phase: ir.StringValue) -> ir.IntegerValue:
        """An Ibis integer: the 0-based position of a column of phase names (NULL for NULL or unknown)."""
        import ibis

        return phase.cases(*((n, i) for i, n in enumerate(self.phase_names)), else_=ibis.null("int64"))

    def with_phases(
        self,
        t: ir.Table,
        *,
        person: str = "person_id",
        carry_forward: bool = True,
        by: str | Sequence[str] | None = None,
    ) -> ir.Table:
        """``t`` with the columns ``phase`` and ``phase_index``.

        With ``carry_forward`` a touchpoint without a phase of its own (neutral, unmatched) takes the phase
        of the previous touchpoint in its ``by`` group (default: the ``person`` column; pass a journey id
        to carry within journeys), ordered by (timestamp, event_id); one with no phase before it, or with
        a NULL ``by`` key (an anonymous touchpoint), takes ``default_phase``.
        """
        import ibis

        out = t.mutate(phase=self.phase_expr(t, person=person))
        if carry_forward:
            keys = [by] if isinstance(by, str) else list(by or [person])
            window = ibis.cumulative_window(
                group_by=[out[k] for k in keys], order_by=[out.timestamp, out.event_id]
            )
            out = out.mutate(_jl_phase_run=out.phase.count().over(window))
            run = ibis.window(group_by=[*(out[k] for k in keys), out._jl_phase_run])
            # a NULL key (an anonymous touchpoint) is nobody's history: it keeps its own phase
            anonymous = functools.reduce(lambda a, b: a | b, [out[k].isnull() for k in keys])
            carried = ibis.ifelse(anonymous, out.phase, out.phase.max().over(run))
            out = out.mutate(phase=carried).drop("_jl_phase_run")
            if self.default_phase is not None:
                out = out.mutate(phase=out.phase.fill_null(self.default_phase))
        return out.mutate(phase_index=self.index_of_expr(out.phase))

    # -- in Python, on small summaries --------------------------------------------------------------------

    def classify(self, row: Mapping[str, Any]) -> str | None:
        """The phase of one touchpoint row by the phase rules alone (no audience rules); None if neutral
        or unmatched and there is no default. A plain-Python reference of ``phase_expr``."""
        if self.neutral and any_matches(self.neutral, row):
            return None
        for p in reversed(self.phases):
            if p.rules and any_matches(p.rules, row):
                return p.name
        return self.default_phase


# -- loading --------------------------------------------------------------------------------------------


class PhaseModelInfo(NamedTuple):
    name: str
    description: str
    phases: list[str]


def builtin_phase_model_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml") if not p.stem.startswith(JOURNEY_PREFIX))


def parse_phase_model(text: str, source: str = "<string>") -> PhaseModel:
    """A phase model from YAML text; raises ConfigError naming ``source`` and the line."""
    return parse_text(PhaseModel, text, source)


def validate_phase_model_file(path: str | Path) -> list[Problem]:
    """Every problem in a phase model file (an empty list when it is valid)."""
    return validate_file(PhaseModel, path)


def load_phase_model(name_or_path: str | Path | PhaseModel) -> PhaseModel:
    """A built-in phase model by name (``three-phase``), or one from a YAML file.

    A ``Path``, or a string ending in ``.yaml`` / ``.yml`` or holding a path separator, is a file;
    anything else is a built-in name. Raises ``ConfigError`` for an invalid file or unknown name.
    """
    return load_model(
        PhaseModel, name_or_path, kind="phase model", builtin_names=builtin_phase_model_names(), load_builtin=_load_builtin
    )


@functools.cache
def _load_builtin(name: str) -> PhaseModel:
    path = builtin_dir() / f"{name}.yaml"
    return parse_text(PhaseModel, path.read_text(encoding="utf-8"), f"builtin/{path.name}")


def list_phase_models() -> list[PhaseModelInfo]:
    """The built-in phase models: (name, description, phase names)."""
    return [
        PhaseModelInfo(m.name, m.description, m.phase_names)
        for m in (_load_builtin(n) for n in builtin_phase_model_names())
    ]


# -- coverage -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageWarning:
    """A touchpoint combination that no rule matches, or that rules of several phases match."""

    kind: Literal["unmatched", "overlap"]
    touchpoint: str | None
    channel: str | None
    content_type: str | None
    count: int
    phases: tuple[str, ...] = ()  # for an overlap: the phases whose rules match, in model order
    winner: str | None = None  # for an overlap: the phase the touchpoints get
    message: str = ""

    def __str__(self) -> str:
        return self.message


def coverage_report(model: PhaseModel, touchpoint_summary: pd.DataFrame) -> list[CoverageWarning]:
    """Warnings about the phase rules on a summary of the data, largest counts first.

    ``touchpoint_summary`` has the columns touchpoint, channel, content_type and count, one row per
    combination (a small aggregate, e.g. ``t.group_by([...]).agg(count=t.count())``). It lists

    - *unmatched*: combinations no phase rule matches (and no neutral rule): they get ``default_phase``
      or, in ``with_phases``, the previous phase;
    - *overlap*: combinations the rules of two or more phases match (neutral counts as a phase here),
      with the phase that wins (later phases first).

    Property conditions cannot be checked on a summary: rules that have them are taken to match, so an
    overlap they cause is possible, not certain. Audience rules are not considered.
    """
    required = {"touchpoint", "channel", "content_type", "count"}
    missing = sorted(required - set(touchpoint_summary.columns))
    if missing:
        raise SpecError(
            f"coverage_report needs the columns touchpoint, channel, content_type, count; missing {', '.join(missing)}",
            code="missing_columns",
        )
    warnings: list[CoverageWarning] = []
    columns = [c for c in touchpoint_summary.columns if c != "properties"]
    for raw in touchpoint_summary[columns].to_dict("records"):
        row = {k: missing_to_none(v) for k, v in raw.items()}
        count = int(row["count"] or 0)
        hits = [p.name for p in model.phases if p.rules and any_matches(p.rules, row)]
        neutral = bool(model.neutral) and any_matches(model.neutral, row)
        combo = _describe(row)
        if neutral:
            hits = ["(neutral)", *hits]
        if not hits:
            where = (
                f"they go to the default phase '{model.default_phase}'"
                if model.default_phase
                else "they keep the previous phase or stay unassigned"
            )
            warnings.append(
                CoverageWarning(
                    "unmatched",
                    row["touchpoint"],
                    row["channel"],
                    row["content_type"],
                    count,
                    message=f"{combo}: {count:,} touchpoints match no phase rule; {where}",
                )
            )
        elif len(hits) > 1:
            winner = "(neutral)" if neutral else hits[-1]
            warnings.append(
                CoverageWarning(
                    "overlap",
                    row["touchpoint"],
                    row["channel"],
                    row["content_type"],
                    count,
                    phases=tuple(hits),
                    winner=winner,
                    message=(
                        f"{combo}: {count:,} touchpoints match the rules of {_and(hits)}; "
                        f"they go to {winner}"
                        + (" (neutral rules come first)" if neutral else " (later phases come first)")
                    ),
                )
            )
    warnings.sort(
        key=lambda w: (
            w.kind != "unmatched",
            -w.count,
            str(w.touchpoint),
            str(w.channel),
            str(w.content_type),
        )
    )
    return warnings


def _describe(row: Mapping[str, Any]) -> str:
    return f"touchpoint '{row['touchpoint']}' on channel '{row['channel']}' with content type " + (
        f"'{row['content_type']}'" if row["content_type"] is not None else "none"
    )


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
