"""Benchmark of the attribution models on synthetic aggregated paths (not a test: no timed asserts).

    python benchmarks/bench_attribution.py --journeys 1000000
    python benchmarks/bench_attribution.py --journeys 10000000 --models markov_1 markov_3 linear

Generates ``--journeys`` journeys over 12 channels (skewed popularity, a tendency to repeat the last channel),
1 to 10 touches each (short ones most common), about 3% converting with a value, and aggregates them into one row
per distinct path, the format other tools export (``path, conversions, value, nulls``). Each model is then fitted
on that DataFrame (or, with ``--input arrow``, on the pyarrow Table) in a fresh subprocess, so that its peak RSS is
its own: the figures are seconds for ``fit`` (parsing the path strings included), seconds for ``read_paths`` alone,
both the best of ``--repeat`` runs, and the peak resident memory of the process (input included).

Targets on 10M journeys: Markov order 1 <= 6 s, order 3 <= 8 s, heuristics <= 3 s, peak <= 3 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CHANNELS = (
    "paid_search", "organic_search", "social", "display", "email", "website",
    "app", "store", "call_centre", "chat", "review_site", "referral",
)  # fmt: skip

#: model label -> (registry name, parameters)
MODEL_SPECS: dict[str, tuple[str, dict[str, object]]] = {
    "last_touch": ("last_touch", {}),
    "first_touch": ("first_touch", {}),
    "linear": ("linear", {}),
    "position_based": ("position_based", {}),
    "markov_1": ("markov", {"order": 1}),
    "markov_2": ("markov", {"order": 2}),
    "markov_3": ("markov", {"order": 3}),
    "shapley": ("shapley", {}),
}


def generate(n_journeys: int, seed: int = 0, max_len: int = 10, lengths: str = "geometric") -> pd.DataFrame:
    """Synthetic journeys over 12 channels, aggregated to one row per distinct path.

    ``lengths="geometric"``: 1 to 10 touches, short journeys most common (mean 3); ``"uniform"``: 1 to 10 touches
    equally likely (mean 5.5), the stress case: nearly every long journey is a distinct path.
    """
    rng = np.random.default_rng(seed)
    n_channels = len(CHANNELS)
    popularity = 1.0 / np.arange(1, n_channels + 1) ** 0.8
    popularity /= popularity.sum()
    if lengths == "uniform":
        n_touches = rng.integers(1, max_len + 1, size=n_journeys)
    else:
        n_touches = np.minimum(rng.geometric(0.32, size=n_journeys), max_len)
    codes = np.empty((n_journeys, max_len), dtype=np.int64)
    codes[:, 0] = rng.choice(n_channels, size=n_journeys, p=popularity)
    for j in range(1, max_len):
        fresh = rng.choice(n_channels, size=n_journeys, p=popularity)
        repeat = rng.random(n_journeys) < 0.25
        codes[:, j] = np.where(repeat, codes[:, j - 1], fresh)
    positions = np.arange(max_len)
    inside = positions[None, :] < n_touches[:, None]
    effect = np.linspace(0.9, -0.6, n_channels)  # some channels convert better than others
    touched = np.zeros((n_journeys, n_channels), dtype=bool)
    for j in range(max_len):
        touched[np.arange(n_journeys)[inside[:, j]], codes[inside[:, j], j]] = True
    score = -5.15 + touched.astype(np.float64) @ effect + 0.12 * n_touches
    converted = rng.random(n_journeys) < 1.0 / (1.0 + np.exp(-score))
    value = np.where(converted, np.round(rng.lognormal(4.0, 0.7, size=n_journeys), 2), 0.0)
    del touched
    # exact key per path: digits (code + 1) in base 13
    weights = (n_channels + 1) ** positions
    key = ((codes + 1) * inside * weights[None, :]).sum(axis=1)
    del codes
    uniques, inverse = np.unique(key, return_inverse=True)
    conversions = np.bincount(inverse, converted, minlength=len(uniques))
    nulls = np.bincount(inverse, ~converted, minlength=len(uniques))
    values = np.bincount(inverse, value, minlength=len(uniques))
    digits = (uniques[:, None] // weights[None, :]) % (n_channels + 1)
    path_len = (digits > 0).sum(axis=1)
    flat = digits[digits > 0] - 1
    offsets = np.zeros(len(uniques) + 1, dtype=np.int32)
    np.cumsum(path_len, out=offsets[1:])
    names = pa.array(CHANNELS).take(pa.array(flat))
    paths = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), names), " > ")
    return pd.DataFrame(
        {"path": paths.to_pandas(), "conversions": conversions, "value": values, "nulls": nulls}
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def worker(data: Path, label: str, source: str, repeat: int) -> dict[str, object]:
    from journeylens.attribution import MODELS, read_paths

    table = pq.read_table(data)
    frame = table.to_pandas() if source == "pandas" else table
    del table
    loaded_mib = peak_rss_mib()
    name, params = MODEL_SPECS[label]
    model = MODELS[name](**params)  # type: ignore[arg-type]
    fit_s = parse_s = float("inf")
    for _ in range(repeat):  # the best of `repeat`: the machine's other work only ever adds time
        start = time.perf_counter()
        model.fit(frame)
        fit_s = min(fit_s, time.perf_counter() - start)
        start = time.perf_counter()
        read_paths(frame)
        parse_s = min(parse_s, time.perf_counter() - start)
    total = float(model.credits_["attributed_conversions"].sum())
    return {
        "model": label,
        "fit_s": round(fit_s, 3),
        "read_paths_s": round(parse_s, 3),
        "peak_rss_mib": round(peak_rss_mib()),
        "rss_after_load_mib": round(loaded_mib),
        "credited": round(total, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lengths", choices=["geometric", "uniform"], default="geometric")
    parser.add_argument("--repeat", type=int, default=3, help="fits per model; the fastest is reported")
    parser.add_argument("--models", nargs="*", default=list(MODEL_SPECS), choices=list(MODEL_SPECS))
    parser.add_argument(
        "--input",
        choices=["pandas", "arrow"],
        default="pandas",
        help="fit on a pandas DataFrame or a pyarrow Table",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.data, args.worker, args.input, args.repeat)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        frame = generate(args.journeys, seed=args.seed, lengths=args.lengths)
        data = Path(tmp) / "paths.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data)
        touches = int(frame["path"].str.count(">").sum() + len(frame))
        print(
            f"{args.journeys:,} journeys -> {len(frame):,} distinct paths, {touches:,} touches, "
            f"{int(frame['conversions'].sum()):,} conversions "
            f"({frame['conversions'].sum() / args.journeys:.1%}); generated in {time.perf_counter() - start:.1f} s; "
            f"input: {args.input}, lengths: {args.lengths}"
        )
        del frame
        print(
            f"{'model':<16}{'fit s':>8}{'read_paths s':>14}{'peak RSS MiB':>14}{'after load':>12}{'credited':>14}"
        )
        for label in args.models:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    label,
                    "--data",
                    str(data),
                    "--input",
                    args.input,
                    "--repeat",
                    str(args.repeat),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{row['model']:<16}{row['fit_s']:>8.2f}{row['read_paths_s']:>14.2f}{row['peak_rss_mib']:>14,}"
                f"{row['rss_after_load_mib']:>12,}{row['credited']:>14,.1f}"
            )


if __name__ == "__main__":
    main()
