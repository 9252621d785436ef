"""What a child of the fork server does to become a submission's kernel.

In this order: a session of its own, the server's descriptors closed, its output
redirected; inside the sandbox, the walls bubblewrap gives a cold kernel that the server's
own walls do not (IPC and mount namespaces, its workspace's /tmp, no other workspace);
then, as a cold kernel's start does (``graders.sandbox``), the resource limits, the
connection file handed to the kernel's user and the drop to that user; then the request's
folder, environment and seeds; then the IPython kernel itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import random
import resource
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from graders.forkserver.wire import ChildRestrictions, SpawnRequest

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_DUMPABLE = 4
_CAPABILITY_VERSION_3 = 0x20080522


def become_kernel(
    spawn: SpawnRequest,
    fds: Sequence[int],
    restrictions: ChildRestrictions,
    close_server: Callable[[], None],
    server_paths: Sequence[str],
) -> NoReturn:
    """Turn this fresh child of the server into the submission's kernel; never returns.

    Args:
        spawn: The request: connection file, working folder, environment, seed.
        fds: Where the kernel's stdout and stderr go.
        restrictions: The limits and the user of every kernel of the pool.
        close_server: Closes what belongs to the server (its socket, its signal pipe).
        server_paths: Entries of ``sys.path`` that only the server needs.
    """
    code = 1
    try:
        os.setsid()
        close_server()
        redirect(fds)
        if restrictions.walls:
            wall_in(spawn)
        restrict(restrictions, spawn["connection_file"])
        enter(spawn, server_paths)
        code = run_kernel(spawn["connection_file"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):  # nothing can be reported any more
            sys.stderr.flush()
        os._exit(code)


def redirect(fds: Sequence[int]) -> None:
    """stdin from /dev/null, stdout and stderr to the descriptors the grader sent."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for target, fd in zip((1, 2), fds, strict=True):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)


def wall_in(spawn: SpawnRequest) -> None:
    """Give this process IPC and mount namespaces of its own, walled in as a cold kernel is.

    Its /tmp and /dev/shm become its workspace's ``tmp``; the pool's folder of workspaces
    is covered by an empty one holding only this workspace's ``folders``. As root the
    process does it directly; otherwise inside a user namespace of its own, mapping its
    user and group to themselves, whose capabilities it then gives up.

    Raises:
        OSError: The kernel of this machine refuses the namespaces or the mounts.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    unprivileged = os.geteuid() != 0
    uid, gid = os.getuid(), os.getgid()
    _check(libc, libc.unshare(CLONE_NEWIPC | CLONE_NEWNS | (CLONE_NEWUSER if unprivileged else 0)))
    if unprivileged:
        # The server is not dumpable, so /proc/self would be root's: this child may be.
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as proc:
                proc.write(text)
    # Reached by descriptor: once /tmp is covered, the pool's paths below it are gone.
    tmp = os.open(spawn["tmp"], os.O_PATH | os.O_DIRECTORY)
    # The Python environment stays reachable even when it was installed below /tmp.
    kept = [*spawn["folders"], *_environment_below_tmp()]
    folders = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in kept}
    try:
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        for target in ("/tmp", "/dev/shm"):
            _mount(libc, f"/proc/self/fd/{tmp}", target, None, MS_BIND | MS_REC)
        if os.path.isdir(spawn["hide"]):
            _mount(libc, "tmpfs", spawn["hide"], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        for path, fd in folders.items():
            os.makedirs(path, mode=0o755, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    finally:
        for fd in (tmp, *folders.values()):
            os.close(fd)
    if unprivileged:
        _drop_capabilities(libc)


def _environment_below_tmp() -> list[str]:
    """This Python's installation folders that lie below /tmp or /dev/shm."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    real = {os.path.realpath(p) for p in found}
    below = [p for p in sorted(real) if p.startswith(("/tmp/", "/dev/shm/"))]
    return [p for p in below if not any(p != q and p.startswith(q + os.sep) for q in below)]


def _mount(
    libc: ctypes.CDLL,
    source: str | None,
    target: str,
    kind: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    done = libc.mount(raw(source), raw(target), raw(kind), ctypes.c_ulong(flags), raw(data))
    _check(libc, done, f"mount {target}")


def _check(libc: ctypes.CDLL, done: int, what: str = "new namespaces") -> None:
    if done != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot make {what}: {os.strerror(errno)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities(libc: ctypes.CDLL) -> None:
    """Give up every capability (those a new user namespace grants its first process)."""
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc, libc.capset(ctypes.byref(header), data), "the capabilities go")


def restrict(restrictions: ChildRestrictions, connection_file: str) -> None:
    """Apply the resource limits and drop to the kernel's user, as a cold kernel does."""
    for name, value in restrictions.limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    uid = restrictions.uid
    if uid is not None:
        os.chown(connection_file, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        clear_keyrings()
    # The server is not dumpable, so that no kernel can trace it; the kernel may be, as a
    # cold kernel is after its exec.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    os.umask(0o077)


def enter(spawn: SpawnRequest, server_paths: Sequence[str]) -> None:
    """Take the request's folder, environment and seed, as a cold kernel would have them."""
    os.chdir(spawn["workdir"])
    os.environ.clear()
    os.environ.update(spawn["env"])
    # Inside its own process namespace the kernel's parent is the server, not the harness.
    os.environ.pop("JPY_PARENT_PID", None)
    tempfile.tempdir = None
    # A cold kernel started by ``python -m`` has its working folder first on the path,
    # and no kgrade module loaded.
    sys.path[:] = [spawn["workdir"], *(p for p in sys.path if p not in server_paths)]
    for name in [m for m in sys.modules if m == "graders" or m.startswith("graders.")]:
        del sys.modules[name]
    logging.root.handlers.clear()
    logging.root.setLevel(logging.WARNING)
    random.seed(spawn["seed"])
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(spawn["seed"])


def run_kernel(connection_file: str) -> int:
    """Run an IPython kernel in this process until it is asked to shut down."""
    from ipykernel import kernelapp

    launcher = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [(launcher and launcher.origin) or kernelapp.__file__, "-f", connection_file]
    app = kernelapp.IPKernelApp.instance()
    # The kernel exits by itself when the server, its parent, is gone.
    parent = f"--IPKernelApp.parent_handle={os.getppid()}"
    app.initialize(["-f", connection_file, parent])  # type: ignore[no-untyped-call]
    app.start()  # type: ignore[no-untyped-call]
    return 0


# keyctl's system call number, by machine: the C library has no wrapper for it.
_KEYCTL = {"x86_64": 250, "aarch64": 219}
_KEYCTL_CLEAR = 7
_USER_KEYRINGS = (-4, -5)  # the user's keyring and its default session keyring


def clear_keyrings() -> None:
    """Empty the kernel user's keyrings, which outlive its processes and are not namespaced.

    Every kernel of a grading process runs as the same user: without this, a key one
    submission stored could be read by the next.
    """
    number = _KEYCTL.get(os.uname().machine)
    if number is None:
        return
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    for keyring in _USER_KEYRINGS:
        syscall(number, _KEYCTL_CLEAR, keyring)
