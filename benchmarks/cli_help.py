"""How long `genbatch [CMD] --help` takes, per command (median of N runs).

    .venv/bin/python benchmarks/cli_help.py [--runs 7]

Each command imports what it needs when it runs, so its help costs the
interpreter's start plus argparse; the target is under 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from genbatch.cli import COMMANDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(f"| command | median of {runs} (s) | slowest (s) |")
    print("|---|---|---|")
    for name in ["", *COMMANDS]:
        argv = [sys.executable, "-m", "genbatch", *([name] if name else []), "--help"]
        took = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            took.append(time.perf_counter() - start)
        label = f"genbatch {name}".strip() + " --help"
        print(f"| `{label}` | {statistics.median(took):.3f} | {max(took):.3f} |")


if __name__ == "__main__":
    main()
