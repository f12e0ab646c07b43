#!/usr/bin/env python3
"""The small supervisor the runner uploads to every node and runs where the stage runs.

It depends on the Python standard library only (it runs inside the NPU container, whatever Python
that has). One supervisor per stage and node:

  start  STAGE_DIR --run-id ID   detach (double fork, own session), run `bash STAGE_DIR/script.sh`
                                 in its own session and process group with RUNNER_RUN_ID and
                                 RUNNER_STAGE_DIR in its environment, write supervisor.pid (tagged
                                 with the run id), output.log and, at the end, exit_code.
  stop   [STAGE_DIR] --run-id ID SIGTERM, grace, SIGKILL of that stage's process group and of every
                                 process carrying the run's tag (msrun starts its workers in new
                                 sessions, so a group alone is not enough). Nothing else is touched.
  launch STAGE_DIR --run-id ID  start, print "S<TAB>pidfile JSON" (or "E<TAB>reason"), then follow.
  status STAGE_DIR               JSON: state, exit code, live pids.
  agent                          long-lived: JSON launch requests on stdin, tagged S/L/X lines out.
  receive PATH... --token T      accept one tar stream over TCP, unpack only PATHs (local storage).
  send PATH... --to H:P --token  stream PATHs to a receiver on another node, directly.
  follow STAGE_DIR               print new lines of output.log and msrun/*.log as they grow
                                 ("L<TAB>source<TAB>text"), a heartbeat "H" every second of silence,
                                 and "X<TAB>code" when the stage has ended.

The supervisor ignores SIGHUP and has no terminal, so a dropped SSH connection does not stop a stage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time

PIDFILE = "supervisor.pid"
EXIT_FILE = "exit_code"
OUTPUT = "output.log"
SCRIPT = "script.sh"
STOP_FILE = "stop_requested"
TAG = "RUNNER_RUN_ID"
POLL_S = 0.1
FOLLOW_POLL_S = 0.05  # how often a followed stage's files and exit code are looked at
RECHECK_S = 0.03  # second look for leftovers after a stage's script ended
DEFAULT_GRACE_S = 3.0


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def tagged_pids(run_id: str, stage_dir: str | None = None, pgid: int | None = None) -> list[int]:
    """Processes of this run (and stage): by environment tag, or in the stage's process group."""
    want = f"{TAG}={run_id}".encode()
    want_dir = f"RUNNER_STAGE_DIR={stage_dir}".encode() if stage_dir else None
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            env = []
        match = want in env and (want_dir is None or want_dir in env)
        if not match and pgid is not None:
            try:
                match = os.getpgid(pid) == pgid
            except OSError:
                match = False
        if match and pid_alive(pid):
            found.append(pid)
    return sorted(found)


def terminate(run_id: str, stage_dir: str | None, pgid: int | None, grace: float) -> dict:
    """SIGTERM, wait up to `grace` seconds for the processes to go, then SIGKILL; wait until gone."""
    pids = tagged_pids(run_id, stage_dir, pgid)
    report = {"signalled": pids, "killed": []}
    if not pids:
        return report
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = tagged_pids(run_id, stage_dir, pgid)
        if not left:
            return report
        for pid in set(left) - signalled:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            signalled.add(pid)
        time.sleep(POLL_S)
    left = tagged_pids(run_id, stage_dir, pgid)
    report["killed"] = left
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while tagged_pids(run_id, stage_dir, pgid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    report["left"] = tagged_pids(run_id, stage_dir, pgid)
    return report


def _supervise(stage_dir: str, run_id: str, grace: float, extra_env: dict, notify_fd: int) -> None:
    """Runs in the detached grandchild: start the stage, wait, clean up, record the exit code."""
    import subprocess

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(os.path.join(stage_dir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    env = dict(os.environ)
    env.update(extra_env)
    env.update({TAG: run_id, "RUNNER_STAGE_DIR": stage_dir, "PYTHONUNBUFFERED": "1"})
    out = open(os.path.join(stage_dir, OUTPUT), "ab")  # noqa: SIM115 - held until the stage ends
    child = subprocess.Popen(
        ["bash", os.path.join(stage_dir, SCRIPT)],
        cwd=stage_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    info = {
        "run_id": run_id,
        "stage_dir": stage_dir,
        "supervisor_pid": os.getpid(),
        "pid": child.pid,
        "pgid": child.pid,
        "started": time.time(),
    }
    _write_atomic(os.path.join(stage_dir, PIDFILE), json.dumps(info))
    os.write(notify_fd, json.dumps(info).encode())
    os.close(notify_fd)

    def on_term(signum: int, _frame: object) -> None:
        terminate(run_id, stage_dir, child.pid, grace)

    signal.signal(signal.SIGTERM, on_term)
    code = child.wait()
    if code < 0:
        code = 128 - code
    # Whatever the script left behind (msrun workers in their own sessions) goes with it; look
    # twice more, for a process that was being forked as the script ended.
    for _ in range(3):
        terminate(run_id, stage_dir, child.pid, grace)
        time.sleep(RECHECK_S)
        if not tagged_pids(run_id, stage_dir, child.pid):
            break
    out.close()
    _write_atomic(os.path.join(stage_dir, EXIT_FILE), f"{code}\n")


def _start(args: argparse.Namespace) -> tuple[int, str]:
    """Detach a supervisor for the stage; (0, pidfile JSON) or (exit code, reason)."""
    stage_dir = os.path.abspath(args.stage_dir)
    if not os.path.isfile(os.path.join(stage_dir, SCRIPT)):
        return 2, f"no {SCRIPT} in {stage_dir}"
    current = _read_json(os.path.join(stage_dir, PIDFILE))
    if current and not os.path.exists(os.path.join(stage_dir, EXIT_FILE)) and pid_alive(current["supervisor_pid"]):
        return 3, f"stage already running under supervisor {current['supervisor_pid']}"
    for name in (EXIT_FILE, PIDFILE, STOP_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(stage_dir, name))
    sys.stdout.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        try:
            extra_env = dict(item.split("=", 1) for item in args.env)
            _supervise(stage_dir, args.run_id, args.grace, extra_env, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    data = b""
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    if not data:
        return 1, f"the supervisor did not start; see {stage_dir}/supervisor.log"
    return 0, data.decode()


def cmd_start(args: argparse.Namespace) -> int:
    code, text = _start(args)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_launch(args: argparse.Namespace) -> int:
    """start, then follow in the same process: one command per node and stage."""
    code, text = _start(args)
    if code != 0:
        print(f"E\t{text}", flush=True)
        return code
    print(f"S\t{text}", flush=True)
    return cmd_follow(args)


def cmd_stop(args: argparse.Namespace) -> int:
    stage_dir = os.path.abspath(args.stage_dir) if args.stage_dir else None
    pgid = None
    if stage_dir:
        info = _read_json(os.path.join(stage_dir, PIDFILE))
        if info and info.get("run_id") != args.run_id:
            print(f"{stage_dir} belongs to run {info.get('run_id')}, not {args.run_id}", file=sys.stderr)
            return 2
        if info:
            pgid = info["pgid"]
        if os.path.isdir(stage_dir):
            _write_atomic(os.path.join(stage_dir, STOP_FILE), f"{time.time()}\n")
    report = terminate(args.run_id, stage_dir, pgid, args.grace)
    print(json.dumps(report))
    return 0 if not report.get("left") else 1


def stage_status(stage_dir: str) -> dict:
    info = _read_json(os.path.join(stage_dir, PIDFILE))
    # Is the supervisor alive, asked before the exit code is read: it writes the exit code and
    # then ends, so a supervisor found gone has left its exit code by now. (Read the other way
    # round, a stage that ends between the two reads would be reported lost.)
    alive = info is not None and pid_alive(info["supervisor_pid"])
    exit_text = None
    try:
        with open(os.path.join(stage_dir, EXIT_FILE)) as fh:
            exit_text = fh.read().strip()
    except OSError:
        pass
    status: dict = {"stage_dir": stage_dir, "stopped": os.path.exists(os.path.join(stage_dir, STOP_FILE))}
    if exit_text is not None:
        status.update(state="exited", exit_code=int(exit_text))
    elif info is None:
        status.update(state="not-started", exit_code=None)
    elif alive:
        status.update(state="running", exit_code=None)
    else:
        status.update(state="lost", exit_code=None)
    if info:
        status.update(pid=info["pid"], started=info["started"], run_id=info["run_id"])
    return status


def cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(stage_status(os.path.abspath(args.stage_dir))))
    return 0


def _sources(stage_dir: str) -> list[tuple[str, str]]:
    found = [("out", os.path.join(stage_dir, OUTPUT))]
    msrun_dir = os.path.join(stage_dir, "msrun")
    if os.path.isdir(msrun_dir):
        for name in sorted(os.listdir(msrun_dir)):
            if name.endswith(".log"):
                found.append((name[: -len(".log")], os.path.join(msrun_dir, name)))
    return found


def follow(stage_dir: str, offsets: dict, start_timeout: float, emit, idle) -> None:  # type: ignore[no-untyped-def]
    """Call emit(line) for each new log line ("L<TAB>source<TAB>text") and finally for the end
    ("X<TAB>code<TAB>stopped?"); call idle() after each poll that found nothing."""
    partial: dict[str, bytes] = {}
    missing_since = time.monotonic()

    def drain(final: bool) -> bool:
        emitted = False
        for source, path in _sources(stage_dir):
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            start = offsets.get(source, 0)
            if size <= start:
                continue
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(size - start)
            offsets[source] = start + len(data)
            data = partial.pop(source, b"") + data
            *lines, rest = data.split(b"\n")
            if rest and final:
                lines.append(rest)
            elif rest:
                partial[source] = rest
            for line in lines:
                emit(f"L\t{source}\t{line.decode('utf-8', errors='replace')}")
                emitted = True
        return emitted

    while True:
        status = stage_status(stage_dir)
        if status["state"] == "exited":
            drain(final=True)
            emit(f"X\t{status['exit_code']}\t{'stopped' if status['stopped'] else ''}")
            return
        if status["state"] == "lost":
            drain(final=True)
            emit("X\tlost")
            return
        if status["state"] == "not-started" and time.monotonic() - missing_since > start_timeout:
            emit("X\tnot-started")
            return
        if not drain(final=False):
            idle()
        time.sleep(FOLLOW_POLL_S)


def cmd_follow(args: argparse.Namespace) -> int:
    offsets: dict[str, int] = json.loads(args.offsets) if args.offsets else {}
    out = sys.stdout
    last = [time.monotonic()]

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()
        last[0] = time.monotonic()

    def idle() -> None:
        if time.monotonic() - last[0] >= args.heartbeat:
            emit("H")

    with contextlib.suppress(BrokenPipeError):  # the runner went away; the stage keeps running
        follow(os.path.abspath(args.stage_dir), offsets, args.start_timeout, emit, idle)
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    return agent(args.heartbeat)


def agent(heartbeat: float = 1.0) -> int:
    """One long-lived process per node and run: starts stages on request (a fork, not a new
    Python) and follows them, every line tagged with its request id. Ends when its input closes
    (the runner went away); the stages it started go on under their own supervisors.

    The runner's bootstrap calls this directly, without building the command-line parser."""
    import subprocess  # noqa: F401 - loaded once here, not again in every stage's forked supervisor
    import threading

    lock = threading.Lock()
    out = sys.stdout

    def write(line: str) -> None:
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):
                os._exit(0)

    def beat() -> None:
        while True:
            time.sleep(heartbeat)
            write("H")

    threading.Thread(target=beat, daemon=True).start()
    write("A\t" + json.dumps({"python": list(sys.version_info[:3]), "pid": os.getpid()}))
    for raw in sys.stdin:
        try:
            request = json.loads(raw)
        except ValueError:
            continue
        tag = str(request.get("id", ""))
        if request.get("op") != "launch":
            write(f"T\t{tag}\tE\tunknown request {request.get('op')!r}")
            continue
        stage_dir = request["stage_dir"]
        try:
            os.makedirs(stage_dir, exist_ok=True)
            with open(os.path.join(stage_dir, SCRIPT), "w") as fh:
                fh.write(request["script"])
        except OSError as exc:
            write(f"T\t{tag}\tE\tcannot write the script: {exc}")
            continue
        start_args = argparse.Namespace(
            stage_dir=stage_dir,
            run_id=request["run_id"],
            grace=float(request.get("grace", DEFAULT_GRACE_S)),
            env=[f"{k}={v}" for k, v in request.get("env", {}).items()],
        )
        code, text = _start(start_args)
        if code != 0:
            write(f"T\t{tag}\tE\t{text}")
            continue
        write(f"T\t{tag}\tS\t{text.strip()}")
        threading.Thread(
            target=follow,
            args=(os.path.abspath(stage_dir), {}, 30.0, lambda line, t=tag: write(f"T\t{t}\t{line}"), lambda: None),
            daemon=True,
        ).start()
    return 0


def _inside(path: str, allowed: list[str]) -> bool:
    path = os.path.normpath("/" + path.lstrip("/"))
    return any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)


def cmd_receive(args: argparse.Namespace) -> int:
    """Accept one tar stream on a TCP port (first line: the token) and unpack it under --root,
    refusing any member outside the announced paths."""
    import socket
    import tarfile

    allowed = [os.path.normpath(p) for p in args.paths]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.bind, args.port))
    server.listen(1)
    server.settimeout(args.timeout)
    print(f"READY\t{server.getsockname()[1]}", flush=True)
    conn, _ = server.accept()
    conn.settimeout(args.timeout)
    stream = conn.makefile("rb")
    if stream.readline().strip() != args.token.encode():
        print("ERROR\tbad token", flush=True)
        return 2
    count = 0
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if not _inside(member.name, allowed) or member.issym() or member.islnk() or member.isdev():
                print(f"ERROR\trefused {member.name}", flush=True)
                return 2
            archive.extract(member, path=args.root, set_attrs=True)
            count += 1
    print(f"DONE\t{count}", flush=True)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Stream the paths as one tar to a receiver, straight to the other node."""
    import socket
    import tarfile

    host, _, port = args.to.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=args.timeout) as conn:
        stream = conn.makefile("wb")
        stream.write(args.token.encode() + b"\n")
        with tarfile.open(fileobj=stream, mode="w|") as archive:
            for path in args.paths:
                archive.add(path, arcname=path.lstrip("/"))
        stream.flush()
        conn.shutdown(socket.SHUT_WR)
    print("SENT", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supervisor.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("stage_dir")
    p.add_argument("--run-id", required=True)
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("launch")
    p.add_argument("stage_dir")
    p.add_argument("--run-id", required=True)
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--offsets", default="")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_launch)
    p = sub.add_parser("agent")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.set_defaults(func=cmd_agent)
    p = sub.add_parser("receive")
    p.add_argument("paths", nargs="+")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", required=True)
    p.add_argument("--root", default="/")
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(func=cmd_receive)
    p = sub.add_parser("send")
    p.add_argument("paths", nargs="+")
    p.add_argument("--to", required=True, metavar="HOST:PORT")
    p.add_argument("--token", required=True)
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(func=cmd_send)
    p = sub.add_parser("stop")
    p.add_argument("stage_dir", nargs="?")
    p.add_argument("--run-id", required=True)
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("status")
    p.add_argument("stage_dir")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("follow")
    p.add_argument("stage_dir")
    p.add_argument("--offsets", default="")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_follow)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
