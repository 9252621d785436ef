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

The settings live in :class:`SandboxSettings`; an instructor changes them in the
``[sandbox]`` table of a TOML file. What was actually active is recorded in every result.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from graders.errors import HarnessError, UsageError
from graders.workspace import Workspace

log = logging.getLogger(__name__)

# Unprivileged user ids start here; each grading process gets its own, so limits on
# processes count one kernel's processes only.
FIRST_UID = 1_000_000
MB = 1024 * 1024

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
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("sandbox", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise UsageError(
                f"cannot read the sandbox settings ({err})",
                path=path,
                advice="Give a TOML file with a [sandbox] table.",
            ) from err
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
            log.warning("the kernel's Python cannot be run by another user: keeping root")
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

    def environment(self, ws: Workspace, base: dict[str, str]) -> dict[str, str]:
        """The whole environment of the kernel: ``base`` plus what a process needs."""
        bin_dir = str(Path(sys.executable).parent)
        return {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(ws.home),
            "TMPDIR": "/tmp" if self.isolated else str(ws.tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "MPLCONFIGDIR": str(ws.home / ".matplotlib"),
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
        args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "kgrade"]
        if self.uid is None:
            args.append("--unshare-user")
        if not self.settings.allow_network:
            args.append("--unshare-net")
        for top in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        prefixes = _python_prefixes(python)
        args += _folders_above(prefixes)
        for prefix in prefixes:
            args += ["--ro-bind", prefix, prefix]
        args += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
        args += ["--bind", str(ws.tmp), "/tmp", "--bind", str(ws.tmp), "/dev/shm"]
        own = [str(f) for f in (ws.course, ws.home, ws.sockets, ws.trace_dir)]
        args += _folders_above(own)
        for folder in own:
            args += ["--bind", folder, folder]
        for hidden in _grader_folders():
            args += ["--tmpfs", hidden]
        args += ["--chdir", str(ws.workdir)]
        return args


@functools.cache
def bubblewrap() -> str | None:
    """The path of a ``bwrap`` that can create the namespaces kgrade needs, else None."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = [found, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("bubblewrap at %s cannot run: %s", found, err)
        return None
    if done.returncode != 0:
        log.warning("bubblewrap cannot create namespaces here: %s", done.stderr.decode()[-300:])
        return None
    return found


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


def _python_prefixes(python: str) -> list[str]:
    """Folders the kernel's Python needs: its environment and the installation below it."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.add(str(Path(os.path.realpath(python)).parent.parent))
    candidates.add(str(Path(python).parent.parent))
    real = sorted({os.path.realpath(c) for c in candidates} | candidates)
    # Nested prefixes are covered by their parent.
    kept = [p for p in real if not any(p != q and p.startswith(q + os.sep) for q in real)]
    return [p for p in kept if os.path.isdir(p) and p not in ("/", "/usr")]


def _folders_above(paths: list[str]) -> list[str]:
    """Arguments creating the folders above ``paths`` so that any user may pass through."""
    above: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in above and str(parent) not in ("/tmp", "/usr", "/etc"):
                above.append(str(parent))
    return [arg for folder in above for arg in ("--perms", "0755", "--dir", folder)]


def _grader_folders() -> list[str]:
    """Where kgrade's own package lies, when it lies inside the Python environment."""
    package = Path(__file__).resolve().parent
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    return [str(package)] if purelib in package.parents else []


def _chown_tree(top: Path, uid: int) -> None:
    os.chown(top, uid, uid)
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def describe(protections: Protections) -> dict[str, Any]:
    """The JSON form of ``protections`` for a result's harness facts."""
    return {"active": list(protections.active), "missing": list(protections.missing)}
