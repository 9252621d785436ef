"""The exercise registry: exercises are found from the reference notebooks that exist.

An exercise NAME is ``reference/NAME.ipynb`` (the solution), ``exercises/NAME.ipynb``
(the student version), a dataset in ``data/`` and the rubric ``graders.rubrics.NAME``.
Adding an exercise adds those files; no harness module changes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from graders.errors import UsageError
from graders.rubric import Rubric


@dataclass(frozen=True)
class Exercise:
    name: str
    rubric: Rubric
    reference: Path
    student: Path
    data: Path


def shipped(kind: str) -> Path:
    """The folder ``kind`` (reference, exercises, data, templates) of this installation.

    A wheel carries the folders inside the package; a source checkout has them at the
    top of the repository.
    """
    inside = Path(str(resources.files("graders"))) / "_shipped" / kind
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / kind


def course_root() -> Path:
    """The folder holding this installation's reference/, exercises/ and data/."""
    return shipped("reference").parent


def exercise_names(root: Path | None = None) -> list[str]:
    """Names of the exercises that have a reference notebook under ``root``."""
    return sorted(p.stem for p in (root or course_root()).joinpath("reference").glob("*.ipynb"))


def get_exercise(name: str, root: Path | None = None) -> Exercise:
    """The exercise called ``name``, its notebooks and data taken from ``root``.

    Raises:
        UsageError: There is no such exercise, or its rubric is missing.
    """
    root = root or course_root()
    known = exercise_names(root)
    if name not in known:
        raise UsageError(
            f"there is no exercise {name!r}",
            advice=f"Known exercises: {', '.join(known) or 'none'}.",
        )
    try:
        module = importlib.import_module(f"graders.rubrics.{name}")
    except ModuleNotFoundError:
        raise UsageError(
            f"the exercise {name!r} has no rubric",
            advice=f"Add graders/rubrics/{name}.py defining RUBRIC.",
        ) from None
    rubric: Rubric = module.RUBRIC
    return Exercise(
        name=name,
        rubric=rubric,
        reference=root / "reference" / f"{name}.ipynb",
        student=root / "exercises" / f"{name}.ipynb",
        data=root / "data" / rubric.data_file,
    )


def find_exercise(name: str | None, notebook: Path, root: Path | None = None) -> Exercise:
    """The exercise called ``name``, or when None, the one ``notebook`` is for.

    Without a name, the notebook's file name, then the dataset file it mentions, then the
    exercise name it mentions tell the exercise; a course with one exercise needs neither.

    Raises:
        UsageError: No name was given and the notebook's exercise cannot be told.
    """
    if name is not None:
        return get_exercise(name, root)
    known = exercise_names(root)
    if notebook.stem in known:
        return get_exercise(notebook.stem, root)
    if len(known) == 1:
        return get_exercise(known[0], root)
    text = _text_of(notebook)
    exercises = [get_exercise(n, root) for n in known]
    for candidates in (
        [e for e in exercises if e.rubric.data_file in text],
        [e for e in exercises if e.name in text],
    ):
        if len(candidates) == 1:
            return candidates[0]
    raise UsageError(
        f"cannot tell which exercise {notebook.name} is for",
        advice=f"Pass --exercise with one of: {', '.join(known)}.",
    )


def _text_of(notebook: Path, limit: int = 5 * 1024 * 1024) -> str:
    """The first bytes of a file as text, for telling its exercise; empty when unreadable."""
    try:
        with notebook.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""
