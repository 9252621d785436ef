"""What a rubric is: named checks worth points, each judging the evidence of one run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nbformat

from graders.dataset import Dataset
from graders.execute import Execution
from graders.trace import Trace


@dataclass(frozen=True)
class Evidence:
    """Everything a check may look at: the notebook, how it ran, the trace, the data.

    ``memo`` lets the checks of one rubric share work they derive from the rest.
    """

    notebook: nbformat.NotebookNode
    execution: Execution
    trace: Trace
    dataset: Dataset
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """A check's verdict on one submission."""

    passed: bool
    message: str
    hint: str | None = None
    cell: int | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One thing the exercise asks for.

    Attributes:
        id: Stable identifier used in results and gradebooks.
        title: What the student is asked to do, in a few words.
        points: What the check is worth.
        judge: Computes the outcome from the evidence alone.
        locate: Pattern of the cell that does this step, used to show the student's code
            when the trace does not name a cell.
    """

    id: str
    title: str
    points: int
    judge: Callable[[Evidence], Outcome]
    locate: str


@dataclass(frozen=True)
class Rubric:
    """The checks of one exercise and the dataset they read.

    Attributes:
        data_file: The file name the notebook reads the dataset under.
        arrays: Variables the trace records by name after every cell (models and
            DataFrames are recorded whatever their names).
        untouched_max_score: The most an untouched exercise notebook may score.
    """

    exercise: str
    checks: tuple[Check, ...]
    data_file: str
    feature: str
    target: str
    thresholds: Mapping[str, float]
    arrays: tuple[str, ...] = ()
    untouched_max_score: int = 0

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)
