"""The journey model: which kinds of journey there are, what opens, joins, converts and ends each one.

A journey model is a YAML file; the built-in default is ``builtin/journeys-default.yaml``::

    name: default
    description: ...
    view: customer                 # buyer | customer (see below)
    journey_types:                 # in order of precedence for opening
      - name: purchase
        default: true              # exactly one type is the default
        timeout_days: 30
        conversion: {touchpoint: [purchase]}
        repeat_after_conversion: true
      - name: complaint
        opens: {touchpoint: [complaint]}
        members: {touchpoint: [support_call, support_chat, survey_response]}
        timeout_days: 14
      - name: return
        opens: {touchpoint: [return_request]}
        conversion: {touchpoint: [refund]}
        ends: {touchpoint: [refund]}
        timeout_days: 30
    involvement:                   # optional: low vs high involvement of the default type's journeys
      journey_types: [purchase]    # optional; default: the default journey type
      high_when_at_least: 2        # how many of the criteria below must hold for "high"
      touchpoints_before_conversion_at_least: 8
      duration_days_at_least: 21
      human_contact_channels: [store, call_centre]
      human_contact_at_least: 2
      revenue_at_least: 1000

``opens``, ``members``, ``conversion`` and ``ends`` are matchers (``journeylens.journeys.models.matcher``): a
mapping of conditions, or a list of them of which any may match.

**What the fields mean** (the contract the journey splitter implements):

- *opening*: a touchpoint's journey type is, first, its ``journey_type`` column (the hint) when that names a
  type of the model (**a hint takes precedence over every opening rule**; a hint naming no type is
  ignored), else the first type, in list order, whose ``opens`` matches (``JourneyModel.opens_expr``). A
  touchpoint that opens nothing belongs to the *default* type.
- *members*: a touchpoint that opens nothing joins a journey of this type that is still open when it matches
  ``members`` (the opening touchpoints always count as members). Without ``members`` only the opening
  touchpoints (and hinted ones) join. The default type has no ``members``: it takes every touchpoint no
  other open journey claims.
- *timeout_days*: a journey is open until ``timeout_days`` pass without a touchpoint of it (an inactivity
  gap; ``JourneyType.timeout_seconds`` gives it in seconds, for arithmetic on epoch seconds).
- *conversion*: a journey that reaches a matching touchpoint is converted.
- *ends*: a journey closes right after a matching touchpoint (which belongs to it).
- *repeat_after_conversion*: after a converted journey of this type, the next touchpoint matching
  ``conversion`` starts a new journey of this type, flagged repeat (so each purchase has its own journey).
- *view*: ``buyer`` — every journey also ends at its conversion (the buyer journey stops at the purchase);
  ``customer`` — a converted journey goes on through service, use and loyalty until it times out or
  matches ``ends``.
- *involvement* classifies each journey of ``journey_types`` as ``low`` (a purchase journey: few
  touchpoints, little contact with staff) or ``high`` (a service journey: many touchpoints, long, much
  human contact, expensive): high when at least ``high_when_at_least`` of the criteria that are set hold.
  A criterion left out (or null) is not used.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
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
from journeylens.journeys.models.matcher import MatcherList, NameList, any_expr

if TYPE_CHECKING:
    import ibis.expr.types as ir

SECONDS_PER_DAY = 86_400

#: the involvement criteria, in the order they are listed, and the level_expr argument each one reads
CRITERIA: dict[str, str] = {
    "touchpoints_before_conversion_at_least": "touchpoints_before_conversion",
    "duration_days_at_least": "duration_days",
    "human_contact_at_least": "human_contacts",
    "revenue_at_least": "revenue",
}


class JourneyType(BaseModel):
    """One kind of journey: a purchase, a complaint, a repair, a return, a job application, ..."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str | None = None
    description: str = ""
    default: bool = False
    timeout_days: float = Field(gt=0)
    opens: MatcherList = []
    members: MatcherList | None = None
    conversion: MatcherList = []
    ends: MatcherList = []
    repeat_after_conversion: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def timeout_seconds(self) -> int:
        """The timeout in whole seconds, for arithmetic on epoch seconds."""
        return round(self.timeout_days * SECONDS_PER_DAY)

    def opens_expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where an ``opens`` rule matches (hints are the model's business: ``JourneyModel.opens_expr``)."""
        return any_expr(self.opens, t)

    def member_expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where the touchpoint may join an open journey of this type (opening touchpoints included).

        For the default type every touchpoint may; the splitter gives it what no other journey claims.
        """
        import ibis

        if self.default and self.members is None:
            return ibis.literal(True)
        return any_expr([*self.opens, *(self.members or [])], t)

    def conversion_expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where the touchpoint converts a journey of this type (False when it has no conversion)."""
        return any_expr(self.conversion, t)

    def ends_expr(self, t: ir.Table, *, view: Literal["buyer", "customer"] = "customer") -> ir.BooleanValue:
        """True where a journey of this type closes after the touchpoint (in the buyer view: also at conversion)."""
        return any_expr([*self.ends, *(self.conversion if view == "buyer" else [])], t)


class Involvement(BaseModel):
    """Low vs high involvement: high when at least ``high_when_at_least`` of the set criteria hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    journey_types: NameList | None = None
    high_when_at_least: int = Field(default=1, ge=1)
    touchpoints_before_conversion_at_least: int | None = Field(default=None, ge=1)
    duration_days_at_least: float | None = Field(default=None, ge=0)
    human_contact_channels: NameList = []
    human_contact_at_least: int | None = Field(default=None, ge=1)
    revenue_at_least: float | None = None

    def criteria(self) -> list[str]:
        """The criteria that are set, in order."""
        return [c for c in CRITERIA if getattr(self, c) is not None]

    def human_contact_expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where the touchpoint is a contact with staff (its channel is a human-contact channel)."""
        import ibis

        if not self.human_contact_channels:
            return ibis.literal(False)
        return t.channel.isin(self.human_contact_channels).fill_null(False)

    def level_expr(
        self,
        *,
        touchpoints_before_conversion: ir.NumericValue | None = None,
        duration_days: ir.NumericValue | None = None,
        human_contacts: ir.NumericValue | None = None,
        revenue: ir.NumericValue | None = None,
    ) -> ir.StringValue:
        """An Ibis string, ``'high'`` or ``'low'``, from per-journey figures.

        Pass the figure each set criterion reads (e.g. columns of a per-journey table); a NULL figure does
        not meet its criterion.
        """
        import ibis

        given = {
            "touchpoints_before_conversion": touchpoints_before_conversion,
            "duration_days": duration_days,
            "human_contacts": human_contacts,
            "revenue": revenue,
        }
        met: list[ir.IntegerValue] = []
        for criterion in self.criteria():
            figure = given[CRITERIA[criterion]]
            if figure is None:
                raise SpecError(
                    f"involvement criterion {criterion} is set, so level_expr needs {CRITERIA[criterion]}; got none",
                    code="missing_figure",
                )
            met.append((figure >= getattr(self, criterion)).fill_null(False).cast("int64"))
        if not met:
            return ibis.literal("low")
        total = met[0]
        for m in met[1:]:
            total = total + m
        return ibis.ifelse(total >= self.high_when_at_least, "high", "low")

    def level(
        self,
        *,
        touchpoints_before_conversion: float | None = None,
        duration_days: float | None = None,
        human_contacts: float | None = None,
        revenue: float | None = None,
    ) -> Literal["low", "high"]:
        """The same classification in plain Python, for one journey."""
        given = {
            "touchpoints_before_conversion": touchpoints_before_conversion,
            "duration_days": duration_days,
            "human_contacts": human_contacts,
            "revenue": revenue,
        }
        met = 0
        for criterion in self.criteria():
            figure = given[CRITERIA[criterion]]
            if figure is not None and figure >= getattr(self, criterion):
                met += 1
        return "high" if self.criteria() and met >= self.high_when_at_least else "low"


class JourneyModel(ConfigModel):
    """The journey types, the view (buyer or customer), and the involvement classification."""

    name: str = Field(min_length=1)
    description: str = ""
    view: Literal["buyer", "customer"] = "customer"
    journey_types: list[JourneyType]
    involvement: Involvement | None = None

    @field_validator("journey_types")
    @classmethod
    def _some_types(cls, value: list[JourneyType]) -> list[JourneyType]:
        if not value:
            raise ValueError("a journey model needs at least one journey type, got none")
        return value

    def cross_problems(self) -> list[CrossProblem]:
        """Problems across fields: duplicates, the default type, references to unknown types."""
        problems: list[CrossProblem] = []
        first: dict[str, int] = {}
        for i, jt in enumerate(self.journey_types):
            if jt.name in first:
                problems.append(
                    CrossProblem(
                        ("journey_types", i, "name"),
                        f"duplicate journey type '{jt.name}' (also journey_types[{first[jt.name]}])",
                        "duplicate_journey_type",
                    )
                )
            first.setdefault(jt.name, i)
            if jt.repeat_after_conversion and not jt.conversion:
                problems.append(
                    CrossProblem(
                        ("journey_types", i, "repeat_after_conversion"),
                        "repeat_after_conversion needs a conversion; expected a conversion rule on this journey type",
                        "invalid_value",
                    )
                )
            if jt.default and jt.members is not None:
                problems.append(
                    CrossProblem(
                        ("journey_types", i, "members"),
                        "the default journey type takes every touchpoint no other journey claims; expected no members",
                        "invalid_value",
                    )
                )
        defaults = [jt.name for jt in self.journey_types if jt.default]
        if len(defaults) != 1:
            got = "none" if not defaults else f"{len(defaults)} ({', '.join(defaults)})"
            problems.append(
                CrossProblem(
                    ("journey_types",),
                    f"exactly one journey type must have default: true, got {got}",
                    "invalid_default",
                )
            )
        inv = self.involvement
        if inv is not None:
            for i, name in enumerate(inv.journey_types or []):
                if name not in self.type_names:
                    problems.append(
                        CrossProblem(
                            ("involvement", "journey_types", i),
                            f"unknown journey type '{name}'; expected one of {', '.join(self.type_names)}",
                            "unknown_journey_type",
                        )
                    )
            if inv.high_when_at_least > len(inv.criteria()):
                problems.append(
                    CrossProblem(
                        ("involvement", "high_when_at_least"),
                        f"high_when_at_least is {inv.high_when_at_least} but {len(inv.criteria())} criteria are set; "
                        f"expected at most {len(inv.criteria())}",
                        "invalid_value",
                    )
                )
            if inv.human_contact_at_least is not None and not inv.human_contact_channels:
                problems.append(
                    CrossProblem(
                        ("involvement", "human_contact_at_least"),
                        "human_contact_at_least needs human_contact_channels; expected a list of channels",
                        "invalid_value",
                    )
                )
        return problems

    # -- lookups ----------------------------------------------------------------------------------------

    @functools.cached_property
    def type_names(self) -> list[str]:
        """The journey type names, in order."""
        return [jt.name for jt in self.journey_types]

    def journey_type(self, name: str) -> JourneyType:
        for jt in self.journey_types:
            if jt.name == name:
                return jt
        raise SpecError(
            f"unknown journey type '{name}' in journey model '{self.name}'; expected one of {', '.join(self.type_names)}",
            code="unknown_journey_type",
        )

    @property
    def default_type(self) -> JourneyType:
        return next(jt for jt in self.journey_types if jt.default)

    @property
    def involvement_types(self) -> list[str]:
        """The journey types involvement classifies (none without an involvement section)."""
        if self.involvement is None:
            return []
        return list(self.involvement.journey_types or [self.default_type.name])

    # -- compiling --------------------------------------------------------------------------------------

    def hint_expr(self, t: ir.Table) -> ir.StringValue:
        """The ``journey_type`` column where it names a type of this model, else NULL."""
        import ibis

        if "journey_type" not in t.columns:
            return ibis.null("string")
        return ibis.ifelse(
            t.journey_type.isin(self.type_names).fill_null(False), t.journey_type, ibis.null("string")
        )

    def opens_expr(self, t: ir.Table) -> ir.StringValue:
        """The journey type a touchpoint opens (or is hinted to belong to), NULL when it opens none.

        Precedence: the hint column, then the ``opens`` rules of the types in list order.
        """
        import ibis

        null = ibis.null("string")
        hint = self.hint_expr(t)
        branches = [(hint.notnull(), hint)] if "journey_type" in t.columns else []
        branches += [(jt.opens_expr(t), ibis.literal(jt.name)) for jt in self.journey_types if jt.opens]
        if not branches:
            return null.name("opens")
        return ibis.cases(*branches, else_=null).name("opens")

    def classify_opening(self, row: Mapping[str, Any]) -> str | None:
        """``opens_expr`` in plain Python for one row: a reference for tests and small summaries."""
        hint = row.get("journey_type")
        if hint in self.type_names:
            return str(hint)
        for jt in self.journey_types:
            if jt.opens and any(m.matches(row) for m in jt.opens):
                return jt.name
        return None


# -- loading --------------------------------------------------------------------------------------------


class JourneyModelInfo(NamedTuple):
    name: str
    description: str
    journey_types: list[str]


def builtin_journey_model_names() -> list[str]:
    return sorted(p.stem.removeprefix(JOURNEY_PREFIX) for p in builtin_dir().glob(f"{JOURNEY_PREFIX}*.yaml"))


def parse_journey_model(text: str, source: str = "<string>") -> JourneyModel:
    """A journey model from YAML text; raises ConfigError naming ``source`` and the line."""
    return parse_text(JourneyModel, text, source)


def validate_journey_model_file(path: str | Path) -> list[Problem]:
    """Every problem in a journey model file (an empty list when it is valid)."""
    return validate_file(JourneyModel, path)


def load_journey_model(name_or_path: str | Path | JourneyModel = "default") -> JourneyModel:
    """A built-in journey model by name (``default``), or one from a YAML file (see ``load_phase_model``)."""
    return load_model(
        JourneyModel, name_or_path, kind="journey model", builtin_names=builtin_journey_model_names(), load_builtin=_load_builtin
    )


@functools.cache
def _load_builtin(name: str) -> JourneyModel:
    path = builtin_dir() / f"{JOURNEY_PREFIX}{name}.yaml"
    return parse_text(JourneyModel, path.read_text(encoding="utf-8"), f"builtin/{path.name}")


def list_journey_models() -> list[JourneyModelInfo]:
    """The built-in journey models: (name, description, journey type names)."""
    return [
        JourneyModelInfo(m.name, m.description, m.type_names)
        for m in (_load_builtin(n) for n in builtin_journey_model_names())
    ]
