"""The class a benchmark grades: N submissions copied round-robin from known notebooks.

The sources are the reference solution and the course's shared cases (correct ones,
wrong ones, one that loops forever, one that is not a notebook at all). Student ``i`` gets
source ``i mod len(sources)`` under the name ``student-NNN.ipynb``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT / "reference" / "classification.ipynb"
CASES = PROJECT.parent / "shared" / "cases"
DATASET = PROJECT / "data" / "user_visit_duration.csv"


@dataclass(frozen=True)
class Submission:
    student: str
    source: Path


def sources(with_cases: bool) -> list[Path]:
    """The reference, then the shared cases in name order (when asked for and present)."""
    cases = sorted(CASES.glob("*.ipynb")) if with_cases and CASES.is_dir() else []
    return [REFERENCE, *cases]


def round_robin(count: int, notebooks: list[Path]) -> list[Submission]:
    return [
        Submission(f"student-{index + 1:03d}", notebooks[index % len(notebooks)])
        for index in range(count)
    ]


def notebooks_only(folder: Path, submissions: list[Submission]) -> list[Path]:
    """One notebook per student in ``folder``, nothing else: what ``kgrade batch`` reads."""
    folder.mkdir(parents=True)
    paths = []
    for submission in submissions:
        path = folder / f"{submission.student}.ipynb"
        shutil.copyfile(submission.source, path)
        paths.append(path)
    return paths


def with_dataset(course: Path, submissions: list[Submission]) -> list[Path]:
    """The notebooks in ``course/work`` beside the dataset, for a grader that provides none.

    The cases read ``user_visit_duration.csv``, ``data/user_visit_duration.csv`` or
    ``../data/user_visit_duration.csv``; all three resolve from ``course/work``.
    """
    work = course / "work"
    paths = notebooks_only(work, submissions)
    place_dataset(work)
    place_dataset(course, beside=False)
    return paths


def place_dataset(folder: Path, *, beside: bool = True) -> None:
    """Copy the dataset into ``folder/data/`` and, with ``beside``, into ``folder`` too."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATASET, folder / "data" / DATASET.name)
    if beside:
        shutil.copyfile(DATASET, folder / DATASET.name)


def kernelspec_path(root: Path, python: str) -> Path:
    """A JUPYTER_PATH folder whose ``python3`` kernel runs ``python``."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    kernel = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return root
