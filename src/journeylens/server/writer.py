"""The single writer: one thread owns the workspace; requests queue for it, bounded, and commit in groups.

Every use of the DuckDB connection (imports, the lazy build, reads, erasures, key changes) runs on the
writer's thread, one job after the other, in the order the jobs arrived. Waiting imports are merged into
one (*group commit*): the thread takes every import job queued (up to ``max_group_events`` events),
imports them with :func:`journeylens.ingest.ingest` in one transaction, and answers each request with
its own counts. The import commits (durably) before any request is answered, so a 2xx means stored.

The queue is bounded by events and by jobs: a request that does not fit is refused at once with
:class:`QueueFull` (HTTP 429 with ``Retry-After``) instead of waiting in memory.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

if TYPE_CHECKING:
    from journeylens.store import Workspace

T = TypeVar("T")


class QueueFull(Exception):
    """The writer is behind: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, queued_events: int) -> None:
        super().__init__(
            f"the write queue is full ({queued_events:,} events waiting); retry after {retry_after} s"
        )
        self.retry_after = retry_after
        self.queued_events = queued_events


class WriterClosed(Exception):
    """The server is shutting down and takes no more work."""


@dataclass
class Conflict:
    """A valid event the import refused: its row in the request's table, and why."""

    row: int
    field: str | None
    reason: str
    message: str


@dataclass
class Outcome:
    """What one request's import did: rows stored now, rows already stored, rows refused."""

    import_id: int
    accepted: int
    duplicates: int
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class _Job:
    events: int
    future: Future[Any]
    table: pa.Table | None = None
    call: Callable[[Workspace], Any] | None = None


class Writer:
    """The workspace's only user, on its own thread (see the module's docstring)."""

    def __init__(
        self,
        ws: Workspace,
        *,
        max_queue_events: int = 100_000,
        max_queue_jobs: int = 1_000,
        max_group_events: int = 100_000,
        group_linger: float = 0.05,
    ) -> None:
        self.ws = ws
        self.max_queue_events = max_queue_events
        self.max_queue_jobs = max_queue_jobs
        self.max_group_events = max_group_events
        self.group_linger = group_linger
        #: set after an import that stored something; the lazy build clears it
        self.dirty = True
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._queued_events = 0
        self._queued_jobs = 0
        self._closing = False
        self._last_import = 0.0  # time.monotonic() at the end of the last import
        self._incoming = 0  # requests being read or validated, whose rows are about to be submitted
        self._rate = 20_000.0  # events per second, an estimate for Retry-After; updated as imports run
        self._thread = threading.Thread(target=self._run, name="journeylens-writer", daemon=True)
        self._thread.start()

    # -- submitting -------------------------------------------------------------------------------

    @property
    def queued_events(self) -> int:
        return self._queued_events

    @property
    def queued_jobs(self) -> int:
        return self._queued_jobs

    def retry_after(self) -> int:
        """Seconds until the queue is likely to have room, from the recent import rate (1 to 60)."""
        return max(1, min(60, math.ceil(self._queued_events / max(self._rate, 1.0))))

    def _submit(self, job: _Job) -> Future[Any]:
        with self._cond:
            if self._closing:
                raise WriterClosed("the server is shutting down")
            full_events = self._queued_events > 0 and self._queued_events + job.events > self.max_queue_events
            if full_events or self._queued_jobs >= self.max_queue_jobs:
                raise QueueFull(self.retry_after(), self._queued_events)
            self._jobs.append(job)
            self._queued_events += job.events
            self._queued_jobs += 1
            self._cond.notify()
        return job.future

    def incoming(self, delta: int) -> None:
        """Count a request that will submit rows soon (+1), or that did or will not (-1): the writer
        waits up to ``group_linger`` seconds for such requests, to import them in the same group."""
        with self._cond:
            self._incoming += delta
            if delta < 0:
                self._cond.notify()

    def submit_rows(self, table: pa.Table) -> Future[Outcome]:
        """Queue validated touchpoints (the contract's columns) for import; raises QueueFull."""
        return self._submit(_Job(table.num_rows, Future(), table=table))

    def submit(self, call: Callable[[Workspace], T]) -> Future[T]:
        """Queue ``call(workspace)`` to run on the writer's thread; raises QueueFull."""
        return self._submit(_Job(0, Future(), call=call))

    def close(self, timeout: float = 60.0) -> None:
        """Take no more work, finish what is queued, stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                busy = time.monotonic() - self._last_import < 1.0
                if self._jobs[0].table is not None and (busy or self._incoming > 0):
                    # group commit: under load, wait briefly for the requests being validated now and for
                    # the next ones of the clients just answered, so that one import takes them all
                    deadline = time.monotonic() + self.group_linger
                    while (
                        (busy or self._incoming > 0)
                        and not self._closing
                        and self._queued_events < self.max_group_events
                    ):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                group = [self._jobs.popleft()]
                if group[0].table is not None:
                    events = group[0].events
                    while (
                        self._jobs
                        and self._jobs[0].table is not None
                        and events + self._jobs[0].events <= self.max_group_events
                    ):
                        events += self._jobs[0].events
                        group.append(self._jobs.popleft())
            results = self._import(group) if group[0].table is not None else [self._call(group[0])]
            with self._cond:
                self._queued_events -= sum(job.events for job in group)
                self._queued_jobs -= len(group)
            for job, (ok, value) in zip(group, results, strict=True):
                if job.future.set_running_or_notify_cancel():
                    if ok:
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(value)

    def _call(self, job: _Job) -> tuple[bool, Any]:
        assert job.call is not None
        try:
            return True, job.call(self.ws)
        except Exception as exc:  # handed to the waiting request, which answers with an error
            return False, exc

    def _import(self, group: list[_Job]) -> list[tuple[bool, Any]]:
        from journeylens.ingest import ingest

        started = time.perf_counter()
        # one chunk: the import stages a table batch by batch, and each batch costs a statement
        table = pa.concat_tables([job.table for job in group if job.table is not None]).combine_chunks()
        source = f"http-{uuid.uuid4().hex[:12]}"
        try:
            result = ingest(self.ws, table, source_name=source)
        except Exception as exc:
            if len(group) == 1:
                return [(False, exc)]
            # one request's rows broke the group: import each request on its own
            return [self._import([job])[0] for job in group]
        if result.accepted:
            self.dirty = True
        self._last_import = time.monotonic()
        seconds = time.perf_counter() - started
        if seconds > 0 and table.num_rows >= 100:
            self._rate = 0.7 * self._rate + 0.3 * (table.num_rows / seconds)
        return [(True, outcome) for outcome in self._split(group, result, source)]

    def _split(self, group: list[_Job], result: Any, source: str) -> list[Outcome]:
        """Each request's share of a group import: new rows, duplicates and refused rows."""
        if not result.duplicates and not result.quarantined:
            return [Outcome(result.import_id, job.events, 0) for job in group]
        raw = self.ws.con.con
        new_ids = {
            row[0]
            for row in raw.execute(
                "SELECT event_id FROM touchpoints WHERE import_id = ?", [result.import_id]
            ).fetchall()
        }
        refused: dict[int, tuple[str | None, str, str]] = {}
        if result.quarantined:
            rows = raw.execute(
                "SELECT line, field, reason, message FROM quarantine WHERE import_id = ? AND source = ?",
                [result.import_id, source],
            ).fetchall()
            for line, field_name, reason, message in rows:
                refused[int(line)] = (
                    field_name,
                    reason,
                    str(message).removeprefix(f"{source}: row {line}: "),
                )
        outcomes = []
        offset = 0
        for job in group:
            assert job.table is not None
            outcome = Outcome(result.import_id, 0, 0)
            for row, event_id in enumerate(job.table.column("event_id").to_pylist()):
                if offset + row in refused:
                    outcome.conflicts.append(Conflict(row, *refused[offset + row]))
                elif event_id in new_ids:
                    new_ids.discard(event_id)
                    outcome.accepted += 1
                else:
                    outcome.duplicates += 1
            outcomes.append(outcome)
            offset += job.events
        return outcomes
