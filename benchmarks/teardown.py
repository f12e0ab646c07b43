"""Teardown latency: from one worker's death to the last process of the run gone, on N nodes.

A `sleep 300` stage runs on every node under `runner launch` (in a thread); the benchmark kills
the worker on node 1, noting the node's clock, and waits for the runner to tear the stage down.
Each node's supervisor writes the stage's exit_code only once no process of the run is left there
(it checks the process table for the run's tag), so the newest exit_code time is when the last
process went. Node clocks must agree (one machine for the simulator; NTP on a real cluster).
Prints figures; it is not a test.

    python benchmarks/teardown.py -i /path/inv --nodes 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.errors import RunnerError
from runner.exec.cluster import close, connect, make_nodes
from runner.exec.fanout import fan_out
from runner.exec.launch import Launch, LaunchOptions
from runner.inventory import load_hosts

MTIME = "import os, sys; print(os.stat(sys.argv[1]).st_mtime)"
KILL_ONE = (
    "import os, signal, sys; sys.path.insert(0, sys.argv[1]); import supervisor\n"
    "for pid in supervisor.tagged_pids(sys.argv[2]):\n"
    "    if open(f'/proc/{pid}/cmdline', 'rb').read().startswith(b'sleep'):\n"
    "        import time; print(time.time()); os.kill(pid, signal.SIGKILL); break\n"
)


def once(inventory: str, count: int, tmp: Path) -> float:
    job = tmp / "teardown.yaml"
    job.write_text(
        json.dumps(
            {
                "name": "bench-teardown",
                "cluster": {"npus_per_node": 1},
                "stages": [{"name": "work", "command": "sleep 300"}],
            }
        )
    )
    runs = tmp / "runs"
    opts = LaunchOptions(job_path=job, nodes=count, inventory=inventory, runs_dir=runs)
    errors: list[BaseException] = []

    def launch() -> None:
        try:
            Launch(opts, None).run()
        except RunnerError as exc:
            errors.append(exc)

    thread = threading.Thread(target=launch, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not any(runs.glob("*/state.json")):
        if time.monotonic() > deadline:
            raise SystemExit("the run did not start")
        time.sleep(0.1)
    deadline = time.monotonic() + 60
    state_path = next(runs.glob("*/state.json"))
    run_id = state_path.parent.name
    hosts = load_hosts(inventory)[:count]
    nodes = make_nodes(hosts, run_id)
    connect(nodes)
    try:
        while len([p for n in nodes for p in n.run_pids(run_id)]) < 2 * count:  # bash + sleep per node
            if time.monotonic() > deadline or errors:
                raise SystemExit(f"the stage did not start on every node: {errors or 'timed out'}")
            time.sleep(0.1)
        victim = nodes[1]
        killed_at = float(
            victim.check(victim.wrap(victim.py("-S", "-c", KILL_ONE, victim.run_dir, run_id)), "kill").stdout
        )
        thread.join(timeout=120)
        ended = fan_out(
            nodes,
            lambda n: n.run(n.wrap(n.py("-S", "-c", MTIME, n.stage_dir("work") + "/exit_code"))),
        )
        last = max(float(r.stdout) for r in ended.succeeded.values())
        left = [p for n in nodes for p in n.run_pids(run_id)]
        if left:
            raise SystemExit(f"processes of the run survived: {left}")
    finally:
        close(nodes)
    return last - killed_at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            figures.append(once(args.inventory, args.nodes, Path(tmp)))
    print(f"teardown on {args.nodes} nodes: worker killed -> last process gone (seconds)")
    print(f"  median {statistics.median(figures):.2f}  min {min(figures):.2f}  max {max(figures):.2f}")
    print(f"target < 3 s: {'met' if statistics.median(figures) < 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
