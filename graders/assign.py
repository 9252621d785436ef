"""Make the student version of an exercise from its reference notebook.

A reference marks what students must not see:

- lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are replaced by a stub
  (in a markdown cell, by a prompt for the student's answer);
- a cell tagged ``solution`` has its whole source replaced by the stub;
- lines between ``### BEGIN HIDDEN`` and ``### END HIDDEN`` are removed, and a cell tagged
  ``hidden`` is removed entirely.

Outputs and execution counts are cleared and cell ids kept, so generating again from an
unchanged reference gives a byte-identical file.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from graders.errors import UsageError
from graders.exercises import Exercise

CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)
SOLUTION_TAG = "solution"
HIDDEN_TAG = "hidden"
_MARKER = re.compile(r"^(\s*)###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN)\s*$")


def student_version(reference: Path) -> str:
    """The student notebook made from ``reference``, as the JSON text to write.

    Raises:
        UsageError: The reference's markers do not pair up.
    """
    nb = nbformat.read(reference, as_version=4)  # type: ignore[no-untyped-call]
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if HIDDEN_TAG in tags:
            continue
        stub = CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB
        if SOLUTION_TAG in tags:
            cell.source = "\n".join(stub)
        else:
            cell.source = _strip_regions(cell.source, stub, reference, index)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if tags & {SOLUTION_TAG, HIDDEN_TAG}:
            cell.metadata["tags"] = sorted(tags - {SOLUTION_TAG, HIDDEN_TAG})
        cells.append(cell)
    nb.cells = cells
    text: str = nbformat.writes(nb)  # type: ignore[no-untyped-call]
    return text + "\n"


def _strip_regions(source: str, stub: tuple[str, ...], reference: Path, index: int) -> str:
    kept: list[str] = []
    region: str | None = None
    for line in source.splitlines():
        marker = _MARKER.match(line)
        if marker is None:
            if region is None:
                kept.append(line)
            continue
        indent, edge, kind = marker.groups()
        if edge == "BEGIN" and region is None:
            region = kind
            if kind == "SOLUTION":
                kept += [indent + s for s in stub]
        elif edge == "END" and region == kind:
            region = None
        else:
            raise UsageError(
                f"cell {index + 1} has an unpaired '### {edge} {kind}' line",
                path=reference,
                advice="Pair every BEGIN line with an END line.",
            )
    if region is not None:
        raise UsageError(
            f"cell {index + 1} opens a {region} region that never ends",
            path=reference,
            advice=f"Add '### END {region}' at its end.",
        )
    return "\n".join(kept)


def assign(exercise: Exercise) -> bool:
    """Write the exercise's student notebook; True when the file changed."""
    text = student_version(exercise.reference)
    if exercise.student.is_file() and exercise.student.read_text(encoding="utf-8") == text:
        return False
    exercise.student.parent.mkdir(parents=True, exist_ok=True)
    exercise.student.write_text(text, encoding="utf-8")
    return True


def in_sync(exercise: Exercise) -> bool:
    """Whether the committed student notebook is what :func:`assign` would write."""
    if not exercise.student.is_file():
        return False
    return exercise.student.read_text(encoding="utf-8") == student_version(exercise.reference)
