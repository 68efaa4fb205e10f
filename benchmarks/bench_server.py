"""Benchmark of HTTP ingest: concurrent clients post batches to a real server on loopback.

    python benchmarks/bench_server.py --clients 8 --events 200000 --batch 500

Starts ``journeylens serve`` (uvicorn, one process: the workspace's single writer) on 127.0.0.1 on a fresh
workspace, builds every request body first (so the clients' JSON encoding is not timed), then lets the
clients send their batches one after the other, as fast as the answers come back (a 429 is retried after
its Retry-After). Reports events/s (every event acknowledged with a 2xx, i.e. committed) and the latency of
a request (p50 / p95 / p99), then checks that the workspace holds each event exactly once.

The server's work per event is JSON parsing and validation against the contract (Python, one core) and
its share of a group-committed import (DuckDB): more concurrent clients make bigger groups.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from journeylens.keys import create_key
from journeylens.store import Workspace

CHANNELS = ("email", "website", "paid_search", "social", "display", "store")
TOUCHPOINTS = ("newsletter_open", "page_view", "ad_click", "post_like", "banner_view", "store_visit")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workspace: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "journeylens.cli_server",
        "serve",
        "-w",
        str(workspace),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a process so far, on Linux; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def contract_body(client: int, start: int, n: int) -> bytes:
    events = [
        {
            "event_id": f"c{client}-{i}",
            "person_id": f"p{client}-{i % 997}",
            "timestamp": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "channel": CHANNELS[i % len(CHANNELS)],
            "touchpoint": TOUCHPOINTS[i % len(TOUCHPOINTS)],
            "properties": {"utm_campaign": "spring", "n": i},
        }
        for i in range(start, start + n)
    ]
    return json.dumps({"batch": events}).encode()


def segment_body(client: int, start: int, n: int) -> bytes:
    events = [
        {
            "type": "track",
            "messageId": f"c{client}-{i}",
            "userId": f"p{client}-{i % 997}",
            "event": TOUCHPOINTS[i % len(TOUCHPOINTS)],
            "timestamp": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "properties": {"n": i},
            "context": {"campaign": {"source": "newsletter", "medium": "email", "name": "spring"}},
        }
        for i in range(start, start + n)
    ]
    return json.dumps({"batch": events, "sentAt": "2024-03-01T00:00:00Z"}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=200_000, help="events in all (default 200k)")
    parser.add_argument("--batch", type=int, default=500, help="events per request (default 500)")
    parser.add_argument(
        "--segment", action="store_true", help="post Segment batches to /v1/batch instead of /v1/touchpoints"
    )
    args = parser.parse_args(argv)

    per_client = args.events // args.clients
    make = segment_body if args.segment else contract_body
    path = "/v1/batch" if args.segment else "/v1/touchpoints"
    bodies = [
        [make(c, s, min(args.batch, per_client - s)) for s in range(0, per_client, args.batch)]
        for c in range(args.clients)
    ]
    sizes = [len(b) for client in bodies for b in client]

    with tempfile.TemporaryDirectory() as tmp:
        ws_dir = Path(tmp) / "ws"
        with Workspace(ws_dir) as ws:
            key = create_key(ws, "ingest", "bench").key
        port = free_port()
        proc = start_server(ws_dir, port)
        latencies: list[float] = []
        retries = [0]
        failures: list[str] = []
        lock = threading.Lock()

        def client(mine: list[bytes]) -> None:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as http:
                for body in mine:
                    while True:
                        t0 = time.perf_counter()
                        r = http.post(path, content=body)
                        if r.status_code == 429:
                            with lock:
                                retries[0] += 1
                            time.sleep(float(r.headers.get("Retry-After", "1")))
                            continue
                        break
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                        if r.status_code != 200 or r.json()["rejected"]:
                            failures.append(f"{r.status_code}: {r.text[:200]}")

        try:
            cpu0, server0 = os.times(), process_cpu(proc.pid)
            threads = [threading.Thread(target=client, args=(mine,)) for mine in bodies]
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
            cpu1, server1 = os.times(), process_cpu(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        with Workspace(ws_dir, read_only=True) as ws:
            stored, distinct = ws.con.con.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM touchpoints"
            ).fetchone()
            groups = ws.con.con.execute("SELECT count(*) FROM imports").fetchone()[0]

    sent = per_client * args.clients
    q = statistics.quantiles(latencies, n=100)
    print(
        f"clients          {args.clients} x {len(bodies[0])} requests of {args.batch} events ({statistics.mean(sizes) / 1024:.0f} KiB)"
    )
    print(f"endpoint         POST {path}")
    print(
        f"events           {sent:,} sent, {stored:,} stored ({distinct:,} distinct) in {groups:,} imports (group commits)"
    )
    print(f"wall             {wall:.2f} s")
    print(f"throughput       {sent / wall:,.0f} events/s")
    print(f"latency          p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    print(f"429 retries      {retries[0]}")
    if server0 is not None and server1 is not None:
        used = server1 - server0
        print(f"server CPU       {used:.1f} s: {sent / used:,.0f} events per CPU second (all its threads)")
    print(f"client CPU       {cpu1.user - cpu0.user + cpu1.system - cpu0.system:.1f} s (this process)")
    print(f"machine          {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    if failures or stored != sent or distinct != sent:
        print(
            f"FAILED: {len(failures)} bad answers (first: {failures[:1]}), stored {stored:,} of {sent:,}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
