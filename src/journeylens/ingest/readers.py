"""Readers: turn a file or an in-memory table into a stream of raw Arrow batches.

Every reader streams (pyarrow's CSV and Parquet readers, JSON Lines a chunk of lines at a time), so a
file larger than memory never has to fit in it. Each batch carries the line (or row index) of every
row, and rows that could not even be parsed are reported as :class:`RawError` for the quarantine.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from journeylens.errors import UnusableInputError

FORMATS = ("csv", "tsv", "parquet", "jsonl", "ga4", "segment")
#: event exports, read by journeylens.ingest.formats (only when named: --format ga4 | segment)
EXPORT_FORMATS = ("ga4", "segment")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
CSV_BLOCK_SIZE = 8 << 20
PARQUET_BATCH_ROWS = 1 << 20
JSONL_BATCH_LINES = 50_000


@dataclass
class RawError:
    """A row that could not be read at all (malformed CSV row, bad JSON, bad bytes)."""

    line: int
    reason: str
    message: str  # without the "source:line: " prefix
    raw: str
    field: str | None = None
    value: str | None = None


@dataclass
class RawBatch:
    table: pa.Table
    #: line number (files with lines, header = 1) or 0-based row index, per row of ``table``
    lines: np.ndarray
    errors: list[RawError] = field(default_factory=list)


class Source:
    """A readable source: its display name, format, columns and a stream of batches."""

    name: str
    format: str
    columns: list[str]
    #: "line" for text files, "row" for Parquet and in-memory tables
    position_kind: str = "line"

    def batches(self) -> Iterator[RawBatch]:  # pragma: no cover - interface
        raise NotImplementedError

    def progress_total(self) -> int | None:
        return None

    def progress_done(self) -> int:
        return 0

    def where(self, line: int) -> str:
        return f"{self.name}:{line}" if self.position_kind == "line" else f"{self.name}: row {line}"


def detect_format(path: Path, format: str | None) -> str:
    if format:
        fmt = format.lower()
        if fmt == "ndjson":
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise UnusableInputError(f"format '{format}' is unknown; expected one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst", ".bz2"):
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise UnusableInputError(
            f"{path.name}: cannot tell the format from the extension '{''.join(path.suffixes) or '(none)'}'; "
            f"expected .csv, .tsv, .parquet or .jsonl, or pass --format"
        )
    return fmt


def open_source(source: Any, *, format: str | None = None, delimiter: str | None = None, encoding: str = "utf-8") -> Source:
    """A :class:`Source` for a path, a pandas / Polars DataFrame or an Arrow table or reader."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise UnusableInputError(f"{path}: no such file")
        if path.is_dir():
            raise UnusableInputError(f"{path}: is a directory; expected a file")
        fmt = detect_format(path, format)
        if fmt in EXPORT_FORMATS:
            from journeylens.ingest.formats import open_export

            return open_export(path, fmt, encoding=encoding)
        if fmt in ("csv", "tsv"):
            return CsvSource(path, fmt, delimiter=delimiter or ("\t" if fmt == "tsv" else None), encoding=encoding)
        if fmt == "parquet":
            return ParquetSource(path)
        return JsonlSource(path, encoding=encoding)
    return TableSource(_to_arrow(source))


def _to_arrow(obj: Any) -> pa.Table:
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if isinstance(obj, pa.RecordBatchReader):
        return obj.read_all()
    module = type(obj).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if module.startswith("polars"):
        return obj.to_arrow()
    if hasattr(obj, "__arrow_c_stream__"):
        return pa.table(obj)
    raise UnusableInputError(
        f"cannot import an object of type {type(obj).__name__}; expected a file path, a pandas or Polars DataFrame or an Arrow table"
    )


class TableSource(Source):
    position_kind = "row"

    def __init__(self, table: pa.Table, name: str = "table") -> None:
        self.table = table
        self.name = name
        self.format = "arrow"
        self.columns = list(table.column_names)
        self._done = 0

    def batches(self) -> Iterator[RawBatch]:
        start = 0
        for batch in self.table.to_batches(max_chunksize=PARQUET_BATCH_ROWS):
            n = batch.num_rows
            yield RawBatch(pa.Table.from_batches([batch]), np.arange(start, start + n, dtype=np.int64))
            start += n
            self._done = start

    def progress_total(self) -> int:
        return self.table.num_rows

    def progress_done(self) -> int:
        return self._done


class ParquetSource(Source):
    position_kind = "row"

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.name = path.name
        self.format = "parquet"
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise UnusableInputError(f"{path.name}: not a readable Parquet file ({exc})") from None
        self.columns = list(self.file.schema_arrow.names)
        self._done = 0

    def batches(self) -> Iterator[RawBatch]:
        start = 0
        for batch in self.file.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            n = batch.num_rows
            yield RawBatch(pa.Table.from_batches([batch]), np.arange(start, start + n, dtype=np.int64))
            start += n
            self._done = start

    def progress_total(self) -> int:
        return self.file.metadata.num_rows

    def progress_done(self) -> int:
        return self._done


def _decode_header(raw: bytes, encoding: str, name: str) -> str:
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError:
        raise UnusableInputError(f"{name}:1: the header is not valid {encoding}; pass --encoding (e.g. latin-1)") from None


class CsvSource(Source):
    def __init__(self, path: Path, fmt: str, *, delimiter: str | None, encoding: str) -> None:
        self.path = path
        self.name = path.name
        self.format = fmt
        self.encoding = encoding
        self.utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(1 << 16)
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        if not head.strip():
            raise UnusableInputError(f"{path.name}: the file is empty; expected a header line naming the columns")
        header = _decode_header(first, encoding, path.name)
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
        if len(delimiter) != 1:
            raise UnusableInputError(f"delimiter {delimiter!r}: expected one character")
        self.delimiter = delimiter
        self.columns = [c.strip() for c in next(csv.reader([header], delimiter=delimiter))]
        seen: set[str] = set()
        for c in self.columns:
            if c in seen:
                raise UnusableInputError(f"{path.name}:1: column '{c}' appears twice in the header")
            seen.add(c)
        self._size = path.stat().st_size
        self._file: Any = None

    def batches(self) -> Iterator[RawBatch]:
        import pyarrow.csv as pcsv

        errors: list[RawError] = []

        def on_invalid(row: Any) -> str:
            errors.append(
                RawError(
                    line=int(row.number) if row.number is not None else -1,
                    reason="malformed_row",
                    message=f"the row has {row.actual_columns} fields; expected {row.expected_columns} "
                    f"(check the quoting and the delimiter {self.delimiter!r})",
                    raw=row.text,
                )
            )
            return "skip"

        col_type = pa.binary() if self.utf8 else pa.string()
        read_options = pcsv.ReadOptions(
            use_threads=False,  # keeps the physical line numbers of malformed rows
            block_size=CSV_BLOCK_SIZE,
            column_names=self.columns,
            skip_rows=1,
            encoding="utf8" if self.utf8 else self.encoding,
        )
        parse_options = pcsv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid, newlines_in_values=False)
        convert_options = pcsv.ConvertOptions(
            column_types={c: col_type for c in self.columns}, strings_can_be_null=False, quoted_strings_can_be_null=False
        )
        self._file = pa.input_stream(str(self.path), compression="detect")
        next_line = 2
        try:
            reader = pcsv.open_csv(self._file, read_options=read_options, parse_options=parse_options, convert_options=convert_options)
            for batch in reader:
                n = batch.num_rows
                bad_lines = sorted(e.line for e in errors if e.line >= next_line)
                total = n + len(bad_lines)
                candidates = np.arange(next_line, next_line + total, dtype=np.int64)
                if bad_lines:
                    candidates = candidates[~np.isin(candidates, np.asarray(bad_lines, dtype=np.int64))]
                lines = candidates[:n]
                next_line += total
                yield RawBatch(pa.Table.from_batches([batch]), lines, errors=list(errors))
                errors.clear()
            if errors:
                yield RawBatch(pa.table({c: pa.array([], col_type) for c in self.columns}), np.zeros(0, np.int64), errors=list(errors))
        except pa.ArrowInvalid as exc:
            raise UnusableInputError(f"{self.name}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
        finally:
            self._file.close()

    def progress_total(self) -> int:
        return self._size

    def progress_done(self) -> int:
        if self._file is None or self._file.closed:
            return self._size if self._file is not None else 0
        try:
            return min(self._file.tell(), self._size)
        except OSError:
            return 0


class JsonlSource(Source):
    def __init__(self, path: Path, *, encoding: str) -> None:
        self.path = path
        self.name = path.name
        self.format = "jsonl"
        self.encoding = encoding
        self._size = path.stat().st_size
        self._done = 0
        if self._size == 0:
            raise UnusableInputError(f"{path.name}: the file is empty; expected one JSON object per line")
        # the columns are the keys of the first objects (rows may leave optional keys out)
        keys: dict[str, None] = {}
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(1 << 20)
        for raw in head.splitlines()[:1000]:
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict):
                keys.update(dict.fromkeys(obj))
        self.columns = list(keys)

    def batches(self) -> Iterator[RawBatch]:
        with pa.input_stream(str(self.path), compression="detect") as stream:
            rows: list[dict[str, Any]] = []
            lines: list[int] = []
            errors: list[RawError] = []
            number = 0
            buffer = b""
            while True:
                chunk = stream.read(4 << 20)
                self._done += len(chunk)
                if not chunk:
                    pending = [buffer] if buffer else []
                else:
                    parts = (buffer + chunk).split(b"\n")
                    buffer = parts.pop()
                    pending = parts
                for raw in pending:
                    number += 1
                    self._parse_line(raw, number, rows, lines, errors)
                if len(rows) >= JSONL_BATCH_LINES or (not chunk and (rows or errors)):
                    yield self._batch(rows, lines, errors)
                    rows, lines, errors = [], [], []
                if not chunk:
                    break

    def _parse_line(self, raw: bytes, number: int, rows: list[dict[str, Any]], lines: list[int], errors: list[RawError]) -> None:
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            errors.append(
                RawError(number, "bad_encoding", f"bytes {raw[exc.start : exc.end]!r} are not valid {self.encoding} (pass --encoding)", raw.decode(self.encoding, "replace"))
            )
            return
        try:
            obj = json.loads(text)
        except ValueError as exc:
            errors.append(RawError(number, "bad_json", f"not valid JSON ({exc}); expected one JSON object per line", text))
            return
        if not isinstance(obj, dict):
            errors.append(RawError(number, "bad_json", f"a JSON {type(obj).__name__}; expected one JSON object per line", text))
            return
        rows.append({k: _json_scalar(v) for k, v in obj.items()})
        lines.append(number)

    def _batch(self, rows: list[dict[str, Any]], lines: list[int], errors: list[RawError]) -> RawBatch:
        names: dict[str, None] = dict.fromkeys(self.columns)
        for row in rows:
            names.update(dict.fromkeys(row))
        table = pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in names})
        return RawBatch(table, np.asarray(lines, dtype=np.int64), errors)

    def progress_total(self) -> int:
        return self._size

    def progress_done(self) -> int:
        return self._done


def _json_scalar(value: Any) -> str | None:
    """A JSON value as the string the validator reads (objects and arrays as canonical JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)
