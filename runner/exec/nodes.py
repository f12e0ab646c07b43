"""A node of a run: its host, its transport, and where and how stage processes run on it.

Stage processes run in the node's NPU container (`<engine> exec <name> ...`) or on the bare host
(`ascend_run_in: host`). The supervisor runs in the same place as the stage, because killing a
`docker/podman exec` client does not stop what it started inside the container. The node's run
directory lives on the data dir, which the container mounts at the same path.
"""

from __future__ import annotations

import json
import posixpath
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import ExecError
from runner.exec.agent import Agent
from runner.exec.base import CommandResult, Stream, Transport
from runner.inventory import Host
from runner.runs import stage_key

SUPERVISOR_SOURCE = Path(__file__).resolve().parent.parent / "supervisor.py"
# Where stages run, the runner's own helpers use `ascend_runner_python` if the inventory sets it,
# else the system interpreter, else the first of python3 and python on PATH. They need only the
# standard library, and the system interpreter starts fastest: a version-manager shim on PATH
# (pyenv, conda) costs a shell script per start, which adds up over many nodes.
PYTHON_LOOKUP = '"$(command -v /usr/bin/python3 || command -v python3 || command -v python || echo python3)"'
FREE_PORT_RANGE = (20000, 40000)
# Reads "<length>\n<supervisor source>" from stdin, writes it to argv[1] (making the run directory:
# no `mkdir` process) and runs its agent on the rest of stdin. It execs the source and calls the
# agent's entry point itself: runpy and the supervisor's command-line parser cost ~14 ms of CPU per
# node, and every node's agent starts at once (in the simulator, all on the control machine's cores).
AGENT_BOOTSTRAP = (
    "import os, sys; n = int(sys.stdin.buffer.readline()); data = sys.stdin.buffer.read(n); path = sys.argv[1]; "
    "os.makedirs(os.path.dirname(path), exist_ok=True); open(path, 'wb').write(data); "
    "scope = {'__name__': 'supervisor', '__file__': path}; exec(compile(data, path, 'exec'), scope); "
    "sys.exit(scope['agent']())"
)


def node_run_dir(host: Host, run_id: str, index: int) -> str:
    return posixpath.join(host.data_dir, ".ascend-runner", "runs", run_id, f"node{index}")


@dataclass(eq=False)
class Node:
    """Node `index` (its NODE_RANK) of a run."""

    index: int
    host: Host
    transport: Transport
    run_dir: str
    attempt: int = 1
    agent: Agent | None = None

    @property
    def name(self) -> str:
        return self.host.name

    def label(self) -> str:
        return f"node{self.index} ({self.host.name})"

    def __str__(self) -> str:
        return self.label()

    def wrap(self, command: str, *, stdin: bool = False) -> str:
        """The command as it must be run to execute where the stages run."""
        if self.host.run_in == "host":
            return f"bash -c {shlex.quote(command)}"
        engine = shlex.quote(self.host.container_engine)
        interactive = "-i " if stdin else ""
        return f"{engine} exec {interactive}{shlex.quote(self.host.container_name)} bash -c {shlex.quote(command)}"

    def py(self, *args: str) -> str:
        """A shell command running the node's Python (standard library only) with args."""
        configured = self.host.hostvars.get("ascend_runner_python")
        python = shlex.quote(str(configured)) if configured else PYTHON_LOOKUP
        return " ".join([python, *(shlex.quote(a) for a in args)])

    def stage_dir(self, stage: str) -> str:
        return posixpath.join(self.run_dir, stage_key(stage, self.attempt))

    @property
    def supervisor_path(self) -> str:
        return posixpath.join(self.run_dir, "supervisor.py")

    def supervisor_command(self, *args: str) -> str:
        return self.wrap(self.py("-S", self.supervisor_path, *args))

    def run(self, command: str, *, timeout: float = 60.0) -> CommandResult:
        return self.transport.run(command, timeout=timeout)

    def check(self, command: str, what: str, *, timeout: float = 60.0) -> CommandResult:
        result = self.transport.run(command, timeout=timeout)
        if not result.ok:
            tail = result.tail("stderr") or result.tail("stdout")
            raise ExecError(f"{self.label()}: {what} failed (exit code {result.exit_code}): {tail}")
        return result

    # --- supervisor operations --------------------------------------------------------------

    def prepare(self) -> None:
        """Create the node's run directory, upload the supervisor and check Python runs where the
        stages run: one round trip."""
        probe = self.transport.run(
            f"mkdir -p {shlex.quote(self.run_dir)} && cat > {shlex.quote(self.supervisor_path)} && "
            + self.wrap(self.py("-S", "-c", "import sys; print(sys.version_info[0])")),
            stdin=SUPERVISOR_SOURCE.read_text(),
        )
        if not probe.ok or probe.stdout.strip() != "3":
            where = "on the host" if self.host.run_in == "host" else f"in container {self.host.container_name}"
            raise ExecError(
                f"{self.label()}: cannot run Python {where}: {probe.tail() or probe.stdout.strip()}",
                hint="provision the node (ansible-playbook site.yml) so the NPU container is running, "
                "set ascend_runner_python to a Python 3 there, or set ascend_run_in: host",
            )

    def start_agent(self, idle_timeout: float) -> None:
        """Create the run directory, upload the supervisor and start this node's agent, in one
        SSH command: the agent's first input is the supervisor's source (length, then bytes)."""
        command = "exec " + self.wrap(self.py("-S", "-c", AGENT_BOOTSTRAP, self.supervisor_path), stdin=True)
        source = SUPERVISOR_SOURCE.read_bytes()
        stream = self.transport.stream(command, stdin=b"%d\n" % len(source) + source, keep_stdin=True)
        agent = Agent(stream, self.label(), idle_timeout)
        try:
            agent.wait_ready()
        except ExecError:
            agent.close()
            raise
        self.agent = agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None

    def launch_lines(
        self,
        stage: str,
        script: str,
        run_id: str,
        grace: float,
        env: dict[str, str] | None,
        idle_timeout: float,
    ) -> tuple[Iterator[str], Stream | None]:
        """Start the stage and return its output lines (S/E, L..., X), through the agent if the
        node has a live one, else with one SSH command; and the stream to close, if any."""
        if self.agent is not None and self.agent.alive:
            request = {
                "stage_dir": self.stage_dir(stage),
                "run_id": run_id,
                "grace": grace,
                "env": env or {},
                "script": script,
            }
            return self.agent.launch(stage_key(stage, self.attempt), request), None
        stream = self.launch(stage, script, run_id, grace, env)
        return stream.lines(idle_timeout), stream

    def launch(
        self,
        stage: str,
        script: str,
        run_id: str,
        grace: float,
        env: dict[str, str] | None = None,
    ) -> Stream:
        """Upload the stage's script, start it under a supervisor and follow it: one command.

        The stream's first line is `S<TAB>pidfile JSON` (or `E<TAB>reason`), then the follow lines.
        """
        stage_dir = self.stage_dir(stage)
        args = ["launch", stage_dir, "--run-id", run_id, "--grace", str(grace)]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        command = (
            f"mkdir -p {shlex.quote(stage_dir)} && cat > {shlex.quote(posixpath.join(stage_dir, 'script.sh'))} && "
            + self.supervisor_command(*args)
        )
        return self.transport.stream(command, stdin=script.encode())

    def follow(self, stage: str, offsets: dict[str, int] | None = None) -> Stream:
        args = ["follow", self.stage_dir(stage)]
        if offsets:
            args += ["--offsets", json.dumps(offsets)]
        return self.transport.stream(self.supervisor_command(*args))

    def stop(self, run_id: str, stage: str | None, grace: float) -> dict:
        args = ["stop"] + ([self.stage_dir(stage)] if stage else []) + ["--run-id", run_id, "--grace", str(grace)]
        result = self.run(self.supervisor_command(*args), timeout=grace + 30)
        if result.exit_code not in (0, 1):
            raise ExecError(f"{self.label()}: stop failed (exit code {result.exit_code}): {result.tail()}")
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}

    def status(self, stage: str) -> dict:
        result = self.check(self.supervisor_command("status", self.stage_dir(stage)), "reading stage status")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def run_pids(self, run_id: str) -> list[int]:
        """Processes of the run still alive where the stages run (read from /proc, not bookkeeping)."""
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import supervisor; "
            "print(' '.join(map(str, supervisor.tagged_pids(sys.argv[2]))))"
        )
        result = self.check(self.wrap(self.py("-S", "-c", code, self.run_dir, run_id)), "listing the run's processes")
        return [int(p) for p in result.stdout.split()]

    # --- files -------------------------------------------------------------------------------

    def sizes(self, paths: list[str]) -> dict[str, int]:
        """Size in bytes of each path (a directory: its whole tree); -1 when it does not exist."""
        if not paths:
            return {}
        code = (
            "import json, os, sys\n"
            "def size(p):\n"
            "    if os.path.isfile(p): return os.path.getsize(p)\n"
            "    if not os.path.isdir(p): return -1\n"
            "    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs\n"
            "               if os.path.isfile(os.path.join(d, f)))\n"
            "print(json.dumps({p: size(p) for p in sys.argv[1:]}))\n"
        )
        result = self.check(self.wrap(self.py("-S", "-c", code, *paths)), "reading output sizes")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def read_text(self, path: str) -> str | None:
        result = self.run(self.wrap(f"cat {shlex.quote(path)}"))
        return result.stdout if result.ok else None

    def free_port(self) -> int:
        """A TCP port nothing listens on, on this node (checked by binding it)."""
        low, high = FREE_PORT_RANGE
        code = (
            "import random, socket\n"
            f"ports = list(range({low}, {high})); random.shuffle(ports)\n"
            "for port in ports:\n"
            "    s = socket.socket()\n"
            "    try:\n"
            "        s.bind(('', port)); s2 = socket.socket(); s2.bind(('', port + 1)); s2.close()\n"
            "    except OSError:\n"
            "        continue\n"
            "    finally:\n"
            "        s.close()\n"
            "    print(port); break\n"
        )
        result = self.check(self.wrap(self.py("-S", "-c", code)), "finding a free MASTER_PORT")
        return int(result.stdout.strip().splitlines()[-1])

    def copy_to(self, other: Node, paths: list[str], *, timeout: float = 3600.0) -> None:
        """Copy paths from this node to `other` directly over the cluster network (one TCP stream
        between the two nodes' supervisors; nothing goes through the control machine, and the
        nodes need no SSH keys for each other)."""
        token = secrets.token_hex(16)
        receiver = other.transport.stream(
            other.wrap(
                other.py("-S", other.supervisor_path, "receive", *paths, "--token", token, "--timeout", str(timeout))
            )
        )
        try:
            lines = receiver.lines(idle_timeout=timeout)
            first = next(lines, "")
            kind, _, port = first.partition("\t")
            if kind != "READY":
                raise ExecError(f"{other.label()}: cannot receive {', '.join(paths)}: {first or 'no answer'}")
            target = f"{other.host.hccl_ip}:{port}"
            self.check(
                self.wrap(self.py("-S", self.supervisor_path, "send", *paths, "--to", target, "--token", token)),
                f"sending {', '.join(paths)} to {other.label()}",
                timeout=timeout,
            )
            result = next(lines, "")
            if not result.startswith("DONE"):
                raise ExecError(f"{other.label()}: receiving {', '.join(paths)} failed: {result or 'no answer'}")
        finally:
            receiver.close()
