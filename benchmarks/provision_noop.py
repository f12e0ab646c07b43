"""Wall time of a no-op `ansible-playbook site.yml` (the second run) on 1 and 8 simulated nodes.

    sudo .venv/bin/python benchmarks/provision_noop.py [--nodes 1 8] [--runs 1]

For each size: `runner sim up`, one converging run of site.yml, then the timed re-runs (which
change nothing), then `runner sim down`. Target: the 8-node no-op run takes at most 1.5x the
1-node one (forks, pipelining and SSH connection reuse in ansible.cfg).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BIN = REPO / ".venv" / "bin"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(state / "ansible-facts"), "ANSIBLE_NOCOLOR": "1"}


def _site(inventory: Path, state: Path) -> tuple[float, dict[str, int]]:
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml"], cwd=REPO,
                          env=_env(state), capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.monotonic() - start
    summary = {m.group(1): int(m.group(2)) for m in RECAP.finditer(proc.stdout)}
    if proc.returncode != 0:
        sys.exit(f"site.yml failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, summary


def measure(nodes: int, runs: int) -> list[float]:
    state = REPO / f".simtest-bench{nodes}"
    inventory = state / "inventory"
    runner = str(BIN / "runner")
    up = [runner, "sim", "up", "--nodes", str(nodes), "--prefix", f"arbench{nodes}", "--subnet",
          f"10.{240 + nodes % 10}.0.0/24", "--state-dir", str(state), "--inventory", str(inventory)]
    subprocess.run(up, cwd=REPO, check=True, capture_output=True, text=True, timeout=900)
    try:
        first, _ = _site(inventory, state)
        print(f"{nodes} node(s): converging run {first:.1f} s", flush=True)
        times = []
        for _ in range(runs):
            elapsed, changed = _site(inventory, state)
            if any(changed.values()):
                sys.exit(f"the second run changed something: {changed}")
            times.append(elapsed)
        return times
    finally:
        subprocess.run([runner, "sim", "down", "--state-dir", str(state)], cwd=REPO, check=False,
                       capture_output=True, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=1, help="timed no-op runs per size (the best is kept)")
    args = parser.parse_args()
    best: dict[int, float] = {}
    for nodes in args.nodes:
        times = measure(nodes, args.runs)
        best[nodes] = min(times)
        print(f"{nodes} node(s): no-op site.yml {best[nodes]:.1f} s (runs: {', '.join(f'{t:.1f}' for t in times)})",
              flush=True)
    if len(best) > 1:
        small, large = min(best), max(best)
        ratio = best[large] / best[small]
        verdict = "ok" if ratio <= 1.5 else "over the 1.5x target"
        print(f"ratio {large} nodes / {small} node(s): {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
