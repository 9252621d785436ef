"""A batch killed mid-run, or hit by harness failures, loses nothing it had recorded."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from graders.cli import EXIT_HARNESS, EXIT_OK
from graders.gradebook import FILENAME, Gradebook, Row

TINY = 4


def tiny_class(folder: Path, count: int) -> list[str]:
    """Notebooks that run fast: one cell each, different per student."""
    folder.mkdir(parents=True)
    students = [f"pupil-{index}" for index in range(count)]
    for index, student in enumerate(students):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"x = {index}")]
        nbformat.write(nb, str(folder / f"{student}.ipynb"))
    return students


def batch_command(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "graders",
        "batch",
        str(inputs),
        "--out",
        str(out),
        "--timeout",
        "30",
        "--exercise",
        "classification",
        *extra,
    ]


def rows_of(out: Path) -> list[Row]:
    with Gradebook(out / FILENAME) as book:
        return book.all_rows()


def wait_for_rows(gradebook: Path, *, at_least: int, timeout: float) -> None:
    """Poll the gradebook, read-only, until it holds ``at_least`` rows."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if gradebook.exists():
            try:
                with sqlite3.connect(f"file:{gradebook}?mode=ro", uri=True) as db:
                    if db.execute("SELECT count(*) FROM results").fetchone()[0] >= at_least:
                        return
            except sqlite3.OperationalError:
                pass  # the batch is still creating the tables
        time.sleep(0.2)
    pytest.fail(f"the gradebook held fewer than {at_least} rows after {timeout} s")


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.slow
def test_a_batch_killed_mid_run_resumes_and_regrades_none_it_had_recorded(
    tmp_path: Path,
) -> None:
    students = tiny_class(tmp_path / "in", TINY)
    out = tmp_path / "out"
    batch = subprocess.Popen(
        batch_command(tmp_path / "in", out, "--workers", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_rows(out / FILENAME, at_least=1, timeout=900)
        helpers = psutil.Process(batch.pid).children(recursive=True)
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait(timeout=60)
    finally:
        if batch.poll() is None:
            batch.kill()
    # The pool's workers notice that the batch is gone, and their kernels follow them.
    ends = time.monotonic() + 30
    while still_running(helpers) and time.monotonic() < ends:
        time.sleep(0.5)
    leftovers = still_running(helpers)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"outlived the killed batch: {[p.pid for p in leftovers]}"

    before = {row.student: row for row in rows_of(out)}
    assert 1 <= len(before) < TINY
    (out / "canvas.csv").write_text("written by an earlier run\n")
    done = subprocess.run(
        batch_command(tmp_path / "in", out, "--workers", "2"),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert f"{TINY} submissions: {len(before)} already graded" in done.stdout
    after = rows_of(out)
    assert sorted(row.student for row in after) == students
    assert all(row.status == "graded" for row in after)
    canvas = list(csv.reader((out / "canvas.csv").read_text(encoding="utf-8").splitlines()))
    assert sorted(line[0] for line in canvas[2:]) == students  # kept in step, not left stale
    for row in after:
        if row.student in before:
            assert row == before[row.student]


@pytest.mark.slow
def test_a_harness_error_is_retried_once_then_recorded_as_an_error_never_a_zero(
    tmp_path: Path,
) -> None:
    tiny_class(tmp_path / "in", 1)
    out = tmp_path / "out"
    # A broken sandbox tool: it passes kgrade's start-up probe, then fails every kernel.
    broken = tmp_path / "broken"
    broken.mkdir()
    fake = broken / "bwrap"
    fake.write_text(
        '#!/bin/sh\nfor last; do :; done\n[ "$last" = true ] && exit 0\n'
        'echo "bwrap: cannot start" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{broken}:{os.environ['PATH']}"}
    done = subprocess.run(
        batch_command(tmp_path / "in", out),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert done.returncode == EXIT_HARNESS
    assert "trying once more" in done.stderr
    assert "1 students: 0 graded, 0 not gradable, 1 grader errors" in done.stdout
    [row] = rows_of(out)
    assert (row.status, row.score, row.attempts) == ("error", None, 2)
    assert "Kernel died" in (row.message or "")
    with (out / "grades.csv").open(newline="") as source:
        [line] = list(csv.DictReader(source))
    assert (line["status"], line["score"]) == ("error", "")

    # Once the harness works again, the same command grades what had failed.
    again = subprocess.run(
        batch_command(tmp_path / "in", out), capture_output=True, text=True, check=False
    )
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert "1 submissions: 0 already graded, 1 to grade" in again.stdout
    [row] = rows_of(out)
    assert (row.status, row.attempts) == ("graded", 1)
