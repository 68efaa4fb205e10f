"""A real server (uvicorn, in a subprocess, on 127.0.0.1) under concurrent load, killed and restarted."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import typer
from server_helpers import ServerProcess, rows, touch
from typer.testing import CliRunner

from journeylens.cli_server import register


def batches(client: int, events: int, size: int) -> list[list[dict]]:
    out = []
    for start in range(0, events, size):
        out.append(
            [
                touch(
                    f"c{client}-{i}",
                    f"p{client}-{i % 50}",
                    f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                    channel="email",
                )
                for i in range(start, min(events, start + size))
            ]
        )
    return out


class Load:
    """Client threads posting batches; records which events were acknowledged (a 2xx answer)."""

    def __init__(self, server: ServerProcess, key: str, clients: int, events: int, size: int) -> None:
        self.server = server
        self.key = key
        self.work = [batches(c, events, size) for c in range(clients)]
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.unexpected: list[str] = []
        self.lock = threading.Lock()

    def run_client(self, mine: list[list[dict]], stop_on_error: bool) -> None:
        with httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=120
        ) as http:
            for batch in mine:
                ids = [e["event_id"] for e in batch]
                while True:
                    try:
                        answer = http.post("/v1/touchpoints", json={"batch": batch})
                    except httpx.TransportError:
                        with self.lock:
                            self.failed.extend(ids)
                        if stop_on_error:
                            return
                        break
                    if answer.status_code == 429:
                        time.sleep(float(answer.headers["Retry-After"]))
                        continue
                    with self.lock:
                        if answer.status_code == 200 and answer.json()["rejected"] == 0:
                            self.acked.extend(ids)
                        else:
                            self.unexpected.append(f"{answer.status_code} {answer.text[:300]}")
                    break

    def start(self, stop_on_error: bool = False) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run_client, args=(mine, stop_on_error)) for mine in self.work]
        for t in threads:
            t.start()
        return threads


def stored_ids(ws_dir) -> tuple[int, set[str]]:
    got = rows(ws_dir, "SELECT event_id FROM touchpoints")
    return len(got), {r[0] for r in got}


def run_load(ws_dir, keys, clients: int, events: int, size: int) -> None:
    with ServerProcess(ws_dir) as server:
        load = Load(server, keys.ingest, clients, events, size)
        for t in load.start():
            t.join(600)
        assert server.stop() == 0
    assert load.unexpected == [] and load.failed == []
    assert len(load.acked) == clients * events
    n, ids = stored_ids(ws_dir)
    assert n == len(ids) == clients * events  # each event stored exactly once
    assert ids == set(load.acked)


def test_concurrent_clients_every_acknowledged_event_stored_once(ws_dir, keys):
    run_load(ws_dir, keys, clients=8, events=5_000, size=500)


@pytest.mark.slow
def test_concurrent_clients_at_scale(ws_dir, keys):
    run_load(ws_dir, keys, clients=8, events=50_000, size=500)


def test_sigkill_mid_load_loses_no_acknowledged_event(ws_dir, keys):
    server = ServerProcess(ws_dir).start()
    load = Load(server, keys.ingest, clients=4, events=10_000, size=500)
    threads = load.start(stop_on_error=True)
    deadline = time.monotonic() + 120
    while len(load.acked) < 8_000:
        assert time.monotonic() < deadline, f"only {len(load.acked)} events acknowledged"
        assert not load.unexpected, load.unexpected
        time.sleep(0.02)
    server.kill()  # SIGKILL while requests are in flight
    for t in threads:
        t.join(120)
    acked_before_kill = set(load.acked)
    assert load.failed, "the kill came after the load finished"

    with ServerProcess(ws_dir) as again:  # the same workspace, after a crash
        # every client sends all its batches once more: acknowledged ones are found as duplicates
        replay = Load(again, keys.ingest, clients=4, events=10_000, size=500)
        for t in replay.start():
            t.join(600)
        assert replay.unexpected == [] and replay.failed == []
        assert again.stop() == 0
    n, ids = stored_ids(ws_dir)
    assert acked_before_kill <= ids
    assert n == len(ids) == 4 * 10_000


def test_killed_then_restarted_without_replay(ws_dir, keys):
    server = ServerProcess(ws_dir).start()
    load = Load(server, keys.ingest, clients=4, events=10_000, size=500)
    threads = load.start(stop_on_error=True)
    deadline = time.monotonic() + 120
    while len(load.acked) < 4_000:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    server.kill()
    for t in threads:
        t.join(120)
    n, ids = stored_ids(ws_dir)  # opening the workspace replays DuckDB's log
    assert set(load.acked) <= ids and n == len(ids)


def test_a_second_writer_is_refused_with_one_line(ws_dir, keys):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    with ServerProcess(ws_dir):
        second = runner.invoke(app, ["serve", "-w", str(ws_dir), "--port", "1"])
        assert second.exit_code == 2
        (line,) = second.output.strip().splitlines()
        assert line.startswith("error: workspace ") and "another process" in line and "holds it" in line
        keys_cmd = runner.invoke(app, ["keys", "list", "-w", str(ws_dir)])
        assert keys_cmd.exit_code == 2 and "GET /v1/keys" in keys_cmd.output
