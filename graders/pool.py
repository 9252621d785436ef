"""A warm pool's fork server as the grader runs it: its folders, its process, its requests.

The grader creates the server's listening socket itself, in the pool's ``control`` folder,
and hands the server the open descriptor: the socket's file lies outside everything the
sandbox shows. Before each kernel the grader deletes every workspace of the pool but the
next one's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from graders.errors import HarnessError
from graders.forkserver.wire import READY, REQUEST_TIMEOUT, receive_message, send_message
from graders.kernel import kernel_environment
from graders.sandbox import Sandbox
from graders.workspace import PoolFolders, remove_tree

log = logging.getLogger(__name__)

SERVER_START_TIMEOUT = 180.0
SERVER_STOP_TIMEOUT = 10.0


def request(
    path: Path,
    message: Mapping[str, Any],
    fds: Sequence[int] = (),
    timeout: float = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """Send one request to the fork server listening at ``path`` and return its answer.

    Raises:
        OSError: The server cannot be reached.
        HarnessError: The server refused the request.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        send_message(sock, message, fds)
        reply, _ = receive_message(sock)
    if not reply.get("ok"):
        raise HarnessError(f"the fork server refused {message.get('op')}: {reply.get('error')}")
    return reply


class ForkServer:
    """One running fork server of a pool, stopped by the process that started it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        pool: PoolFolders,
        seed: int,
        facts: dict[str, Any],
    ) -> None:
        self.process = process
        self.pool = pool
        self.seed = seed
        self.facts = facts
        self._finalizer = weakref.finalize(self, _stop, process, os.getpid())

    @classmethod
    def start(
        cls,
        *,
        sandbox: Sandbox,
        pool: PoolFolders,
        python: str,
        seed: int,
        preload: Sequence[str],
        timeout: float = SERVER_START_TIMEOUT,
    ) -> ForkServer:
        """Start a server for ``seed`` in ``pool``, inside ``sandbox``; wait until it listens.

        Raises:
            HarnessError: The server could not run, exited or was not ready in ``timeout``.
        """
        started = time.monotonic()
        _copy_server_code(pool)
        sandbox.prepare_pool(pool)
        with contextlib.suppress(FileNotFoundError):
            pool.socket.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(pool.socket))
            listener.listen(16)
            argv = [
                *("--listen-fd", str(listener.fileno())),
                *("--client-pid", "0" if sandbox.isolated else str(os.getpid())),
                *("--restrictions", sandbox.restrictions().to_json()),
                *("--preload", ",".join(preload)),
                *(["--sweep"] if sandbox.isolated else []),
            ]
            command = sandbox.server_command(pool, python, argv)
            env = sandbox.server_environment(pool, kernel_environment(seed))
            process = _spawn(command, env, pool, listener.fileno())
        except OSError as err:
            raise HarnessError(f"cannot run the warm kernel server ({err})") from err
        finally:
            listener.close()
        try:
            facts = _await_ready(process, timeout)
        except HarnessError as err:
            _stop(process, os.getpid())
            raise HarnessError(f"{err.detail}: {_tail(pool.log)}") from None
        server = cls(process, pool, seed, facts)
        seconds = time.monotonic() - started
        log.info("warm kernel server %s ready in %.1fs: %s", process.pid, seconds, facts)
        if facts.get("tasks") != 1 or facts.get("python_threads") != 1:
            log.warning("the warm kernel server runs more than one thread: %s", facts)
        return server

    @property
    def exit(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        """The end of what the server wrote to its log (the next server's log replaces it)."""
        return _tail(self.pool.log)

    def ask(self, message: Mapping[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        """Send ``message`` to this server (see :func:`request`)."""
        return request(self.pool.socket, message, fds)

    def clear_work(self, keep: Collection[Path]) -> None:
        """Delete everything in the pool's ``work`` folder but ``keep``."""
        for entry in os.scandir(self.pool.work):
            if Path(entry.path) not in keep:
                _remove(entry)

    def close(self) -> None:
        """Stop the server: it kills its kernels and exits; killed if it lingers."""
        self._finalizer()


def _copy_server_code(pool: PoolFolders) -> None:
    """Put the fork server's package where the server finds it: kgrade's is hidden."""
    target = pool.code / "graders"
    shutil.rmtree(target, ignore_errors=True)
    (target / "forkserver").mkdir(parents=True)
    (target / "__init__.py").write_text('"""The fork server\'s copy of kgrade."""\n')
    for source in resources.files("graders.forkserver").iterdir():
        if source.name.endswith(".py"):
            (target / "forkserver" / source.name).write_bytes(source.read_bytes())


def _spawn(
    command: list[str], env: dict[str, str], pool: PoolFolders, listener: int
) -> subprocess.Popen[bytes]:
    with pool.log.open("wb") as server_log:
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=server_log,
            env=env,
            cwd=pool.work,
            pass_fds=[listener],
            start_new_session=True,
        )


def _await_ready(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """Read the server's stdout up to its ready line; return the facts on it."""
    assert process.stdout is not None
    fd, marker, seen = process.stdout.fileno(), READY.encode(), b""
    ends = time.monotonic() + timeout
    while (left := ends - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk
        start = seen.find(marker)
        end = seen.find(b"\n", start)
        if start >= 0 and end >= 0:
            process.stdout.close()
            facts: dict[str, Any] = json.loads(seen[start + len(marker) : end])
            return facts
    raise HarnessError("the warm kernel server did not start")


def _stop(process: subprocess.Popen[bytes], owner: int) -> None:
    """Close the server's stdin (it then kills its kernels and exits); kill it if it lingers."""
    if os.getpid() != owner:  # a forked copy of the grader does not own the server
        return
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("the warm kernel server did not stop; killing it")
        # bubblewrap, its init and the server share the session: when init dies, so does
        # everything in the sandbox's process namespace.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        remove_tree(entry.path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)


def _tail(path: Path, size: int = 600) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return text[-size:].strip() or "(empty server log)"
