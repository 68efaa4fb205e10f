"""Import persons: ``person_id``, ``persona`` and any attribute columns (segments)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from journeylens.errors import UnusableInputError
from journeylens.ingest.mapping import Mapping
from journeylens.ingest.pipeline import (
    MAX_MESSAGES,
    ImportResult,
    Progress,
    _log_import,
    _next_import_id,
    _quarantine_record,
    _store_quarantine,
)
from journeylens.ingest.readers import Source
from journeylens.ingest.validate import Rejected

if TYPE_CHECKING:
    from journeylens.store import Workspace

_RESERVED = ("person_id", "persona")


def _normalise(table: pa.Table, mapping: Mapping) -> pa.Table:
    renames = {src: dst for dst, src in mapping.columns.items() if dst in _RESERVED}
    columns: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_binary(col.type):
            col = col.cast(pa.string())
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.utf8_trim_whitespace(col.cast(pa.string()))
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        columns[renames.get(name, name)] = col
    for name, value in mapping.constants.items():
        if name in _RESERVED:
            columns[name] = pa.chunked_array([pa.array([value] * table.num_rows, pa.string())])
    if "persona" not in columns:
        columns["persona"] = pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    if "person_id" in columns and not pa.types.is_string(columns["person_id"].type):
        columns["person_id"] = columns["person_id"].cast(pa.string())
    if not pa.types.is_string(columns["persona"].type):
        columns["persona"] = columns["persona"].cast(pa.string())
    return pa.table(columns)


def store_persons(workspace: Workspace, src: Source, mapping: Mapping, progress: Progress | None) -> ImportResult:
    if "person_id" not in src.columns and "person_id" not in mapping.columns:
        raise UnusableInputError(
            f"{src.name}: missing required column 'person_id'; the input has: {', '.join(src.columns) or '(none)'}. "
            "Map a column to it with --map person_id=COLUMN"
        )
    started = time.perf_counter()
    now = datetime.now(UTC)
    result = ImportResult(import_id=0, source=src.name, format=src.format, kind="persons")
    con = workspace.con
    with workspace.transaction():
        result.import_id = _next_import_id(workspace)
        parts: list[pa.Table] = []
        records = []
        for raw in src.batches():
            table = _normalise(raw.table, mapping)
            missing = pc.is_null(table.column("person_id")).to_numpy(zero_copy_only=False)
            raw_rows = raw.table.to_pylist() if missing.any() else []
            for i in missing.nonzero()[0]:
                rej = Rejected(
                    int(raw.lines[i]),
                    "person_id",
                    None,
                    "missing_value",
                    "column 'person_id': is empty; expected a non-empty person id",
                    {k: (v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v) for k, v in raw_rows[i].items()},
                )
                records.append(_quarantine_record(src, result.import_id, rej, now))
            records += [_quarantine_record(src, result.import_id, e, now) for e in raw.errors]
            result.rows_read += raw.table.num_rows + len(raw.errors)
            good = table.filter(pc.invert(pa.array(missing)))
            parts.append(good.append_column("_line", pa.array(raw.lines[~missing], pa.int64())))
            if progress is not None:
                progress(src.progress_done(), src.progress_total())
        new = pa.concat_tables(parts, promote_options="permissive") if parts else None
        if new is not None and new.num_rows:
            m = ibis.memtable(new)
            w = ibis.window(group_by=m.person_id, order_by=ibis.desc(m._line))
            m = m.mutate(_rn=ibis.row_number().over(w)).filter(lambda t: t._rn == 0).drop("_rn", "_line")
            old = workspace.persons
            old_schema, new_schema = old.schema(), m.schema()
            columns = list(dict.fromkeys([*old_schema.names, *new_schema.names]))

            def typed(name: str) -> ibis.DataType:
                a, b = old_schema.get(name), new_schema.get(name)
                if a is None or a.is_null():
                    return b
                if b is None or b.is_null() or a == b:
                    return a
                return ibis.dtype("string")

            types = {c: typed(c) for c in columns}

            def align(t: ibis.Table, schema: ibis.Schema) -> ibis.Table:
                return t.select(
                    *[(t[c].cast(types[c]) if c in schema.names else ibis.null(types[c])).name(c) for c in columns]
                )

            existing = int(old.count().execute())
            kept = old.anti_join(m, "person_id")
            merged = align(m, new_schema).union(align(kept, old_schema)) if existing else align(m, new_schema)
            unchanged = 0
            if existing:
                before = old.semi_join(m, "person_id")
                unchanged = int(align(before, old_schema).intersect(align(m, new_schema)).count().execute())
            result.accepted = int(m.count().execute()) - unchanged
            result.duplicates = int(new.num_rows - result.accepted)
            if result.accepted:
                con.create_table("persons", merged, overwrite=True)
        result.quarantined = len(records)
        _store_quarantine(workspace, records)
        result.messages = [r["message"] for r in records[:MAX_MESSAGES]]
        result.seconds = time.perf_counter() - started
        _log_import(workspace, result, src, now, mapping, workspace.timezone)
    return result
