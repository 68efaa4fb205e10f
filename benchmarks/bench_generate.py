"""Benchmark of the demo data generator: write N events to Parquet, report events/s and peak memory.

    python benchmarks/bench_generate.py --events 10000000

Persons are chosen to give about N events (the events per person are measured on a small pilot run). The
figures to compare are events/s (wall clock: what a user waits for) and events per CPU second (less
sensitive to other work on the machine); peak RSS is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from journeylens.demo import generate, write_demo


def events_per_person(seed: int) -> float:
    pilot = 20_000
    events = sum(
        touchpoints.num_rows for touchpoints, _ in generate(pilot, seed=seed + 1, chunk_persons=pilot)
    )
    return events / pilot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="about this many events (default 10M)")
    parser.add_argument("--persons", type=int, help="simulate exactly this many persons instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-persons", type=int, default=50_000)
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv", "tsv", "jsonl"])
    parser.add_argument("--out", type=Path, help="directory to write to (default: a temporary one, removed)")
    args = parser.parse_args(argv)

    persons = args.persons or max(1, round(args.events / events_per_person(args.seed)))
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        path = Path(tmp) / f"demo.{args.format}"
        wall, cpu = time.perf_counter(), time.process_time()
        written = write_demo(path, persons, seed=args.seed, chunk_persons=args.chunk_persons)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = path.stat().st_size + written.persons.stat().st_size
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(f"persons          {persons:,} ({written.n_persons:,} in the persons file)")
    print(f"events           {written.n_touchpoints:,} ({written.n_touchpoints / persons:.1f} per person)")
    print(f"wall time        {wall:.2f} s")
    print(f"events/s         {written.n_touchpoints / wall:,.0f}")
    print(f"events/CPU s     {written.n_touchpoints / cpu:,.0f} (CPU {cpu:.2f} s on {os.cpu_count()} CPUs)")
    print(f"peak RSS         {peak_mib:,.0f} MiB")
    print(f"files            {size / 2**20:,.1f} MiB ({args.format})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
