"""The fresh temporary folders one submission runs in."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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
    def log(self) -> Path:
        return self.root / "kernel.log"


@contextmanager
def workspace(dataset: Path, filename: str) -> Iterator[Workspace]:
    """Create a workspace holding copies of ``dataset`` named ``filename``; remove it on exit."""
    ws = Workspace(
        root=Path(tempfile.mkdtemp(prefix="kgrade-")),
        trace_dir=Path(tempfile.mkdtemp(prefix="kgrade-trace-")),
    )
    try:
        for folder in (ws.course / "data", ws.workdir / "data", ws.home, ws.tmp, ws.sockets):
            folder.mkdir(parents=True)
        for target in (ws.course / "data", ws.workdir / "data", ws.workdir):
            shutil.copyfile(dataset, target / filename)
        yield ws
    finally:
        shutil.rmtree(ws.root, ignore_errors=True)
        shutil.rmtree(ws.trace_dir, ignore_errors=True)
