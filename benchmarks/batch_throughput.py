"""How fast a batch grades: submissions per minute, against plain nbclient.

Grades N copies of the reference solution with ``--workers 1`` and with the default (one
worker per core), then executes the same N notebooks one after the other with plain
nbclient (no trace, no checks, no report), and prints a table::

    .venv/bin/python benchmarks/batch_throughput.py --copies 6

The reference figures are computed once before timing, so every run starts warm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click
import nbformat
from nbclient import NotebookClient

from graders.batch import cores, grade_batch
from graders.exercises import get_exercise
from graders.grade import grade
from graders.options import GradeOptions
from graders.workspace import workspace


def copies_of_the_reference(folder: Path, count: int) -> list[Path]:
    reference = get_exercise("classification").reference
    folder.mkdir(parents=True)
    paths = [folder / f"student-{index:03d}.ipynb" for index in range(count)]
    for path in paths:
        shutil.copyfile(reference, path)
    return paths


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def batch(folder: Path, out: Path, workers: int | None) -> None:
    options = GradeOptions(exercise="classification")
    outcome = grade_batch(inputs=[folder], out_dir=out, options=options, workers=workers)
    if outcome.count("graded") != len(outcome.rows):
        raise SystemExit(f"not every copy was graded: see {out / 'summary.html'}")


def plain_nbclient(paths: list[Path]) -> None:
    """Each notebook executed as it is, in a python3 kernel, beside the dataset."""
    exercise = get_exercise("classification")
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        with workspace(exercise.data, exercise.rubric.data_file) as ws:
            client = NotebookClient(
                nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": ws.workdir}}
            )
            client.execute(stderr=subprocess.DEVNULL)


@click.command()
@click.option("--copies", "count", type=click.IntRange(min=1), default=6, show_default=True)
def main(count: int) -> None:
    """Grade COUNT copies of the reference three ways and print submissions per minute."""
    with tempfile.TemporaryDirectory(prefix="kgrade-bench-") as tmp:
        root = Path(tmp)
        os.environ["KGRADE_CACHE_DIR"] = str(root / "cache")
        paths = copies_of_the_reference(root / "class", count)
        grade(paths[0], GradeOptions(exercise="classification"))  # fills the reference cache
        workers = cores()
        runs = [
            ("kgrade batch --workers 1", timed(lambda: batch(root / "class", root / "w1", 1))),
            (
                f"kgrade batch (default: {workers} workers)",
                timed(lambda: batch(root / "class", root / "wn", None)),
            ),
            ("plain nbclient, one after the other", timed(lambda: plain_nbclient(paths))),
        ]
    click.echo(f"{count} copies of the reference on {cores()} cores")
    click.echo(f"{'run':<40} {'seconds':>8} {'per minute':>11}")
    for label, seconds in runs:
        click.echo(f"{label:<40} {seconds:>8.1f} {60 * count / seconds:>11.2f}")


if __name__ == "__main__":
    main()
