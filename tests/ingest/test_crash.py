"""An import killed mid-way (SIGKILL) leaves the workspace consistent and re-runnable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from journeylens.store import Workspace

ROWS = 20_000


def write_csv(path, start, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("event_id,person_id,timestamp,channel,touchpoint\n")
        for i in range(start, start + rows):
            f.write(f"e{i},p{i % 97},2024-01-01T{i % 24:02d}:00:00Z,web,visit\n")


def test_sigkill_mid_import_leaves_all_or_nothing(tmp_path):
    ws_dir = tmp_path / "ws"
    first = tmp_path / "first.csv"
    big = tmp_path / "big.csv"
    write_csv(first, 0, 100)
    write_csv(big, 100, ROWS)
    ws = Workspace(ws_dir)
    ws.ingest(first)
    ws.close()

    marker = tmp_path / "halfway"
    script = textwrap.dedent(
        f"""
        import time
        import journeylens.ingest.readers as readers
        from journeylens.store import Workspace
        readers.CSV_BLOCK_SIZE = 1 << 16  # many small batches
        seen = []
        def progress(done, total):
            seen.append(done)
            if len(seen) == 3:  # three batches inserted inside the open transaction
                open({str(marker)!r}, "w").close()
                time.sleep(60)
        Workspace({str(ws_dir)!r}).ingest({str(big)!r}, progress=progress)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the import finished or failed before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    ws = Workspace(ws_dir)
    assert ws.touchpoints.count().execute() == 100  # only the first import
    assert ws.imports.count().execute() == 1
    assert ws.quarantine.count().execute() == 0
    result = ws.ingest(big)  # the same command simply runs again
    assert (result.accepted, result.duplicates, result.quarantined) == (ROWS, 0, 0)
    assert ws.touchpoints.count().execute() == 100 + ROWS
    assert ws.touchpoints.event_id.nunique().execute() == 100 + ROWS
    ws.close()
