"""The gradebook keeps one row per key, written whole or not at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from graders.errors import UsageError
from graders.gradebook import Gradebook, Key
from graders.result import CheckResult, HarnessFacts, Result

FACTS = HarnessFacts(
    kgrade="0.1.0",
    python="3.11",
    packages={},
    seed=1,
    data_file="d.csv",
    data_sha256="0" * 64,
    cell_timeout=30.0,
    deadline=600.0,
    duration_s=2.5,
)
KEY = Key(student="alice", sha256="a" * 64, kgrade="0.1.0", settings="s1")


def result(status: str = "graded", score: int | None = 3) -> Result:
    checks = [
        CheckResult(id="one", title="One", passed=True, points=1, max_points=1, message="ok"),
        CheckResult(id="two", title="Two", passed=True, points=2, max_points=2, message="ok"),
    ]
    return Result(
        submission="alice.ipynb",
        exercise="classification",
        status=status,  # type: ignore[arg-type]
        score=score,
        max_score=3,
        harness=FACTS,
        checks=checks if status == "graded" else [],
        message=None if status == "graded" else "kgrade failed",
    )


def test_a_row_holds_the_student_file_hash_status_points_duration_and_when(
    tmp_path: Path,
) -> None:
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(KEY, result(), submission="alice.ipynb", lms_id="12", attempts=1)
        [row] = book.all_rows()
    assert (row.student, row.submission, row.key.sha256, row.lms_id) == (
        "alice",
        "alice.ipynb",
        "a" * 64,
        "12",
    )
    assert (row.status, row.score, row.max_score, row.points) == (
        "graded",
        3,
        3,
        {"one": 1, "two": 2},
    )
    assert row.duration_s == 2.5
    assert row.result["checks"][1]["id"] == "two"


def test_recording_a_key_again_replaces_its_row_and_its_points(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(KEY, result("error", None), submission="a", lms_id=None, attempts=2)
        book.record(KEY, result(), submission="a", lms_id=None, attempts=1)
        other = Key("bob", "b" * 64, "0.1.0", "s1")
        book.record(other, result(), submission="b", lms_id=None, attempts=1)
        assert [row.student for row in book.all_rows()] == ["alice", "bob"]
        assert [row.status for row in book.rows([other, KEY])] == ["graded", "graded"]
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        assert db.execute("SELECT count(*) FROM points").fetchone() == (4,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_error_is_not_a_result_a_rerun_keeps(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(KEY, result("error", None), submission="a", lms_id=None, attempts=2)
        assert not book.has_result(KEY)
        book.record(KEY, result(), submission="a", lms_id=None, attempts=1)
        assert book.has_result(KEY)
        assert not book.has_result(Key("alice", "a" * 64, "0.2.0", "s1"))


def test_a_file_that_is_not_a_gradebook_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "gradebook.sqlite"
    path.write_text("not a database at all, just some text that is long enough " * 20)
    with pytest.raises(UsageError, match="gradebook cannot be opened"):
        Gradebook(path)
