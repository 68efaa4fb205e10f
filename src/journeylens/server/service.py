"""What the HTTP server does, without HTTP: the workspace, its writer, its keys and the lazy build.

**Lazy build.** An import that stores something marks the workspace *dirty*; the next request that needs
journeys (``GET /v1/persons/{id}``) first runs an incremental :func:`journeylens.journeys.build` (only
the persons with new touchpoints are recomputed) on the writer's thread, then answers. Imports never
wait for a build, and a burst of imports costs one build, at the next read.

The phase and journey models of that build are the ones given to the server, else the ones the
workspace was last built with (built-in models only: a model from a YAML file has to be passed again),
else ``five-phase`` and ``default``.

**Predictions.** Once ``journeylens predict`` has trained and saved a propensity model in the workspace,
the server keeps the ``predictions`` table (propensity, next phase, next best content of every open
journey) fresh: after a lazy build it scores the open journeys again, at most once per
``predictions_refresh_seconds`` (so a stream of imports does not mean a stream of scorings; the person
endpoint says ``scored_at``). ``GET /v1/persons/{id}`` then only reads the stored rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journeylens.errors import ConfigError, JourneyLensError, WorkspaceError
from journeylens.keys import KeyRing
from journeylens.server.writer import Writer

if TYPE_CHECKING:
    from journeylens.erase import ErasureReport
    from journeylens.store import Workspace

MB = 1024 * 1024
log = logging.getLogger("journeylens.server")


@dataclass(frozen=True)
class ServerConfig:
    """Limits and models of a server (the defaults are the documented ones)."""

    #: largest request body, in bytes (after gunzip); larger -> 413
    max_request_bytes: int = 5 * MB
    #: most events in one request; more -> 413
    max_events: int = 10_000
    #: most events waiting for the writer; more -> 429 with Retry-After
    max_queue_events: int = 100_000
    #: most requests waiting for the writer (reads included); more -> 429
    max_queue_jobs: int = 1_000
    #: most events imported in one transaction (group commit)
    max_group_events: int = 100_000
    #: how long the writer waits for requests being validated, to import them in the same group (seconds)
    group_linger: float = 0.05
    #: phase / journey model of the lazy build (None: the last build's, else five-phase / default)
    phase_model: str | None = None
    journey_model: str | None = None
    #: how many of a journey's last touchpoints GET /v1/persons/{id} returns
    last_touchpoints: int = 5
    #: the least time between two scorings of the open journeys after imports (seconds)
    predictions_refresh_seconds: float = 60.0


def _models(ws: Workspace, config: ServerConfig) -> tuple[Any, Any]:
    from journeylens.journeys.build import last_build
    from journeylens.journeys.models.journey_model import load_journey_model
    from journeylens.journeys.models.phase_model import builtin_phase_model_names, load_phase_model

    previous = last_build(ws) or {}
    phase = config.phase_model
    if phase is None:
        phase = previous.get("phase_model") or "five-phase"
        if phase not in builtin_phase_model_names():
            raise ConfigError(
                f"workspace {ws.location}: it was last built with phase model '{phase}', which is not built in; "
                "pass its file with --model FILE"
            )
    journey = config.journey_model
    if journey is None:
        journey = previous.get("journey_model") or "default"
        from journeylens.journeys.models.journey_model import builtin_journey_model_names

        if journey not in builtin_journey_model_names():
            raise ConfigError(
                f"workspace {ws.location}: it was last built with journey model '{journey}', which is not built in; "
                "pass its file with --journey-model FILE"
            )
    return load_phase_model(phase), load_journey_model(journey)


def _needs_build(ws: Workspace) -> bool:
    """Whether touchpoints were imported after the last build (or there never was one)."""
    from journeylens.journeys.build import DERIVED_TABLES, last_build

    previous = last_build(ws)
    if previous is None or not all(ws.has_table(name) for name in DERIVED_TABLES):
        return True
    newest = ws.touchpoints.import_id.max().execute()
    return newest is not None and newest == newest and int(newest) > int(previous["import_watermark"])


def _predictions_out_of_date(ws: Workspace) -> bool:
    """Whether a saved propensity model exists and the stored predictions are missing or older than the
    last build."""
    from journeylens.journeys.build import last_build
    from journeylens.predict.propensity import MODEL_FILE, model_directory
    from journeylens.predict.score import TABLE

    if not (model_directory(ws) / MODEL_FILE).exists():
        return False
    built = last_build(ws)
    if not ws.has_table(TABLE) or built is None:
        return True
    scored = ws.table(TABLE).scored_at.max().execute()
    return scored is None or scored != scored or scored < built["built_at"]


class Service:
    """Opens the workspace (raising WorkspaceLockedError when another process holds it) and owns it."""

    def __init__(self, workspace: str | Path, config: ServerConfig | None = None) -> None:
        from journeylens.store import Workspace

        self.config = config or ServerConfig()
        self.ws = Workspace(workspace)
        try:
            if self.ws.engine != "duckdb":
                raise WorkspaceError(
                    f"the server needs a DuckDB workspace; {self.ws.location} runs on {self.ws.engine}"
                )
            self.phase_model, self.journey_model = _models(self.ws, self.config)
            self.keys = KeyRing.load(self.ws)
            stale = _needs_build(self.ws)
            if not stale:
                self._index()
        except BaseException:
            self.ws.close()
            raise
        self.writer = Writer(
            self.ws,
            max_queue_events=self.config.max_queue_events,
            max_queue_jobs=self.config.max_queue_jobs,
            max_group_events=self.config.max_group_events,
            group_linger=self.config.group_linger,
        )
        self.writer.dirty = stale
        #: the predictions need scoring again (a model exists and journeys changed since)
        self.predictions_stale = _predictions_out_of_date(self.ws)
        self._last_scoring = float("-inf")
        self._closed = False
        #: the latest touchpoint's time, kept between imports for the person endpoint (None: read it again)
        self._data_end: Any = None

    def close(self) -> None:
        """Finish the queued work and release the workspace."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        self.ws.close()

    # -- jobs that run on the writer's thread ----------------------------------------------------------

    def ensure_built(self, ws: Workspace) -> None:
        """Run the incremental build when an import stored something since the last one; then score the
        open journeys again when a model exists and the last scoring is old enough."""
        if self.writer.dirty:
            from journeylens.journeys import build

            if int(ws.touchpoints.count().execute()) > 0:
                build(ws, model=self.phase_model, journey_model=self.journey_model)
                self.predictions_stale = True
                self._index(ws)
            self.writer.dirty = False
            self._data_end = None
        if self.predictions_stale and time.monotonic() - self._last_scoring >= self.config.predictions_refresh_seconds:
            self.refresh_predictions(ws)

    def refresh_predictions(self, ws: Workspace) -> None:
        """Score the open journeys with the saved model (nothing when there is none)."""
        from journeylens import predict

        self.predictions_stale = False
        self._last_scoring = time.monotonic()
        model = predict.load(ws)
        if model is None:
            return
        try:
            predict.predict(ws, model)
        except JourneyLensError as exc:  # the person endpoint still answers, without fresh predictions
            log.warning("scoring the open journeys failed: %s", exc.message)
        self._index(ws)

    def _index(self, ws: Workspace | None = None) -> None:
        """Index the tables the person endpoint reads (new ones after a full build or a scoring)."""
        from journeylens.server.persons import ensure_indexes

        ensure_indexes(ws or self.ws)

    def data_end(self, ws: Workspace) -> Any:
        """The latest touchpoint's time, read once per import (after :meth:`ensure_built`)."""
        from journeylens.server.persons import read_data_end

        if self._data_end is None:
            self._data_end = read_data_end(ws)
        return self._data_end

    def profile(
        self, ws: Workspace, person_id: str, *, all_journeys: bool = False, last: int | None = None
    ) -> dict[str, Any] | None:
        from journeylens.server.persons import person_profile

        self.ensure_built(ws)
        return person_profile(
            ws,
            person_id,
            last=self.config.last_touchpoints if last is None else last,
            all_journeys=all_journeys,
            data_end=self.data_end(ws),
        )

    def erase(self, ws: Workspace, person_id: str) -> ErasureReport:
        from journeylens.erase import erase_person

        self._data_end = None  # the person may have had the latest touchpoint
        return erase_person(ws, person_id)

    def reload_keys(self, ws: Workspace) -> None:
        self.keys = KeyRing.load(ws)
