"""Hostile and broken submissions: each ends with the right outcome, in bounded time,
leaving nothing behind, and none of them changes another student's grade."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import (
    HOSTILE,
    HOSTILE_CELL_TIMEOUT,
    HOSTILE_DEADLINE,
    REFERENCE,
    ROOT,
    expectations,
    hostile_submissions,
)
from corpus import Graded
from test_corpus import assert_verdicts

from graders.sandbox import bubblewrap

pytestmark = pytest.mark.skipif(
    bubblewrap() is None, reason="hostile notebooks run only inside the sandbox's walls"
)

# Every file or process a hostile notebook tries to leave behind carries this mark.
ESCAPE = "kgrade-escape"
# Start-up, the last trace capture and the report come on top of the notebook's deadline.
MARGIN_S = 60.0
CASES = list(expectations(HOSTILE))


@pytest.mark.parametrize("name", CASES)
def test_hostile_submission_reaches_its_expected_outcome(
    corpus: dict[str, Graded], name: str
) -> None:
    graded = corpus[f"hostile:{name}"]
    assert_verdicts(graded, expectations(HOSTILE)[name])
    assert "<html" in graded.report.lower()


@pytest.mark.parametrize("name", CASES)
def test_hostile_submission_is_graded_within_its_deadline(
    corpus: dict[str, Graded], name: str
) -> None:
    took = corpus[f"hostile:{name}"].result["harness"]["duration_s"]
    assert took <= HOSTILE_DEADLINE + MARGIN_S


def test_the_hostile_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_no_hostile_submission_leaves_a_process_or_a_file_behind(
    corpus: dict[str, Graded],
) -> None:
    assert corpus, "the corpus was graded"
    escaped = [
        " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
        if ESCAPE in " ".join(p.info["cmdline"] or [])
    ]
    assert escaped == []
    assert escaped_files() == []


def escaped_files() -> list[str]:
    """Files marked as escaped in the places a kernel could try to write."""
    places = [Path(os.sep, "tmp"), Path(os.sep, "var", "tmp"), Path(os.sep, "dev", "shm")]
    places += [Path.home(), ROOT, ROOT.parent]
    found = []
    for place in places:
        if not place.is_dir():
            continue
        for entry in _walk(place, depth=3):
            if ESCAPE in entry.name:
                found.append(str(entry))
    return found


def _walk(folder: Path, depth: int) -> list[Path]:
    entries = []
    try:
        children = list(folder.iterdir())
    except OSError:
        return entries
    for child in children:
        entries.append(child)
        if depth > 1 and child.is_dir() and not child.is_symlink() and child.name != ".venv":
            entries += _walk(child, depth - 1)
    return entries


@pytest.mark.slow
def test_a_batch_of_the_hostile_corpus_and_ten_correct_submissions(
    tmp_path: Path, kgrade_cache: Path
) -> None:
    submissions = tmp_path / "class"
    submissions.mkdir()
    for name, path in hostile_submissions().items():
        shutil.copyfile(path, submissions / name)
    correct = [f"correct-{i:02d}" for i in range(1, 11)]
    for student in correct:
        shutil.copyfile(REFERENCE, submissions / f"{student}.ipynb")
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable, "-m", "graders", "batch", str(submissions), "--out", str(out),
            "--exercise", "classification", "--workers", "2", "--quiet",
            "--timeout", str(HOSTILE_CELL_TIMEOUT), "--deadline", str(HOSTILE_DEADLINE),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    # Student ids come from file names as an LMS names them, so look results up by file.
    results = {}
    for result_file in (out / "results").glob("*.json"):
        result = json.loads(result_file.read_text())
        report = (out / "reports" / f"{result_file.stem}.html").read_text()
        results[result["submission"]] = Graded(result, report)
    for student in correct:
        result = results[f"{student}.ipynb"].result
        assert (result["status"], result["score"]) == ("graded", result["max_score"])
    for name, want in expectations(HOSTILE).items():
        if not name.endswith(".ipynb"):
            assert name not in results, f"{name} is not a notebook and is listed as skipped"
            assert name in done.stdout + (out / "summary.html").read_text()
            continue
        assert_verdicts(results[name], want)
    assert escaped_files() == []
