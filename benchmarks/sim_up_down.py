#!/usr/bin/env python3
"""Time `runner sim up` and `runner sim down` for 2, 8 and 16 nodes (needs root).

    .venv/bin/python benchmarks/sim_up_down.py [--nodes 2,8,16] [--repeat 1]

Each size is brought up in its own state directory, with its own prefix and subnet, so a demo
cluster can stay up meanwhile. The image tarball is built (or found in the cache) first and
timed apart: `up` then measures what a user waits for on every later start. After `up`, a real
ssh to every node must succeed before `down` is timed. Targets on a 2-core machine: `up` < 20 s
for 8 nodes, `down` < 5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cli(*args: str) -> float:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, check=False)  # fmt: skip
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"runner {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed


def ssh_all(state: Path, nodes: int) -> float:
    from runner.sim.config import load_config

    cfg = load_config(state)
    assert cfg is not None

    def one(k: int) -> str:
        return subprocess.run(["ssh", "-F", str(cfg.ssh_config), cfg.node_name(k), "hostname"],
                              capture_output=True, text=True, check=True, timeout=60).stdout.strip()  # fmt: skip

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(one, range(nodes)))
    assert names == [cfg.node_name(k) for k in range(nodes)], names
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="2,8,16", help="comma-separated cluster sizes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--subnet", default="10.231.77.0/24")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: network namespaces, mounts and cgroups")

    from runner.sim import image, inventory
    from runner.sim.config import DEFAULT_STATE_DIR, make_config

    cache = DEFAULT_STATE_DIR / "cache"
    probe = make_config(state_dir=REPO / ".simtest-bench", inventory_dir=REPO / ".simtest-bench" / "inv",
                        image_cache_dir=cache)  # fmt: skip
    name, tag, _ = inventory.image_reference()
    start = time.monotonic()
    image.image_tarball(probe, name, tag)
    print(f"image tarball ready (built or cached) in {time.monotonic() - start:.1f}s")
    print(f"{'nodes':>5} {'up (s)':>8} {'ssh all (s)':>12} {'down (s)':>9}")
    for size in [int(n) for n in args.nodes.split(",")]:
        for _ in range(args.repeat):
            state = REPO / f".simtest-bench{os.getpid()}-{size}"
            try:
                up = cli("sim", "up", "--nodes", str(size), "--prefix", "arbn", "--subnet", args.subnet,
                         "--state-dir", str(state), "--inventory", str(state / "inventory"))  # fmt: skip
                reach = ssh_all(state, size)
                down = cli("sim", "down", "--state-dir", str(state), "--purge")
            finally:
                subprocess.run([sys.executable, "-m", "runner.cli.main", "sim", "down", "--state-dir", str(state),
                                "--purge", "--prefix", "arbn"], capture_output=True, cwd=REPO, check=False)  # fmt: skip
                shutil.rmtree(state, ignore_errors=True)
            print(f"{size:>5} {up:>8.2f} {reach:>12.2f} {down:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
