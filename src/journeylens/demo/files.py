"""Write the demo data to files, streaming chunk by chunk so that memory stays bounded by the chunk size."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from journeylens.demo.generator import PERSONS_SCHEMA, TOUCHPOINTS_SCHEMA, generate
from journeylens.errors import UnusableInputError

__all__ = ["FORMATS", "GeneratedFiles", "write_demo"]

_UNIQUE_COLUMNS = frozenset({"event_id", "person_id", "anonymous_id", "timestamp", "revenue"})
_FILTERED_COLUMNS = frozenset({"timestamp", "person_id", "touchpoint", "channel", "persona"})

#: file extension -> format
FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class GeneratedFiles:
    """What ``write_demo`` wrote. ``n_persons`` counts the persons file's rows: the simulated persons less
    the anonymous visitors who never identified themselves."""

    touchpoints: Path
    persons: Path
    n_touchpoints: int
    n_persons: int


def write_demo(
    out: Path | str,
    persons: int,
    *,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **kw: Any,
) -> GeneratedFiles:
    """Write ``persons`` simulated persons' touchpoints to ``out`` and the persons to ``<stem>.persons<ext>``.

    The format follows the extension: ``.parquet``, ``.csv``, ``.tsv``, ``.jsonl`` or ``.ndjson``. Other
    keyword arguments (``start``, ``days``, ``chunk_persons``) go to ``generate``; ``progress(done, total)``
    is called with the number of persons simulated after each chunk. Raises ``UnusableInputError`` (nothing
    written) for an unknown extension.
    """
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise UnusableInputError(
            f"{out.name}: cannot tell the format from the extension '{ext or '(none)'}'; "
            f"expected one of {', '.join(FORMATS)}",
            code="unknown_format",
        )
    persons_path = out.with_name(f"{out.stem}.persons{out.suffix}")
    fmt = FORMATS[ext]
    chunk = int(kw.get("chunk_persons", 50_000))
    chunks = generate(persons, seed=seed, **kw)  # checks the arguments before a file is opened
    n_touchpoints = n_persons = done = 0
    with ExitStack() as stack:
        touchpoint_writer = stack.enter_context(_writer(fmt, out, TOUCHPOINTS_SCHEMA))
        person_writer = stack.enter_context(_writer(fmt, persons_path, PERSONS_SCHEMA))
        for touchpoints, people in chunks:
            touchpoint_writer.write_table(touchpoints)
            person_writer.write_table(people)
            n_touchpoints += touchpoints.num_rows
            n_persons += people.num_rows
            done = min(done + chunk, persons)
            if progress is not None:
                progress(done, persons)
    return GeneratedFiles(
        touchpoints=out, persons=persons_path, n_touchpoints=n_touchpoints, n_persons=n_persons
    )


class _TableWriter(Protocol):
    def write_table(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> _TableWriter: ...

    def __exit__(self, *exc: object) -> None: ...


def _writer(fmt: str, path: Path, schema: pa.Schema) -> _TableWriter:
    if fmt == "parquet":
        # dictionary encoding only where values repeat (ids and timestamps would only waste the attempt), and
        # statistics where readers filter (row groups by time, person, touchpoint, channel)
        repeated = [name for name in schema.names if name not in _UNIQUE_COLUMNS]
        filtered = [name for name in schema.names if name in _FILTERED_COLUMNS]
        return pq.ParquetWriter(path, schema, use_dictionary=repeated, write_statistics=filtered)
    if fmt in ("csv", "tsv"):
        options = pacsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",")
        return pacsv.CSVWriter(path, schema, write_options=options)
    return _JsonLinesWriter(path)


class _JsonLinesWriter:
    """One JSON object per line; timestamps as ISO 8601 in UTC with microseconds, nulls as null."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", newline="\n")

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        frame = table.to_pandas()
        text = frame.to_json(
            orient="records", lines=True, date_format="iso", date_unit="us", force_ascii=False
        )
        self._file.write(text if text.endswith("\n") else text + "\n")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
