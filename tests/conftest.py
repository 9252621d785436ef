"""Shared fixtures: the notebooks every test reads, graded once per session."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus import Graded, Job, run_jobs
from hostile_generated import generate

from graders.sandbox import bubblewrap

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


# Hostile notebooks run with short limits: what they test is that the limits hold.
HOSTILE_CELL_TIMEOUT = 10.0
HOSTILE_DEADLINE = 60.0
GENERATED = Path(tempfile.gettempdir()) / f"kgrade-generated-{os.getpid()}"


def hostile_submissions() -> dict[str, Path]:
    """Every hostile submission by name: the committed ones and those written on demand."""
    if bubblewrap() is None:
        # Without the sandbox's walls these notebooks would really do harm.
        return {}
    paths = {name: HOSTILE / name for name in expectations(HOSTILE)}
    generated = {name: GENERATED / name for name in paths if not paths[name].exists()}
    if generated and not all(p.exists() for p in generated.values()):
        written = generate(GENERATED)
        assert set(generated) <= set(written), "a hostile case has neither file nor generator"
    return {**paths, **generated}


def corpus_jobs() -> list[Job]:
    # The references go first: grading them fills the cache of reference figures once.
    jobs = [Job(f"reference@{label}", REFERENCE, data) for label, data in DATASETS.items()]
    # Cold kernels for the references and the hostile notebooks graded alone; the rest
    # fork warm kernels, as a batch does (the hostile ones meet warm kernels in a batch).
    for label, data in DATASETS.items():
        jobs.append(Job(f"exercise@{label}", EXERCISE, data, warm=True))
        jobs += [
            Job(f"case:{name}@{label}", CASES / name, data, warm=True)
            for name in expectations(CASES)
        ]
    jobs += [
        Job(f"scenario:{name}", SCENARIOS / name, warm=True) for name in expectations(SCENARIOS)
    ]
    jobs += [
        Job(f"hostile:{name}", path, cell_timeout=HOSTILE_CELL_TIMEOUT, deadline=HOSTILE_DEADLINE)
        for name, path in hostile_submissions().items()
    ]
    jobs += [
        Job(f"regression:{name}", REGRESSION / name, exercise="regression", warm=True)
        for name in expectations(REGRESSION)
    ]
    jobs.append(
        Job("again:keras3_correct.ipynb@stand-in", CASES / "keras3_correct.ipynb", warm=True)
    )
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


@pytest.fixture(scope="session", autouse=True)
def generated_submissions() -> Iterator[Path]:
    """The folder of generated hostile submissions, removed after the session."""
    yield GENERATED
    shutil.rmtree(GENERATED, ignore_errors=True)
