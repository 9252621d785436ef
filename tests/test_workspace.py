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
    unnamed = Path(tempfile.mkdtemp(prefix="kgrade-notes-"))  # no process id: not swept
    try:
        with workspace(DATA, "user_visit_duration.csv") as ws:
            removed = sweep_stale_folders()
            assert ws.root.is_dir() and ws.trace_dir.is_dir()
        assert set(stale) <= set(removed)
        assert [folder for folder in stale if folder.exists()] == []
        assert unnamed.is_dir()
    finally:
        for folder in (*stale, unnamed):
            shutil.rmtree(folder, ignore_errors=True)
