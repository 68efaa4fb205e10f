"""One exception hierarchy with stable error codes.

Every error a user can cause carries a ``code`` (stable, machine-readable, used by the CLI's exit
codes and later by the HTTP API) and a message that says where, what was expected and what was got.
"""

from __future__ import annotations


class JourneyLensError(Exception):
    """Base class of every error journeylens raises on purpose."""

    code: str = "journeylens_error"
    #: exit status the CLI uses for this error
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UnusableInputError(JourneyLensError):
    """The input as a whole cannot be used (missing file, missing column, unknown format).

    Nothing is written when this is raised.
    """

    code = "unusable_input"
    exit_code = 2


class WorkspaceError(JourneyLensError):
    """The workspace cannot be opened or is in an unexpected state."""

    code = "workspace_error"
    exit_code = 2


class WorkspaceLockedError(WorkspaceError):
    """Another process holds the workspace's database."""

    code = "workspace_locked"


class ConfigError(JourneyLensError):
    """A configuration file (mapping, phase model, journey model) is invalid."""

    code = "invalid_config"
    exit_code = 2


class SpecError(JourneyLensError):
    """An analysis or model specification is invalid."""

    code = "invalid_spec"
    exit_code = 2


class OutOfResourcesError(JourneyLensError):
    """Work ran out of memory or disk space; nothing the user can see was changed."""

    code = "out_of_resources"
    #: not 3, which ``ingest`` uses for "some rows quarantined"
    exit_code = 4


def out_of_memory_error(exc: BaseException) -> OutOfResourcesError | None:
    """``exc`` as the error users see when it says that memory ran out (DuckDB's limit or the machine's);
    None for any other error.

    The build has a message of its own (what a build leaves behind); this one serves every other command
    and request, through the CLI's ``user_errors`` and the HTTP API's error handler.
    """
    import duckdb

    if not isinstance(exc, MemoryError | duckdb.OutOfMemoryException):
        return None
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return OutOfResourcesError(
        f"journeylens ran out of memory ({detail}); nothing was changed. Close other programs, or set a "
        "lower memory_limit in the workspace's workspace.yaml (e.g. `memory_limit: 4GB`): DuckDB then "
        "spills to disk instead"
    )
