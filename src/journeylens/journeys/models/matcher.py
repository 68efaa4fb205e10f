"""Matchers: the conditions phase rules and journey types use to pick touchpoints.

A matcher is a mapping of conditions that must all hold (AND)::

    touchpoint: [ad_view, ad_click]        # the touchpoint column is one of these
    channel_not: [store]                   # ... and the channel is none of these
    content_type: [ad]
    journey_type: [job_application]        # the journey-type hint column
    property: {key: utm_medium, equals: cpc}   # one condition, or a list of them (all must hold)
    property_not: {key: test, exists: true}    # none of these may hold

Where a list of matchers is accepted (a phase's ``rules``, a journey type's ``opens``), any one matching is
enough (OR), and a single mapping stands for a list of one. A name list also takes a single name.

Missing values never match a positive condition and always pass a negative one: a touchpoint without a
content type is not ``content_type: [ad]`` and is ``content_type_not: [ad]``.

**Property conditions** read the ``properties`` column, a JSON object as text (the contract in
``journeylens.schema``). ``key`` names a top-level key, or a nested one with dots (``utm.medium``). They
compile to Ibis's JSON access, which DuckDB runs as ``CAST(properties AS JSON) -> '$.key'`` and Spark as
``GET_JSON_OBJECT(properties, '$.key')`` (no Python UDF). The two engines render a JSON string differently
(DuckDB keeps the quotes, Spark drops them), so a value is compared with both renderings. Hence:

- ``equals`` / ``in``: strings, numbers and booleans, compared by their JSON text (``equals: 3`` matches the
  number 3, and on Spark also the string "3"; a string value that is itself quoted (``"\\"cpc\\""``) is not
  told apart from ``cpc`` on Spark);
- ``exists: true``: the key is present with a non-null value; ``exists: false``: it is absent or null;
- the properties text must be valid JSON (the ingest quarantines rows where it is not): DuckDB stops the
  query on invalid JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from functools import reduce
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    import ibis.expr.types as ir

#: the touchpoint columns a matcher can name, in the order they are checked and listed
NAME_FIELDS: tuple[str, ...] = ("touchpoint", "channel", "content_type", "journey_type")

_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

Scalar = str | bool | int | float


def _listify(value: Any) -> Any:
    """A single name or mapping stands for a list of one."""
    if isinstance(value, str | dict):
        return [value]
    return value


NameList = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_listify)]


class PropertyCondition(BaseModel):
    """One condition on the JSON ``properties`` column; exactly one of ``equals``, ``in``, ``exists``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    exists: bool | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY_PATTERN.fullmatch(value):
            raise ValueError(
                f"expected a key of letters, digits and _ (dots for nested keys, e.g. utm.medium), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_test(self) -> Self:
        given = [
            name
            for name, v in (("equals", self.equals), ("in", self.in_), ("exists", self.exists))
            if v is not None
        ]
        if len(given) != 1:
            got = "none" if not given else ", ".join(given)
            raise ValueError(f"a property condition needs exactly one of equals, in, exists; got {got}")
        return self

    def expr(self, t: ir.Table) -> ir.BooleanValue:
        """True where the touchpoint's properties meet the condition (never NULL)."""
        value: Any = t.properties.cast("json")
        for part in self.key.split("."):
            value = value[part]
        text = value.cast("string")
        if self.exists is not None:
            present = (text.notnull() & (text != "null")).fill_null(False)
            return present if self.exists else ~present
        wanted = [self.equals] if self.equals is not None else list(self.in_ or [])
        return text.isin(_renderings(wanted)).fill_null(False)

    def matches(self, properties: Mapping[str, Any] | None) -> bool:
        """The same test in plain Python, on a decoded properties object."""
        value: Any = properties or {}
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if self.exists is not None:
            return (value is not None) == self.exists
        if value is None or isinstance(value, dict | list):
            return False
        wanted = [self.equals] if self.equals is not None else list(self.in_ or [])
        return bool(set(_renderings([value])) & set(_renderings(wanted)))


def _renderings(values: Iterable[Scalar]) -> list[str]:
    """The texts a JSON scalar can come back as: DuckDB's JSON text and Spark's unquoted string."""
    out: list[str] = []
    for v in values:
        if isinstance(v, bool):
            texts = ["true" if v else "false"]
        elif isinstance(v, int | float):
            texts = [json.dumps(v)] if not (isinstance(v, float) and math.isnan(v)) else []
        else:
            texts = [v, json.dumps(v, ensure_ascii=False), json.dumps(v)]
        out += [x for x in texts if x not in out]
    return out


PropertyList = Annotated[list[PropertyCondition], BeforeValidator(_listify)]


class Matcher(BaseModel):
    """Conditions on one touchpoint, all of which must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    touchpoint: NameList | None = None
    touchpoint_not: NameList | None = None
    channel: NameList | None = None
    channel_not: NameList | None = None
    content_type: NameList | None = None
    content_type_not: NameList | None = None
    journey_type: NameList | None = None
    journey_type_not: NameList | None = None
    property: PropertyList | None = None
    property_not: PropertyList | None = None

    @field_validator(*(f for n in NAME_FIELDS for f in (n, f"{n}_not")), "property", "property_not")
    @classmethod
    def _not_empty(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and not value:
            raise ValueError("expected at least one entry, got an empty list (which would match nothing)")
        return value

    @model_validator(mode="after")
    def _some_condition(self) -> Self:
        if not any(getattr(self, name) for name in type(self).model_fields):
            fields = ", ".join(type(self).model_fields)
            raise ValueError(f"a rule needs at least one condition; expected one or more of {fields}")
        return self

    def columns(self) -> set[str]:
        """The touchpoint columns the matcher reads."""
        cols = {n for n in NAME_FIELDS if getattr(self, n) or getattr(self, f"{n}_not")}
        if self.property or self.property_not:
            cols.add("properties")
        return cols

    def expr(self, t: ir.Table) -> ir.BooleanValue:
        """An Ibis boolean, True where the touchpoint meets every condition (never NULL)."""
        import ibis

        conds: list[ir.BooleanValue] = []
        for name in NAME_FIELDS:
            if (wanted := getattr(self, name)) is not None:
                conds.append(t[name].isin(wanted).fill_null(False))
            if (unwanted := getattr(self, f"{name}_not")) is not None:
                conds.append(~t[name].isin(unwanted).fill_null(False))
        conds += [p.expr(t) for p in self.property or ()]
        conds += [~p.expr(t) for p in self.property_not or ()]
        return reduce(lambda a, b: a & b, conds) if conds else ibis.literal(True)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """The same test in plain Python on one row (``properties`` as JSON text or a dict).

        A condition on a column the row lacks is taken to hold (coverage reports run on summaries
        without every column).
        """
        for name in NAME_FIELDS:
            if name not in row:
                continue
            value = missing_to_none(row[name])
            if (wanted := getattr(self, name)) is not None and value not in wanted:
                return False
            if (unwanted := getattr(self, f"{name}_not")) is not None and value in unwanted:
                return False
        if "properties" in row and (self.property or self.property_not):
            props = _decode(row["properties"])
            if not all(p.matches(props) for p in self.property or ()):
                return False
            if any(p.matches(props) for p in self.property_not or ()):
                return False
        return True


def missing_to_none(value: Any) -> Any:
    """None for any spelling of a missing value (None, NaN, pandas.NA, NaT); the value otherwise."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _decode(properties: Any) -> Mapping[str, Any] | None:
    properties = missing_to_none(properties)
    if properties is None or isinstance(properties, Mapping):
        return properties
    decoded = json.loads(properties)
    return decoded if isinstance(decoded, Mapping) else None


MatcherList = Annotated[list[Matcher], BeforeValidator(_listify)]


def any_expr(matchers: Iterable[Matcher], t: ir.Table) -> ir.BooleanValue:
    """True where any of ``matchers`` matches (False for none)."""
    import ibis

    exprs = [m.expr(t) for m in matchers]
    return reduce(lambda a, b: a | b, exprs) if exprs else ibis.literal(False)


def any_matches(matchers: Iterable[Matcher], row: Mapping[str, Any]) -> bool:
    return any(m.matches(row) for m in matchers)
