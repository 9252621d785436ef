"""Grade one submission: load → execute → trace → check → score."""

from __future__ import annotations

import asyncio
import logging
import platform
import re
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import nbformat

from graders import __version__
from graders.dataset import Dataset, load_dataset
from graders.errors import HarnessError, UngradableSubmission, UsageError
from graders.execute import CellRun, Execution, execute_submission
from graders.exercises import Exercise, find_exercise
from graders.hints import hint_for
from graders.kernel import KernelLauncher, LocalKernelLauncher
from graders.load import load_submission
from graders.options import GradeOptions
from graders.reference import reference_numbers
from graders.result import CellResult, CheckResult, HarnessFacts, Number, Result
from graders.rubric import Check, Evidence, Outcome
from graders.sandbox import describe
from graders.trace import read_trace
from graders.workspace import workspace

log = logging.getLogger(__name__)

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn", "nbclient")


@dataclass(frozen=True)
class Graded:
    """A result together with what only the report needs: the plots each cell drew."""

    result: Result
    figures: dict[int, list[str]] = field(default_factory=dict)


def grade(
    path: Path, options: GradeOptions | None = None, *, launcher: KernelLauncher | None = None
) -> Graded:
    """Grade the notebook at ``path``.

    A submission that cannot be run gets status ``ungradable``; a failure of kgrade
    itself gets status ``error``. Neither raises.

    Raises:
        UsageError: The exercise or the data file asked for does not exist.
    """
    options = options or GradeOptions()
    started = time.monotonic()
    try:
        exercise = find_exercise(options.exercise, path)
    except UsageError:
        # A file that is no notebook at all says so first: no exercise would help it.
        try:
            load_submission(path)
        except UngradableSubmission as err:
            raise UsageError(err.detail, path=err.path, advice=err.advice) from None
        raise
    rubric = exercise.rubric
    dataset = load_dataset(
        options.data or exercise.data, feature=rubric.feature, target=rubric.target
    )
    facts = _facts(options, dataset)

    def finish(result: Result) -> Graded:
        log.info("%s: %s, score %s/%s", path.name, result.status, result.score, result.max_score)
        return Graded(
            replace(
                result,
                harness=replace(result.harness, duration_s=round(time.monotonic() - started, 3)),
            ),
            figures,
        )

    figures: dict[int, list[str]] = {}
    base = Result(
        submission=path.name,
        exercise=exercise.name,
        status="graded",
        score=None,
        max_score=rubric.max_score,
        harness=facts,
    )
    try:
        nb = load_submission(path)
    except UngradableSubmission as err:
        return finish(replace(base, status="ungradable", message=str(err)))
    except UsageError:
        raise
    except Exception as err:  # a bug in kgrade must not read as the student's zero
        log.exception("could not load %s", path)
        return finish(
            replace(base, status="error", message=f"kgrade failed: {type(err).__name__}: {err}")
        )
    launcher = launcher or LocalKernelLauncher(sandbox=options.sandbox)
    try:
        preparing = time.monotonic()
        # A warm launcher's first call starts its pool, a cost of the batch, not of this file.
        protections = launcher.protections()
        launcher_s = time.monotonic() - preparing
        base = replace(base, harness=replace(facts, protections=describe(protections)))
        evidence = _run(nb, dataset, rubric.data_file, options, launcher, rubric.arrays)
        checks = _judge(exercise, evidence, options)
    except HarnessError as err:
        log.error("could not grade %s: %s", path, err)
        return finish(replace(base, status="error", message=str(err)))
    except Exception as err:  # a bug in kgrade must not read as the student's zero
        log.exception("could not grade %s", path)
        return finish(
            replace(base, status="error", message=f"kgrade failed: {type(err).__name__}: {err}")
        )
    figures.update(_figures(evidence.execution))
    facts = replace(
        base.harness,
        stopped=evidence.execution.stopped,
        trace_problems=[*evidence.execution.capture_problems, *evidence.trace.problems],
        timings={"launcher_s": round(launcher_s, 3), **evidence.execution.timings},
    )
    return finish(
        replace(
            base,
            harness=facts,
            checks=checks,
            score=sum(c.points for c in checks),
            cells=_cell_results(nb, evidence.execution),
        )
    )


def _run(
    nb: nbformat.NotebookNode,
    dataset: Dataset,
    data_file: str,
    options: GradeOptions,
    launcher: KernelLauncher,
    arrays: tuple[str, ...],
) -> Evidence:
    with workspace(dataset.path, data_file, base=launcher.workspace_base()) as ws:
        execution = asyncio.run(execute_submission(nb, ws, options, launcher, arrays=arrays))
        trace = read_trace(ws.captured, execution.captures)
    return Evidence(notebook=nb, execution=execution, trace=trace, dataset=dataset)


def _judge(exercise: Exercise, evidence: Evidence, options: GradeOptions) -> list[CheckResult]:
    reference = reference_numbers(exercise, evidence.dataset, options)
    runs = {run.index: run for run in evidence.execution.cells}
    sources = {run.index: evidence.notebook.cells[run.index].source for run in runs.values()}
    results = []
    for check in exercise.rubric.checks:
        outcome = check.judge(evidence)
        cell = _cell_for(check, outcome, runs, sources)
        hint = outcome.hint
        failed_cell = runs.get(cell) if cell is not None else None
        if not outcome.passed and failed_cell is not None and failed_cell.status != "ok":
            hint = hint_for(failed_cell, list(runs.values()), sources) or hint
        numbers = {
            name: Number(round(value, 4), reference.get(check.id, {}).get(name))
            for name, value in outcome.numbers.items()
        }
        results.append(
            CheckResult(
                id=check.id,
                title=check.title,
                passed=outcome.passed,
                points=check.points if outcome.passed else 0,
                max_points=check.points,
                message=outcome.message,
                hint=None if outcome.passed else hint,
                cell=cell,
                numbers=numbers,
            )
        )
    return results


def _cell_for(
    check: Check, outcome: Outcome, runs: dict[int, CellRun], sources: dict[int, str]
) -> int | None:
    """The cell a check concerns: its failing cell first, then the trace's, then the code's."""
    pattern = re.compile(check.locate)
    matching = [i for i in sorted(sources) if pattern.search(sources[i])]
    if not outcome.passed:
        failing = [i for i in matching if runs[i].status != "ok"]
        if failing:
            return failing[0]
    if outcome.cell is not None:
        return outcome.cell
    return matching[0] if matching else None


def _cell_results(nb: nbformat.NotebookNode, execution: Execution) -> list[CellResult]:
    sources = {run.index: nb.cells[run.index].source for run in execution.cells}
    results = []
    for run in execution.cells:
        message = run.error_value
        if run.status == "not-run":
            message = "not run"
        results.append(
            CellResult(
                index=run.index,
                id=str(nb.cells[run.index].get("id", "")),
                source=sources[run.index],
                status=run.status,
                error_name=run.error_name,
                message=message.splitlines()[0][:300] if message else None,
                hint=None if run.status == "ok" else hint_for(run, execution.cells, sources),
                traceback=run.traceback,
                duration_s=round(run.duration_s, 3),
            )
        )
    return results


def _figures(execution: Execution) -> dict[int, list[str]]:
    figures: dict[int, list[str]] = {}
    for run in execution.cells:
        images = [
            str(output["data"]["image/png"]).replace("\n", "")
            for output in run.outputs
            if output.get("output_type") in ("display_data", "execute_result")
            and "image/png" in output.get("data", {})
        ]
        if images:
            figures[run.index] = images
    return figures


def _facts(options: GradeOptions, dataset: Dataset) -> HarnessFacts:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return HarnessFacts(
        kgrade=__version__,
        python=platform.python_version(),
        packages=packages,
        seed=options.seed,
        data_file=dataset.path.name,
        data_sha256=dataset.sha256,
        cell_timeout=options.cell_timeout,
        deadline=options.deadline,
    )
