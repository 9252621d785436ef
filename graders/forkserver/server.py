"""The fork server: imports once, then forks one kernel per request and sweeps after it.

It imports the libraries a submission uses (TensorFlow, Keras, NumPy, pandas,
scikit-learn, matplotlib, ipykernel) without running any TensorFlow op, creating any zmq
context or keeping any thread, then forks one IPython kernel per ``spawn`` request
(:func:`graders.forkserver.child.become_kernel`). It runs one kernel at a time. Inside the
sandbox the server is the init of the sandbox's process namespace: orphans come to it, no
process of the namespace can signal it, and when it ends, everything in the namespace
ends. Releasing a kernel kills every other process of the namespace, whatever session or
group it went to, and waits until none is left.

Hash randomisation is fixed when Python starts: the server serves the one seed of its
``PYTHONHASHSEED``; the grader starts another server for another seed.

Only the grader is answered. Inside the sandbox a request must come from outside the
server's process namespace (``SO_PEERCRED`` gives pid 0 for a peer it cannot see), without
it from the grader's own process; and from the server's own user. Kernels cannot reach
the socket anyway: its file is outside the sandbox's view, and the listening descriptor,
inherited from the grader, is closed in every child.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from graders.forkserver.child import become_kernel, wall_in
from graders.forkserver.wire import (
    PRELOAD,
    READY,
    REQUEST_TIMEOUT,
    ChildRestrictions,
    SpawnRequest,
    receive_message,
    send_message,
)

log = logging.getLogger("graders.forkserver")

SWEEP_TIMEOUT = 10.0
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


class _Server:
    """Accepts requests one at a time and forks kernels; reaps them as they end."""

    def __init__(
        self,
        listener: socket.socket,
        restrictions: ChildRestrictions,
        *,
        client_pid: int,
        sweep: bool,
    ) -> None:
        self.listener = listener
        self.restrictions = restrictions
        self.client_pid = client_pid
        self.sweep = sweep
        self.server_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.children: dict[int, int | None] = {}
        self.released: set[int] = set()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.running = True
        self.facts: dict[str, Any] = {}

    def serve(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._reap)
        # The grader holds our stdin: when it closes it, or dies, we stop.
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, self._stop)
        while self.running:
            for key, _ in self.selector.select():
                key.data()

    def _stop(self) -> None:
        self.running = False

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(REQUEST_TIMEOUT)
            pid, uid = _peer(conn)
            if pid != self.client_pid or uid != os.getuid():
                log.warning("refused a request from process %s of user %s", pid, uid)
                return
            try:
                message, fds = receive_message(conn, max_fds=2)
            except (OSError, ValueError) as err:
                log.warning("unreadable request: %s", err)
                return
            try:
                reply = self._dispatch(message, fds, conn)
            except Exception as err:
                reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            finally:
                for fd in fds:
                    os.close(fd)
            try:
                send_message(conn, reply)
            except OSError as err:
                log.warning("could not answer %s: %s", message.get("op"), err)

    def _dispatch(
        self, message: dict[str, Any], fds: list[int], conn: socket.socket
    ) -> dict[str, Any]:
        op = message.get("op")
        if op == "spawn":
            return {"ok": True, "pid": self._spawn(message, fds, conn)}
        if op == "status":
            live = sorted(pid for pid, code in self.children.items() if code is None)
            return {"ok": True, **self.facts, "kernels": live}
        pid = int(message["pid"])
        if pid not in self.children:
            raise LookupError(f"no kernel {pid} here")
        if op == "poll":
            return {"ok": True, "returncode": self.children[pid]}
        if op == "signal":
            return {"ok": True, "delivered": _signal_group(pid, int(message["signum"]))}
        if op == "release":
            return {"ok": True, "clean": self._release(pid)}
        raise ValueError(f"unknown operation {op!r}")

    def _spawn(self, message: dict[str, Any], fds: list[int], conn: socket.socket) -> int:
        if len(fds) != 2:
            raise ValueError("spawn needs two descriptors: stdout and stderr")
        unreleased = [pid for pid in self.children if pid not in self.released]
        if unreleased:
            raise RuntimeError(f"the pool runs one kernel at a time; {unreleased} is not released")
        spawn = SpawnRequest(
            connection_file=str(message["connection_file"]),
            workdir=str(message["workdir"]),
            env={str(k): str(v) for k, v in message["env"].items()},
            seed=int(message["seed"]),
            tmp=str(message["tmp"]),
            folders=[str(f) for f in message["folders"]],
            hide=str(message["hide"]),
        )
        if not os.path.isdir(spawn["workdir"]):
            raise FileNotFoundError(f"the server does not see {spawn['workdir']}")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            become_kernel(
                spawn, fds, self.restrictions, lambda: self._close(conn), self.server_paths
            )
        self.children[pid] = None
        log.info("forked kernel %d for %s", pid, spawn["workdir"])
        return pid

    def _release(self, pid: int) -> bool:
        """Kill the kernel and, inside the sandbox, everything else; True when none is left."""
        _signal_group(pid, signal.SIGKILL)
        if self.children[pid] is None:
            self.released.add(pid)
        else:
            del self.children[pid]
        return self._sweep() if self.sweep else True

    def _sweep(self) -> bool:
        """Kill every process of the namespace but this one, its init; wait until all are gone."""
        ends = time.monotonic() + SWEEP_TIMEOUT
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)  # every process we may signal but ourselves
            self._reap()
            left = [pid for pid in _processes() if pid != os.getpid()]
            if not left:
                return True
            if time.monotonic() >= ends:
                log.warning("processes %s outlived the sweep", left)
                return False
            time.sleep(0.01)

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._record_exit(pid, os.waitstatus_to_exitcode(status))

    def _record_exit(self, pid: int, code: int) -> None:
        if pid in self.released:
            self.released.discard(pid)
            self.children.pop(pid, None)
        elif pid in self.children:
            self.children[pid] = code
            log.info("kernel %d ended with %d", pid, code)

    def shutdown(self) -> None:
        """Kill every kernel still running and reap it."""
        live = [pid for pid, code in self.children.items() if code is None]
        for pid in live:
            _signal_group(pid, signal.SIGKILL)
        if self.sweep:
            self._sweep()
            return
        ends = time.monotonic() + 5.0
        while any(self.children.get(pid) is None for pid in live) and time.monotonic() < ends:
            time.sleep(0.05)
            self._reap()

    def _close(self, conn: socket.socket) -> None:
        """In a child: close what belongs to the server; keep the epoll registrations."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.selector.close()
        self.listener.close()
        conn.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


def _peer(conn: socket.socket) -> tuple[int, int]:
    """The process id and user id of the client at the other end of ``conn`` (Linux)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", raw)
    return pid, uid


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _signal_group(pid: int, signum: int) -> bool:
    """Signal the process group the kernel ``pid`` leads; False when it is gone."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        return False
    return True


def preload(names: Sequence[str] = PRELOAD) -> float:
    """Import the modules ``names``; return the seconds it took."""
    started = time.monotonic()
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            log.warning("could not preload %s: %s", name, err)
    return time.monotonic() - started


def rehearse(restrictions: ChildRestrictions) -> str | None:
    """Fork once and throw the child away; return what a kernel could not do, if anything.

    OpenBLAS (NumPy's and SciPy's copies) starts its thread pool when it is loaded and
    stops it in a ``pthread_atfork`` handler: after this fork the server holds a single
    thread between requests, and each kernel restarts the pool at its first BLAS call.
    The child tries the walls each kernel will put up, around the server's own folder.
    """
    pid = os.fork()
    if pid == 0:
        try:
            if restrictions.walls:
                here = os.getcwd()
                wall_in(
                    SpawnRequest(
                        connection_file="",
                        workdir=here,
                        env={},
                        seed=0,
                        tmp=here,
                        folders=[],
                        hide=here,
                    )
                )
        except OSError as err:
            sys.stderr.write(f"{err}\n")
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return "a forked kernel cannot be walled in as a cold kernel is"
    return None


def facts(preload_s: float) -> dict[str, Any]:
    """What the server is after its imports: threads, memory, state of TF and zmq."""
    context = sys.modules.get("tensorflow.python.eager.context")
    zmq = sys.modules.get("zmq")
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "pid": os.getpid(),
        "preload_s": round(preload_s, 3),
        "python_threads": threading.active_count(),
        "tasks": len(os.listdir("/proc/self/task")),
        "rss_mb": round(resident / 2**20, 1),
        "tf_context": context is not None and context.context_safe() is not None,
        "zmq_context": zmq is not None and zmq.Context._instance is not None,
    }


def _prctl(option: int, value: int) -> bool:
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Preload, print the ready line, serve on the inherited socket until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m graders.forkserver")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--client-pid", type=int, required=True)
    parser.add_argument("--restrictions", default=ChildRestrictions().to_json())
    parser.add_argument("--preload", default=",".join(PRELOAD), help="modules, comma-separated")
    parser.add_argument("--sweep", action="store_true", help="kill all else after each kernel")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s forkserver %(message)s")
    restrictions = ChildRestrictions.from_json(args.restrictions)
    if args.sweep and os.getpid() != 1:
        log.error("refusing to sweep: the server is not the init of a process namespace")
        return 1
    # A kernel may reach init's signals with a handler only: SIGINT must not stop us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No kernel, even one of the same user, may trace the server or read its memory.
    _prctl(_PR_SET_DUMPABLE, 0)
    seconds = preload([name for name in args.preload.split(",") if name])
    problem = rehearse(restrictions)
    if problem is not None:
        log.error("%s", problem)
        return 1
    # Orphans of the kernels come to us, to be reaped here.
    if not _prctl(_PR_SET_CHILD_SUBREAPER, 1):
        log.info("cannot become a child subreaper here")
    listener = socket.socket(fileno=args.listen_fd)
    server = _Server(listener, restrictions, client_pid=args.client_pid, sweep=args.sweep)
    server.facts = facts(seconds)
    sys.stdout.write(READY + json.dumps(server.facts) + "\n")
    sys.stdout.flush()
    try:
        server.serve()
    finally:
        server.shutdown()
        listener.close()
    return 0
