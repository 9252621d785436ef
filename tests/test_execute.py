"""How a notebook runs: time limits, failures that do not stop the run, no keyboard."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager

from graders.execute import Execution, execute_submission
from graders.kernel import LocalKernelLauncher
from graders.options import GradeOptions
from graders.trace import read_trace
from graders.workspace import Workspace, workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "user_visit_duration.csv"


def run(sources: list[str], options: GradeOptions) -> tuple[Execution, int]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    with workspace(DATA, "user_visit_duration.csv") as ws:
        execution = asyncio.run(execute_submission(nb, ws, options, LocalKernelLauncher()))
        steps = len(read_trace(ws.captured, execution.captures).steps)
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


class FirstKernelDies(LocalKernelLauncher):
    """Starts real kernels, but kills the first one before it can answer."""

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    async def start(self, ws: Workspace, *, seed: int) -> AsyncKernelManager:
        km = await super().start(ws, seed=seed)
        self.starts += 1
        if self.starts == 1:
            await km.signal_kernel(signal.SIGKILL)
        return km


@pytest.mark.slow
def test_a_kernel_that_dies_before_it_answers_is_started_once_more() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = 41 + 1")]
    launcher = FirstKernelDies()
    with workspace(DATA, "user_visit_duration.csv") as ws:
        execution = asyncio.run(execute_submission(nb, ws, GradeOptions(), launcher))
    assert launcher.starts == 2
    assert [c.status for c in execution.cells] == ["ok"]
