"""Wall time of a no-op `ansible-playbook site.yml` (the second run) on 1 and 8 simulated nodes.

    sudo .venv/bin/python benchmarks/provision_noop.py [--nodes 1 8] [--runs 1]

For each size: `runner sim up`, one converging run of site.yml, then the timed re-runs (which
change nothing), then `runner sim down`. Target: the 8-node no-op run takes at most 1.5x the
1-node one (forks, pipelining and SSH connection reuse in ansible.cfg).

It also times the floor of any playbook on the same cluster: one `ansible.builtin.ping` per host.
The simulated hosts run their modules on this machine's own cores, and a module run costs
ansible-core about 0.2 s of CPU on the host, so on a small machine even that floor grows with
the number of hosts; the floor's ratio is the best any playbook can reach here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BIN = REPO / ".venv" / "bin"
FLOOR_PLAY = """- name: One module per host
  hosts: ascend
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(state / "ansible-facts"), "ANSIBLE_NOCOLOR": "1"}


def _site(inventory: Path, state: Path, playbook: str = "site.yml") -> tuple[float, dict[str, int]]:
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), playbook], cwd=REPO,
                          env=_env(state), capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.monotonic() - start
    summary = {m.group(1): int(m.group(2)) for m in RECAP.finditer(proc.stdout)}
    if proc.returncode != 0:
        sys.exit(f"{playbook} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, summary


def measure(nodes: int, runs: int) -> tuple[list[float], list[float]]:
    state = REPO / f".simtest-bench{nodes}"
    inventory = state / "inventory"
    runner = str(BIN / "runner")
    up = [runner, "sim", "up", "--nodes", str(nodes), "--prefix", f"arbench{nodes}", "--subnet",
          f"10.{240 + nodes % 10}.0.0/24", "--state-dir", str(state), "--inventory", str(inventory)]
    subprocess.run(up, cwd=REPO, check=True, capture_output=True, text=True, timeout=900)
    try:
        first, _ = _site(inventory, state)
        print(f"{nodes} node(s): converging run {first:.1f} s", flush=True)
        times, floor = [], []
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as ping:
            ping.write(FLOOR_PLAY)
            ping.flush()
            for _ in range(runs):
                elapsed, changed = _site(inventory, state)
                if any(changed.values()):
                    sys.exit(f"the second run changed something: {changed}")
                times.append(elapsed)
                floor.append(_site(inventory, state, ping.name)[0])
        return times, floor
    finally:
        subprocess.run([runner, "sim", "down", "--state-dir", str(state)], cwd=REPO, check=False,
                       capture_output=True, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=1, help="timed no-op runs per size (the best is kept)")
    args = parser.parse_args()
    best: dict[int, float] = {}
    floor: dict[int, float] = {}
    for nodes in args.nodes:
        times, pings = measure(nodes, args.runs)
        best[nodes], floor[nodes] = min(times), min(pings)
        print(f"{nodes} node(s): no-op site.yml {best[nodes]:.1f} s (runs: {', '.join(f'{t:.1f}' for t in times)}); "
              f"one ping per host {floor[nodes]:.2f} s", flush=True)
    if len(best) > 1:
        small, large = min(best), max(best)
        ratio = best[large] / best[small]
        verdict = "ok" if ratio <= 1.5 else "over the 1.5x target"
        print(f"ratio {large} nodes / {small} node(s): {ratio:.2f}x ({verdict}); "
              f"floor (one ping per host): {floor[large] / floor[small]:.2f}x")


if __name__ == "__main__":
    main()
