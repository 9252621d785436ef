"""What a submission's kernel may do: its limits and the walls around it.

Student code is untrusted. Every kernel runs:

- under resource limits (address space, CPU seconds, processes and threads, open files,
  file size), set by a small launcher just before the kernel starts;
- as an unprivileged user of its own when the grader runs as root;
- with a scrubbed environment and its own HOME and TMPDIR;
- where bubblewrap (``bwrap``) is installed: in its own network namespace with no
  network at all (the harness talks to it over Unix sockets), its own process namespace
  (everything it started dies with it) and its own view of the file system, which holds the
  Python environment read-only and the submission's working folders, nothing else.

A warm kernel (``graders.warm``) gets the same: its fork server runs inside the same walls,
around the pool's folders instead of one workspace's, and each kernel it forks applies the
limits and drops to the user itself (:meth:`Sandbox.restrictions`).

The settings live in :class:`SandboxSettings`; an instructor changes them in the
``[sandbox]`` table of a TOML file. What was actually active is recorded in every result.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from graders import walls
from graders.errors import HarnessError, UsageError
from graders.forkserver.wire import ChildRestrictions
from graders.walls import bubblewrap
from graders.workspace import PoolFolders, Workspace

log = logging.getLogger(__name__)

# Unprivileged user ids start here; each grading process gets its own, so limits on
# processes count one kernel's processes only.
FIRST_UID = 1_000_000
MB = 1024 * 1024
# Below this address-space limit TensorFlow cannot map its libraries and threads.
MIN_MEMORY_MB = 4096

# Run by the kernel's own Python: apply the limits, drop to the user, start the kernel.
_LIMITED_START = """\
import json, os, resource, sys
spec = json.loads(sys.argv[1])
for name, value in spec["limits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
if spec["uid"] is not None:
    connection_file = sys.argv[sys.argv.index("-f") + 1]
    os.chown(connection_file, spec["uid"], spec["uid"])
    os.setgroups([])
    os.setgid(spec["uid"])
    os.setuid(spec["uid"])
    # Keys outlive processes and every kernel of this grader is this user: empty them.
    number = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
    if number is not None:
        import ctypes
        for keyring in (-4, -5):
            ctypes.CDLL(None).syscall(number, 7, keyring)
if spec["isolated"]:
    # Inside its own process namespace the kernel's parent is not the harness.
    os.environ.pop("JPY_PARENT_PID", None)
os.umask(0o077)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@dataclass(frozen=True)
class SandboxSettings:
    """Limits and walls around every submission's kernel.

    Attributes:
        isolate: Use bubblewrap for network, process and file-system isolation when it
            is installed.
        require_isolation: Refuse to grade (harness error) when isolation is asked for
            but not available, instead of grading with limits only.
        allow_network: Keep the machine's network inside the isolation.
        memory_mb: Address space of each kernel process.
        cpu_seconds: CPU time of each kernel process.
        processes: Processes and threads the kernel's user may run at once.
        open_files: Open files per process.
        file_size_mb: Largest file the kernel may write.
        cell_output_chars: Text output kept per cell (head and tail; the middle is cut).
        notebook_output_chars: Text output kept for the whole notebook.
        images_per_cell: Images kept per cell.
    """

    isolate: bool = True
    require_isolation: bool = False
    allow_network: bool = False
    memory_mb: int = 6144
    cpu_seconds: int = 1800
    processes: int = 512
    open_files: int = 1024
    file_size_mb: int = 1024
    cell_output_chars: int = 100_000
    notebook_output_chars: int = 1_000_000
    images_per_cell: int = 20

    @classmethod
    def from_toml(cls, path: Path) -> SandboxSettings:
        """Read the ``[sandbox]`` table of the TOML file at ``path``.

        Raises:
            UsageError: The file cannot be read or names an unknown or mistyped setting.
        """
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise UsageError(
                f"cannot read the sandbox settings ({err})",
                path=path,
                advice="Give a TOML file with a [sandbox] table.",
            ) from err
        table = document.get("sandbox")
        if not isinstance(table, dict):
            raise UsageError(
                "the file has no [sandbox] table, so none of its settings would apply",
                path=path,
                advice="Put the settings under a line that reads [sandbox].",
            )
        known = {f.name: f for f in fields(cls)}
        for key, value in table.items():
            if key not in known:
                raise UsageError(
                    f"unknown sandbox setting {key!r}",
                    path=path,
                    advice=f"Known settings: {', '.join(known)}.",
                )
            want = bool if isinstance(cls.__dict__.get(key), bool) else int
            if type(value) is not want or (want is int and value <= 0):
                kind = "true or false" if want is bool else "a positive whole number"
                raise UsageError(
                    f"sandbox setting {key!r} must be {kind}, not {value!r}", path=path
                )
        if table.get("memory_mb", MIN_MEMORY_MB) < MIN_MEMORY_MB:
            raise UsageError(
                f"sandbox setting 'memory_mb' is {table['memory_mb']}, below the "
                f"{MIN_MEMORY_MB} MB TensorFlow needs to start: every kernel would die and "
                "correct notebooks would lose points",
                path=path,
                advice=f"Set memory_mb to {MIN_MEMORY_MB} or more (the limit is on address "
                "space, which TensorFlow reserves generously).",
            )
        if table.get("require_isolation") and table.get("isolate") is False:
            raise UsageError(
                "sandbox settings 'require_isolation' and 'isolate = false' contradict each other",
                path=path,
                advice="Remove one of the two lines.",
            )
        return cls(**table)

    def limits(self) -> dict[str, int]:
        """The ``resource`` limits each kernel process starts with."""
        return {
            "RLIMIT_AS": self.memory_mb * MB,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_FSIZE": self.file_size_mb * MB,
            "RLIMIT_CORE": 0,
        }


@dataclass(frozen=True)
class Protections:
    """Which protections a kernel actually ran with, and which were missing and why."""

    active: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class Sandbox:
    """Builds the command and environment of one locked-down kernel."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.bwrap = bubblewrap() if self.settings.isolate else None
        self.uid = FIRST_UID + os.getpid() if os.geteuid() == 0 else None
        if self.uid is not None and self.bwrap is None and not _runs_as(self.uid):
            log.warning(
                "the kernel's Python (%s) cannot be run by another user, so kernels run as "
                "root: install bubblewrap, or install kgrade in a Python every user can read "
                "(not under /root)",
                sys.executable,
            )
            self.uid = None
        if self.settings.isolate and self.bwrap is None:
            if self.settings.require_isolation:
                raise HarnessError(
                    "kernel isolation was required, but bubblewrap (bwrap) is missing or "
                    "cannot create namespaces here",
                    advice="Install bubblewrap (e.g. apt install bubblewrap) or allow "
                    "unprivileged user namespaces.",
                )
            _warn_once_without_isolation()

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    def protections(self) -> Protections:
        s = self.settings
        active = [
            f"memory {s.memory_mb} MB",
            f"CPU {s.cpu_seconds} s per process",
            f"{s.processes} processes and threads",
            f"{s.open_files} open files",
            f"files up to {s.file_size_mb} MB",
            f"output capped at {s.cell_output_chars} characters a cell",
            "scrubbed environment, own HOME and TMPDIR",
        ]
        missing = []
        if self.uid is not None:
            active.append("unprivileged user")
        elif os.geteuid() == 0:
            missing.append(
                "runs as root, so the process limit does not hold (the Python environment "
                "is not reachable by another user)"
            )
        if self.isolated:
            active.append("own process namespace: everything it starts dies with it")
            active.append("private file system: the Python environment read-only")
            if s.allow_network:
                missing.append("network allowed by the sandbox settings")
            else:
                active.append("no network")
        else:
            why = "isolation turned off" if not s.isolate else "bubblewrap (bwrap) not available"
            missing += [f"no network isolation ({why})", f"no file-system isolation ({why})"]
        return Protections(active, missing)

    def prepare(self, ws: Workspace) -> None:
        """Hand the kernel's folders to the kernel's user."""
        if self.uid is None:
            return
        for top in (ws.course, ws.home, ws.tmp, ws.sockets, ws.trace_dir):
            _chown_tree(top, self.uid)
        # Without isolation the kernel reaches its folders through the workspace root:
        # it may pass through, not list it.
        ws.root.chmod(0o711)

    def prepare_pool(self, pool: PoolFolders) -> None:
        """Set the modes of a warm pool's folders before its server starts.

        The kernels' user may pass through the pool to its workspace and read the server's
        code, nothing else of the pool.
        """
        if self.uid is not None:
            for folder in (pool.root, pool.work):
                folder.chmod(0o711)
            _open_tree(pool.code)

    def command(self, ws: Workspace, python: str) -> list[str]:
        """The kernelspec ``argv`` that starts the kernel inside the sandbox."""
        spec = json.dumps(
            {"limits": self.settings.limits(), "uid": self.uid, "isolated": self.isolated}
        )
        kernel = [python, "-c", _LIMITED_START, spec, "-m", "ipykernel_launcher"]
        kernel += ["-f", "{connection_file}"]
        if self.bwrap is None:
            return kernel
        return [self.bwrap, *self._walls(ws, python), "--", *kernel]

    def server_command(self, pool: PoolFolders, python: str, argv: list[str]) -> list[str]:
        """The command line of a warm pool's fork server, inside the walls when isolated.

        The server sees the pool's ``work`` folder read-write and its ``code`` read-only,
        at their own paths; ``scratch`` is its /tmp and /dev/shm and holds its HOME. It
        stays root when the grader is root: each kernel it forks walls itself in further
        (its workspace's folders only, its own /tmp) and drops to the sandbox's user
        itself. It is not tied to the thread that starts it, as ``--die-with-parent``
        would: it stops when the grader closes its stdin, or dies, and the sandbox's
        process namespace, whose init it is, ends with it.
        """
        server = [python, "-P", "-m", "graders.forkserver", *argv]
        if self.bwrap is None:
            return server
        args = walls.namespaces(
            own_user=self.uid is None, network=self.settings.allow_network, die_with_parent=False
        )
        # The server is the namespace's init: when it ends, for whatever reason, the Linux
        # kernel kills every process left in the namespace; and no kernel can signal it.
        args.append("--as-pid-1")
        args += walls.system(python, pool.scratch)
        args += walls.own_folders([pool.work], [pool.code])
        args += walls.hide_grader(read_only=True)
        # Nothing a kernel writes outside its workspace may outlast it.
        args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(pool.work)]
        return [self.bwrap, *args, "--", *server]

    def restrictions(self) -> ChildRestrictions:
        """What each kernel a warm pool's server forks applies to itself, as cold ones do."""
        return ChildRestrictions(limits=self.settings.limits(), uid=self.uid, walls=self.isolated)

    def environment(self, ws: Workspace, base: dict[str, str]) -> dict[str, str]:
        """The whole environment of the kernel: ``base`` plus what a process needs."""
        return self._environment(ws.home, ws.tmp, base)

    def server_environment(self, pool: PoolFolders, base: dict[str, str]) -> dict[str, str]:
        """The whole environment of a warm pool's fork server, which finds its code in the pool.

        Its HOME lies in its /tmp, which no kernel sees (each has its workspace's): what
        libraries write there while the server imports them stays the server's.
        """
        home = Path("/tmp/home") if self.isolated else pool.scratch / "home"
        return {**self._environment(home, pool.scratch, base), "PYTHONPATH": str(pool.code)}

    def _environment(self, home: Path, tmp: Path, base: dict[str, str]) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": "/tmp" if self.isolated else str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "MPLCONFIGDIR": str(home / ".matplotlib"),
            **base,
        }

    def kill_leftovers(self) -> None:
        """Kill every process still running as the kernel's user."""
        if self.uid is None:
            return
        try:
            subprocess.run(
                ["kill", "-KILL", "--", "-1"],
                user=self.uid,
                group=self.uid,
                extra_groups=[],
                env={},
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            log.warning("could not sweep the processes of user %s", self.uid, exc_info=True)

    def _walls(self, ws: Workspace, python: str) -> list[str]:
        args = walls.namespaces(
            own_user=self.uid is None, network=self.settings.allow_network, die_with_parent=True
        )
        args += walls.system(python, ws.tmp)
        args += walls.own_folders(kernel_folders(ws))
        args += walls.hide_grader()
        return [*args, "--chdir", str(ws.workdir)]


@functools.cache
def _runs_as(uid: int) -> bool:
    """Whether this Python starts for ``uid`` without bubblewrap's fresh folder tree."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", "pass"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={},
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _warn_once_without_isolation() -> None:
    log.warning(
        "SUBMISSIONS ARE NOT ISOLATED: bubblewrap (bwrap) is missing or cannot create "
        "namespaces here, so student code can use the network and read files the grader "
        "can read. Install bubblewrap, or run kgrade in a container (see docs/security.md)."
    )


def _chown_tree(top: Path, uid: int) -> None:
    os.chown(top, uid, uid)
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def _open_tree(top: Path) -> None:
    """Let anyone read ``top`` and everything in it; only its owner may change it."""
    top.chmod(0o755)
    for root, dirs, files in os.walk(top):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def kernel_folders(ws: Workspace) -> list[Path]:
    """The folders of ``ws`` a kernel sees inside the walls, each at its own path."""
    return [ws.course, ws.home, ws.sockets, ws.trace_dir]


def describe(protections: Protections) -> dict[str, Any]:
    """The JSON form of ``protections`` for a result's harness facts."""
    return {"active": list(protections.active), "missing": list(protections.missing)}
