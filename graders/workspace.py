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
    ``NAME``, ``data/NAME`` and ``../data/NAME`` (the course's own layout).
    ``trace_dir`` is a separate folder that belongs to the harness, not reachable by a
    fixed relative path from ``workdir``.
    """

    root: Path
    workdir: Path
    trace_dir: Path


@contextmanager
def workspace(dataset: Path, filename: str) -> Iterator[Workspace]:
    """Create a workspace holding copies of ``dataset`` named ``filename``; remove it on exit."""
    root = Path(tempfile.mkdtemp(prefix="kgrade-"))
    trace_dir = Path(tempfile.mkdtemp(prefix="kgrade-trace-"))
    try:
        course = root / "course"
        workdir = course / "work"
        for folder in (course / "data", workdir / "data"):
            folder.mkdir(parents=True)
        for target in (course / "data", workdir / "data", workdir):
            shutil.copyfile(dataset, target / filename)
        yield Workspace(root=root, workdir=workdir, trace_dir=trace_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(trace_dir, ignore_errors=True)
