"""Grade many notebooks once per test session, two at a time, in worker processes.

Executing a notebook costs seconds, so the tests grade every notebook they need once,
up front, and then only read the results. A job marked ``warm`` gets its kernel forked
from its worker's warm pool, as a batch's jobs do; the others get a cold kernel each.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.grade import grade
from graders.options import GradeOptions
from graders.report import render_report
from graders.warm import shared_launcher


@dataclass(frozen=True)
class Job:
    key: str
    notebook: Path
    data: Path | None = None
    cell_timeout: float = 30.0
    exercise: str = "classification"
    deadline: float = 600.0
    warm: bool = False


@dataclass(frozen=True)
class Graded:
    """A result as JSON-ready data, and its HTML report."""

    result: dict[str, Any]
    report: str

    def check(self, check_id: str) -> dict[str, Any]:
        return next(c for c in self.result["checks"] if c["id"] == check_id)


def run_job(job: Job) -> tuple[str, Graded]:
    options = GradeOptions(
        exercise=job.exercise, data=job.data, cell_timeout=job.cell_timeout, deadline=job.deadline
    )
    launcher = shared_launcher(options.sandbox, options.seed) if job.warm else None
    graded = grade(job.notebook, options, launcher=launcher)
    return job.key, Graded(graded.result.to_dict(), render_report(graded))


def run_jobs(jobs: list[Job], workers: int = 2) -> dict[str, Graded]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return dict(pool.map(run_job, jobs))
