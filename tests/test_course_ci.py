"""Course CI: exercises generated from references, `kgrade validate`, the pytest plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

from graders.assign import assign, in_sync, student_version
from graders.errors import UsageError
from graders.exercises import exercise_names, get_exercise

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def solution_lines(reference: Path) -> set[str]:
    """Every line inside a solution region, unless it also appears outside one."""
    inside, outside = set(), set()
    for cell in nbformat.read(reference, as_version=4).cells:
        region = False
        for line in cell.source.splitlines():
            if line.strip() in (BEGIN, END):
                region = line.strip() == BEGIN
                continue
            (inside if region else outside).add(line.strip())
    return {line for line in inside - outside if len(line) > 3}


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A copy of the course folder that a test may change."""
    for folder in ("reference", "exercises", "data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


@pytest.mark.parametrize("name", exercise_names())
def test_committed_exercise_is_what_assign_generates(name: str) -> None:
    assert in_sync(get_exercise(name))


@pytest.mark.parametrize("name", exercise_names())
def test_no_solution_line_survives_in_the_exercise(name: str) -> None:
    exercise = get_exercise(name)
    generated = json.loads(student_version(exercise.reference))
    # Markdown may name a function the solution calls; code cells may not hold solution lines.
    text = "\n".join(
        json.dumps(cell["source"]) for cell in generated["cells"] if cell["cell_type"] == "code"
    )
    lines = solution_lines(exercise.reference)
    assert lines
    assert [line for line in lines if line in text or json.dumps(line)[1:-1] in text] == []


def test_a_change_inside_a_solution_region_never_reaches_the_exercise(course: Path) -> None:
    exercise = get_exercise("classification", course)
    nb = nbformat.read(exercise.reference, as_version=4)
    cell = next(c for c in nb.cells if "binary_crossentropy" in c.source)
    cell.source = cell.source.replace("'binary_crossentropy'", "'mean_squared_error'")
    nbformat.write(nb, exercise.reference)
    assert assign(exercise) is False
    assert "mean_squared_error" not in exercise.student.read_text()


def test_a_changed_cell_changes_only_its_stub_and_is_out_of_sync_until_assigned(
    course: Path,
) -> None:
    exercise = get_exercise("classification", course)
    before = nbformat.read(exercise.student, as_version=4)
    nb = nbformat.read(exercise.reference, as_version=4)
    changed = next(i for i, c in enumerate(nb.cells) if "get_weights" in c.source)
    nb.cells[changed].source = "# Zero every weight and bias.\n" + nb.cells[changed].source
    nbformat.write(nb, exercise.reference)
    assert not in_sync(exercise)
    assert assign(exercise) is True
    after = nbformat.read(exercise.student, as_version=4)
    differ = [
        i
        for i, (a, b) in enumerate(zip(before.cells, after.cells, strict=True))
        if a.source != b.source
    ]
    assert differ == [changed]
    assert in_sync(exercise)
    assert assign(exercise) is False


def test_hidden_cells_and_regions_are_removed(course: Path) -> None:
    exercise = get_exercise("classification", course)
    nb = nbformat.read(exercise.reference, as_version=4)
    secret = nbformat.v4.new_code_cell("assert model.count_params() == 2  # secret check")
    secret.metadata["tags"] = ["hidden"]
    nb.cells.append(secret)
    nb.cells[-2].source += "\n### BEGIN HIDDEN\nprint('hidden test 42')\n### END HIDDEN"
    nbformat.write(nb, exercise.reference)
    assign(exercise)
    text = exercise.student.read_text()
    assert "secret check" not in text
    assert "hidden test 42" not in text
    assert "HIDDEN" not in text


def test_an_unpaired_marker_names_the_reference_and_the_cell(course: Path) -> None:
    exercise = get_exercise("classification", course)
    nb = nbformat.read(exercise.reference, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if END in c.source)
    nb.cells[index].source = nb.cells[index].source.replace(END, "")
    nbformat.write(nb, exercise.reference)
    with pytest.raises(UsageError) as caught:
        assign(exercise)
    assert "classification.ipynb" in str(caught.value)
    assert f"cell {index + 1}" in str(caught.value)


def test_validate_with_no_reference_is_a_usage_error_not_a_pass(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "graders", "validate", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    message = " ".join(done.stdout.split())
    assert "no exercise to validate" in message and str(tmp_path) in message
    assert "passed" not in message


@pytest.mark.slow
def test_validate_fails_on_a_broken_reference_and_names_the_check(course: Path) -> None:
    reference = course / "reference" / "classification.ipynb"
    reference.write_text(
        reference.read_text().replace("'binary_crossentropy'", "'mean_squared_error'")
    )
    junit = course / "validate.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "graders",
            "validate",
            "classification",
            "--root",
            str(course),
            "--junit-xml",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0
    assert (
        "FAIL classification: reference on user_visit_duration.csv: binary-crossentropy-loss"
        in " ".join(done.stdout.split())
    )
    failures = [
        case.get("name")
        for case in ElementTree.parse(junit).iter("testcase")
        if case.find("failure") is not None
    ]
    assert failures == ["reference on user_visit_duration.csv: binary-crossentropy-loss"]


@pytest.mark.slow
def test_pytest_plugin_lists_one_passing_item_per_check() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--kgrade",
            "reference/classification.ipynb",
            "-v",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    rubric = get_exercise("classification").rubric
    passed = [
        line for line in done.stdout.splitlines() if line.endswith("PASSED") or " PASSED " in line
    ]
    assert done.returncode == 0, done.stdout[-2000:]
    for check in rubric.checks:
        assert any(f"::{check.id} PASSED" in line for line in passed), check.id
    assert len(passed) == len(rubric.checks)
