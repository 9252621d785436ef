"""The reference solution's own figures, shown beside the student's in the report.

They come from grading the exercise's reference notebook with the same data and seed.
That costs one notebook run, so the figures are cached on disk, keyed by everything
they depend on: kgrade's version, the reference notebook, the data and the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from graders import __version__
from graders.dataset import Dataset
from graders.options import GradeOptions

if TYPE_CHECKING:
    from graders.exercises import Exercise

log = logging.getLogger(__name__)

Figures = dict[str, dict[str, float]]


def cache_dir() -> Path:
    """``$KGRADE_CACHE_DIR``, else the user's cache folder."""
    configured = os.environ.get("KGRADE_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kgrade"


def reference_numbers(exercise: Exercise, dataset: Dataset, options: GradeOptions) -> Figures:
    """Each check's figures for the reference solution; empty when they cannot be had."""
    if not options.with_reference or not exercise.reference.is_file():
        return {}
    key = hashlib.sha256(
        b"\0".join(
            [
                __version__.encode(),
                exercise.reference.read_bytes(),
                dataset.sha256.encode(),
                str(options.seed).encode(),
            ]
        )
    ).hexdigest()[:32]
    cached = cache_dir() / f"reference-{exercise.name}-{key}.json"
    if cached.is_file():
        try:
            figures: Figures = json.loads(cached.read_text(encoding="utf-8"))
            return figures
        except (OSError, ValueError):
            log.warning("ignoring unreadable reference cache %s", cached)
    figures = _compute(exercise, dataset, options)
    if figures:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(figures), encoding="utf-8")
        temporary.replace(cached)
    return figures


def _compute(exercise: Exercise, dataset: Dataset, options: GradeOptions) -> Figures:
    from graders.grade import grade  # grading the reference is grading, one level down

    log.info("computing the reference figures of %s", exercise.name)
    graded = grade(
        exercise.reference,
        replace(options, exercise=exercise.name, data=dataset.path, with_reference=False),
    )
    if graded.result.status != "graded":
        log.warning(
            "the reference of %s could not be graded: %s", exercise.name, graded.result.message
        )
        return {}
    return {c.id: {k: n.yours for k, n in c.numbers.items()} for c in graded.result.checks}
