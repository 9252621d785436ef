"""pytest plugin: ``pytest --kgrade reference/`` grades notebooks as test items.

Each notebook becomes one test item per check of its exercise's rubric; the notebook is
graded once, when its first item runs, and every item reads that result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from graders.result import Result


class CheckFailed(Exception):
    """A check of the rubric did not pass; its message is the failure text."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kgrade")
    group.addoption(
        "--kgrade",
        action="store_true",
        help="collect .ipynb files as kgrade submissions, one item per check",
    )
    group.addoption(
        "--kgrade-data",
        type=Path,
        default=None,
        help="grade against this copy of the exercise's dataset",
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.suffix == ".ipynb" and parent.config.getoption("kgrade"):
        notebook: NotebookFile = NotebookFile.from_parent(parent, path=file_path)
        return notebook
    return None


class NotebookFile(pytest.File):
    """A notebook graded by its exercise's rubric."""

    _result: Result | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from graders.exercises import find_exercise

        exercise = find_exercise(None, self.path)
        for check in exercise.rubric.checks:
            yield CheckItem.from_parent(self, name=check.id)

    def result(self) -> Result:
        if self._result is None:
            from graders.grade import grade
            from graders.options import GradeOptions

            data = self.config.getoption("kgrade_data")
            self._result = grade(self.path, GradeOptions(data=data)).result
        return self._result


class CheckItem(pytest.Item):
    """One check of the rubric on one notebook."""

    def runtest(self) -> None:
        assert isinstance(self.parent, NotebookFile)
        result = self.parent.result()
        if result.status != "graded":
            raise CheckFailed(
                f"{result.submission} was not graded ({result.status}): {result.message}"
            )
        check = next(c for c in result.checks if c.id == self.name)
        if not check.passed:
            hint = f"\nHint: {check.hint}" if check.hint else ""
            raise CheckFailed(f"{check.id}: {check.message}{hint}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"
