"""Run a job's stages on the nodes of a run, one stage at a time, failing fast.

For each stage: upload each node's script, start it under the node's supervisor, follow every node's
logs into one stream, and wait. When any node's stage exits non-zero or a node stops answering
(no heartbeat within `node_timeout`), the stage is stopped on every other node at once, the first
failure is named (node, rank, signature) and recorded, and StageFailed is raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import ExecError, RunnerError
from runner.exec.base import Stream, StreamTimeout
from runner.exec.fanout import fan_out, raise_for_failures
from runner.exec.nodes import Node
from runner.logstream import LogStream, rank_of
from runner.runs import Failure, NodeStage, RunDir, RunState, RunStatus, StageRecord, stage_key

DEFAULT_GRACE_S = 3.0
DEFAULT_NODE_TIMEOUT_S = 8.0


class StageFailed(ExecError):
    """A stage failed on a node; the stage was stopped on every node."""


class StageStopped(ExecError):
    """`runner stop` ended the stage."""


@dataclass(frozen=True)
class StageJob:
    """One stage as the executor needs it: where it runs and each node's script."""

    name: str
    node_indices: tuple[int, ...]
    scripts: Mapping[int, str]
    kind: str = "command"
    placement: str = "all"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    distribute: bool = False
    collect: bool = False
    share: tuple[str, ...] = ()
    msrun: bool = False

    def record(self, hosts: Sequence[str]) -> StageRecord:
        return StageRecord(
            name=self.name,
            kind=self.kind,
            placement=self.placement,
            msrun=self.msrun,
            nodes={str(i): NodeStage(host=hosts[i]) for i in self.node_indices},
        )


def stages_from_plan(plan: Any, scripts: Mapping[tuple[int, str], str]) -> list[StageJob]:
    """StageJobs from a runner.plan.Plan and runner.render.render_scripts(plan)."""
    jobs = []
    for stage in plan.stages:
        indices = tuple(stage.node_indices)
        jobs.append(
            StageJob(
                name=stage.name,
                node_indices=indices,
                scripts={i: scripts[(i, stage.name)] for i in indices},
                kind=stage.kind,
                placement=stage.placement,
                inputs=tuple(stage.inputs),
                outputs=tuple(stage.outputs),
                distribute=bool(getattr(stage, "distribute", False)),
                collect=bool(getattr(stage, "collect", False)),
                share=tuple(getattr(stage, "share", ())),
                msrun=bool(getattr(stage, "msrun", False)),
            )
        )
    return jobs


_PORT_LINE = re.compile(r"^export MASTER_PORT=.*$", re.MULTILINE)


def inputs_hash(stage: StageJob, input_sizes: Mapping[str, int]) -> str:
    """Hash of what a stage's result depends on: its scripts (less the port picked per launch) and
    the sizes of its inputs."""
    digest = hashlib.sha256()
    scripts = {str(k): _PORT_LINE.sub("", v) for k, v in sorted(stage.scripts.items())}
    digest.update(json.dumps(scripts, sort_keys=True).encode())
    digest.update(json.dumps(dict(input_sizes), sort_keys=True).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Event:
    kind: str  # line | exit | lost | nostart
    node: int
    source: str = ""
    text: str = ""
    code: int | None = None


def _parse_exit(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class Session:
    """The nodes of one run and what the runner does on them."""

    def __init__(
        self,
        run: RunDir,
        state: RunState,
        nodes: Sequence[Node],
        stream: LogStream,
        *,
        grace: float = DEFAULT_GRACE_S,
        node_timeout: float = DEFAULT_NODE_TIMEOUT_S,
        storage: str = "shared",
        stage_env: dict[str, str] | None = None,
    ) -> None:
        self.run = run
        self.state = state
        self.nodes = list(nodes)
        self.stream = stream
        self.grace = grace
        self.node_timeout = node_timeout
        self.storage = storage
        self.stage_env = dict(stage_env or {})
        self._env = dict(self.stage_env)
        self.lost: set[int] = set()
        self._lock = threading.Lock()

    def save(self) -> None:
        with self._lock:
            self.run.write_state(self.state)

    # --- set-up ------------------------------------------------------------------------------

    def prepare(self, *, agents: bool = True) -> None:
        """Create every node's run directory, upload the supervisor and start the node agents,
        all nodes at once. A node whose agent does not start runs its stages with one SSH command
        each instead."""
        if agents:
            # One task per node connects (if not yet) and starts its agent, so a node that is up
            # early does not wait for the slowest connection before its agent starts.
            def connect_and_start(node: Node) -> str | None:
                opener = getattr(node.transport, "open", None)
                if opener is not None:
                    opener()  # a connection error fails the node
                try:
                    node.start_agent(self.node_timeout)
                except ExecError as exc:
                    return str(exc)  # no agent: the node falls back to one SSH command per stage
                return None

            started = fan_out(self.nodes, connect_and_start)
            raise_for_failures(started.outcomes, "connecting")
            for node, outcome in started.succeeded.items():
                if outcome is not None:
                    self.stream.note(f"{node}: {outcome}; its stages start with one SSH command each")
        # Nodes without an agent: upload the supervisor and check that Python runs there.
        plain = [n for n in self.nodes if n.agent is None]
        raise_for_failures(fan_out(plain, lambda n: n.prepare()).outcomes, "preparing the nodes")

    def close(self) -> None:
        """End the node agents, close the log files and every connection."""
        for node in self.nodes:
            node.stop_agent()
        self.stream.close()
        for node in self.nodes:
            node.transport.close()

    # --- how the run ends --------------------------------------------------------------------

    def end(self, status: RunStatus, message: str | None = None) -> None:
        """Record how the run ended; no launcher owns it any more."""
        self.state.status = status
        self.state.control_pid = None
        if message is not None:
            self.state.message = message
        self.save()

    def end_by(self, exc: BaseException) -> None:
        """Record a run ended by Ctrl-C, by `runner stop` (StageStopped) or by a failure."""
        if isinstance(exc, KeyboardInterrupt):
            self.end("interrupted")
        else:
            self.end("stopped" if isinstance(exc, StageStopped) else "failed", str(exc).splitlines()[0])

    @contextlib.contextmanager
    def owned(self) -> Iterator[Session]:
        """What a launcher does with the nodes. Ended by Ctrl-C or a RunnerError, the run is recorded
        as ended and whatever of it survives on the nodes that still answer is stopped; either way
        the session is closed."""
        try:
            yield self
        except (KeyboardInterrupt, RunnerError) as exc:
            self.end_by(exc)
            self.stop_run()  # a node that does not answer cannot be helped here
            raise
        finally:
            self.close()

    # --- one stage ---------------------------------------------------------------------------

    def run_stage(self, stage: StageJob, env: Mapping[str, str] | None = None) -> None:
        """Run one stage on its nodes; `env` adds variables for this stage only."""
        self._env = {**self.stage_env, **(env or {})}
        record = self.state.stage(stage.name)
        nodes = [self.nodes[i] for i in stage.node_indices]
        for node in nodes:
            path = self.run.script_path(node.index, stage.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(stage.scripts[node.index])
        record.inputs_hash = inputs_hash(stage, nodes[0].sizes(list(stage.inputs)))
        if stage.share and self.storage == "local":
            # A resumed stage: every node loads its own shards, so it needs node 0's tracker first.
            present = [p for p, size in nodes[0].sizes(list(stage.share)).items() if size >= 0]
            if present:
                self._distribute(stage, nodes[0], present)
        now = time.time()
        record.state = "running"
        record.nodes = {str(n.index): NodeStage(host=n.name, state="running", started=now) for n in nodes}
        self.save()
        self.stream.note(f"stage {stage.name!r} starting on {', '.join(n.label() for n in nodes)}")
        self.watch(stage.name, nodes, fail_fast=True, scripts=stage.scripts)
        if record.state != "succeeded":
            return
        record.outputs = nodes[0].sizes(list(stage.outputs))
        self.save()
        missing = [p for p, size in record.outputs.items() if size < 0]
        if missing:
            self.stream.note(f"stage {stage.name!r} finished but did not write {', '.join(missing)}")
        if stage.distribute and self.storage == "local" and stage.outputs:
            self._distribute(stage, nodes[0], stage.outputs)
        if stage.collect and self.storage == "local" and stage.outputs:
            self._collect(stage, nodes)
        if stage.share and self.storage == "local":
            self._distribute(stage, nodes[0], stage.share)

    def _distribute(self, stage: StageJob, source: Node, paths: Sequence[str]) -> None:
        others = [n for n in self.nodes if n is not source]
        if not others:
            return
        self.stream.note(f"copying {', '.join(paths)} ({stage.name}) from {source.label()} to the other nodes")
        raise_for_failures(
            fan_out(others, lambda n: source.copy_to(n, list(paths))).outcomes,
            f"copying the outputs of stage {stage.name!r}",
        )

    def _collect(self, stage: StageJob, nodes: Sequence[Node]) -> None:
        """Gather every node's part of the outputs on node 0 (one node after the other: the
        parts share directories)."""
        target = self.nodes[0]
        for node in nodes:
            if node is target:
                continue
            dirs = sorted({posixpath.dirname(p.rstrip("/")) for p in stage.outputs})
            present = [p for p, size in node.sizes(dirs).items() if size >= 0]
            if present:
                self.stream.note(f"collecting {', '.join(present)} from {node.label()} on {target.label()}")
                node.copy_to(target, present)

    def _stop(self, nodes: Sequence[Node], stage: str | None) -> dict[Node, Any]:
        result = fan_out(nodes, lambda n: n.stop(self.state.run_id, stage, self.grace))
        return dict(result.outcomes)

    def watch(
        self,
        stage: str,
        nodes: Sequence[Node],
        *,
        fail_fast: bool,
        offsets: Callable[[Node], dict[str, int]] | None = None,
        scripts: Mapping[int, str] | None = None,
    ) -> None:
        """Stream the stage's logs until it has ended on every node; tear down on the first failure.

        With `scripts`, each node's script is uploaded and started first (in the same command);
        without, the stage is already running and is followed (reattach).
        """
        record = self.state.stage(stage)
        key = stage_key(stage, self.state.attempt)
        events: queue.Queue[_Event] = queue.Queue()
        threads = [
            threading.Thread(
                target=self._follow,
                args=(node, stage, events, offsets(node) if offsets else None, scripts),
                name=f"follow-{node.name}",
                daemon=True,
            )
            for node in nodes
        ]
        for thread in threads:
            thread.start()
        by_index = {n.index: n for n in nodes}
        pending = set(by_index)
        stopping = False
        stopper: threading.Thread | None = None
        try:
            while pending:
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if event.kind == "line":
                    self.stream.emit(event.node, key, event.source, event.text)
                    continue
                pending.discard(event.node)
                entry = record.nodes[str(event.node)]
                entry.ended = time.time()
                entry.exit_code = event.code
                failed = event.kind in ("lost", "nostart") or event.code != 0
                stopped_by_user = event.kind == "exit" and event.text == "stopped" and not stopping
                if stopped_by_user:
                    entry.state = "stopped"
                    self.state.message = f"stopped on {by_index[event.node].label()} by `runner stop`"
                elif event.kind == "nostart":
                    entry.state = "failed"
                    self.stream.note(f"{by_index[event.node].label()}: the stage did not start: {event.text}")
                elif event.kind == "lost":
                    entry.state = "lost"
                    self.lost.add(event.node)
                    self.stream.note(f"{by_index[event.node].label()} stopped answering: {event.text}")
                elif not failed:
                    entry.state = "succeeded"
                else:
                    entry.state = "stopped" if stopping else "failed"
                if failed and not stopping and fail_fast:
                    stopping = True
                    if stopped_by_user:
                        self.stream.note(self.state.message or "stopped")
                    else:
                        self._record_failure(stage, by_index[event.node], event)
                        self.stream.note(self.state.failure.describe() if self.state.failure else "failed")
                    others = [by_index[i] for i in pending]
                    if others:
                        self.stream.note(f"stopping stage {stage!r} on {', '.join(n.label() for n in others)}")
                        stopper = threading.Thread(target=self._stop, args=(others, stage), daemon=True)
                        stopper.start()
                self.save()
        except KeyboardInterrupt:
            self.stream.note("interrupted: stopping the stage on every node")
            self._stop(nodes, stage)
            for index in pending:
                entry = record.nodes[str(index)]
                entry.state, entry.ended = "stopped", time.time()
            record.state = "stopped"
            self.state.status = "interrupted"
            self.save()
            raise
        if stopper is not None:
            stopper.join()
        for thread in threads:
            thread.join(timeout=5)
        states = {e.state for e in record.nodes.values()}
        if states <= {"succeeded"}:
            record.state = "succeeded"
        elif "failed" in states or "lost" in states:
            record.state = "failed"
        else:
            record.state = "stopped"
        self.save()
        if record.state == "stopped" and fail_fast:
            self.state.status = "stopped"
            raise StageStopped(f"run {self.state.run_id} was stopped during stage {stage!r}")
        if record.state != "succeeded" and fail_fast:
            failure = self.state.failure
            summary = ", ".join(
                f"node{k}={e.exit_code if e.exit_code is not None else e.state}" for k, e in record.nodes.items()
            )
            raise StageFailed(
                (failure.describe() if failure else f"stage {stage!r} failed") + f"\n  exit codes: {summary}",
                hint=f"runner logs {self.state.run_id} --node {failure.node if failure else 0} shows the whole log; "
                f"runner launch --resume {self.state.run_id} re-runs from this stage",
            )

    def _record_failure(self, stage: str, node: Node, event: _Event) -> None:
        if self.state.failure is not None and self.state.failure.stage == stage:
            return
        first = self.stream.signatures.get(node.index)
        signature = first.signature if first else None
        if event.kind == "lost":
            signature = f"node lost ({event.text})"
        elif event.kind == "nostart":
            signature = f"did not start ({event.text})"
        self.state.failure = Failure(
            stage=stage,
            node=node.index,
            host=node.name,
            rank=rank_of(first.source) if first else None,
            exit_code=event.code,
            signature=signature,
            line=first.line if first and event.kind == "exit" else None,
        )

    def _follow(
        self,
        node: Node,
        stage: str,
        events: queue.Queue[_Event],
        offsets: dict[str, int] | None,
        scripts: Mapping[int, str] | None,
    ) -> None:
        stream: Stream | None = None
        try:
            if scripts is not None:
                lines, stream = node.launch_lines(
                    stage, scripts[node.index], self.state.run_id, self.grace, self._env, self.node_timeout
                )
            else:
                stream = node.follow(stage, offsets)
                lines = stream.lines(self.node_timeout)
        except ExecError as exc:
            events.put(_Event("nostart" if scripts is not None else "lost", node.index, text=str(exc)))
            return
        started = scripts is None
        other: list[str] = []
        try:
            for line in lines:
                kind, _, rest = line.partition("\t")
                if kind == "S":
                    started = True
                elif kind == "E":
                    events.put(_Event("nostart", node.index, text=rest))
                    return
                elif kind == "H":
                    continue
                elif kind == "L":
                    source, _, text = rest.partition("\t")
                    events.put(_Event("line", node.index, source, text))
                elif kind == "X":
                    value, _, flag = rest.partition("\t")
                    code = _parse_exit(value.strip())
                    if code is None:
                        events.put(_Event("lost", node.index, text=f"the supervisor reports {value.strip()!r}"))
                    else:
                        events.put(_Event("exit", node.index, text=flag.strip(), code=code))
                    return
                else:
                    other.append(line)
            if not started:
                reason = " / ".join(other[-3:]) or f"exit code {stream.exit_code() if stream else None}"
                events.put(_Event("nostart", node.index, text=reason))
            else:
                events.put(_Event("lost", node.index, text="the connection closed"))
        except StreamTimeout:
            events.put(_Event("lost", node.index, text=f"no heartbeat for {self.node_timeout:.0f} s"))
        except (OSError, EOFError, ExecError) as exc:
            events.put(_Event("lost", node.index, text=str(exc)))
        finally:
            if stream is not None:
                stream.close()

    # --- whole run ---------------------------------------------------------------------------

    def stop_run(self) -> dict[Node, Any]:
        """Stop every process of the run on every node that still answers."""
        return self._stop([n for n in self.nodes if n.index not in self.lost], None)
