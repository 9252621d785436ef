"""What the batch command shows while it runs: a bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from graders.gradebook import Key, Row
from graders.progress import BarProgress, LineProgress


def row(student: str, status: str = "graded", score: int | None = 12) -> Row:
    return Row(
        id=1,
        key=Key(student, "0" * 64, "0.1.0", "s"),
        submission=f"{student}.ipynb",
        lms_id=None,
        exercise="classification",
        status=status,  # type: ignore[arg-type]
        score=score,
        max_score=14,
        message=None,
        duration_s=8.4,
        graded_at="2024-01-01T00:00:00.000+00:00",
        attempts=1,
        points={},
        result={},
    )


def test_on_a_terminal_a_bar_counts_done_of_total_and_shows_the_time_left() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=120)
    with BarProgress(console) as progress:
        progress.started(total=3, resumed=1)
        progress.finished(row("alice"))
    shown = sink.getvalue()
    assert "2/3" in shown
    assert "ETA" in shown
    assert "alice" in shown


def test_elsewhere_each_submission_is_one_plain_line() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=False, width=40)
    with LineProgress(console) as progress:
        progress.started(total=2, resumed=0)
        progress.finished(row("alice"))
        progress.finished(row("a-student-with-a-rather-long-name", "error", None))
    assert sink.getvalue().splitlines() == [
        "2 submissions: 0 already graded, 2 to grade",
        "[1/2] alice 12/14 (8 s)",
        "[2/2] a-student-with-a-rather-long-name error (8 s)",
    ]
