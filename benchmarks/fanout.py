"""Fan-out: a no-op stage on N nodes, from command to every node done.

Compares `runner`'s first stage (connect + upload the supervisor + run), a later stage of the same
run (connections reused), `pdsh -R ssh` and a sequential ssh loop, all on the same hosts with the
inventory's SSH settings. Prints figures; it is not a test.

    runner sim up --nodes 16 --inventory /path/inv ...   # or any inventory
    python benchmarks/fanout.py -i /path/inv --nodes 16
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.exec.cluster import make_nodes
from runner.exec.stages import Session, StageJob
from runner.inventory import Host, load_hosts
from runner.logstream import LogStream
from runner.runs import RunDir, RunState


def ssh_args(host: Host) -> list[str]:
    args = ["-p", str(host.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if host.known_hosts:
        args += ["-o", f"UserKnownHostsFile={host.known_hosts}"]
    if host.key_file:
        args += ["-i", host.key_file, "-o", "IdentitiesOnly=yes"]
    if host.user:
        args += ["-l", host.user]
    return args


def time_runner(hosts: list[Host], runs: Path) -> tuple[float, float]:
    run = RunDir.create(runs, "bench-fanout")
    state = RunState(run_id=run.run_id, job_name="bench-fanout", hosts=[h.name for h in hosts], status="running")
    nodes = make_nodes(hosts, run.run_id)
    noop = {k: "#!/usr/bin/env bash\ntrue\n" for k in range(len(nodes))}
    stages = [StageJob(name=f"noop{i}", node_indices=tuple(range(len(nodes))), scripts=noop) for i in (1, 2)]
    state.stages = [s.record(state.hosts) for s in stages]
    session = Session(run, state, nodes, LogStream(run.log_path, None))
    try:
        started = time.perf_counter()
        session.prepare()  # connects every node and starts its agent
        session.run_stage(stages[0])
        first = time.perf_counter() - started
        started = time.perf_counter()
        session.run_stage(stages[1])
        later = time.perf_counter() - started
    finally:
        session.close()  # agents, log files and connections
    return first, later


def time_pdsh(hosts: list[Host]) -> float | None:
    if shutil.which("pdsh") is None:
        return None
    env = dict(os.environ, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS_APPEND=" ".join(ssh_args(hosts[0])))
    started = time.perf_counter()
    subprocess.run(
        ["pdsh", "-R", "ssh", "-w", ",".join(h.address for h in hosts), "true"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def time_sequential(hosts: list[Host]) -> float:
    started = time.perf_counter()
    for host in hosts:
        subprocess.run(["ssh", *ssh_args(host), host.address, "true"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hosts = load_hosts(args.inventory)
    hosts = hosts[: args.nodes or len(hosts)]
    figures: dict[str, list[float]] = {
        "runner first stage": [],
        "runner later stage": [],
        "pdsh -R ssh": [],
        "sequential ssh": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            first, later = time_runner(hosts, Path(tmp))
            figures["runner first stage"].append(first)
            figures["runner later stage"].append(later)
            pdsh = time_pdsh(hosts)
            if pdsh is not None:
                figures["pdsh -R ssh"].append(pdsh)
            figures["sequential ssh"].append(time_sequential(hosts))
    print(f"no-op on {len(hosts)} nodes, median of {args.repeat} (seconds; min-max)")
    medians = {name: statistics.median(values) for name, values in figures.items() if values}
    pdsh = medians.get("pdsh -R ssh")
    for name, value in medians.items():
        ratio = f"  {value / pdsh:5.2f} x pdsh" if pdsh else ""
        spread = f"  ({min(figures[name]):.3f}-{max(figures[name]):.3f})"
        print(f"  {name:<20} {value:7.3f}{ratio}{spread}")
    if pdsh:
        print(
            f"targets: first stage <= pdsh ({'met' if medians['runner first stage'] <= pdsh else 'NOT met'}), "
            f"later stage <= pdsh/5 ({'met' if medians['runner later stage'] <= pdsh / 5 else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
