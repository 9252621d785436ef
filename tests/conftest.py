"""Shared fixtures: the notebooks every test reads, graded once per session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus import Graded, Job, run_jobs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CASES = SHARED / "cases"
REAL_DATA = SHARED / "data" / "user_visit_duration.csv"
SCENARIOS = ROOT / "tests" / "notebooks"
HOSTILE = SCENARIOS / "hostile"
REGRESSION = SCENARIOS / "regression"
REFERENCE = ROOT / "reference" / "classification.ipynb"
EXERCISE = ROOT / "exercises" / "classification.ipynb"
DATASETS = {"stand-in": None, "course": REAL_DATA}


def expectations(folder: Path) -> dict[str, Any]:
    if not (folder / "expected.json").is_file():
        return {}
    expected: dict[str, Any] = json.loads((folder / "expected.json").read_text())
    return expected


def corpus_jobs() -> list[Job]:
    # The references go first: grading them fills the cache of reference figures once.
    jobs = [Job(f"reference@{label}", REFERENCE, data) for label, data in DATASETS.items()]
    for label, data in DATASETS.items():
        jobs.append(Job(f"exercise@{label}", EXERCISE, data))
        jobs += [Job(f"case:{name}@{label}", CASES / name, data) for name in expectations(CASES)]
    jobs += [Job(f"scenario:{name}", SCENARIOS / name) for name in expectations(SCENARIOS)]
    jobs += [
        Job(f"hostile:{name}", HOSTILE / name, cell_timeout=20) for name in expectations(HOSTILE)
    ]
    jobs += [
        Job(f"regression:{name}", REGRESSION / name, exercise="regression")
        for name in expectations(REGRESSION)
    ]
    jobs.append(Job("again:keras3_correct.ipynb@stand-in", CASES / "keras3_correct.ipynb"))
    return jobs


@pytest.fixture(scope="session", autouse=True)
def kgrade_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache of reference figures, shared with the worker processes."""
    cache = tmp_path_factory.mktemp("kgrade-cache")
    previous = os.environ.get("KGRADE_CACHE_DIR")
    os.environ["KGRADE_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["KGRADE_CACHE_DIR"]
    else:
        os.environ["KGRADE_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def corpus(kgrade_cache: Path) -> dict[str, Graded]:
    """Every notebook the tests read, graded once: key → result and report."""
    if not CASES.is_dir() or not REAL_DATA.is_file():
        pytest.fail(
            f"the course's shared cases and data are expected beside the project, in {SHARED}"
        )
    return run_jobs(corpus_jobs())
