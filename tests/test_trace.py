"""What the grader believes of a trace: only what the harness asked for, in the shape the
probe writes it, and no more of it than its memory budget allows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graders import trace
from graders.trace import read_trace

TOKEN = "one-time"


def write_step(folder: Path, number: int, blobs: dict[str, np.ndarray], **record: Any) -> None:
    base = {"token": TOKEN, "step": number, "cell": number - 1, "models": [], "frames": []}
    base |= {"arrays": {}, "errors": []}
    (folder / f"step-{number:04d}.json").write_text(json.dumps(base | record))
    np.savez(folder / f"step-{number:04d}.npz", **blobs)


def frame(shape: list[int]) -> dict[str, Any]:
    return {"names": ["df"], "shape": shape, "columns": ["Buy"], "data": {"Buy": "f0/c0"}}


def test_a_well_formed_step_is_read(tmp_path: Path) -> None:
    write_step(tmp_path, 1, {"f0__c0": np.zeros(3)}, frames=[frame([3, 1])])
    read = read_trace(tmp_path, {1: TOKEN})
    assert [s.number for s in read.steps] == [1]
    assert read.steps[0].frames[0].shape == (3, 1)
    assert read.problems == ()


@pytest.mark.parametrize(
    ("shape", "column"),
    [([], np.zeros(3)), ([3], np.zeros(3)), ([3, 1], np.zeros((3, 2))), ([4, 1], np.zeros(3))],
)
def test_a_frame_not_shaped_as_rows_by_columns_drops_its_step(
    tmp_path: Path, shape: list[int], column: np.ndarray
) -> None:
    write_step(tmp_path, 1, {"f0__c0": column}, frames=[frame(shape)])
    read = read_trace(tmp_path, {1: TOKEN})
    assert read.steps == ()
    assert len(read.problems) == 1


def test_a_step_the_probe_found_tampered_with_is_dropped_and_says_why(tmp_path: Path) -> None:
    write_step(tmp_path, 1, {})
    write_step(tmp_path, 2, {}, tampered=["a profiling or tracing hook is set"])
    read = read_trace(tmp_path, {1: TOKEN, 2: TOKEN})
    assert [s.number for s in read.steps] == [1]
    assert (
        "interfered with kgrade's recording (a profiling or tracing hook is set)"
        in (read.problems[0])
    )


def test_steps_past_the_memory_budget_are_listed_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "MAX_TRACE_NPZ_BYTES", 20_000)
    for number in (1, 2, 3):
        write_step(tmp_path, number, {"a__X": np.zeros(1000)})  # about 8 kB each
    read = read_trace(tmp_path, {1: TOKEN, 2: TOKEN, 3: TOKEN})
    assert [s.number for s in read.steps] == [1, 2]
    assert read.problems == ("step-0003: not read, the notebook's arrays passed 0 MB in all",)
