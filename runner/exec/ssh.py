"""SSH transport on Fabric/paramiko, with host key checking always on.

Host keys come from the known_hosts file named in the inventory (`ansible_ssh_common_args:
-o UserKnownHostsFile=FILE`) or from ~/.ssh/known_hosts. An unknown or changed key is an error that
says how to fix it; nothing is ever added to a known_hosts file silently.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator

import paramiko
from fabric import Connection

from runner.errors import ExecError
from runner.exec.base import DEFAULT_TIMEOUT_S, CommandResult, StreamTimeout, lines_of
from runner.inventory import Host

CONNECT_TIMEOUT_S = 10
KEEPALIVE_S = 5


class SSHStream:
    """One SSH channel running a long command; lines are read with an idle timeout."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._chan = channel

    def lines(self, idle_timeout: float) -> Iterator[str]:
        return lines_of(self._chunks(idle_timeout))

    def _chunks(self, idle_timeout: float) -> Iterator[bytes]:
        self._chan.settimeout(idle_timeout)
        while True:
            try:
                chunk = self._chan.recv(65536)
            except TimeoutError as exc:
                raise StreamTimeout(f"no output for {idle_timeout:.0f} s") from exc
            if not chunk:
                return
            yield chunk

    def send(self, data: bytes) -> None:
        self._chan.sendall(data)

    def exit_code(self) -> int | None:
        if self._chan.exit_status_ready():
            return self._chan.recv_exit_status()
        return None

    def close(self) -> None:
        self._chan.close()


class SSHTransport:
    """A Fabric connection to one inventory host; opened on first use."""

    def __init__(self, host: Host, *, connect_timeout: int = CONNECT_TIMEOUT_S, keepalive: int = KEEPALIVE_S):
        self.host = host.name
        self._target = host
        self._keepalive = keepalive
        connect_kwargs: dict[str, object] = {
            "banner_timeout": connect_timeout,
            "auth_timeout": connect_timeout,
        }
        if host.key_file:
            connect_kwargs["key_filename"] = host.key_file
        self._conn = Connection(
            host=host.address,
            user=host.user,
            port=host.port,
            connect_timeout=connect_timeout,
            connect_kwargs=connect_kwargs,
        )
        self._known_hosts = host.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self._conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if os.path.exists(self._known_hosts):
            self._conn.client.get_host_keys().load(self._known_hosts)

    def _where(self) -> str:
        return f"{self.host} ({self._target.address}:{self._target.port})"

    def open(self) -> None:
        if self._conn.is_connected:
            return
        try:
            self._conn.open()
        except paramiko.BadHostKeyException as exc:
            raise ExecError(
                f"{self._where()}: the host key does not match {self._known_hosts}",
                hint="if the host was reinstalled, remove its old line from that file and add the new key; "
                "otherwise someone may be intercepting the connection",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise ExecError(
                f"{self._where()}: SSH authentication failed as user {self._target.user or 'default'}",
                hint="check ansible_user and ansible_ssh_private_key_file in the inventory",
            ) from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise ExecError(
                    f"{self._where()}: its host key is not in {self._known_hosts}",
                    hint=f"verify and add it, e.g. ssh-keyscan -p {self._target.port} {self._target.address} "
                    f">> {self._known_hosts}, or set -o UserKnownHostsFile=... in ansible_ssh_common_args",
                ) from exc
            raise ExecError(f"{self._where()}: SSH failed: {exc}") from exc
        except (OSError, EOFError) as exc:
            raise ExecError(
                f"{self._where()}: cannot connect: {exc}",
                hint="check that the host is up and ansible_host/ansible_port are right",
            ) from exc
        transport = self._conn.client.get_transport()
        if transport is not None:
            transport.set_keepalive(self._keepalive)

    def run(self, command: str, *, timeout: float = DEFAULT_TIMEOUT_S, stdin: str | None = None) -> CommandResult:
        """Run on a fresh channel of the open connection (no pty); read stdout and stderr as they come."""
        chan = self._session(command)
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        try:
            if stdin is not None:
                chan.sendall(stdin.encode())
                chan.shutdown_write()
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise ExecError(f"{self._where()}: command did not finish within {timeout:.0f} s: {command}")
                select.select([chan], [], [], 0.2)
            code = chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ExecError(f"{self._where()}: connection lost while running {command!r}: {exc}") from exc
        finally:
            chan.close()
        return CommandResult(self.host, command, code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _session(self, command: str, *, combine: bool = False) -> paramiko.Channel:
        self.open()
        transport = self._conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise ExecError(f"{self._where()}: the SSH connection is closed")
        try:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT_S)
            chan.set_combine_stderr(combine)
            chan.exec_command(command)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ExecError(f"{self._where()}: cannot start {command!r}: {exc}") from exc
        return chan

    def stream(self, command: str, stdin: bytes | None = None, *, keep_stdin: bool = False) -> SSHStream:
        chan = self._session(command, combine=True)
        try:
            if stdin is not None:
                chan.sendall(stdin)
            if not keep_stdin:
                chan.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            chan.close()
            raise ExecError(f"{self._where()}: cannot send input to {command!r}: {exc}") from exc
        return SSHStream(chan)

    def close(self) -> None:
        self._conn.close()
