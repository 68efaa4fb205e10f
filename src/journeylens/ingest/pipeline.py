"""The import: read, map, validate, dedupe and store, all or nothing.

One import runs in one transaction on DuckDB: accepted touchpoints, quarantined rows and the import's
log record are committed together, and the commit is durable before :func:`ingest` returns. A
process killed mid-import leaves the workspace as it was, so the same command can simply run again.

Duplicates are decided by ``event_id``: a row whose ``event_id`` is already stored with the same content
(``row_hash``) is a duplicate and is skipped and counted; one whose content differs is a conflict and
goes to the quarantine. Rows without an ``event_id`` get ``"h" + row_hash``, so re-importing the same
file changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from journeylens.errors import UnusableInputError
from journeylens.ingest.mapping import Mapping
from journeylens.ingest.readers import RawError, Source, open_source
from journeylens.ingest.validate import Rejected, apply_mapping, missing_required, validate_batch
from journeylens.schema import (
    CONTRACT_COLUMNS,
    FIELDS_BY_NAME,
    IMPORTS_SCHEMA,
    QUARANTINE_SCHEMA,
    TOUCHPOINTS_SCHEMA,
)
from journeylens.store import check_timezone

if TYPE_CHECKING:
    from journeylens.store import Workspace

Progress = Callable[[int, int | None], None]
_BATCH_TABLE = "_jl_import_batch"
_STAGE_TABLE = "_jl_import_stage"
#: messages kept on the result (all of them are in the quarantine table)
MAX_MESSAGES = 1000


@dataclass
class ImportResult:
    import_id: int
    source: str
    format: str
    kind: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every row was accepted (or was a duplicate), 3 when some went to the quarantine."""
        return 3 if self.quarantined else 0


def _quarantine_record(source: Source, import_id: int, rej: Rejected | RawError, now: datetime) -> dict[str, Any]:
    where = source.where(rej.line)
    raw = rej.raw if isinstance(rej, RawError) else json.dumps(rej.raw, sort_keys=True, ensure_ascii=False, default=str)
    message = f"{where}: {rej.message}"
    qid = hashlib.sha256("\x1f".join([source.name, str(rej.line), raw, rej.reason]).encode()).hexdigest()[:32]
    return {
        "quarantine_id": qid,
        "import_id": import_id,
        "source": source.name,
        "line": rej.line,
        "field": rej.field,
        "value": rej.value,
        "reason": rej.reason,
        "message": message,
        "raw": raw,
        "person_id": rej.person_id if isinstance(rej, Rejected) else None,
        "quarantined_at": now,
    }


def ingest(
    workspace: Workspace,
    source: Any,
    *,
    format: str | None = None,
    mapping: Mapping | None = None,
    timezone: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    kind: str = "touchpoints",
    progress: Progress | None = None,
    source_name: str | None = None,
) -> ImportResult:
    """Import touchpoints (or persons, with ``kind="persons"``) from a file or a DataFrame.

    Raises :class:`~journeylens.errors.UnusableInputError` (nothing written) when the input as a
    whole cannot be used; otherwise returns the counts, with bad rows in the quarantine.
    """
    if kind not in ("touchpoints", "persons"):
        raise UnusableInputError(f"kind '{kind}' is unknown; expected touchpoints or persons")
    mapping = mapping or Mapping()
    zone = timezone or mapping.timezone or workspace.timezone
    check_timezone(zone)
    src = open_source(source, format=format, delimiter=delimiter, encoding=encoding)
    if source_name:
        src.name = source_name
    if kind == "persons":
        return _ingest_persons(workspace, src, mapping, progress)

    missing = missing_required(src.columns, mapping)
    if missing:
        hint = ""
        if len(src.columns) == 1:
            for sep in (";", "\t", "|", ","):
                if sep in src.columns[0]:
                    hint = f"; the header looks {sep!r}-delimited: pass --delimiter {sep!r}"
                    break
        shown = ", ".join(src.columns) if src.columns else "(none)"
        raise UnusableInputError(
            f"{src.name}: missing required column '{missing[0]}': expected {FIELDS_BY_NAME[missing[0]].expected}; "
            f"the input has: {shown}{hint}. Map a column to it with --map {missing[0]}=COLUMN"
        )
    used = set(mapping.columns.values()) | set(CONTRACT_COLUMNS)
    ignored = [c for c in src.columns if c not in used]

    started = time.perf_counter()
    now = datetime.now(UTC)
    con = workspace.con
    result = ImportResult(import_id=0, source=src.name, format=src.format, kind=kind, ignored_columns=ignored)
    with workspace.transaction():
        result.import_id = _next_import_id(workspace)
        _drop_scratch(workspace)
        # 1. stream: validate each batch; good rows go to a staging table, bad ones to the quarantine
        staged = False
        for raw in src.batches():
            table = apply_mapping(raw.table, mapping, src.name)
            validated = validate_batch(table, raw.lines, zone=zone)
            records = [_quarantine_record(src, result.import_id, e, now) for e in raw.errors]
            records += [_quarantine_record(src, result.import_id, r, now) for r in validated.rejected]
            result.rows_read += raw.table.num_rows + len(raw.errors)
            if validated.good.num_rows:
                if not staged:
                    con.create_table(_STAGE_TABLE, schema=ibis.schema(validated.good.schema), temp=con.name == "duckdb")
                    staged = True
                _append(con, _STAGE_TABLE, validated.good)
            _add_quarantine(workspace, result, records)
            if progress is not None:
                progress(src.progress_done(), src.progress_total())
        # 2. merge: one set-based pass decides new rows, duplicates and conflicts
        if staged:
            accepted, duplicates, conflicts = _merge_stage(workspace, result.import_id)
            result.accepted, result.duplicates = accepted, duplicates
            _add_quarantine(workspace, result, [_quarantine_record(src, result.import_id, c, now) for c in conflicts])
        _drop_scratch(workspace)
        result.seconds = time.perf_counter() - started
        _log_import(workspace, result, src, now, mapping, zone)
    return result


def _add_quarantine(workspace: Workspace, result: ImportResult, records: list[dict[str, Any]]) -> None:
    records.sort(key=lambda r: r["line"])
    result.quarantined += len(records)
    _store_quarantine(workspace, records)
    result.messages.extend(r["message"] for r in records[: max(0, MAX_MESSAGES - len(result.messages))])


def _append(con: Any, table: str, rows: pa.Table) -> None:
    """Append an Arrow batch to one of our own tables (its columns, in the table's order).

    On DuckDB through the relational API (``from_arrow(...).insert_into``). Both other ways keep every
    batch alive until the import's transaction commits, so a large file's import would grow with the
    file (100M events: past 20 GB): Ibis's ``insert`` (it registers each batch for good), and DuckDB's
    own ``register`` + ``INSERT`` + ``unregister`` (inside a transaction the scan of a registered object
    stays referenced). ``from_arrow().insert_into`` does not (10M events: Arrow memory flat at ~0.4 GB)."""
    if con.name != "duckdb":
        con.insert(table, rows)
        return
    raw = con.con
    raw.from_arrow(rows.select(raw.table(table).columns)).insert_into(table)


def _drop_scratch(workspace: Workspace) -> None:
    con = workspace.con
    existing = set(con.list_tables())
    for name in (_STAGE_TABLE, _BATCH_TABLE):
        if name in existing:
            con.drop_table(name, force=True)


def _next_import_id(workspace: Workspace) -> int:
    current = workspace.imports.import_id.max().execute()
    return 1 if current is None or current != current else int(current) + 1


def _content(t: ibis.Table) -> ibis.Value:
    """The normalised content as one string (every contract column but event_id), for generated ids."""
    parts = [t[c].cast("string").fill_null("\\N") for c in CONTRACT_COLUMNS if c != "event_id"]
    return ibis.literal("\x1f").join(parts)


def _row_hash(t: ibis.Table) -> ibis.Value:
    """A 64-bit hash of the content (every contract column but event_id): tells a duplicate from a conflict."""
    return ibis.struct({c: t[c] for c in CONTRACT_COLUMNS if c != "event_id"}).hash().cast("string")


def _merge_stage(workspace: Workspace, import_id: int) -> tuple[int, int, list[Rejected]]:
    """Insert the staged rows that are new, count exact duplicates, return conflicting ones.

    A duplicate has an event_id that is already stored (or earlier in this import) with the same content;
    a conflict has the same event_id with other content. Rows without an event_id get ``"h" + md5`` of
    their content, so a re-import finds them again.
    """
    con = workspace.con
    m = con.table(_STAGE_TABLE)
    m = m.mutate(row_hash=_row_hash(m))
    if int(m.event_id.isnull().sum().execute() or 0):
        m = m.mutate(event_id=ibis.ifelse(m.event_id.isnull(), ibis.literal("h") + _content(m).hexdigest("md5"), m.event_id))
    stored = workspace.touchpoints.select(event_id="event_id", _stored_hash="row_hash", _stored_import="import_id")
    repeated = m.group_by("event_id").aggregate(n=m.count()).filter(lambda g: g.n > 1).count()
    known = m.select("event_id").semi_join(stored, "event_id").count()
    if int(repeated.execute()) == 0 and int(known.execute()) == 0:
        # the common case, fresh data: every staged row is new
        insert = m.select(*CONTRACT_COLUMNS, "row_hash", import_id=ibis.literal(import_id, "int64"))
        con.insert("touchpoints", insert.select(*TOUCHPOINTS_SCHEMA.names))
        return int(con.table(_STAGE_TABLE).count().execute()), 0, []

    w = ibis.window(group_by=m.event_id, order_by=[m._line])
    m = m.mutate(_rn=ibis.row_number().over(w), _first_hash=m.row_hash.first().over(w))
    joined = m.left_join(stored, "event_id").drop("event_id_right")
    batch = con.create_table(_BATCH_TABLE, joined, temp=con.name == "duckdb", overwrite=True)

    new = batch.filter((batch._rn == 0) & batch._stored_hash.isnull())
    insert = new.select(*CONTRACT_COLUMNS, "row_hash", import_id=ibis.literal(import_id, "int64"))
    insert = insert.select(*TOUCHPOINTS_SCHEMA.names)
    is_dup_in_file = (batch._rn > 0) & (batch.row_hash == batch._first_hash)
    is_dup_stored = (batch._rn == 0) & (batch._stored_hash == batch.row_hash)
    conflict_in_file = (batch._rn > 0) & (batch.row_hash != batch._first_hash)
    conflict_stored = (batch._rn == 0) & batch._stored_hash.notnull() & (batch._stored_hash != batch.row_hash)
    counts = batch.aggregate(
        new=((batch._rn == 0) & batch._stored_hash.isnull()).sum(),
        dups=(is_dup_in_file | is_dup_stored.fill_null(False)).sum(),
    ).to_pyarrow().to_pylist()[0]
    conflicts_t = batch.filter(conflict_in_file | conflict_stored.fill_null(False)).order_by("_line").to_pyarrow()
    con.insert("touchpoints", insert)

    conflicts: list[Rejected] = []
    for row in conflicts_t.to_pylist():
        earlier = "earlier in this file" if row["_rn"] > 0 or row["_stored_import"] == import_id else f"in import {row['_stored_import']}"
        raw = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k in CONTRACT_COLUMNS}
        conflicts.append(
            Rejected(
                line=int(row["_line"]),
                field="event_id",
                value=row["event_id"],
                reason="duplicate_event_id",
                message=f"column 'event_id': {row['event_id']!r} is already used by a different touchpoint ({earlier}); "
                "expected a unique id per touchpoint",
                raw=raw,
                person_id=row["person_id"],
            )
        )
    return int(counts["new"] or 0), int(counts["dups"] or 0), conflicts


def _store_quarantine(workspace: Workspace, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    table = pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA)
    m = ibis.memtable(table)
    existing = workspace.quarantine.select("quarantine_id")
    fresh = m.anti_join(existing, "quarantine_id")
    workspace.con.insert("quarantine", fresh.select(*QUARANTINE_SCHEMA.names))


def _log_import(workspace: Workspace, result: ImportResult, src: Source, started: datetime, mapping: Mapping, zone: str) -> None:
    source = str(getattr(src, "path", src.name))
    record = {
        "import_id": result.import_id,
        "kind": result.kind,
        "source": str(Path(source).resolve()) if hasattr(src, "path") else source,
        "format": result.format,
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "rows_read": result.rows_read,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "duplicates": result.duplicates,
        "options": json.dumps({**mapping.as_dict(), "timezone": zone}, sort_keys=True),
    }
    workspace.con.insert("imports", ibis.memtable(pa.Table.from_pylist([record], schema=IMPORTS_SCHEMA)))


def _ingest_persons(workspace: Workspace, src: Source, mapping: Mapping, progress: Progress | None) -> ImportResult:
    """Upsert persons: the newest row per person_id wins; new attribute columns are added."""
    from journeylens.ingest.persons import store_persons

    return store_persons(workspace, src, mapping, progress)
