"""A submission's folders go away after grading, whatever the notebook left in them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from graders.workspace import remove_tree, sweep_stale_folders, workspace

DATA = Path(__file__).resolve().parent.parent / "data" / "user_visit_duration.csv"
KINDS = ("work", "trace", "job")  # the folders a grader makes in the temporary folder


def nest(top: Path, depth: int) -> None:
    """``depth`` folders inside each other under ``top``, made without ever a long path."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def test_folders_nested_thousands_deep_are_removed(tmp_path: Path) -> None:
    top = tmp_path / "home"
    top.mkdir()
    nest(top, 3000)
    remove_tree(top)
    assert not top.exists()


def test_a_workspace_left_deeply_nested_is_removed_without_an_error() -> None:
    with workspace(DATA, "user_visit_duration.csv") as ws:
        nest(ws.home, 3000)
        (ws.trace_dir / "step-0001.json").write_text("{}")
    assert not ws.root.exists()
    assert not ws.trace_dir.exists()


def test_folders_of_a_killed_grader_are_swept_and_those_of_a_running_one_kept() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [Path(tempfile.mkdtemp(prefix=f"kgrade-{kind}-{dead.pid}-")) for kind in KINDS]
    (stale[-1] / "student.ipynb").write_text("{}")
    top = Path(tempfile.gettempdir())
    # Names kgrade does not give, or a process id no process can have: never swept.
    kept = [
        Path(tempfile.mkdtemp(prefix="kgrade-notes-")),
        Path(tempfile.mkdtemp(prefix=f"kgrade-results-{dead.pid}-05-01-")),
        Path(tempfile.mkdtemp(prefix="kgrade-job-9999999999-")),
    ]
    target = Path(tempfile.mkdtemp(prefix="kgrade-notes-"))
    link = top / f"kgrade-job-{dead.pid}-{target.name[-8:]}"
    link.symlink_to(target, target_is_directory=True)
    try:
        with workspace(DATA, "user_visit_duration.csv") as ws:
            removed = sweep_stale_folders()
            assert ws.root.is_dir() and ws.trace_dir.is_dir()
        assert set(stale) <= set(removed)
        assert [folder for folder in stale if folder.exists()] == []
        assert all(folder.is_dir() for folder in kept)
        assert link.is_symlink() and target.is_dir()
    finally:
        link.unlink(missing_ok=True)
        for folder in (*stale, *kept, target):
            shutil.rmtree(folder, ignore_errors=True)
