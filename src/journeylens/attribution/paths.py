"""Journey tables for attribution: the two input forms and the compact form every model works on.

The models take a *journey table* in one of two forms:

1. **Per-touch rows** (``read_touches``): one row per touchpoint, with ``journey_id``, ``position`` (0-based
   order within the journey), the credited column (``channel`` by default; any column named by ``key``, e.g. a
   touchpoint name, a content type or a phase), and per journey ``converted`` and ``value``; ``timestamp`` (tz-aware
   date-times, naive ones taken as UTC, or epoch seconds) and ``conversion_time`` are optional. Time decay and
   ``lookback_days`` need ``timestamp``; the per-journey credit table needs this form.
2. **Aggregated paths** (``read_paths``): one row per path, the format other attribution tools use: ``path``
   (channels joined by a separator, e.g. ``"email > search > display"``), ``conversions``, ``value``, ``nulls``.

Both become a ``PathTable``: a ragged array of channel codes (``offsets`` into ``codes``, as in a CSR matrix) with
``conversions``, ``value`` and ``nulls`` per row. A row is one path with its counts (aggregated input) or one journey
(per-touch input); ``PathTable.unique`` collapses equal paths, so that 10M journeys become the far fewer distinct
paths. Everything here is vectorised: no Python loop runs per touch or per path.

Rules of the per-touch form, stated once:

- the *reference time* of a journey is its ``conversion_time`` when it converted and one is given, else the time of
  its last touch; a touch's age is the reference time minus its timestamp;
- touches after the conversion (negative age, possible only with ``conversion_time``) are dropped: they cannot
  have caused it;
- a journey left without touches (by the rule above or by a lookback window) is dropped; its conversions and value
  are counted in ``unattributed_conversions`` / ``unattributed_value`` instead of being credited to anyone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeylens.errors import SpecError, UnusableInputError

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, eq=False)
class PathTable:
    """Paths as a ragged array of channel codes, with per-row counts.

    Row ``i`` is the path ``channels[codes[offsets[i]:offsets[i + 1]]]``, seen ``conversions[i] + nulls[i]`` times,
    of which ``conversions[i]`` converted with total value ``value[i]``.
    """

    channels: np.ndarray  # str (object) array, sorted; code c stands for channels[c]
    offsets: np.ndarray  # int64, n_rows + 1, offsets[0] == 0
    codes: np.ndarray  # int32 (any integer type works), one per touch
    conversions: np.ndarray  # float64, per row
    value: np.ndarray  # float64, per row
    nulls: np.ndarray  # float64, per row: journeys on this path that did not convert
    age_seconds: np.ndarray | None = None  # float64 per touch (per-touch input with timestamps only)
    journey_id: np.ndarray | None = None  # per row, when a row is one journey (per-touch input)
    position: np.ndarray | None = None  # int64 per touch, when a row is one journey
    unattributed_conversions: float = 0.0
    unattributed_value: float = 0.0

    def check(self) -> PathTable:
        """Raise a ``SpecError`` unless the arrays fit together (for tables built by hand); return the table."""
        problems = []
        n_rows = len(self.offsets) - 1
        if n_rows < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.codes):
            problems.append("offsets must start at 0 and end at the number of codes")
        elif (np.diff(self.offsets) < 1).any():
            problems.append("every path needs at least one touch (offsets strictly increasing)")
        if len(self.codes) and (self.codes.min() < 0 or self.codes.max() >= len(self.channels)):
            problems.append(f"codes must lie in 0..{len(self.channels) - 1} (one per channel)")
        for name in ("conversions", "value", "nulls"):
            column = getattr(self, name)
            if len(column) != max(n_rows, 0):
                problems.append(f"{name} needs one entry per path ({n_rows}), got {len(column)}")
            elif not np.isfinite(column).all() or (name != "value" and (column < 0).any()):
                problems.append(f"{name} must be finite" + ("" if name == "value" else " and non-negative"))
        if problems:
            raise SpecError("invalid_path_table: " + "; ".join(problems), code="invalid_path_table")
        return self

    # ------------------------------------------------------------------ shape
    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def per_journey(self) -> bool:
        """Whether a row is one journey (per-touch input) rather than an aggregated path."""
        return self.journey_id is not None

    @cached_property
    def _row_of_touch(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_rows, dtype=_index_type(self.n_rows)), self.lengths)

    def row_of_touch(self) -> np.ndarray:
        """The row of each touch (computed once per table; do not modify)."""
        return self._row_of_touch

    def position_in_row(self) -> np.ndarray:
        index = _index_type(len(self.codes))
        starts = self.offsets[:-1].astype(index)
        return np.arange(len(self.codes), dtype=index) - np.repeat(starts, self.lengths)

    def first_touch(self) -> np.ndarray:
        return self.offsets[:-1]

    def last_touch(self) -> np.ndarray:
        return self.offsets[1:] - 1

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_value(self) -> float:
        return float(self.value.sum())

    def path_strings(self, sep: str = " > ") -> list[str]:
        """The paths as strings (one Python string per row: for small tables, reports and tests)."""
        names = self.channels[self.codes]
        return [sep.join(names[a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def to_frame(self, sep: str = " > ") -> pd.DataFrame:
        """The aggregated-path form of this table (``read_paths`` reads it back)."""
        return pd.DataFrame(
            {
                "path": self.path_strings(sep),
                "conversions": self.conversions,
                "value": self.value,
                "nulls": self.nulls,
            }
        )

    # ------------------------------------------------------------- transforms
    def with_counts(self, conversions: np.ndarray, value: np.ndarray, nulls: np.ndarray) -> PathTable:
        return replace(self, conversions=conversions, value=value, nulls=nulls)

    def filter_touches(self, keep: np.ndarray) -> PathTable:
        """Keep the touches where ``keep`` is true; rows left empty are dropped and counted as unattributed."""
        row = self.row_of_touch()
        lengths = np.bincount(row[keep], minlength=self.n_rows)
        table = replace(
            self,
            offsets=_offsets(lengths),
            codes=self.codes[keep],
            age_seconds=None if self.age_seconds is None else self.age_seconds[keep],
            position=None if self.position is None else self.position[keep],
        )
        return table.drop_rows(lengths == 0)

    def drop_rows(self, drop: np.ndarray) -> PathTable:
        """Drop rows; their conversions and value are added to the unattributed totals."""
        if not drop.any():
            return self
        return replace(
            self.subset(~drop),
            unattributed_conversions=self.unattributed_conversions + float(self.conversions[drop].sum()),
            unattributed_value=self.unattributed_value + float(self.value[drop].sum()),
        )

    def subset(self, keep_rows: np.ndarray) -> PathTable:
        """The rows where ``keep_rows`` is true (a view for computing, not a new input: totals are not moved)."""
        lengths = self.lengths
        touch_keep = np.repeat(keep_rows, lengths)
        return replace(
            self,
            offsets=_offsets(lengths[keep_rows]),
            codes=self.codes[touch_keep],
            conversions=self.conversions[keep_rows],
            value=self.value[keep_rows],
            nulls=self.nulls[keep_rows],
            age_seconds=None if self.age_seconds is None else self.age_seconds[touch_keep],
            journey_id=None if self.journey_id is None else self.journey_id[keep_rows],
            position=None if self.position is None else self.position[touch_keep],
        )

    def paying_rows(self) -> np.ndarray:
        """Boolean per row: the rows with conversions or value, the only ones a credit can come from."""
        return (self.conversions != 0) | (self.value != 0)

    def within(self, lookback_days: float) -> PathTable:
        """Keep only the touches at most ``lookback_days`` before the journey's reference time."""
        if self.age_seconds is None:
            raise SpecError(
                "lookback_needs_timestamps: lookback_days needs per-touch input with a 'timestamp' column; "
                "got aggregated paths (or touches without timestamps)",
                code="lookback_needs_timestamps",
            )
        return self.filter_touches(self.age_seconds <= lookback_days * SECONDS_PER_DAY)

    def without_nulls(self) -> PathTable:
        """Only the converting journeys: rows without conversions are dropped, null counts set to 0."""
        table = replace(self, nulls=np.zeros_like(self.nulls))
        return table.drop_rows(self.conversions <= 0)

    def collapse_repeats(self) -> PathTable:
        """Merge runs of the same channel (``a > a > b`` becomes ``a > b``); the run's first touch is kept."""
        if len(self.codes) == 0:
            return self
        keep = np.ones(len(self.codes), dtype=bool)
        keep[1:] = self.codes[1:] != self.codes[:-1]
        keep[self.offsets[:-1][self.lengths > 0]] = True
        if keep.all():
            return self
        return self.filter_touches(keep)

    def unique(self) -> PathTable:
        """Equal paths merged into one row, counts summed; per-journey and per-touch detail is dropped."""
        ids = ragged_ids(self.offsets, self.codes, self.n_channels)
        inverse, uniq = pd.factorize(ids)
        n = len(uniq)
        first_row = np.full(n, -1, dtype=np.int64)
        first_row[inverse[::-1]] = np.arange(self.n_rows - 1, -1, -1, dtype=np.int64)
        lengths = self.lengths[first_row]
        offsets = _offsets(lengths)
        starts = self.offsets[:-1][first_row]
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return PathTable(
            channels=self.channels,
            offsets=offsets,
            codes=self.codes[gather],
            conversions=np.bincount(inverse, self.conversions, minlength=n),
            value=np.bincount(inverse, self.value, minlength=n),
            nulls=np.bincount(inverse, self.nulls, minlength=n),
            unattributed_conversions=self.unattributed_conversions,
            unattributed_value=self.unattributed_value,
        )

    def distinct_channels(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's channel *set*, as a ragged array ``(offsets, sorted codes)``."""
        from scipy import sparse

        matrix = sparse.csr_matrix(
            (np.ones(len(self.codes)), (self.row_of_touch(), self.codes)),
            shape=(self.n_rows, self.n_channels),
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64)


# ---------------------------------------------------------------------------------------------- helpers
def _index_type(size: int) -> type[np.signedinteger]:
    """int32 for indices that fit (half the memory of per-touch arrays), else int64."""
    return np.int32 if size < 2**31 - 1 else np.int64


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def ragged_ids(offsets: np.ndarray, values: np.ndarray, n_symbols: int) -> np.ndarray:
    """An int64 id per row of a ragged array, equal for two rows exactly when their sequences are equal.

    Position by position, each row's id is refined with its next value (``pd.factorize`` of ``id * base + value``);
    ids of each step come from a fresh range, so a row that ends early never shares an id with a longer one. Rows
    are visited longest first, so step ``j`` touches only the rows longer than ``j``: the work is one hash per value.
    """
    lengths = np.diff(offsets)
    n_rows = len(lengths)
    ids = np.zeros(n_rows, dtype=np.int64)
    if n_rows == 0:
        return ids
    order = np.argsort(-lengths, kind="stable")
    neg_sorted = -lengths[order]
    starts = offsets[:-1][order]
    base = np.int64(n_symbols + 1)
    next_id = np.int64(1)
    for j in range(int(-neg_sorted[0])):
        active = int(np.searchsorted(neg_sorted, -j, side="left"))  # rows longer than j
        rows = order[:active]
        key = ids[rows] * base + values[starts[:active] + j] + 1
        codes, uniques = pd.factorize(key)
        ids[rows] = codes + next_id
        next_id += len(uniques)
    return ids


def _row_error(what: str, row: int, column: str, expected: str, got: Any, n_bad: int = 1) -> SpecError:
    more = f" ({n_bad - 1} more rows like it)" if n_bad > 1 else ""
    if isinstance(got, np.generic):
        got = got.item()
    return SpecError(
        f"{what} row {row}: column '{column}': expected {expected}, got {got!r}{more}",
        code=f"invalid_{what}",
    )


def _numeric(
    values: np.ndarray | pd.Series, *, what: str, column: str, allow_negative: bool = False
) -> np.ndarray:
    """A column as finite float64, with a row-precise error for the first bad value."""
    series = pd.Series(values)
    expected = "a finite number" if allow_negative else "a finite non-negative number"
    if series.dtype == bool:
        return series.to_numpy(dtype=np.float64)
    numbers = pd.to_numeric(series, errors="coerce")
    array = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(array)
    if not allow_negative:
        bad |= array < 0
    if bad.any():
        where = np.flatnonzero(bad)
        raise _row_error(what, int(where[0]), column, expected, series.iloc[where[0]], len(where))
    return array


def _as_arrow(source: Any, what: str) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise UnusableInputError(f"{path}: no such file (expected a CSV or Parquet file of {what})")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            from pyarrow import csv

            return csv.read_csv(path)
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        raise UnusableInputError(f"{path}: unknown format {suffix!r} (expected .csv, .parquet or .pq)")
    raise UnusableInputError(
        f"expected a pandas DataFrame, a pyarrow Table or a file path of {what}, got {type(source).__name__}"
    )


def _column(table: pa.Table, name: str, what: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise SpecError(
            f"missing_column: the {what} table has no column '{name}'; its columns are {table.column_names}",
            code="missing_column",
        )
    return table.column(name)


_PIECE_ROWS = 1 << 19  # paths split at a time: bounds the memory of the split strings, and feeds the threads


def _split_piece(piece: pa.Array, sep: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(list offsets, dictionary indices, raw dictionary) of one slice of the path column."""
    split = pc.split_pattern(piece, pattern=sep)
    encoded = pc.dictionary_encode(pc.list_flatten(split))
    offsets = split.offsets.to_numpy().astype(np.int64)
    raw = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    return offsets - offsets[0], encoded.indices.to_numpy(), raw


def _split_paths(
    paths: pa.ChunkedArray, sep: str, *, what: str, column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channels (sorted), offsets and int32 codes of a column of path strings.

    Slices of the column are split and dictionary-encoded in threads (Arrow's kernels release the GIL); only the
    few distinct raw parts are then stripped of whitespace and merged (``"email"`` and ``" email "`` are one
    channel), so that nothing but one gather runs per touch in Python's own process.
    """
    from concurrent.futures import ThreadPoolExecutor

    pieces = [
        chunk.slice(start, _PIECE_ROWS)
        for chunk in paths.chunks
        for start in range(0, len(chunk), _PIECE_ROWS)
    ]
    workers = max(1, min(4, os.cpu_count() or 1, len(pieces)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda piece: _split_piece(piece, sep), pieces))
    raw_names = np.concatenate([raw for _, _, raw in parts]) if parts else np.zeros(0, dtype=object)
    stripped = np.array([name.strip() for name in raw_names], dtype=object)
    empty = np.flatnonzero(stripped == "")
    if len(empty):
        _raise_empty_channel(paths, parts, sep, what=what, column=column)
    merged, channels = pd.factorize(stripped, sort=True)  # "email" and " email " are one channel
    merged = merged.astype(np.int32)
    lengths = np.concatenate([np.diff(off) for off, _, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
    offsets = _offsets(lengths)
    codes = np.empty(int(offsets[-1]), dtype=np.int32)
    touch = 0
    entry = 0
    for _, indices, raw in parts:
        codes[touch : touch + len(indices)] = merged[entry : entry + len(raw)][indices]
        touch += len(indices)
        entry += len(raw)
    return np.asarray(channels, dtype=object), offsets, codes


def _raise_empty_channel(
    paths: pa.ChunkedArray,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    sep: str,
    *,
    what: str,
    column: str,
) -> None:
    bad_rows: list[np.ndarray] = []
    first_row = 0
    for offsets, indices, raw in parts:
        blank = np.flatnonzero(np.array([name.strip() == "" for name in raw], dtype=bool))
        touches = np.flatnonzero(np.isin(indices, blank))
        bad_rows.append(first_row + np.searchsorted(offsets, touches, side="right") - 1)
        first_row += len(offsets) - 1
    rows = np.unique(np.concatenate(bad_rows))
    row = int(rows[0])
    text = paths[row].as_py()
    expected = "a non-empty path" if not text.strip() else f"non-empty channel names between {sep!r}"
    raise _row_error(what, row, column, expected, text, len(rows))


# ---------------------------------------------------------------------------------------------- readers
def read_paths(
    path_or_df: Any,
    *,
    sep: str = ">",
    path_col: str = "path",
    conv_col: str = "conversions",
    value_col: str | None = "value",
    null_col: str | None = "nulls",
) -> PathTable:
    """Read aggregated paths (one row per path) into a ``PathTable``.

    ``path_or_df`` is a pandas DataFrame, a pyarrow Table, or a CSV / Parquet file. Channels are the parts of the
    path between separators, with surrounding whitespace stripped. ``value_col=None`` / ``null_col=None`` read a
    table without that column (all zero). Errors name the row (0-based), the column, what was expected and what was
    got: a missing or empty path, an empty channel (``"a >> b"``), a negative or non-finite count, a value on a
    row without conversions.
    """
    if not isinstance(sep, str) or not sep:
        raise SpecError(
            f"invalid_separator: sep must be a non-empty string, got {sep!r}", code="invalid_separator"
        )
    table = _as_arrow(path_or_df, "paths")
    what = "paths"
    raw_paths = _column(table, path_col, what)
    if pa.types.is_null(raw_paths.type):  # an empty (or all-missing) column has no type of its own
        raw_paths = raw_paths.cast(pa.string())
    if not (pa.types.is_string(raw_paths.type) or pa.types.is_large_string(raw_paths.type)):
        raise SpecError(
            f"invalid_paths: column '{path_col}': expected strings of channels joined by {sep!r}, "
            f"got a column of type {raw_paths.type}",
            code="invalid_paths",
        )
    paths = raw_paths if isinstance(raw_paths, pa.ChunkedArray) else pa.chunked_array([raw_paths])
    if paths.null_count:
        row = int(np.flatnonzero(paths.is_null().to_numpy())[0])
        raise _row_error(what, row, path_col, f"channels joined by {sep!r}", None, paths.null_count)
    channels, offsets, codes = _split_paths(paths, sep, what=what, column=path_col)

    n = table.num_rows
    conversions = _numeric(_column(table, conv_col, what).to_numpy(), what=what, column=conv_col)
    if null_col is None:
        nulls = np.zeros(n)
    else:
        nulls = _numeric(_column(table, null_col, what).to_numpy(), what=what, column=null_col)
    if value_col is None:
        value = np.zeros(n)
    else:
        value = _numeric(_column(table, value_col, what).to_numpy(), what=what, column=value_col)
        stray = (conversions == 0) & (value != 0)
        if stray.any():
            where = np.flatnonzero(stray)
            raise _row_error(
                what,
                int(where[0]),
                value_col,
                f"0 on a row with 0 in '{conv_col}'",
                value[where[0]],
                len(where),
            )
    return PathTable(
        channels=channels, offsets=offsets, codes=codes, conversions=conversions, value=value, nulls=nulls
    )


def _epoch_seconds(series: pd.Series, *, what: str, column: str) -> np.ndarray:
    """Date-times (tz-aware; naive ones are taken as UTC) or epoch seconds, as float64 epoch seconds."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        stamps = series if isinstance(series.dtype, pd.DatetimeTZDtype) else series.dt.tz_localize("UTC")
        seconds = (
            (stamps - pd.Timestamp(0, tz="UTC"))
            .dt.total_seconds()
            .to_numpy(dtype=np.float64, na_value=np.nan)
        )
        bad = np.isnan(seconds)
        if bad.any():
            where = np.flatnonzero(bad)
            raise _row_error(what, int(where[0]), column, "a date-time", None, len(where))
        return seconds
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return _numeric(series, what=what, column=column, allow_negative=True)
    bad_value = series.iloc[0] if len(series) else None
    raise _row_error(what, 0, column, "tz-aware date-times or epoch seconds", bad_value, len(series))


def _per_journey(
    values: np.ndarray, journey: np.ndarray, first: np.ndarray, *, column: str, ids: np.ndarray
) -> None:
    """Check that a per-journey column has one value per journey (rows sorted by journey)."""
    differ = values != values[first[journey]]
    if values.dtype.kind == "f":
        differ &= ~(np.isnan(values) & np.isnan(values[first[journey]]))
    if differ.any():
        j = int(journey[np.flatnonzero(differ)[0]])
        raise SpecError(
            f"invalid_journeys: column '{column}': expected one value per journey, "
            f"got several in journey {ids[j]!r}",
            code="invalid_journeys",
        )


def read_touches(source: Any, *, key: str = "channel") -> PathTable:
    """Read per-touch rows into a ``PathTable`` with one row per journey.

    Columns: ``journey_id``, ``position``, ``key`` (the credited column), ``converted`` (bool, per journey),
    ``value`` (per journey, 0 when not converted); optional ``timestamp`` and ``conversion_time``. The rows may come
    in any order; ``position`` orders the touches of a journey and must not repeat within one.
    """
    what = "journeys"
    frame = source.to_pandas() if isinstance(source, pa.Table) else source
    if not isinstance(frame, pd.DataFrame):
        raise UnusableInputError(
            f"expected a pandas DataFrame or a pyarrow Table of touches, got {type(source).__name__}"
        )
    required = ("journey_id", "position", key, "converted", "value")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SpecError(
            f"missing_column: per-touch journeys need the columns {list(required)}; "
            f"missing {missing}, got {list(frame.columns)}",
            code="missing_column",
        )
    for column in ("journey_id", key):
        isna = frame[column].isna().to_numpy()
        if isna.any():
            where = np.flatnonzero(isna)
            raise _row_error(what, int(where[0]), column, "a non-empty value", None, len(where))
    position = _numeric(frame["position"], what=what, column="position")
    if (position != np.floor(position)).any():
        where = np.flatnonzero(position != np.floor(position))
        raise _row_error(what, int(where[0]), "position", "a whole number", position[where[0]], len(where))
    converted_col = frame["converted"]
    if pd.api.types.is_bool_dtype(converted_col.dtype) and not converted_col.isna().any():
        converted = converted_col.to_numpy(dtype=bool)
    else:
        numbers = pd.to_numeric(converted_col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isin(numbers, (0.0, 1.0))
        if bad.any():
            where = np.flatnonzero(bad)
            raise _row_error(
                what, int(where[0]), "converted", "true or false", converted_col.iloc[where[0]], len(where)
            )
        converted = numbers == 1.0
    value = _numeric(frame["value"], what=what, column="value")
    timestamps = None
    if "timestamp" in frame.columns:
        timestamps = _epoch_seconds(frame["timestamp"], what=what, column="timestamp")
    conversion_time = None
    if "conversion_time" in frame.columns:
        col = frame["conversion_time"]
        if col.isna().all():
            conversion_time = np.full(len(frame), np.nan)
        else:
            filled = col.fillna(col.dropna().iloc[0])
            conversion_time = _epoch_seconds(filled, what=what, column="conversion_time")
            conversion_time[col.isna().to_numpy()] = np.nan

    journey, journey_ids = pd.factorize(frame["journey_id"], sort=False)
    journey = journey.astype(np.int64)
    order = np.lexsort((position, journey))
    journey = journey[order]
    position_sorted = position[order].astype(np.int64)
    n_journeys = len(journey_ids)
    lengths = np.bincount(journey, minlength=n_journeys)
    offsets = _offsets(lengths)
    first = offsets[:-1]
    same = (journey[1:] == journey[:-1]) & (position_sorted[1:] == position_sorted[:-1])
    if same.any():
        t = int(np.flatnonzero(same)[0])
        raise SpecError(
            f"invalid_journeys: column 'position': expected distinct positions within a journey, got "
            f"{position_sorted[t]} twice in journey {journey_ids[journey[t]]!r}",
            code="invalid_journeys",
        )
    ids = np.asarray(journey_ids, dtype=object)
    converted_sorted = converted[order]
    value_sorted = value[order]
    _per_journey(converted_sorted, journey, first, column="converted", ids=ids)
    _per_journey(value_sorted, journey, first, column="value", ids=ids)
    stray = ~converted_sorted & (value_sorted != 0)
    if stray.any():
        where = order[np.flatnonzero(stray)]
        raise _row_error(
            what,
            int(where.min()),
            "value",
            "0 on a journey that did not convert",
            value[where.min()],
            len(where),
        )

    key_values = frame[key].astype(str).to_numpy()[order]
    codes, uniques = pd.factorize(key_values, sort=True)
    channels = np.asarray(uniques, dtype=object)

    journey_converted = converted_sorted[first]
    conversions = journey_converted.astype(np.float64)
    table = PathTable(
        channels=channels,
        offsets=offsets,
        codes=codes.astype(np.int32),
        conversions=conversions,
        value=value_sorted[first],
        nulls=1.0 - conversions,
        journey_id=ids,
        position=position_sorted,
    )
    if timestamps is None:
        return table
    stamps = timestamps[order]
    reference = np.maximum.reduceat(stamps, first) if len(stamps) else np.zeros(0)
    if conversion_time is not None:
        conv_time = conversion_time[order]
        _per_journey(conv_time, journey, first, column="conversion_time", ids=ids)
        given = journey_converted & ~np.isnan(conv_time[first])
        reference = np.where(given, conv_time[first], reference)
    age = reference[journey] - stamps
    table = replace(table, age_seconds=age)
    if (age < 0).any():
        table = table.filter_touches(age >= 0)
    return table


def as_path_table(journeys: Any, *, key: str = "channel") -> PathTable:
    """Whatever the models accept, as a ``PathTable``.

    A ``PathTable`` is used as is (after ``PathTable.check``); a table with a ``journey_id`` column is read as per-touch rows (``read_touches``),
    one with a ``path`` column as aggregated paths with the default column names and separator (``read_paths``;
    call it yourself for other names or separators).
    """
    if isinstance(journeys, PathTable):
        return journeys.check()
    if isinstance(journeys, pd.DataFrame | pa.Table):
        columns = list(journeys.columns) if isinstance(journeys, pd.DataFrame) else journeys.column_names
        if "journey_id" in columns:
            return read_touches(journeys, key=key)
        if "path" in columns:
            return read_paths(journeys)
        raise SpecError(
            "unknown_journey_table: expected per-touch rows (journey_id, position, "
            f"{key}, converted, value[, timestamp]) or aggregated paths (path, conversions, value, nulls); "
            f"got the columns {columns}",
            code="unknown_journey_table",
        )
    raise UnusableInputError(
        f"expected a pandas DataFrame, a pyarrow Table or a PathTable of journeys, got {type(journeys).__name__}"
    )
