"""Commands of the server side: ``serve``, ``keys create|list|revoke`` and ``erase``.

``register(app)`` adds them to a Typer app (``journeylens.cli`` calls it). FastAPI and uvicorn are
imported only when ``serve`` runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from journeylens.cli_common import (
    DEFAULT_WS,
    WorkspaceOpt,
    console,
    err_console,
    fail,
    open_workspace,
    print_frame,
    user_errors,
)
from journeylens.errors import WorkspaceLockedError

keys_app = typer.Typer(help="API keys of the HTTP server: create, list, revoke.", no_args_is_help=True)


def _locked_hint(exc: WorkspaceLockedError, api: str) -> typer.Exit:
    return fail(f"{exc.message}; while `journeylens serve` runs, use {api}", exc.exit_code)


def serve(
    workspace: WorkspaceOpt = DEFAULT_WS,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="An origin allowed to call the API from a browser (repeatable)."),
    ] = None,
    max_request_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body, in MB (larger: 413).")
    ] = 5.0,
    max_events: Annotated[int, typer.Option(min=1, help="Most events in one request (more: 413).")] = 10_000,
    queue_events: Annotated[
        int, typer.Option(min=1, help="Most events waiting for the writer (more: 429 with Retry-After).")
    ] = 100_000,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Phase model of the lazy build (default: the last build's)."),
    ] = None,
    journey_model: Annotated[
        str | None,
        typer.Option("--journey-model", help="Journey model of the lazy build (default: the last build's)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Serve the HTTP API on the workspace (its single writer). Docs at http://HOST:PORT/docs."""
    from journeylens.server import ServerConfig, create_app

    config = ServerConfig(
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        max_events=max_events,
        max_queue_events=queue_events,
        phase_model=model,
        journey_model=journey_model,
    )
    with user_errors():
        app = create_app(workspace, cors_origins=tuple(cors_origin or ()), config=config)
    import uvicorn

    if app.state.service.keys.active == 0:
        err_console.print(
            "[yellow]warning:[/] this workspace has no API keys, so every request but /v1/health gets 401; "
            f"stop the server and run `journeylens keys create --scope admin -w {workspace}`",
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(
        f"serving {workspace} on http://{host}:{port} (API docs: http://{host}:{port}/docs)", highlight=False
    )
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, limit_concurrency=512, timeout_graceful_shutdown=30
    )


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        str, typer.Option("--scope", help="ingest (send touchpoints), read (read) or admin (everything).")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="What the key is for, e.g. 'website tracker'.")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Create an API key and print it (once: only its hash is stored)."""
    from journeylens.keys import check_scope, create_key

    with user_errors():
        check_scope(scope)
        try:
            ws = open_workspace(workspace)
        except WorkspaceLockedError as exc:
            raise _locked_hint(exc, "POST /v1/keys with an admin key") from None
        try:
            new = create_key(ws, scope, name)
        finally:
            ws.close()
    err_console.print(
        f"created {new.info.scope} key [bold]{new.info.prefix}[/]; it is shown only now:", highlight=False
    )
    typer.echo(new.key)


@keys_app.command("list")
def keys_list(
    workspace: WorkspaceOpt = DEFAULT_WS,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """List the API keys: prefix, name, scope, created, revoked (never the keys themselves)."""
    import pandas as pd

    from journeylens.cli import check_format
    from journeylens.keys import list_keys

    check_format(fmt)
    with user_errors():
        try:
            ws = open_workspace(workspace)
        except WorkspaceLockedError as exc:
            raise _locked_hint(exc, "GET /v1/keys with an admin key") from None
        try:
            keys = list_keys(ws)
        finally:
            ws.close()
    if not keys and fmt == "table":
        console.print(
            f"no API keys yet: `journeylens keys create --scope admin -w {workspace}`", highlight=False
        )
        return
    frame = pd.DataFrame(
        [
            {
                "prefix": k.prefix,
                "name": k.name,
                "scope": k.scope,
                "created": k.created_at,
                "revoked": k.revoked_at,
            }
            for k in keys
        ],
        columns=["prefix", "name", "scope", "created", "revoked"],
    )
    print_frame(frame, fmt, title="API keys")


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (as `keys list` shows it).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Revoke an API key: the server refuses it from its next start (at once with DELETE /v1/keys/PREFIX)."""
    from journeylens.keys import revoke_key

    with user_errors():
        try:
            ws = open_workspace(workspace)
        except WorkspaceLockedError as exc:
            raise _locked_hint(exc, "DELETE /v1/keys/PREFIX with an admin key") from None
        try:
            key = revoke_key(ws, prefix)
        finally:
            ws.close()
    console.print(
        f"revoked {key.scope} key [bold]{key.prefix}[/]" + (f" ({key.name})" if key.name else ""),
        highlight=False,
    )


def erase(
    person_id: Annotated[
        str | None, typer.Argument(help="The person to erase (GDPR), with every anonymous id linked to them.")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact/--no-compact",
            help="Rewrite the database file afterwards, so that no free block keeps the erased bytes.",
        ),
    ] = True,
    compact_only: Annotated[
        bool,
        typer.Option(
            "--compact-only",
            help="Only rewrite the file (after erasures over HTTP, with the server stopped).",
        ),
    ] = False,
) -> None:
    """Remove every trace of a person from every table, in one transaction, and log it (without the id)."""
    from journeylens.erase import compact_workspace, erase_person

    if compact_only:
        with user_errors():
            try:
                before, after = compact_workspace(workspace)
            except WorkspaceLockedError as exc:
                raise _locked_hint(exc, "nothing: stop the server first") from None
        console.print(f"rewrote {workspace}: {before:,} -> {after:,} bytes", highlight=False)
        return
    if person_id is None:
        raise fail("erase: give the PERSON_ID to erase (or --compact-only)")
    if not yes:
        typer.confirm(
            f"Erase person {person_id!r} and every anonymous id linked to them from {workspace}? This cannot be undone",
            abort=True,
        )
    with user_errors():
        try:
            ws = open_workspace(workspace)
        except WorkspaceLockedError as exc:
            raise _locked_hint(exc, "DELETE /v1/persons/PERSON_ID with an admin key") from None
        try:
            report = erase_person(ws, person_id)
        finally:
            ws.close()
    if not report.found:
        console.print(
            f"nothing of {person_id!r} was stored; the request is logged as erasure {report.erasure_id}",
            highlight=False,
        )
        return
    parts = ", ".join(f"{table} {n:,}" for table, n in sorted(report.tables.items()))
    console.print(
        f"erased {report.rows:,} rows ({parts}) and {report.anonymous_ids} anonymous ids; logged as erasure {report.erasure_id}",
        highlight=False,
    )
    if compact:
        with user_errors():
            compact_workspace(workspace)
        console.print("rewrote the database file: no free block keeps the erased rows", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``keys`` and ``erase`` to ``app``."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.command("erase")(erase)


def _standalone() -> typer.Typer:
    app = typer.Typer(
        name="journeylens", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )
    register(app)
    return app


if (
    __name__ == "__main__"
):  # python -m journeylens.cli_server serve ... (used by the tests' server subprocess)
    _standalone()()
