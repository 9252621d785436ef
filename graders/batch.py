"""Grade a whole class: collect → plan → grade in parallel → gradebook → exports.

Everything a batch writes goes into its output folder::

    gradebook.sqlite      every result, written as each submission finishes
    results/STUDENT.json  each student's JSON result
    reports/STUDENT.html  each student's feedback report
    grades.csv            one row per student (canvas.csv too, when asked for)
    summary.html          how the class did
    submissions/          the zip archives given as input, unpacked
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from graders import __version__
from graders.collect import Collection, Submission, collect
from graders.dataset import load_dataset
from graders.dispatch import DataFile, Finished, Job, run_jobs
from graders.errors import UsageError
from graders.exercises import Exercise, exercise_names, find_exercise, get_exercise
from graders.exports import write_canvas_csv, write_grades_csv
from graders.gradebook import FILENAME, Gradebook, Key, Row
from graders.options import GradeOptions, Kernels
from graders.report import write_report
from graders.summary import write_summary
from graders.workspace import remove_tree

log = logging.getLogger(__name__)

_UPLOAD_COPY = re.compile(r"-\d+$")


class Listener(Protocol):
    """Told about a batch's progress (the CLI shows it; the library never prints)."""

    def started(self, *, total: int, resumed: int) -> None: ...

    def finished(self, row: Row) -> None: ...


@dataclass(frozen=True)
class Planned:
    """A submission, how to grade it, and the key its result is kept under."""

    submission: Submission
    key: Key
    options: GradeOptions
    max_score: int
    data: DataFile | None

    def job(self) -> Job:
        """The job that grades the submission; its bytes are read only now."""
        return Job(
            student=self.submission.student,
            name=self.submission.name,
            notebook=self.submission.path.read_bytes(),
            options=self.options,
            max_score=self.max_score,
            data=self.data,
        )


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch left behind, for the caller to sum up."""

    out_dir: Path
    rows: list[Row]
    collection: Collection
    graded_now: int
    resumed: int
    canvas_csv: Path | None

    @property
    def gradebook(self) -> Path:
        return self.out_dir / FILENAME

    @property
    def grades_csv(self) -> Path:
        return self.out_dir / "grades.csv"

    @property
    def summary_html(self) -> Path:
        return self.out_dir / "summary.html"

    @property
    def reports(self) -> Path:
        return self.out_dir / "reports"

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def scores(self) -> list[int]:
        return [row.score for row in self.rows if row.score is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def median(self) -> float | None:
        return float(statistics.median(self.scores)) if self.scores else None


def grade_batch(
    *,
    inputs: Sequence[Path],
    out_dir: Path,
    options: GradeOptions | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    canvas_csv: bool = False,
    listener: Listener | None = None,
    kernels: Kernels = "warm",
) -> BatchOutcome:
    """Grade every submission in ``inputs`` and write the gradebook, reports and exports.

    Args:
        inputs: Folders (a notebook or a folder per student), LMS zip archives, notebooks.
        out_dir: Where everything is written; created if missing.
        options: How each submission is graded.
        workers: Processes grading at once; None means one per core.
        scheduler: Address of a Dask scheduler to grade on instead of locally.
        force: Grade again submissions the gradebook already has a result for.
        canvas_csv: Also write ``canvas.csv`` for the Canvas gradebook import (rewritten anyway
            when an earlier run into ``out_dir`` wrote one).
        listener: Told when the batch starts and as each submission finishes.
        kernels: ``warm``: each local worker process forks its kernels from a pool that
            imported TensorFlow once (falling back to cold ones where it cannot);
            ``cold``: a fresh kernel process per submission. Results are the same either
            way, so the choice is not part of what a kept result is kept under.

    Raises:
        UsageError: An input is missing or unsafe, nothing in it is a notebook, the
            exercise or data cannot be had, or the Dask scheduler cannot be used.
    """
    options = options or GradeOptions()
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(
            f"cannot create the output folder ({err.strerror})", path=out_dir
        ) from None
    try:
        collection = collect(inputs, unpack_into=out_dir / "submissions", exclude=out_dir)
        if not collection.submissions:
            raise UsageError(
                f"no notebook to grade in {', '.join(map(str, inputs))} "
                f"({len(collection.skipped)} files skipped)",
                advice="Pass the folder or zip archive holding the .ipynb submissions.",
            )
        plan = _plan(collection, options)
    except UsageError:
        if created:  # refused before anything was graded: leave no trace of the run
            remove_tree(out_dir)
        raise
    if scheduler and workers:
        log.warning("ignoring workers=%s: the Dask cluster sets how many grade at once", workers)
    for folder in ("results", "reports"):
        (out_dir / folder).mkdir(exist_ok=True)
    with Gradebook(out_dir / FILENAME) as book:
        todo = [p for p in plan if force or not _kept(book, p, out_dir)]
        log.info("%d submissions: %d already graded", len(plan), len(plan) - len(todo))
        if listener is not None:
            listener.started(total=len(plan), resumed=len(plan) - len(todo))
        if todo:
            workers = workers or cores()
            finished = run_jobs(
                (p.job() for p in todo), workers=workers, scheduler=scheduler, kernels=kernels
            )
            _record(finished, todo, book, out_dir, listener)
        rows = book.rows(p.key for p in plan)
    canvas = _export(rows, collection, out_dir, canvas_csv)
    return BatchOutcome(
        out_dir=out_dir,
        rows=rows,
        collection=collection,
        graded_now=len(todo),
        resumed=len(plan) - len(todo),
        canvas_csv=canvas,
    )


def cores() -> int:
    """The cores this process may run on (a container's share, not the whole machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _plan(collection: Collection, options: GradeOptions) -> list[Planned]:
    """A job and a gradebook key per submission; checks exercise and data once, up front."""
    plan = []
    settings: dict[str, tuple[str, DataFile | None]] = {}
    told = {s.path: _exercise_of(s, options) for s in collection.submissions}
    for submission in collection.submissions:
        exercise = told[submission.path] or _the_batchs_exercise(told, submission)
        if exercise.name not in settings:
            settings[exercise.name] = _settings(exercise, options)
        fingerprint, data = settings[exercise.name]
        sha256 = _sha256(submission.path)
        plan.append(
            Planned(
                submission=submission,
                key=Key(submission.student, sha256, __version__, fingerprint),
                options=replace(options, exercise=exercise.name, data=None),
                max_score=exercise.rubric.max_score,
                data=data,
            )
        )
    return plan


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _exercise_of(submission: Submission, options: GradeOptions) -> Exercise | None:
    """The exercise a submission is for: as asked, else as its uploaded file is named,
    else as its content tells; None when nothing tells.

    An LMS numbers a student's repeated uploads (``classification-1.ipynb``); the
    number does not hide the exercise's name.
    """
    if options.exercise is not None:
        return get_exercise(options.exercise)
    original = Path(submission.original or submission.path.name)
    unnumbered = _UPLOAD_COPY.sub("", original.stem)
    if unnumbered in exercise_names():
        return get_exercise(unnumbered)
    try:
        return find_exercise(None, submission.path)
    except UsageError:
        return None


def _the_batchs_exercise(told: dict[Path, Exercise | None], submission: Submission) -> Exercise:
    """For a submission that does not tell its exercise: the one most of the batch is for.

    Raises:
        UsageError: No submission of the batch tells its exercise.
    """
    names = Counter(e.name for e in told.values() if e is not None)
    if not names:
        raise UsageError(
            f"cannot tell which exercise {submission.path.name} and the rest of the batch are for",
            advice=f"Pass --exercise with one of: {', '.join(exercise_names())}.",
        )
    name = names.most_common(1)[0][0]
    log.info("%s does not tell its exercise; grading it as %s", submission.path.name, name)
    return get_exercise(name)


def _settings(exercise: Exercise, options: GradeOptions) -> tuple[str, DataFile | None]:
    """A fingerprint of what else decides a result, and the data file to send along."""
    path = options.data or exercise.data
    rubric = exercise.rubric
    dataset = load_dataset(path, feature=rubric.feature, target=rubric.target)
    described = {
        "exercise": exercise.name,
        "data": dataset.sha256,
        "seed": options.seed,
        "cell_timeout": options.cell_timeout,
        "deadline": options.deadline,
        "with_reference": options.with_reference,
        "sandbox": asdict(options.sandbox),
    }
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    data = DataFile(path.name, path.read_bytes()) if options.data is not None else None
    return fingerprint[:16], data


def _kept(book: Gradebook, planned: Planned, out_dir: Path) -> bool:
    """Whether a result can be kept: recorded, and its report still there."""
    report = out_dir / "reports" / f"{planned.submission.student}.html"
    return book.has_result(planned.key) and report.is_file()


def _record(
    finished: Iterator[Finished],
    todo: list[Planned],
    book: Gradebook,
    out_dir: Path,
    listener: Listener | None,
) -> None:
    """Write each finished submission's files, then its gradebook row, as it comes."""
    by_student = {p.submission.student: p for p in todo}
    for done in finished:
        planned = by_student[done.job.student]
        student = planned.submission.student
        result = done.graded.result
        # The files first, then the gradebook: a recorded result always has its report.
        result.write_json(out_dir / "results" / f"{student}.json")
        write_report(done.graded, out_dir / "reports" / f"{student}.html")
        book.record(
            planned.key,
            result,
            submission=planned.submission.name,
            lms_id=planned.submission.lms_id,
            attempts=done.attempts,
        )
        log.info("%s: %s, score %s/%s", student, result.status, result.score, result.max_score)
        if listener is not None:
            listener.finished(book.rows([planned.key])[0])


def _export(
    rows: list[Row], collection: Collection, out_dir: Path, canvas_csv: bool
) -> Path | None:
    write_grades_csv(rows, out_dir / "grades.csv")
    write_summary(rows, collection, out_dir / "summary.html")
    canvas = out_dir / "canvas.csv"
    if not canvas_csv and not canvas.exists():
        return None
    write_canvas_csv(rows, canvas)  # one an earlier run wrote is kept in step with the gradebook
    return canvas
