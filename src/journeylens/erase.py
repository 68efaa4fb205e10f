"""GDPR erasure: remove every trace of one person from a workspace, in one transaction.

What belongs to the person:

- their **anonymous ids**: every ``anonymous_id`` that a row of any table ties to their ``person_id``
  (touchpoints that carry both, ``identities``, ``identity_conflicts``, ``journey_touchpoints``);
- in **every table with a person column** (``person_id``, or a name ending in ``_person_id`` such as
  ``identity_conflicts.chosen_person_id``), found in the workspace's own catalog, not from a fixed list:
  the rows whose person is theirs, also as an unidentified visitor (``anon:<anonymous id>``, the key the
  journey tables give a visitor before the link);
- in tables with an ``anonymous_id`` column: the rows of one of their anonymous ids that carry no person
  (their visits before they logged in). A row of *another* person that carries a shared anonymous id (a
  family tablet) is that person's data and stays;
- in tables holding raw input (a ``raw`` column: the quarantine): every row in which one of the ids
  appears in any text column as a whole token (``p1`` does not match ``p10``).

Derived tables are cleaned in place, so no rebuild is needed. The Parquet scratch that a sliced build
killed half-way left beside the database (a copy of the touchpoints) is removed. The ``erasures`` table logs each erasure
with a salted SHA-256 of the person id (a fresh salt per record: whoever knows the id can check that it
was erased; the log alone reveals nothing), the time and the number of rows per table. After the commit
DuckDB is checkpointed, so that the write-ahead log holds no copy of the erased rows.

**The file.** DuckDB marks the space of deleted rows free but does not overwrite it: until the file is
rewritten, its free blocks still hold the erased bytes. :func:`compact_workspace` rewrites it (a copy of
every table and view into a new file that then replaces the old one); ``journeylens erase`` does so after
the erasure unless told not to. It needs the workspace closed, so the server (which holds it) cannot: after
erasures over HTTP, stop the server and run ``journeylens erase --compact-only``.

Every statement is parameterised: the id never becomes part of SQL text; table and column names come
from DuckDB's own catalog and are quoted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeylens.errors import UnusableInputError, WorkspaceError
from journeylens.journeys.build import remove_build_scratch
from journeylens.store import quote_identifier as _quote

if TYPE_CHECKING:
    from journeylens.store import Workspace

ERASURES_TABLE = "erasures"  # the SQL below names it literally
ANON_PREFIX = "anon:"  # the key the journey tables give an unidentified visitor (journeys.stitching)
_TEXT_TYPES = ("VARCHAR",)


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed: rows per table (only tables that lost rows) and how many anonymous ids."""

    erasure_id: str
    erased_at: datetime
    tables: dict[str, int] = field(default_factory=dict)
    anonymous_ids: int = 0

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def found(self) -> bool:
        return self.rows > 0


def subject_hash(person_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\x1f{person_id}".encode()).hexdigest()


def _catalog(raw: Any) -> dict[str, list[tuple[str, str]]]:
    """The workspace's own base tables (main schema, not temporary) and their (column, type)."""
    rows = raw.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM duckdb_columns() c "
        "JOIN duckdb_tables() t ON t.database_name = c.database_name AND t.schema_name = c.schema_name "
        "AND t.table_name = c.table_name "
        "WHERE t.database_name = current_database() AND t.schema_name = 'main' AND NOT t.temporary "
        "ORDER BY c.table_name, c.column_index"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        if table == ERASURES_TABLE or table.startswith("_"):
            continue
        tables.setdefault(table, []).append((column, dtype))
    return tables


def _is_person_column(name: str) -> bool:
    return name == "person_id" or name.endswith("_person_id")


def _is_anon_column(name: str) -> bool:
    return name == "anonymous_id" or name.endswith("_anonymous_id")


def _token_pattern(values: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")


def erase_person(ws: Workspace, person_id: str) -> ErasureReport:
    """Remove ``person_id`` (and their anonymous ids) from every table; log it in ``erasures``."""
    if not isinstance(person_id, str) or not person_id.strip():
        raise UnusableInputError(
            "erase: the person id is empty; expected the id of one person", code="bad_person_id"
        )
    if ws.engine != "duckdb":
        raise WorkspaceError(f"erase needs a DuckDB workspace; this one runs on {ws.engine}")
    person_id = person_id.strip()
    raw = ws.con.con
    erased_at = datetime.now(UTC)
    counts: dict[str, int] = {}
    with ws.transaction():
        tables = _catalog(raw)
        anon: set[str] = set()
        for table, columns in tables.items():
            names = {c for c, _ in columns}
            if "person_id" in names and "anonymous_id" in names:
                found = raw.execute(
                    f"SELECT DISTINCT anonymous_id FROM {_quote(table)} WHERE person_id = ? AND anonymous_id IS NOT NULL",
                    [person_id],
                ).fetchall()
                anon.update(row[0] for row in found)
        anon_list = sorted(anon)
        keys = [person_id] + [ANON_PREFIX + a for a in anon_list]
        for table, columns in tables.items():
            n = _erase_rows(raw, table, columns, keys, anon_list)
            n += _erase_mentions(raw, table, columns, [person_id, *anon_list])
            if n:
                counts[table] = n
        report = ErasureReport(uuid.uuid4().hex, erased_at, counts, len(anon_list))
        _log(raw, report, person_id)
    raw.execute("CHECKPOINT")
    # a copy of the touchpoints that a build killed half-way left beside the database
    remove_build_scratch(ws)
    return report


def _erase_rows(
    raw: Any, table: str, columns: list[tuple[str, str]], keys: list[str], anon: list[str]
) -> int:
    person_cols = [c for c, t in columns if _is_person_column(c) and t in _TEXT_TYPES]
    anon_cols = [c for c, t in columns if _is_anon_column(c) and t in _TEXT_TYPES]
    conditions: list[str] = []
    params: list[Any] = []
    for c in person_cols:
        conditions.append(f"list_contains(?::VARCHAR[], {_quote(c)})")
        params.append(keys)
    if anon:
        no_person = " AND ".join(f"{_quote(c)} IS NULL" for c in person_cols) or "TRUE"
        for c in anon_cols:
            conditions.append(f"(list_contains(?::VARCHAR[], {_quote(c)}) AND {no_person})")
            params.append(anon)
    if not conditions:
        return 0
    deleted = raw.execute(f"DELETE FROM {_quote(table)} WHERE " + " OR ".join(conditions), params).fetchone()
    return int(deleted[0]) if deleted else 0


def _erase_mentions(raw: Any, table: str, columns: list[tuple[str, str]], ids: list[str]) -> int:
    """Rows of a raw-input table (one with a ``raw`` column) that mention an id in any text column."""
    names = {c for c, _ in columns}
    if "raw" not in names:
        return 0
    text_cols = [c for c, t in columns if t in _TEXT_TYPES]
    pattern = _token_pattern(ids)
    doomed: set[int] = set()
    for c in text_cols:
        for value in ids:
            rows = raw.execute(
                f"SELECT rowid, {_quote(c)} FROM {_quote(table)} WHERE contains({_quote(c)}, ?)", [value]
            ).fetchall()
            doomed.update(rowid for rowid, text in rows if pattern.search(text))
    if not doomed:
        return 0
    deleted = raw.execute(
        f"DELETE FROM {_quote(table)} WHERE list_contains(?::BIGINT[], rowid)", [sorted(doomed)]
    ).fetchone()
    return int(deleted[0]) if deleted else 0


def _ensure_log(raw: Any) -> None:
    raw.execute(
        "CREATE TABLE IF NOT EXISTS erasures ("
        "erasure_id VARCHAR, erased_at TIMESTAMPTZ, subject_hash VARCHAR, salt VARCHAR, "
        "tables VARCHAR, rows BIGINT, anonymous_ids BIGINT)"
    )


def _log(raw: Any, report: ErasureReport, person_id: str) -> None:
    _ensure_log(raw)
    salt = secrets.token_hex(16)
    raw.execute(
        "INSERT INTO erasures VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            report.erasure_id,
            report.erased_at,
            subject_hash(person_id, salt),
            salt,
            json.dumps(report.tables, sort_keys=True),
            report.rows,
            report.anonymous_ids,
        ],
    )


def erasures_of(ws: Workspace, person_id: str) -> list[datetime]:
    """When ``person_id`` was erased (empty when never): checked against the salted hashes of the log."""
    if not ws.has_table(ERASURES_TABLE):
        return []
    rows = ws.con.con.execute(
        "SELECT erased_at, subject_hash, salt FROM erasures ORDER BY erased_at"
    ).fetchall()
    return [at for at, digest, salt in rows if subject_hash(person_id.strip(), salt) == digest]


def compact_workspace(path: str | Path) -> tuple[int, int]:
    """Rewrite the workspace's DuckDB file so that no free block keeps erased data; (bytes before, after).

    The workspace must not be open (raises WorkspaceLockedError when another process holds it). The new
    file is written beside the old one and replaces it in one rename, so a crash leaves one or the other.
    """
    import duckdb

    from journeylens.store import DATABASE_FILE, Workspace

    folder = Path(path)
    file = folder / DATABASE_FILE
    if not file.exists():
        raise WorkspaceError(f"workspace {folder}: no {DATABASE_FILE} here")
    Workspace(folder).close()  # a clear error when another process holds it; checkpoints the WAL
    before = file.stat().st_size
    fresh = folder / f".{DATABASE_FILE}.compact"
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(file))
    try:
        name = con.execute("SELECT current_database()").fetchone()[0]
        target = str(fresh).replace("'", "''")
        con.execute(f"ATTACH '{target}' AS _jl_compact")
        con.execute(f"COPY FROM DATABASE {_quote(name)} TO _jl_compact")
        con.execute("DETACH _jl_compact")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    with open(fresh, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(fresh, file)
    Path(str(file) + ".wal").unlink(missing_ok=True)
    return before, file.stat().st_size
