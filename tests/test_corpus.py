"""Every notebook of the corpus reaches the verdicts its expected.json gives it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from conftest import CASES, DATASETS, REGRESSION, SCENARIOS, expectations
from corpus import Graded


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def assert_verdicts(graded: Graded, expected: dict[str, Any]) -> None:
    result = graded.result
    assert result["status"] == expected["status"], result.get("message")
    if "stopped" in expected:
        assert result["harness"]["stopped"] == expected["stopped"]
    verdicts = {c["id"]: c["passed"] for c in result["checks"]}
    for check_id, want in expected.get("checks", {}).items():
        if want == "any":
            continue
        assert verdicts[check_id] == (want == "pass"), graded.check(check_id)["message"]
    text = visible_text(graded.report).lower()
    for mention in expected.get("feedback_mentions", []):
        words = mention.lower().split("|")
        assert any(w in text for w in words), f"the report mentions none of {words}"


CASE_PARAMS = [
    pytest.param(name, label, id=f"{name}@{label}")
    for name in expectations(CASES)
    for label in DATASETS
]
SCENARIO_PARAMS = list(expectations(SCENARIOS))


@pytest.mark.parametrize(("name", "label"), CASE_PARAMS)
def test_shared_case_reaches_its_expected_verdicts(
    corpus: dict[str, Graded], name: str, label: str
) -> None:
    assert_verdicts(corpus[f"case:{name}@{label}"], expectations(CASES)[name])


@pytest.mark.parametrize("name", SCENARIO_PARAMS)
def test_scenario_notebook_reaches_its_expected_verdicts(
    corpus: dict[str, Graded], name: str
) -> None:
    assert_verdicts(corpus[f"scenario:{name}"], expectations(SCENARIOS)[name])


@pytest.mark.parametrize("name", list(expectations(REGRESSION)))
def test_regression_scenario_reaches_its_expected_verdicts(
    corpus: dict[str, Graded], name: str
) -> None:
    assert_verdicts(corpus[f"regression:{name}"], expectations(REGRESSION)[name])


def test_the_corpus_is_not_empty() -> None:
    assert len(CASE_PARAMS) >= 2 * 13
    assert len(SCENARIO_PARAMS) >= 8
