"""Course CI: prove that every exercise is sound before students see it.

For each exercise, :func:`validate` checks that

1. its rubric is well-formed (unique ids, positive points, thresholds present);
2. the committed student notebook is what ``kgrade assign`` generates from the reference;
3. the reference earns full marks, with the shipped data and with any extra data file;
4. the untouched student notebook runs to the end and scores no more than its rubric allows.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, replace
from pathlib import Path

from graders.assign import in_sync
from graders.errors import KgradeError, UsageError
from graders.exercises import Exercise, exercise_names, get_exercise
from graders.grade import grade
from graders.options import GradeOptions
from graders.result import Result

log = logging.getLogger(__name__)

_CHECK_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Finding:
    """One verified property of one exercise."""

    exercise: str
    name: str
    ok: bool
    message: str


def validate(
    names: list[str] | None = None,
    *,
    data: Path | None = None,
    root: Path | None = None,
    seed: int | None = None,
) -> list[Finding]:
    """Validate the exercises called ``names`` (all of them when None or empty).

    ``data`` is an extra dataset the references must also earn full marks on; it applies
    to the exercises whose rubric reads a file of the same name.

    Raises:
        UsageError: ``root`` holds no reference notebook, so there is nothing to validate.
    """
    names = names or exercise_names(root)
    if not names:
        raise UsageError(
            "no exercise to validate: reference/ holds no notebook",
            path=root,
            advice="Pass --root the course folder that holds reference/NAME.ipynb.",
        )
    findings: list[Finding] = []
    for name in names:
        exercise = get_exercise(name, root)
        options = GradeOptions(exercise=name, with_reference=False)
        if seed is not None:
            options = replace(options, seed=seed)
        findings += _rubric_findings(exercise)
        findings.append(_sync_finding(exercise))
        datasets = [exercise.data]
        if data is not None and data.name == exercise.rubric.data_file:
            datasets.append(data)
        for dataset in datasets:
            label = f"reference on {dataset.name}"
            if dataset is not exercise.data:
                label = f"reference on --data {dataset.name}"
            findings += _reference_findings(exercise, dataset, options, label)
        findings.append(_untouched_finding(exercise, options))
    return findings


def _rubric_findings(exercise: Exercise) -> list[Finding]:
    rubric = exercise.rubric
    ids = [c.id for c in rubric.checks]
    problems = [f"duplicate id {i!r}" for i in sorted(set(ids)) if ids.count(i) > 1]
    problems += [f"id {i!r} is not lower-case-with-dashes" for i in ids if not _CHECK_ID.match(i)]
    problems += [
        f"check {c.id!r} is worth {c.points} points" for c in rubric.checks if c.points <= 0
    ]
    if not rubric.checks:
        problems.append("the rubric has no checks")
    if not rubric.thresholds:
        problems.append("the rubric states no thresholds")
    message = "; ".join(problems) or f"{len(ids)} checks, {rubric.max_score} points"
    return [Finding(exercise.name, "rubric", not problems, message)]


def _sync_finding(exercise: Exercise) -> Finding:
    try:
        ok = in_sync(exercise)
    except KgradeError as err:
        return Finding(exercise.name, "exercise in sync", False, str(err))
    message = (
        "the exercise matches its reference"
        if ok
        else (
            f"{exercise.student} differs from what its reference generates: "
            f"run `kgrade assign {exercise.name}` and commit the result"
        )
    )
    return Finding(exercise.name, "exercise in sync", ok, message)


def _reference_findings(
    exercise: Exercise, dataset: Path, options: GradeOptions, label: str
) -> list[Finding]:
    result = grade(exercise.reference, replace(options, data=dataset)).result
    if result.status != "graded":
        return [Finding(exercise.name, label, False, result.message or result.status)]
    return [
        Finding(exercise.name, f"{label}: {check.id}", check.passed, check.message)
        for check in result.checks
    ]


def _untouched_finding(exercise: Exercise, options: GradeOptions) -> Finding:
    result = grade(exercise.student, replace(options, data=exercise.data)).result
    limit = exercise.rubric.untouched_max_score
    problem = _untouched_problem(result, limit)
    message = problem or f"the untouched exercise scores {result.score} (at most {limit})"
    return Finding(exercise.name, "untouched exercise", problem is None, message)


def _untouched_problem(result: Result, limit: int) -> str | None:
    if result.status != "graded":
        return f"the untouched exercise was not graded: {result.message}"
    if result.harness.stopped:
        return f"the untouched exercise stopped early ({result.harness.stopped})"
    passing = [c.id for c in result.checks if c.passed]
    if (result.score or 0) > limit:
        return (
            f"the untouched exercise scores {result.score}, over the rubric's limit of "
            f"{limit} (passing: {', '.join(passing)})"
        )
    return None


def junit_xml(findings: list[Finding]) -> str:
    """The findings as JUnit XML: one test suite per exercise, one test case per finding."""
    suites = ElementTree.Element("testsuites", name="kgrade validate")
    for exercise in dict.fromkeys(f.exercise for f in findings):
        mine = [f for f in findings if f.exercise == exercise]
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=exercise,
            tests=str(len(mine)),
            failures=str(sum(not f.ok for f in mine)),
        )
        for finding in mine:
            case = ElementTree.SubElement(suite, "testcase", classname=exercise, name=finding.name)
            if not finding.ok:
                failure = ElementTree.SubElement(case, "failure", message=finding.message)
                failure.text = finding.message
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
