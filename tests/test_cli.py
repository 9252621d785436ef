"""The kgrade command as a user runs it: files written, messages and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import CASES, REAL_DATA, REFERENCE

from graders.cli import EXIT_BELOW_THRESHOLD, EXIT_HARNESS, EXIT_OK, EXIT_USAGE, _exit_code
from graders.grade import grade
from graders.kernel import LocalKernelLauncher
from graders.options import GradeOptions


def kgrade(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graders", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_web_page_is_reported_ungradable_with_both_files_written(tmp_path: Path) -> None:
    page = CASES / "html_saved_as_ipynb.ipynb"
    done = kgrade("grade", page, "--out", tmp_path)
    assert done.returncode == EXIT_OK, done.stderr
    result = json.loads((tmp_path / "html_saved_as_ipynb.json").read_text())
    assert result["status"] == "ungradable"
    assert result["score"] is None
    assert "html_saved_as_ipynb.ipynb" in result["message"]
    assert "Download" in result["message"]
    assert "not gradable" in done.stdout
    assert (tmp_path / "html_saved_as_ipynb.html").read_text().startswith("<!DOCTYPE html>")


def test_fail_under_turns_a_low_score_into_exit_code_1(tmp_path: Path) -> None:
    page = CASES / "html_saved_as_ipynb.ipynb"
    done = kgrade("grade", page, "--out", tmp_path, "--fail-under", "1")
    assert done.returncode == EXIT_BELOW_THRESHOLD


def test_json_flag_prints_the_result_alone_on_stdout(tmp_path: Path) -> None:
    done = kgrade("grade", CASES / "html_saved_as_ipynb.ipynb", "--out", tmp_path, "--json")
    assert json.loads(done.stdout)["status"] == "ungradable"


def test_a_missing_notebook_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    done = kgrade("grade", tmp_path / "nowhere.ipynb", "--out", tmp_path)
    assert done.returncode == EXIT_USAGE
    assert "nowhere.ipynb" in done.stdout + done.stderr


def test_an_unknown_exercise_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    done = kgrade("grade", REFERENCE, "--exercise", "regression-9", "--out", tmp_path)
    assert done.returncode == EXIT_USAGE
    assert "classification" in done.stdout + done.stderr


def test_a_missing_data_file_is_a_usage_error(tmp_path: Path) -> None:
    done = kgrade("grade", REFERENCE, "--data", tmp_path / "none.csv", "--out", tmp_path)
    assert done.returncode == EXIT_USAGE
    assert "none.csv" in done.stdout + done.stderr


def test_reference_earns_full_marks_from_the_command_line_on_the_course_data(
    tmp_path: Path,
) -> None:
    done = kgrade("grade", REFERENCE, "--data", REAL_DATA, "--out", tmp_path)
    assert done.returncode == EXIT_OK, done.stderr
    result = json.loads((tmp_path / "classification.json").read_text())
    assert result["status"] == "graded"
    assert result["score"] == result["max_score"]
    assert result["harness"]["data_file"] == REAL_DATA.name


def test_a_kernel_that_cannot_start_is_an_error_not_a_zero(tmp_path: Path) -> None:
    launcher = LocalKernelLauncher(python=str(tmp_path / "no-python"))
    graded = grade(
        CASES / "keras3_correct.ipynb", GradeOptions(with_reference=False), launcher=launcher
    )
    assert graded.result.status == "error"
    assert graded.result.score is None
    assert "kernel" in (graded.result.message or "")
    assert _exit_code(graded.result, fail_under=None) == EXIT_HARNESS
