"""What the student's HTML report shows, built from hand-made results (no kernel runs)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from graders.grade import Graded
from graders.report import code_spans, number, render_report, seconds, write_report
from graders.result import CellResult, CheckResult, HarnessFacts, Number, Result

# A 1x1 transparent PNG: enough to see that figures are embedded as data.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)
HOSTILE = "model.compile(SGD(lr=0.5))  # </pre><script>alert(1)</script>"

FACTS = HarnessFacts(
    kgrade="0.1.0",
    python="3.11.2",
    packages={"keras": "3.5.0", "numpy": "1.26.4"},
    seed=42,
    data_file="user_visit_duration.csv",
    data_sha256="9f2c1e0b7a6d5c4b3a2918",
    cell_timeout=60.0,
    deadline=600.0,
    trace_problems=["the trace of cell 4 could not be read"],
    duration_s=48.3,
)
CELLS = [
    CellResult(0, "a", "import pandas as pd\ndf = pd.read_csv('data.csv')", "ok"),
    CellResult(
        1,
        "b",
        HOSTILE,
        "error",
        error_name="ValueError",
        message="Argument(s) not recognized: {'lr': 0.5}",
        hint="Write `learning_rate` instead of `lr`.",
        traceback="Traceback (most recent call last):\n  deep inside keras\nValueError: lr",
    ),
    CellResult(2, "c", "history = model.fit(X, y, epochs=25)", "not-run", message="not run"),
]
CHECKS = [
    CheckResult("data-loaded", "Load the dataset", True, 1, 1, "Loaded 100 rows.", cell=0),
    CheckResult(
        "binary-crossentropy-loss",
        "Binary cross-entropy loss",
        False,
        0,
        1,
        "The model was never compiled.",
        hint="Compile with the binary cross-entropy loss.",
        cell=1,
    ),
    CheckResult(
        "trained-accuracy",
        "Train on all the data",
        False,
        0,
        2,
        "The model classifies only 62% of the visits correctly.",
        hint="Train for 25 epochs.",
        cell=2,
        numbers={"accuracy": Number(0.6213, 0.84), "parameters": Number(2.0)},
    ),
]
GRADED = Result(
    submission="jane_doe.ipynb",
    exercise="classification",
    status="graded",
    score=1,
    max_score=4,
    harness=FACTS,
    checks=CHECKS,
    cells=CELLS,
)


def render(result: Result = GRADED, figures: dict[int, list[str]] | None = None) -> str:
    return render_report(Graded(result, figures or {}))


def test_graded_report_shows_score_checks_and_failed_hints_only() -> None:
    passed_hint = "never shown for a passed check"
    checks = [replace(CHECKS[0], hint=passed_hint), *CHECKS[1:]]
    html = render(replace(GRADED, checks=checks))

    assert "1 / 4" in html
    assert "jane_doe.ipynb" in html and "classification" in html
    for check in CHECKS:
        assert check.id in html
        assert check.title in html
    assert "Compile with the binary cross-entropy loss." in html
    assert "Train for 25 epochs." in html
    assert passed_hint not in html
    assert html.count("How to fix") == 3  # two failed checks and one cell that raised


def test_check_cards_show_the_students_cell_with_its_error() -> None:
    html = render()

    assert "Cell 1" in html and "pd.read_csv(&#39;data.csv&#39;)" in html
    assert "Cell 2" in html and "ValueError" in html
    assert "Argument(s) not recognized" in html
    assert "<details" in html and "deep inside keras" in html


def test_numbers_show_reference_only_when_there_is_one() -> None:
    html = render()

    assert "62%" in html and "84%" in html
    row = re.search(r"<td>parameters</td>.*?</tr>", html, re.S)
    assert row is not None
    assert "—" in row.group(0)


def test_cells_that_did_not_run_cleanly_are_listed() -> None:
    html = render()

    assert "Cells that did not run cleanly" in html
    assert 'id="cell-2"' in html and 'id="cell-3"' in html
    assert "not run" in html and "did not reach this cell" in html
    assert "<code>learning_rate</code>" in html


def test_clean_run_has_no_problems_section() -> None:
    cells = [replace(cell, status="ok") for cell in CELLS]
    html = render(replace(GRADED, cells=cells))

    assert "Cells that did not run cleanly" not in html


def test_student_code_with_script_tags_is_escaped() -> None:
    html = render()

    assert "<script" not in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_text_in_messages_and_tracebacks_is_escaped() -> None:
    cell = replace(CELLS[1], message="<img src=x onerror=alert(1)>", traceback="<script>x</script>")
    html = render(replace(GRADED, cells=[CELLS[0], cell, CELLS[2]], submission="<b>.ipynb"))

    assert "<script" not in html
    assert "<img src=x" not in html
    assert "<b>.ipynb" not in html


def test_ungradable_submission_has_no_score() -> None:
    message = "jane.ipynb is empty (0 bytes): save it in Jupyter and submit it again."
    result = replace(GRADED, status="ungradable", score=None, checks=[], cells=[], message=message)
    html = render(result)

    assert "could not be graded" in html
    assert message in html
    assert "/ 4" not in html
    assert 'class="total"' not in html


def test_grader_failure_says_it_is_not_a_zero() -> None:
    message = "kgrade failed: KeyError: 'accuracy'"
    result = replace(GRADED, status="error", score=None, checks=[], cells=[], message=message)
    html = render(result)

    assert "grader itself failed" in html
    assert "This is not a zero" in " ".join(html.split())
    assert "course staff" in html
    assert "kgrade failed: KeyError: &#39;accuracy&#39;" in html
    assert 'class="total"' not in html


def test_every_figure_is_embedded_once_as_a_data_uri() -> None:
    # Cell 0 is shown in a check card; cell 5 is not, so it goes to "Your plots".
    other = PNG.replace("A", "B", 1)
    html = render(figures={0: [PNG], 5: [other]})

    assert html.count(f'src="data:image/png;base64,{PNG}"') == 1
    assert html.count(f'src="data:image/png;base64,{other}"') == 1
    assert "Your plots" in html


def test_a_cell_shown_by_two_checks_draws_its_plots_once() -> None:
    twice = replace(CHECKS[0], id="again", title="Again")
    html = render(replace(GRADED, checks=[CHECKS[0], twice]), figures={0: [PNG]})

    assert html.count("data:image/png;base64,") == 1
    assert "Your plots" not in html


def test_page_is_self_contained() -> None:
    html = render(figures={0: [PNG]})

    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert '<meta name="viewport"' in html


def test_footer_shows_the_harness_facts() -> None:
    html = render()

    assert "kgrade 0.1.0" in html
    assert "user_visit_duration.csv" in html and "9f2c1e0b7a6d" in html
    assert "9f2c1e0b7a6d5c" not in html
    assert "keras 3.5.0" in html
    assert "48.3 s" in html and "1 min" in html and "10 min" in html
    assert "the trace of cell 4 could not be read" in html


def test_write_report_writes_utf8_html(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(Graded(GRADED), path)

    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("value", "name", "shown"),
    [(0.8125, "accuracy", "81%"), (0.5, "test_accuracy", "50%"), (2.0, "parameters", "2")],
)
def test_numbers_read_as_percentages_or_counts(value: float, name: str, shown: str) -> None:
    assert number(value, name) == shown


def test_durations_read_in_seconds_or_minutes() -> None:
    assert [seconds(v) for v in (4.21, 60.0, 185.0)] == ["4.2 s", "1 min", "3 min 5 s"]


def test_backticks_become_code_after_escaping() -> None:
    assert str(code_spans("use `a<b` here")) == "use <code>a&lt;b</code> here"
