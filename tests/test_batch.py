"""A whole class graded in one batch: gradebook, reports, CSVs, summary, zip and Dask.

One batch, run once per session, grades the shared cases plus twenty copies of the
reference; the tests read what it wrote. The zip and Dask tests grade a few of the same
submissions again and compare their gradebook rows with the folder run's.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CASES, REFERENCE, expectations

from graders.batch import grade_batch
from graders.cli import EXIT_OK
from graders.collect import Submission, collect
from graders.gradebook import FILENAME, Gradebook, Row
from graders.options import GradeOptions

TIMEOUT = "30"
EXERCISE = ("--exercise", "classification")
COPIES = 20


@dataclass(frozen=True)
class BatchRun:
    inputs: Path
    out: Path
    done: subprocess.CompletedProcess[str]

    def rows(self) -> dict[str, Row]:
        with Gradebook(self.out / FILENAME) as book:
            return {row.student: row for row in book.all_rows()}


def kgrade_batch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graders", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


def case_student(case: str) -> str:
    return Path(case).stem.replace("_", "-")


def reference_students() -> list[str]:
    return [f"student-{index:02d}" for index in range(1, COPIES + 1)]


@pytest.fixture(scope="session")
def class_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared cases and the reference copies, in both layouts, with files to set aside."""
    folder = tmp_path_factory.mktemp("class")
    for case in sorted(CASES.glob("*.ipynb")):
        shutil.copyfile(case, folder / f"{case_student(case.name)}.ipynb")
    for index, student in enumerate(reference_students()):
        if index % 2:
            shutil.copyfile(REFERENCE, folder / f"{student}.ipynb")
        else:
            (folder / student).mkdir()
            shutil.copyfile(REFERENCE, folder / student / "classification.ipynb")
    shutil.copyfile(CASES / "mse_loss.ipynb", folder / "student-01" / "older.ipynb")
    os.utime(folder / "student-01" / "older.ipynb", (1_500_000_000, 1_500_000_000))
    shutil.copyfile(CASES / "expected.json", folder / "expected.json")
    (folder / "notes.py").write_text("print('not a notebook')\n")
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copyfile(REFERENCE, folder / ".ipynb_checkpoints" / "student-02-checkpoint.ipynb")
    return folder


@pytest.fixture(scope="session")
def class_batch(
    class_folder: Path, kgrade_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> BatchRun:
    out = tmp_path_factory.mktemp("class-out")
    done = kgrade_batch(class_folder, "--out", out, "--timeout", TIMEOUT, *EXERCISE, "--canvas-csv")
    return BatchRun(class_folder, out, done)


def all_students() -> set[str]:
    return {case_student(c.name) for c in CASES.glob("*.ipynb")} | set(reference_students())


@pytest.mark.slow
def test_every_submission_gets_one_gradebook_row_a_json_result_and_a_report(
    class_batch: BatchRun,
) -> None:
    assert class_batch.done.returncode == EXIT_OK, class_batch.done.stdout
    rows = class_batch.rows()
    assert set(rows) == all_students()
    for student in rows:
        assert (class_batch.out / "results" / f"{student}.json").is_file()
        report = (class_batch.out / "reports" / f"{student}.html").read_text()
        assert report.startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_every_reference_copy_earns_full_marks(class_batch: BatchRun) -> None:
    rows = class_batch.rows()
    for student in reference_students():
        assert rows[student].status == "graded", rows[student].message
        assert rows[student].score == rows[student].max_score


@pytest.mark.slow
def test_each_case_gets_the_verdicts_it_gets_alone(class_batch: BatchRun) -> None:
    rows = class_batch.rows()
    for case, expected in expectations(CASES).items():
        row = rows[case_student(case)]
        assert row.status == expected["status"], (case, row.message)
        for check_id, want in expected.get("checks", {}).items():
            if want != "any":
                assert row.points[check_id] > 0 if want == "pass" else row.points[check_id] == 0
    assert rows["html-saved-as-ipynb"].score is None
    assert "html-saved-as-ipynb.ipynb" in (rows["html-saved-as-ipynb"].message or "")
    assert "kgrade-job" not in (rows["html-saved-as-ipynb"].message or "")


@pytest.mark.slow
def test_the_gradebook_row_holds_the_file_its_hash_and_the_points_of_every_check(
    class_batch: BatchRun,
) -> None:
    row = class_batch.rows()["mse-loss"]
    result = json.loads((class_batch.out / "results" / "mse-loss.json").read_text())
    assert row.submission == "mse-loss.ipynb"
    assert row.key.sha256 == hashlib.sha256((CASES / "mse_loss.ipynb").read_bytes()).hexdigest()
    assert row.points == {c["id"]: c["points"] for c in result["checks"]}
    assert row.score == result["score"] == sum(row.points.values())
    assert row.key.kgrade == result["harness"]["kgrade"]
    assert row.duration_s > 0
    assert row.graded_at.endswith("+00:00")


@pytest.mark.slow
def test_grades_csv_has_a_row_per_student_a_column_per_check_and_no_zero_for_the_ungradable(
    class_batch: BatchRun,
) -> None:
    rows = class_batch.rows()
    with (class_batch.out / "grades.csv").open(newline="") as source:
        table = list(csv.DictReader(source))
    assert {line["student"] for line in table} == set(rows)
    checks = list(rows["student-01"].points)
    assert list(table[0])[4 : 4 + len(checks)] == checks
    for line in table:
        row = rows[line["student"]]
        assert line["status"] == row.status
        if row.status == "graded":
            assert int(line["score"]) == row.score
            assert {c: int(line[c]) for c in checks} == row.points
        else:
            assert line["score"] == ""
            assert all(line[c] == "" for c in checks)


@pytest.mark.slow
def test_canvas_csv_follows_the_gradebook_import_layout(class_batch: BatchRun) -> None:
    with (class_batch.out / "canvas.csv").open(newline="") as source:
        table = list(csv.reader(source))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "classification"]
    rows = class_batch.rows()
    assert table[1][0] == "Points Possible"
    assert table[1][-1] == str(rows["student-01"].max_score)
    scores = {line[0]: line[-1] for line in table[2:]}
    assert scores["student-01"] == str(rows["student-01"].score)
    assert scores["html-saved-as-ipynb"] == ""


@pytest.mark.slow
def test_summary_pass_rates_match_the_json_results(class_batch: BatchRun) -> None:
    results = [json.loads(p.read_text()) for p in (class_batch.out / "results").glob("*.json")]
    graded = [r for r in results if r["status"] == "graded"]
    html = (class_batch.out / "summary.html").read_text()
    shown = dict(re.findall(r'data-check="([^"]+)" data-pass-rate="([0-9.]+)"', html))
    assert set(shown) == {c["id"] for c in graded[0]["checks"]}
    for check_id, rate in shown.items():
        passed = sum(c["passed"] for r in graded for c in r["checks"] if c["id"] == check_id)
        assert float(rate) == pytest.approx(passed / len(graded), abs=1e-4)
        assert f"{passed} of {len(graded)}" in html


@pytest.mark.slow
def test_summary_is_one_page_with_plots_the_not_graded_and_a_link_per_student(
    class_batch: BatchRun,
) -> None:
    html = (class_batch.out / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert not re.search(r"<(script|link)\b|src=\"http", html)
    not_graded = html[html.index('id="not-graded"') : html.index('id="set-aside"')]
    assert "html-saved-as-ipynb" in not_graded
    assert "web page" in not_graded
    for student in all_students():
        assert f'href="reports/{student}.html"' in html
    assert "Most frequent errors" in html
    hints = html[html.index('id="hints"') : html.index('id="not-graded"')]
    assert "<code>learning_rate</code>" in hints  # code spans, as in the reports
    assert "`" not in hints


@pytest.mark.slow
def test_older_notebooks_and_other_files_are_listed_with_their_reason(
    class_batch: BatchRun,
) -> None:
    html = (class_batch.out / "summary.html").read_text()
    set_aside = html[html.index('id="set-aside"') : html.index('id="students"')]
    for name in ("student-01/older.ipynb", "expected.json", "notes.py", ".ipynb_checkpoints/"):
        assert name in set_aside
    assert "an older notebook of student-01" in set_aside
    assert "3 other files" in class_batch.done.stdout


@pytest.mark.slow
def test_without_a_terminal_progress_is_a_plain_line_per_submission_then_a_summary(
    class_batch: BatchRun,
) -> None:
    lines = class_batch.done.stdout.splitlines()
    total = len(all_students())
    assert lines[0] == f"{total} submissions: 0 already graded, {total} to grade"
    progress = [line for line in lines if re.match(r"\[\d+/\d+\] ", line)]
    assert len(progress) == total
    assert progress[-1].startswith(f"[{total}/{total}]")
    assert "\x1b[" not in class_batch.done.stdout
    counts = f"{total} students: {total - 1} graded, 1 not gradable, 0 grader errors"
    assert any(line.startswith(counts) for line in lines)
    assert str(class_batch.out / "summary.html") in class_batch.done.stdout


@pytest.mark.slow
def test_running_the_same_command_again_regrades_nothing(class_batch: BatchRun) -> None:
    before = class_batch.rows()
    done = kgrade_batch(
        class_batch.inputs,
        "--out",
        class_batch.out,
        "--timeout",
        TIMEOUT,
        *EXERCISE,
        "--canvas-csv",
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    total = len(before)
    assert done.stdout.startswith(f"{total} submissions: {total} already graded, 0 to grade")
    assert class_batch.rows() == before


def canvas_zip(folder: Path, students: set[str] | None, archive: Path) -> Path:
    """The class as Canvas exports it: one flat zip, ids in every file name."""
    collection = collect([folder], unpack_into=archive.parent / "unused")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for index, submission in enumerate(collection.submissions):
            if students is None or submission.student in students:
                name = f"{submission.student}_{1000 + index}_{9000 + index}_classification.ipynb"
                zf.write(submission.path, name)
    return archive


def test_a_canvas_zip_of_the_class_holds_the_same_submissions_as_its_folder(
    class_folder: Path, tmp_path: Path
) -> None:
    archive = canvas_zip(class_folder, None, tmp_path / "canvas.zip")
    from_zip = collect([archive], unpack_into=tmp_path / "out" / "submissions")
    from_folder = collect([class_folder], unpack_into=tmp_path / "unused")

    def identity(submissions: list[Submission]) -> set[tuple[str, bytes]]:
        return {(s.student, s.path.read_bytes()) for s in submissions}

    assert identity(from_zip.submissions) == identity(from_folder.submissions)
    assert all(s.lms_id for s in from_zip.submissions)


def comparable(row: Row) -> tuple[object, ...]:
    return (row.key, row.exercise, row.status, row.score, row.max_score, row.points)


@pytest.mark.slow
def test_the_same_submissions_as_a_canvas_zip_give_the_same_gradebook_rows(
    class_batch: BatchRun, tmp_path: Path
) -> None:
    students = {"keras3-correct", "relu-activation", "html-saved-as-ipynb", "student-07"}
    archive = canvas_zip(class_batch.inputs, students, tmp_path / "canvas.zip")
    done = kgrade_batch(
        archive, "--out", tmp_path / "out", "--timeout", TIMEOUT, *EXERCISE, "--quiet"
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert "[1/" not in done.stdout
    with Gradebook(tmp_path / "out" / FILENAME) as book:
        zipped = {row.student: row for row in book.all_rows()}
    folder_rows = class_batch.rows()
    assert set(zipped) == students
    for student, row in zipped.items():
        assert comparable(row) == comparable(folder_rows[student])
        assert row.lms_id is not None
        assert row.submission.endswith("_classification.ipynb")


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_scores_as_the_local_pool(
    class_batch: BatchRun, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    students = ["mse-loss", "no-reset", "student-02"]
    inputs = [class_batch.inputs / f"{student}.ipynb" for student in students]
    options = GradeOptions(exercise=EXERCISE[1], cell_timeout=float(TIMEOUT))
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        outcome = grade_batch(
            inputs=inputs,
            out_dir=tmp_path / "out",
            options=options,
            scheduler=cluster.scheduler_address,
        )
    folder_rows = class_batch.rows()
    assert {row.student: row.score for row in outcome.rows} == {
        student: folder_rows[student].score for student in students
    }
    for row in outcome.rows:
        assert comparable(row) == comparable(folder_rows[row.student])


@pytest.mark.slow
def test_a_submission_that_does_not_tell_its_exercise_is_graded_as_the_rest_of_the_batch(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    # Reads a misspelt data file: nothing in it names the exercise.
    shutil.copyfile(
        REFERENCE.parent.parent / "tests" / "notebooks" / "name_error_after_failed_load.ipynb",
        folder / "alice.ipynb",
    )
    shutil.copyfile(CASES / "html_saved_as_ipynb.ipynb", folder / "bob.ipynb")
    outcome = grade_batch(
        inputs=[folder],
        out_dir=tmp_path / "out",
        options=GradeOptions(cell_timeout=30),
        workers=2,
    )
    rows = {row.student: row for row in outcome.rows}
    assert set(rows) == {"alice", "bob"}
    assert rows["alice"].status == "graded"
    assert rows["bob"].status == "ungradable"
    result = json.loads((tmp_path / "out" / "results" / "alice.json").read_text())
    assert result["exercise"] == "classification"
