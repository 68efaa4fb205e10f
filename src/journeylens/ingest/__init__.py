"""Ingest: readers (CSV/TSV, Parquet, JSON Lines, DataFrames), mapping, validation and quarantine."""

from journeylens.ingest.mapping import Mapping, load_mapping_file, mapping_from_options
from journeylens.ingest.pipeline import ImportResult, ingest

__all__ = ["ImportResult", "Mapping", "ingest", "load_mapping_file", "mapping_from_options"]
