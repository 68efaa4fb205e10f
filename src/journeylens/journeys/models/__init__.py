"""Phase models and the journey model: YAML configuration, validated, compiled to Ibis expressions.

- ``phase_model``: ordered phases and the rules that put each touchpoint in one (built-in: three-phase,
  five-phase, buyer-journey, see-think-do-care, 6b, aida, consumer-decision-journey);
- ``journey_model``: journey types (purchase, complaint, ...), what opens, joins, converts and ends them,
  the buyer / customer view, and low / high involvement;
- ``matcher``: the conditions both use, compiled to Ibis booleans;
- the YAML files in ``builtin/``.

Every invalid file raises ``journeylens.errors.ConfigError`` naming the file, the line and the field.
"""

from __future__ import annotations

from journeylens.journeys.models._config import Problem
from journeylens.journeys.models.journey_model import (
    Involvement,
    JourneyModel,
    JourneyModelInfo,
    JourneyType,
    list_journey_models,
    load_journey_model,
    parse_journey_model,
    validate_journey_model_file,
)
from journeylens.journeys.models.matcher import Matcher, PropertyCondition
from journeylens.journeys.models.phase_model import (
    AudienceRule,
    CoverageWarning,
    Phase,
    PhaseModel,
    PhaseModelInfo,
    coverage_report,
    list_phase_models,
    load_phase_model,
    parse_phase_model,
    validate_phase_model_file,
)

__all__ = [
    "AudienceRule",
    "CoverageWarning",
    "Involvement",
    "JourneyModel",
    "JourneyModelInfo",
    "JourneyType",
    "Matcher",
    "Phase",
    "PhaseModel",
    "PhaseModelInfo",
    "Problem",
    "PropertyCondition",
    "coverage_report",
    "list_journey_models",
    "list_phase_models",
    "load_journey_model",
    "load_phase_model",
    "parse_journey_model",
    "parse_phase_model",
    "validate_journey_model_file",
    "validate_phase_model_file",
]
