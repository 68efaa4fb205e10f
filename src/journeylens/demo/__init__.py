"""Synthetic demo data: persons with realistic customer journeys, deterministic per seed.

``generate`` yields Arrow tables chunk by chunk; ``write_demo`` streams them to Parquet, CSV/TSV or JSON
Lines. The personas, vocabulary and the known drivers in the data (``TRUE_EFFECTS``) are in ``personas``.
"""

from journeylens.demo.files import GeneratedFiles, write_demo
from journeylens.demo.generator import PERSONS_SCHEMA, TOUCHPOINTS_SCHEMA, generate
from journeylens.demo.personas import PERSONA_MIX, TRUE_EFFECTS, calibration

__all__ = [
    "PERSONS_SCHEMA",
    "PERSONA_MIX",
    "TOUCHPOINTS_SCHEMA",
    "TRUE_EFFECTS",
    "GeneratedFiles",
    "calibration",
    "generate",
    "write_demo",
]
