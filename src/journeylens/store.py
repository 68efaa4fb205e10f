"""The workspace: an Ibis connection and the tables journeylens keeps in it.

By default a workspace is a directory holding one DuckDB file (``journeylens.duckdb``) and a small
settings file (``workspace.yaml``). The same class can be opened on any Ibis backend connection,
a PySpark session in particular (:meth:`Workspace.from_backend`): every analysis is an Ibis
expression over :attr:`Workspace.touchpoints` and friends, so it runs wherever the tables live.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import yaml

from journeylens import _duckdb_epoch
from journeylens.errors import UnusableInputError, WorkspaceError, WorkspaceLockedError
from journeylens.schema import IMPORTS_SCHEMA, PERSONS_BASE_SCHEMA, QUARANTINE_SCHEMA, TOUCHPOINTS_SCHEMA

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from journeylens.ingest import ImportResult

DATABASE_FILE = "journeylens.duckdb"
SETTINGS_FILE = "workspace.yaml"
DEFAULT_WORKSPACE = "journeylens-workspace"

_duckdb_epoch.install()

#: the tables every workspace has, with the schema they are created with
BASE_TABLES: dict[str, pa.Schema] = {
    "touchpoints": TOUCHPOINTS_SCHEMA,
    "persons": PERSONS_BASE_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "imports": IMPORTS_SCHEMA,
}


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int


@dataclass(frozen=True)
class WorkspaceInfo:
    location: str
    engine: str
    timezone: str
    tables: list[TableInfo]
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    persons_with_touchpoints: int
    channels: int
    extra: dict[str, Any] = field(default_factory=dict)


class Workspace:
    """Touchpoints, persons, quarantine and import log, kept in an Ibis backend.

    Parameters
    ----------
    path
        Directory of the workspace; created when missing. Defaults to ``./journeylens-workspace``.
    timezone
        Zone used for naive timestamps in imported files, stored in the workspace's settings on
        creation (default UTC). Passing it for an existing workspace changes the setting.
    read_only
        Open the DuckDB file read-only (several readers may then share it).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        timezone: str | None = None,
        read_only: bool = False,
        memory_limit: str | None = None,
    ) -> None:
        self.path = Path(path if path is not None else DEFAULT_WORKSPACE)
        if self.path.exists() and not self.path.is_dir():
            raise WorkspaceError(f"workspace {self.path}: is a file; expected a directory")
        if read_only and not (self.path / DATABASE_FILE).exists():
            raise WorkspaceError(
                f"workspace {self.path}: no {DATABASE_FILE} here; run `journeylens ingest` or `journeylens demo` first"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.settings = self._load_settings()
        if timezone is not None:
            check_timezone(timezone)
            self.settings["timezone"] = timezone
        self._save_settings()
        self.read_only = read_only
        config: dict[str, Any] = {}
        # DuckDB's memory limit: the argument, else the workspace's setting (``memory_limit: 4GB`` in
        # workspace.yaml, for the CLI and the server), else DuckDB's own (80% of the machine's memory)
        memory_limit = memory_limit or self.settings.get("memory_limit")
        if memory_limit:
            config["memory_limit"] = str(memory_limit)
        #: the memory limit the user chose, if any (a build then runs under it rather than its own budget)
        self.memory_limit: str | None = str(memory_limit) if memory_limit else None
        self.con: BaseBackend = _connect_duckdb(self.path / DATABASE_FILE, read_only=read_only, **config)
        self.engine = "duckdb"
        if not read_only:
            self._ensure_tables()

    @classmethod
    def from_backend(cls, con: BaseBackend, *, timezone: str = "UTC", create: bool = True) -> Workspace:
        """A workspace on an existing Ibis connection (e.g. ``ibis.pyspark.connect(spark)``)."""
        check_timezone(timezone)
        self = cls.__new__(cls)
        self.path = None  # type: ignore[assignment]
        self.settings = {"timezone": timezone}
        self.memory_limit = None
        self.read_only = False
        self.con = con
        self.engine = con.name
        if create:
            self._ensure_tables()
        return self

    # -- settings -----------------------------------------------------------------------------

    def _load_settings(self) -> dict[str, Any]:
        file = self.path / SETTINGS_FILE
        if not file.exists():
            return {"version": 1, "timezone": "UTC"}
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise WorkspaceError(f"{file}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise WorkspaceError(f"{file}: expected a mapping of settings")
        data.setdefault("timezone", "UTC")
        return data

    def _save_settings(self) -> None:
        if self.path is None:
            return
        (self.path / SETTINGS_FILE).write_text(
            yaml.safe_dump(self.settings, sort_keys=True), encoding="utf-8"
        )

    @property
    def timezone(self) -> str:
        return str(self.settings.get("timezone", "UTC"))

    # -- tables -------------------------------------------------------------------------------

    def _ensure_tables(self) -> None:
        existing = set(self.con.list_tables())
        for name, schema in BASE_TABLES.items():
            if name not in existing:
                self.con.create_table(name, schema=ibis.schema(schema))

    def table_names(self) -> list[str]:
        """The workspace's own tables (not Ibis's registered in-memory tables or import scratch tables)."""
        return sorted(n for n in self.con.list_tables() if not n.startswith(("ibis_", "_")))

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def table(self, name: str) -> ibis.Table:
        """An Ibis table expression of one of the workspace's tables."""
        if not self.has_table(name):
            raise WorkspaceError(
                f"workspace {self.location}: no table '{name}'; tables: {', '.join(self.table_names())}"
            )
        return self.con.table(name)

    @property
    def touchpoints(self) -> ibis.Table:
        return self.table("touchpoints")

    @property
    def persons(self) -> ibis.Table:
        return self.table("persons")

    @property
    def quarantine(self) -> ibis.Table:
        return self.table("quarantine")

    @property
    def imports(self) -> ibis.Table:
        return self.table("imports")

    @property
    def journeys(self) -> ibis.Table:
        """One row per journey (after :meth:`build`), with its status against the data's end."""
        return self._built("journeys")

    @property
    def journey_touchpoints(self) -> ibis.Table:
        """Every touchpoint with its stitched person, journey, position and phase (after :meth:`build`)."""
        return self._built("journey_touchpoints")

    @property
    def journey_phases(self) -> ibis.Table:
        """Per journey and phase: entry, exit, time spent, touchpoints (after :meth:`build`)."""
        return self._built("journey_phases")

    def _built(self, name: str) -> ibis.Table:
        if not self.has_table(name):
            raise WorkspaceError(
                f"workspace {self.location}: no table '{name}' yet; run `journeylens build` (or Workspace.build()) first"
            )
        return self.con.table(name)

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else f"<{self.engine} connection>"

    # -- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes on DuckDB (its commit is durable: written to the WAL and synced).

        Other engines have no multi-statement transactions; there the block runs as is.
        """
        if self.engine != "duckdb":
            yield
            return
        self.con.raw_sql("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.raw_sql("ROLLBACK")
            raise
        self.con.raw_sql("COMMIT")

    # -- operations ---------------------------------------------------------------------------

    def ingest(self, source: Any, **options: Any) -> ImportResult:
        """Import touchpoints from a file or a DataFrame; see :func:`journeylens.ingest.ingest`."""
        from journeylens.ingest import ingest

        return ingest(self, source, **options)

    def ingest_persons(self, source: Any, **options: Any) -> ImportResult:
        """Import or update persons (person_id, persona, free attribute columns)."""
        from journeylens.ingest import ingest

        return ingest(self, source, kind="persons", **options)

    def build(self, *, model: Any = "five-phase", journey_model: Any = None, full: bool = False) -> Any:
        """Materialise journeys and phases; see :func:`journeylens.journeys.build`."""
        from journeylens.journeys import build

        return build(self, model=model, journey_model=journey_model, full=full)

    def info(self) -> WorkspaceInfo:
        tables = [TableInfo(name, int(self.con.table(name).count().execute())) for name in self.table_names()]
        t = self.touchpoints
        stats = (
            t.aggregate(
                first=t.timestamp.min(),
                last=t.timestamp.max(),
                persons=t.person_id.nunique(),
                channels=t.channel.nunique(),
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        return WorkspaceInfo(
            location=self.location,
            engine=self.engine,
            timezone=self.timezone,
            tables=tables,
            first_timestamp=stats["first"],
            last_timestamp=stats["last"],
            persons_with_touchpoints=int(stats["persons"] or 0),
            channels=int(stats["channels"] or 0),
        )

    def close(self) -> None:
        if self.engine == "duckdb":
            self.con.disconnect()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({self.location!r}, engine={self.engine!r})"


def quote_identifier(name: str) -> str:
    """A table or column name as a DuckDB identifier (for SQL built from catalog names, never from input)."""
    return '"' + name.replace('"', '""') + '"'


def check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnusableInputError(
            f"time zone {name!r} is unknown; expected an IANA name such as UTC or Europe/Amsterdam"
        ) from None


_LOCK_PID = re.compile(r"PID (\d+)")


def _connect_duckdb(file: Path, *, read_only: bool, **config: Any) -> BaseBackend:
    import duckdb

    try:
        return ibis.duckdb.connect(str(file), read_only=read_only, **config)
    except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
        if "memory_limit" not in config:
            raise
        raise WorkspaceError(
            f"workspace {file.parent}: memory_limit {config['memory_limit']!r} is not a size DuckDB understands "
            f"(in {SETTINGS_FILE} or the memory_limit argument); expected e.g. 4GB or 512MB ({str(exc).splitlines()[0]})"
        ) from None
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = _LOCK_PID.search(text)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise WorkspaceLockedError(
                f"workspace {file.parent}: another process{holder} holds it; stop it (e.g. `journeylens serve`) or use another workspace"
            ) from None
        raise WorkspaceError(
            f"workspace {file.parent}: cannot open {file.name}: {text.splitlines()[0]}"
        ) from None
