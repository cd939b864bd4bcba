"""The cost of one export: seconds and peak memory of ``export_layer`` in a fresh process.

    DATABASE_URL=postgresql://… .venv/bin/python bench/export_memory.py \
        [--layer facilities] [--format xlsx] [--reps 3] [--checkout /path/to/other/checkout]

Each repetition runs in a new Python process (so peak RSS is the export's own, after the
imports), against the database of DATABASE_URL. ``--checkout`` runs another checkout's code
(say main before a change) on the same database, for a side-by-side figure. Prints each run
and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, tempfile, time
sys.path.insert(0, {root!r})
from gis_service.db.engine import make_engine
from gis_service.interchange.export import ExportFormat, ExportLayer, export_layer
engine = make_engine({url!r}, pool_size=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with engine.connect() as conn, tempfile.TemporaryDirectory() as folder:
    t0 = time.perf_counter()
    result = export_layer(conn, ExportLayer({layer!r}), ExportFormat({fmt!r}), folder=folder)
    seconds = time.perf_counter() - t0
    size = result.path.stat().st_size
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rows": result.count, "seconds": seconds, "peak_mb": peak / 1024,
                  "growth_mb": (peak - before) / 1024, "file_mb": size / 2**20}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="facilities")
    parser.add_argument("--format", default="xlsx")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    code = CHILD.format(root=str(args.checkout), url=url, layer=args.layer, fmt=args.format)
    runs = []
    for i in range(args.reps):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        r = runs[-1]
        print(
            f"run {i + 1}: {r['rows']} rows, {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB "
            f"(+{r['growth_mb']:.0f} MB during the export), file {r['file_mb']:.1f} MB"
        )
    print(
        f"median of {args.reps} ({args.checkout}): "
        f"{statistics.median(r['seconds'] for r in runs):.1f} s, "
        f"+{statistics.median(r['growth_mb'] for r in runs):.0f} MB"
    )


if __name__ == "__main__":
    main()
