"""The grader's own copy of an exercise's dataset, read independently of the submission."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graders.errors import UsageError


@dataclass(frozen=True)
class Dataset:
    """A feature column and a target column, as the grader read them."""

    path: Path
    sha256: str
    columns: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.y)


def load_dataset(path: Path, *, feature: str, target: str) -> Dataset:
    """Read ``path`` and take ``feature`` and ``target`` from it.

    Raises:
        UsageError: The file is missing, unreadable or lacks one of the two columns.
    """
    if not path.is_file():
        raise UsageError(
            "the data file does not exist",
            path=path,
            advice="Pass --data with the path of the exercise's CSV file.",
        )
    raw = path.read_bytes()
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"the data file is not a readable CSV ({err})", path=path) from None
    missing = [c for c in (feature, target) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"the data file lacks the column(s) {', '.join(missing)}",
            path=path,
            advice=f"The exercise needs the columns {feature!r} and {target!r}.",
        )
    return Dataset(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        columns=tuple(str(c) for c in frame.columns),
        x=frame[feature].to_numpy(dtype=np.float64),
        y=frame[target].to_numpy(dtype=np.float64),
    )
