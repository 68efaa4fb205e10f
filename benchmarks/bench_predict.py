"""Benchmark of predictions: training, scoring the open journeys, and the person endpoint's latency.

    python benchmarks/bench_predict.py WORKSPACE [--requests 500] [--skip-train]

On a built workspace (e.g. ``benchmarks/data/10M/ws-parquet`` after ``python -m benchmarks --sizes 10M``):

1. ``predict.train`` (features at weekly cut-offs in the engine, fit, held-out evaluation, refit), timed,
   unless ``--skip-train`` (then the saved model is used);
2. ``predict.predict`` on the open journeys (scores stored as the ``predictions`` table), timed;
3. ``journeylens serve`` on that workspace (a real server process on loopback), then ``--requests``
   sequential ``GET /v1/persons/{id}`` for random persons with an open journey, as a website would call it
   while rendering a page: p50 / p95 / p99 latency, and the share of answers that carried a prediction.

Peak memory of this process (training and scoring run here) is reported from ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import free_port, start_server  # noqa: E402

from journeylens import predict  # noqa: E402
from journeylens.keys import create_key  # noqa: E402
from journeylens.store import Workspace  # noqa: E402


def _peak_mb(pid: int) -> float:
    """A process's peak resident memory (Linux: VmHWM), in MB; NaN where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ws = Workspace(args.workspace)
    events = int(ws.touchpoints.count().execute())
    print(f"workspace        {args.workspace} ({events:,} touchpoints)")
    model = None
    if not args.skip_train:
        t0 = time.perf_counter()
        model = predict.train(
            ws, progress=lambda s: print(f"  {time.perf_counter() - t0:7.1f}s  {s}", flush=True)
        )
        print(f"train            {time.perf_counter() - t0:.1f} s; {predict.describe(model)}")
    t0 = time.perf_counter()
    result = predict.predict(ws, model)
    print(f"score            {time.perf_counter() - t0:.1f} s for {result.table.num_rows:,} open journeys")
    persons = sorted(set(result.table.column("person_id").to_pylist()))
    key = create_key(ws, "read", "bench predict").key
    ws.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory      {peak:,.0f} MB (training and scoring, this process)")

    rng = random.Random(args.seed)
    sample = [rng.choice(persons) for _ in range(args.requests)]
    port = free_port()
    server = start_server(args.workspace, port)
    try:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        latencies, with_prediction = [], 0
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for person in sample[:10]:  # warm-up: the first reads load the tables' pages
                client.get(f"/v1/persons/{person}").raise_for_status()
            for person in sample:
                t = time.perf_counter()
                answer = client.get(f"/v1/persons/{person}")
                latencies.append(time.perf_counter() - t)
                answer.raise_for_status()
                with_prediction += any(j.get("prediction") for j in answer.json()["journeys"])
        server_peak = _peak_mb(server.pid)
    finally:
        server.terminate()
        server.wait(60)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"person endpoint  p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms "
        f"over {len(latencies)} requests; {with_prediction / len(latencies):.0%} with a prediction; "
        f"server peak memory {server_peak:,.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
