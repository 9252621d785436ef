"""The fresh temporary folders one submission runs in, and those of a warm kernel pool."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

log = logging.getLogger(__name__)

POOL_PREFIX = "kgrade-pool-"
Kind = Literal["work", "trace", "job"]
# A folder a process made for itself names it: kgrade-<kind>-<pid>-<mkdtemp's 8 characters>.
_OWNED = re.compile(rf"kgrade-(?:{'|'.join(get_args(Kind))})-([0-9]{{1,10}})-[a-z0-9_]{{8}}")


@dataclass(frozen=True)
class Workspace:
    """Where a submission runs and where the harness keeps what it captured.

    ``workdir`` is the kernel's working directory. The dataset is reachable from it as
    ``NAME``, ``data/NAME`` and ``../data/NAME`` (the course's own layout); ``course`` is
    the folder above it. ``home``, ``tmp`` and ``sockets`` are the kernel's HOME, its
    temporary folder and where its Unix sockets live. ``trace_dir`` is a separate folder
    that belongs to the harness, not reachable by a fixed relative path from ``workdir``.
    Everything else under ``root`` (kernelspec, kernel log) is the harness's alone.
    """

    root: Path
    trace_dir: Path

    @property
    def course(self) -> Path:
        return self.root / "course"

    @property
    def workdir(self) -> Path:
        return self.course / "work"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    @property
    def captured(self) -> Path:
        """Trace steps the harness has taken out of the kernel's reach."""
        return self.root / "captured"

    @property
    def log(self) -> Path:
        return self.root / "kernel.log"


@contextmanager
def workspace(dataset: Path, filename: str, base: Path | None = None) -> Iterator[Workspace]:
    """Create a workspace holding copies of ``dataset`` named ``filename``; remove it on exit.

    Args:
        dataset: The data file the submission reads.
        filename: The name the submission knows it by.
        base: The folder to create the workspace in (a warm kernel pool's ``work``
            folder); None means the system's temporary folder.
    """
    ws = Workspace(
        root=temporary_folder("work", base),
        trace_dir=temporary_folder("trace", base),
    )
    try:
        for folder in (ws.course / "data", ws.workdir / "data", ws.home, ws.tmp, ws.sockets):
            folder.mkdir(parents=True)
        # Not the kernel's: its user may not enter (it is not even visible in the sandbox).
        ws.captured.mkdir(mode=0o700)
        for target in (ws.course / "data", ws.workdir / "data", ws.workdir):
            shutil.copyfile(dataset, target / filename)
        yield ws
    finally:
        remove_tree(ws.root)
        remove_tree(ws.trace_dir)


@dataclass(frozen=True)
class PoolFolders:
    """The folders of one warm kernel pool (see ``graders.warm``).

    ``work`` holds the workspace of the one submission the pool runs at a time; the fork
    server sees it at the same path. ``scratch`` is the server's own ``/tmp``, holding its
    HOME; each kernel has its workspace's instead. ``code`` holds the fork server's own
    modules, read-only inside the sandbox. ``control`` (the server's socket) and ``log``
    are the grader's alone: the sandbox does not contain them.
    """

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def socket(self) -> Path:
        return self.control / "server.sock"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def owner(self) -> Path:
        """Holds the process id of the grader that made the pool."""
        return self.root / "owner"

    @classmethod
    def create(cls) -> PoolFolders:
        """Create the folders of a new pool in the system's temporary folder.

        The folders of pools whose grader was killed before it could remove them go first.
        """
        sweep_stale_folders()
        pool = cls(Path(os.path.realpath(tempfile.mkdtemp(prefix=POOL_PREFIX))))
        for folder in (pool.work, pool.scratch, pool.scratch / "home", pool.code, pool.control):
            folder.mkdir(mode=0o700)
        pool.owner.write_text(str(os.getpid()), encoding="ascii")
        return pool

    def remove(self) -> None:
        """Delete the pool's folders and everything in them."""
        remove_tree(self.root)


def temporary_folder(kind: Kind, base: Path | None = None) -> Path:
    """Create a folder named ``kgrade-<kind>-<this process's id>-…`` in ``base``.

    ``base`` None means the system's temporary folder; there, a folder whose process was
    killed before it could remove it (with the submission it held) is removed by the next
    grader process that makes one.
    """
    if base is None:
        _sweep_once()
    return Path(tempfile.mkdtemp(prefix=f"kgrade-{kind}-{os.getpid()}-", dir=base))


def sweep_stale_folders() -> list[Path]:
    """Remove the warm pools and submission folders of grader processes that no longer run.

    Only folders of the names kgrade gives, in the system's temporary folder, made by this
    user (by any user, when run as root); a name kgrade could not have made, a symbolic link
    or a folder that vanishes meanwhile is left.

    Returns:
        The folders removed.
    """
    removed = []
    for root in Path(tempfile.gettempdir()).glob("kgrade-*"):
        owner = _owner(root)
        if owner is None or _running(owner):
            continue
        remove_tree(root)
        if not os.path.lexists(root):
            removed.append(root)
    return removed


def _owner(root: Path) -> int | None:
    """The id of the process that made ``root``, if it is a folder kgrade made as this user."""
    try:
        info = root.lstat()
        if not stat.S_ISDIR(info.st_mode):
            return None
        euid = os.geteuid()
        if euid != 0 and info.st_uid != euid:  # as root, trace folders are the kernels' user's
            return None
        if root.name.startswith(POOL_PREFIX):
            return int((root / "owner").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None  # gone, being created, or not a pool this kgrade made
    named = _OWNED.fullmatch(root.name)
    return int(named.group(1)) if named else None


@functools.cache
def _sweep_once() -> None:
    if removed := sweep_stale_folders():
        log.info("removed %d folders of grader processes that were killed", len(removed))


def _running(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process id: never taken for a dead one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process, or beyond any process id: leave it
    return True


def remove_tree(path: Path | str) -> None:
    """Delete ``path`` and everything under it, however deep a notebook nested it.

    shutil's removal recurses once per level and gives up on a few thousand nested
    folders; ``rm`` does not. Whatever cannot be removed is logged, never raised: a
    submission's leftovers must not change its result.
    """
    with suppress(RecursionError):
        shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    done = subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        log.warning("could not remove %s: %s", path, done.stderr.strip())
