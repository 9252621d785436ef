"""How a notebook runs: time limits, failures that do not stop the run, no keyboard."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nbformat
import pytest

from graders.execute import Execution, execute_submission
from graders.kernel import LocalKernelLauncher
from graders.options import GradeOptions
from graders.trace import read_trace
from graders.workspace import workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "user_visit_duration.csv"


def run(sources: list[str], options: GradeOptions) -> tuple[Execution, int]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    with workspace(DATA, "user_visit_duration.csv") as ws:
        execution = asyncio.run(execute_submission(nb, ws, options, LocalKernelLauncher()))
        steps = len(read_trace(ws.trace_dir, execution.captures).steps)
    return execution, steps


@pytest.mark.slow
def test_a_cell_past_its_time_limit_is_stopped_and_later_cells_still_run() -> None:
    execution, steps = run(
        [
            "import time",
            "while True:\n    time.sleep(0.01)",
            "answer = 41 + 1",
            "input('epochs? ')",
            "import pandas as pd\nrows = len(pd.read_csv('../data/user_visit_duration.csv'))",
        ],
        GradeOptions(cell_timeout=3),
    )
    statuses = [c.status for c in execution.cells]
    assert statuses == ["ok", "timeout", "ok", "error", "ok"]
    assert execution.cells[3].error_name == "StdinNotImplementedError"
    assert execution.stopped is None
    assert steps == 5


@pytest.mark.slow
def test_the_notebook_deadline_leaves_later_cells_not_run() -> None:
    execution, _ = run(["import time"] + ["time.sleep(2)"] * 5, GradeOptions(deadline=5))
    statuses = [c.status for c in execution.cells]
    assert execution.stopped == "deadline"
    assert statuses[0] == "ok"
    assert statuses[-1] == "not-run"
    assert all(c.reason == "deadline" for c in execution.cells if c.status == "not-run")
