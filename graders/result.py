"""The result of grading one submission, and its JSON form.

The JSON layout is documented by ``result.schema.json`` beside this module; it only
grows by adding optional fields, and ``schema_version`` changes when it cannot.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1
Status = Literal["graded", "ungradable", "error"]
CellStatus = Literal["ok", "error", "timeout", "not-run"]


@dataclass(frozen=True)
class Number:
    """A figure the grader computed, beside the reference solution's."""

    yours: float
    reference: float | None = None


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    passed: bool
    points: int
    max_points: int
    message: str
    hint: str | None = None
    cell: int | None = None
    numbers: dict[str, Number] = field(default_factory=dict)


@dataclass(frozen=True)
class CellResult:
    """One code cell: its source and how its run ended."""

    index: int
    id: str
    source: str
    status: CellStatus
    error_name: str | None = None
    message: str | None = None
    hint: str | None = None
    traceback: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class HarnessFacts:
    kgrade: str
    python: str
    packages: dict[str, str]
    seed: int
    data_file: str | None
    data_sha256: str | None
    cell_timeout: float
    deadline: float
    stopped: str | None = None
    trace_problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    protections: dict[str, list[str]] | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """Everything kgrade concluded about one submission.

    ``score`` is None unless ``status`` is ``graded``: a notebook that could not be run,
    or a run the harness botched, never reads as a zero.
    """

    submission: str
    exercise: str
    status: Status
    score: int | None
    max_score: int
    harness: HarnessFacts
    checks: list[CheckResult] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    message: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def problems(self) -> list[CellResult]:
        """The cells that raised, timed out or never ran."""
        return [c for c in self.cells if c.status != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def write_json(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")


def schema_path() -> Path:
    """Where the JSON Schema of :class:`Result` lives."""
    return Path(__file__).with_name("result.schema.json")
