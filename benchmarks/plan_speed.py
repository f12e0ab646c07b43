"""Wall time of `runner plan` on every shipped job, as a user runs it (a fresh process each time).

Target (issue 2): well under 1 s per plan. Prints the median and worst of N runs per job.
Run: .venv/bin/python benchmarks/plan_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runner = [sys.executable, "-m", "runner.cli.main"]
    worst_overall = 0.0
    for job in sorted((REPO / "jobs").glob("*.yaml")):
        match = re.search(r"--nodes (\d+)", job.read_text())
        nodes = match.group(1) if match else "1"
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([*runner, "plan", str(job), "--nodes", nodes], check=True, capture_output=True, cwd=REPO)
            times.append(time.perf_counter() - start)
        worst_overall = max(worst_overall, max(times))
        print(f"{job.name:45s} nodes={nodes}  median {statistics.median(times):.3f} s  worst {max(times):.3f} s")
    print(f"worst of all: {worst_overall:.3f} s (target < 1 s): {'OK' if worst_overall < 1 else 'TOO SLOW'}")
    return 0 if worst_overall < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
