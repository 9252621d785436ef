"""The reference earns full marks, the untouched exercise earns nothing, grading repeats."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import DATASETS
from corpus import Graded

from graders.exercises import get_exercise


@pytest.mark.parametrize("label", DATASETS)
def test_reference_solution_earns_full_marks(corpus: dict[str, Graded], label: str) -> None:
    result = corpus[f"reference@{label}"].result
    failed = [c["message"] for c in result["checks"] if not c["passed"]]
    assert result["status"] == "graded"
    assert failed == []
    assert result["score"] == result["max_score"] > 0


@pytest.mark.parametrize("label", DATASETS)
def test_untouched_exercise_runs_to_the_end_and_earns_nothing(
    corpus: dict[str, Graded], label: str
) -> None:
    result = corpus[f"exercise@{label}"].result
    rubric = get_exercise("classification").rubric
    assert result["status"] == "graded"
    assert result["harness"]["stopped"] is None
    assert result["harness"]["trace_problems"] == []
    assert [c["id"] for c in result["checks"] if c["passed"]] == []
    assert result["score"] <= rubric.untouched_max_score
    stubs = [c for c in result["cells"] if c["error_name"] == "NotImplementedError"]
    assert stubs and all("placeholder" in c["hint"] for c in stubs)


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: without_timings(v) for k, v in value.items() if k not in ("duration_s", "timings")
        }
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_grading_the_same_notebook_twice_gives_the_same_result(
    corpus: dict[str, Graded],
) -> None:
    first = corpus["case:keras3_correct.ipynb@stand-in"].result
    second = corpus["again:keras3_correct.ipynb@stand-in"].result
    assert without_timings(first) == without_timings(second)
    assert first["checks"][5]["numbers"], "the comparison must include computed figures"


def test_reference_figures_stand_beside_the_students(corpus: dict[str, Graded]) -> None:
    check = corpus["case:mse_loss.ipynb@course"].check("trained-accuracy")
    accuracy = check["numbers"]["accuracy"]
    assert 0 < accuracy["yours"] <= 1
    assert accuracy["reference"] is not None and 0.7 <= accuracy["reference"] <= 1
