"""Settings of one grading run, as a plain frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from graders.sandbox import SandboxSettings

DEFAULT_SEED = 20181
DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_DEADLINE = 600.0

# How a batch's local workers get their kernels: forked from a warm pool, or started cold.
Kernels = Literal["warm", "cold"]


@dataclass(frozen=True)
class GradeOptions:
    """How one submission is graded.

    Attributes:
        exercise: Name of the exercise whose rubric applies; ``None`` picks the exercise
            named like the notebook, else the only exercise there is.
        data: CSV the submission runs against; ``None`` means the exercise's own data file.
        seed: Seed for every random number generator in the kernel.
        cell_timeout: Seconds one cell may run before it is interrupted.
        deadline: Seconds the whole notebook may run; later cells are not run.
        with_reference: Put the reference solution's numbers beside the student's.
        sandbox: Limits and walls around the kernel, and the caps on its output.
    """

    exercise: str | None = None
    data: Path | None = None
    seed: int = DEFAULT_SEED
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    deadline: float = DEFAULT_NOTEBOOK_DEADLINE
    with_reference: bool = True
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
