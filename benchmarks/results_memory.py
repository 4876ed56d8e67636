"""Peak RSS of writing the result tables for a journal of N completed rows.

    .venv/bin/python benchmarks/results_memory.py DIR 100000 build   # make the journal
    .venv/bin/python benchmarks/results_memory.py DIR 100000 x       # measure

The journal is synthetic (6 completed steps a row, through the Journal API),
so the measure is the result tables alone, apart from a run.
"""

import resource
import sys
import time
from pathlib import Path

from genbatch.engine.journal import Journal
from genbatch.engine.results import write_results

STEPS = ("clone", "fill", "generate:voiceover", "generate:broll", "render", "download")
out = Path(sys.argv[1])
n = int(sys.argv[2])
build = sys.argv[3] == "build"
with Journal.open(out) as j:
    if build:
        ids = [f"row-{i:06d}" for i in range(n)]
        j.add_rows(ids)
        for rid in ids:
            j.start_row(rid)
            for step in (
                "clone",
                "fill",
                "generate:voiceover",
                "generate:broll",
                "render",
                "download",
            ):
                j.begin_step(rid, step)
                j.finish_step(rid, step, "completed", result={"id": "x" * 20}, credits=50.0)
            j.finish_row(rid, "completed", None)
        j.flush()
        print("built")
        sys.exit(0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    files = write_results(j, out)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {files.rows} before {before:.0f} MB peak {peak:.0f} MB in {took:.1f} s")
