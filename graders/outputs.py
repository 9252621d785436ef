"""Caps on what a submission may print, applied while the output arrives.

A cell keeps the head and the tail of its text output and at most a few images, each of
a bounded size; what was cut is replaced by one line that says how much. The whole
notebook shares one budget of text and one of images, so a flood in one cell cannot fill
the result, the report or the grader's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbformat import NotebookNode

IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
ERROR_TEXT_CHARS = 20_000
# An image's data as it arrives (base64 or SVG text), and all images of a notebook.
MAX_IMAGE_CHARS = 2_000_000
NOTEBOOK_IMAGE_CHARS = 20_000_000


@dataclass
class _CellBudget:
    head_left: int
    tail_limit: int
    images_left: int
    tail: list[str] = field(default_factory=list)
    tail_chars: int = 0
    cut_chars: int = 0
    cut_images: int = 0
    kept_chars: int = 0


class OutputCap:
    """Decides, output by output, what of a cell's output is kept."""

    def __init__(self, cell_chars: int, notebook_chars: int, images_per_cell: int) -> None:
        self.cell_chars = cell_chars
        self.notebook_left = notebook_chars
        self.images_per_cell = images_per_cell
        self.image_chars_left = NOTEBOOK_IMAGE_CHARS
        self._cells: dict[int, _CellBudget] = {}

    def admit(self, cell_index: int, out: NotebookNode) -> NotebookNode | None:
        """``out`` as it may be kept (possibly shortened), or None when it is held back."""
        budget = self._budget(cell_index)
        if out.get("output_type") == "stream":
            return self._admit_stream(budget, out)
        if out.get("output_type") in ("display_data", "execute_result"):
            return self._admit_rich(budget, out)
        return out

    def finish(self, cell_index: int, outputs: list[Any]) -> None:
        """Append the cut marker and the kept tail of the cell's output to ``outputs``."""
        budget = self._cells.pop(cell_index, None)
        if budget is None:
            return
        self.notebook_left = max(0, self.notebook_left - budget.kept_chars - budget.tail_chars)
        if budget.cut_chars or budget.cut_images:
            outputs.append(_stream("stderr", _marker(budget)))
        if budget.tail:
            outputs.append(_stream("stdout", "".join(budget.tail)))

    def _budget(self, cell_index: int) -> _CellBudget:
        if cell_index not in self._cells:
            share = min(self.cell_chars, self.notebook_left)
            self._cells[cell_index] = _CellBudget(
                head_left=share - share // 2,
                tail_limit=share // 2,
                images_left=self.images_per_cell,
            )
        return self._cells[cell_index]

    def _admit_stream(self, budget: _CellBudget, out: NotebookNode) -> NotebookNode | None:
        text = str(out.get("text", ""))
        head, rest = text[: budget.head_left], text[budget.head_left :]
        budget.head_left -= len(head)
        budget.kept_chars += len(head)
        if rest:
            self._keep_tail(budget, rest)
        if not head:
            return None
        out["text"] = head
        return out

    def _keep_tail(self, budget: _CellBudget, text: str) -> None:
        budget.tail.append(text)
        budget.tail_chars += len(text)
        while budget.tail_chars > budget.tail_limit and budget.tail:
            excess = budget.tail_chars - budget.tail_limit
            first = budget.tail[0]
            if len(first) <= excess:
                budget.tail.pop(0)
                budget.tail_chars -= len(first)
                budget.cut_chars += len(first)
            else:
                budget.tail[0] = first[excess:]
                budget.tail_chars -= excess
                budget.cut_chars += excess

    def _admit_rich(self, budget: _CellBudget, out: NotebookNode) -> NotebookNode | None:
        data = out.get("data", {})
        size = payload_size(data)
        if any(kind in data for kind in IMAGE_TYPES):
            if budget.images_left <= 0 or size > min(MAX_IMAGE_CHARS, self.image_chars_left):
                budget.cut_images += 1
                return None
            budget.images_left -= 1
            self.image_chars_left -= size
            return out
        if size > budget.head_left:
            budget.cut_chars += size
            return None
        budget.head_left -= size
        budget.kept_chars += size
        return out

    def fits_update(self, data: dict[str, Any]) -> bool:
        """Whether an update of an output shown earlier may replace its data.

        An update replaces, it does not add, so it is held to one cell's share.
        """
        limit = MAX_IMAGE_CHARS if any(kind in data for kind in IMAGE_TYPES) else self.cell_chars
        return payload_size(data) <= limit


def payload_size(data: Any) -> int:
    """Characters in every representation of a rich output (text, images, HTML, JSON)."""
    if not isinstance(data, dict):
        return len(str(data))
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())


def placeholder(what: str) -> dict[str, str]:
    """The data of an output that was too large to keep, in its place."""
    return {"text/plain": f"[kgrade: {what} was too large to keep and was cut]"}


def _stream(name: str, text: str) -> NotebookNode:
    node: NotebookNode = NotebookNode({"output_type": "stream", "name": name, "text": text})  # type: ignore[no-untyped-call]
    return node


def _marker(budget: _CellBudget) -> str:
    parts = []
    if budget.cut_chars:
        parts.append(f"{budget.cut_chars:,} characters")
    if budget.cut_images:
        parts.append(f"{budget.cut_images} images")
    return (
        f"\n[kgrade: {' and '.join(parts)} of this cell's output were cut here; "
        "the output of a cell is limited]\n"
    )


def clip(text: str, limit: int = ERROR_TEXT_CHARS) -> str:
    """``text`` shortened to its head and tail when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half:,} characters cut …]\n{text[-half:]}"
