"""Hostile submissions too large to commit, written on demand.

Each file is named like the committed hostile notebooks and has its verdicts in
``tests/notebooks/hostile/expected.json`` under the same name. Both are the correct
lesson (the reference solution) carrying a training log saved with the notebook, so
that their size is the only thing odd about them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graders.load import MAX_NOTEBOOK_BYTES

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "classification.ipynb"

MB = 1024 * 1024
LOG_LINE = "Epoch 1/25 - 4/4 - 0s 2ms/step - accuracy: 0.5400 - loss: 0.6931\n"
_PLACEHOLDER = "@@kgrade-training-log@@"


def generate(dest: Path) -> dict[str, Path]:
    """Write every generated hostile submission into ``dest``.

    Returns:
        The path of each file, by the name its expectations are kept under.
    """
    dest.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], None]] = {
        "fifty_megabyte_notebook.ipynb": fifty_megabyte_notebook,
        "over_the_size_limit.ipynb": over_the_size_limit,
    }
    paths = {}
    for name, write in writers.items():
        paths[name] = dest / name
        write(paths[name])
    return paths


def fifty_megabyte_notebook(path: Path) -> None:
    """The correct lesson with a 50 MB training log: under the size limit, so graded."""
    size = 50 * MB
    assert size < MAX_NOTEBOOK_BYTES, "the 50 MB notebook is meant to be under the limit"
    write_lesson_with_log(path, size)


def over_the_size_limit(path: Path) -> None:
    """The correct lesson with a training log that takes it just past the size limit."""
    write_lesson_with_log(path, MAX_NOTEBOOK_BYTES + MB)


def write_lesson_with_log(path: Path, size: int) -> None:
    """Write the reference lesson, its training cell's output padded to about ``size`` bytes.

    The log is streamed to the file, so the notebook is never held in memory whole.
    """
    nb = _lesson_with_placeholder()
    head, tail = json.dumps(nb, indent=1, ensure_ascii=False).split(json.dumps(_PLACEHOLDER))
    line = json.dumps(LOG_LINE)[1:-1]
    lines_per_chunk = MB // len(line)
    chunk = line * lines_per_chunk
    remaining = size - len(head.encode()) - len(tail.encode()) - 3
    with path.open("w", encoding="utf-8") as handle:
        handle.write(head + '"')
        while remaining >= len(chunk):
            handle.write(chunk)
            remaining -= len(chunk)
        handle.write(line * max(1, remaining // len(line)))
        handle.write('"' + tail + "\n")


def _lesson_with_placeholder() -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    training = next(
        cell
        for cell in nb["cells"]
        if cell["cell_type"] == "code" and ".fit(" in "".join(cell["source"])
    )
    training["execution_count"] = 7
    training["outputs"] = [{"output_type": "stream", "name": "stdout", "text": _PLACEHOLDER}]
    return nb
