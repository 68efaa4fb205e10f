"""All models side by side: the registry ``MODELS`` and ``attribute``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from journeylens.attribution.base import AttributionModel
from journeylens.attribution.heuristics import FirstTouch, LastTouch, Linear, PositionBased, TimeDecay
from journeylens.attribution.markov import Markov
from journeylens.attribution.paths import as_path_table
from journeylens.attribution.shapley import Shapley
from journeylens.errors import SpecError

#: every attribution model, by registry name
MODELS: dict[str, type[AttributionModel]] = {
    cls.name: cls for cls in (FirstTouch, LastTouch, Linear, TimeDecay, PositionBased, Markov, Shapley)
}

LAYOUTS = ("long", "wide")


def attribute(
    journeys: Any,
    models: Iterable[str | AttributionModel] | None = None,
    *,
    layout: str = "long",
    **options: Any,
) -> pd.DataFrame:
    """Fit several models on the same journeys and put their credits side by side.

    ``models``: registry names (``MODELS``) and/or model instances. ``None`` means every registered model that the
    input supports: all of them for per-touch input with timestamps, all but ``time_decay`` otherwise (asking for
    ``time_decay`` by name on aggregated paths is an error).

    ``options`` are model parameters, given to every *named* model whose constructor takes them (``target``,
    ``include_nulls``, ``lookback_days``, ``key`` and ``bootstrap`` go to all; ``order`` only to Markov,
    ``half_life_days`` only to TimeDecay, ...). An option that no chosen model takes is an error. Instances are used
    as they are, labelled by their registry name (by their ``repr`` when that name is taken).

    ``layout="long"`` (default): one row per model and channel, columns ``model, channel, attributed_conversions,
    attributed_value`` and then the models' own columns (``removal_effect``, ``ci_low`` ...), empty (NaN) for the
    models that do not have them. ``layout="wide"``: one row per channel, one column per model, holding
    ``attributed_conversions`` (or ``attributed_value`` with ``target="value"``).
    """
    if layout not in LAYOUTS:
        raise SpecError(
            f"invalid_layout: layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}",
            code="invalid_layout",
        )
    table = as_path_table(journeys, key=options.get("key", "channel"))
    if models is None:
        chosen: list[str | AttributionModel] = [
            name for name, cls in MODELS.items() if not cls.needs_timestamps or table.age_seconds is not None
        ]
    else:
        chosen = list(models)
    if not chosen:
        raise SpecError("no_models: attribute needs at least one model, got none", code="no_models")
    fitted: list[tuple[str, AttributionModel]] = []
    used: set[str] = set()
    for item in chosen:
        if isinstance(item, AttributionModel):
            taken = {label for label, _ in fitted}
            fitted.append((item.name if item.name not in taken else repr(item), item))
            continue
        if item not in MODELS:
            raise SpecError(
                f"unknown_model: {item!r} is not an attribution model; the models are {sorted(MODELS)}",
                code="unknown_model",
            )
        cls = MODELS[item]
        accepted = set(cls.param_names())
        params = {k: v for k, v in options.items() if k in accepted}
        used.update(params)
        fitted.append((item, cls(**params)))
    unused = sorted(set(options) - used)
    if unused:
        raise SpecError(
            f"unknown_option: no chosen model takes the option(s) {unused}",
            code="unknown_option",
        )
    frames = []
    for label, model in fitted:
        model.fit(table)
        frame = model.credits_.copy()
        frame.insert(0, "model", label)
        frames.append(frame)
    long = pd.concat(frames, ignore_index=True)
    if layout == "long":
        return long
    target = options.get("target", "conversions")
    column = "attributed_value" if target == "value" else "attributed_conversions"
    labels = [label for label, _ in fitted]
    wide = long.pivot(index="channel", columns="model", values=column)
    wide = wide[list(dict.fromkeys(labels))]
    wide.columns.name = None
    return wide.reset_index()
