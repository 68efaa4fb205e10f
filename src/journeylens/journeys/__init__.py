"""Journeys: identity stitching, journey splitting and typing, phase models and their rules."""

from journeylens.journeys.build import BuildResult, build

__all__ = ["BuildResult", "build"]
