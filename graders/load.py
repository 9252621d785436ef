"""Load a submission file into a clean nbformat v4 notebook, or say why it cannot be."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nbformat

from graders.errors import UngradableSubmission, UsageError

log = logging.getLogger(__name__)

MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024

_DOWNLOAD_ADVICE = (
    "Open the notebook in Jupyter and use File > Download (or File > Save and Export "
    "Notebook As > Notebook), then submit that .ipynb file."
)


def load_submission(path: Path) -> nbformat.NotebookNode:
    """Read ``path`` as a notebook ready to execute.

    The notebook is upgraded to nbformat 4.5, its outputs are dropped (the grader runs
    every cell itself) and missing or duplicated cell ids are replaced by stable ones.

    Raises:
        UsageError: There is no file at ``path``.
        UngradableSubmission: The file is not a notebook kgrade can run.
    """
    raw = _read_bytes(path)
    text = _decode(raw, path)
    data = _parse_json(text, path)
    nb = _to_notebook(data, path)
    _normalise(nb)
    log.debug("loaded %s: %d cells", path, len(nb.cells))
    return nb


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise UsageError("no such file", path=path, advice="Check the path of the notebook.")
    if path.suffix.lower() != ".ipynb":
        raise UngradableSubmission(
            f"this is not a notebook (the file name ends in {path.suffix or 'no extension'!r}, "
            "not '.ipynb')",
            path=path,
            advice="Submit the .ipynb notebook you worked in.",
        )
    size = path.stat().st_size
    if size == 0:
        raise UngradableSubmission("the file is empty", path=path, advice=_DOWNLOAD_ADVICE)
    if size > MAX_NOTEBOOK_BYTES:
        raise UngradableSubmission(
            f"the file is {size / (1024 * 1024):.1f} MB, over the "
            f"{MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB limit",
            path=path,
            advice="Clear all outputs (Edit > Clear Outputs of All Cells), save, and submit again.",
        )
    return path.read_bytes()


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UngradableSubmission(
            f"the file is not UTF-8 text (bad byte at offset {err.start})",
            path=path,
            advice=_DOWNLOAD_ADVICE,
        ) from None


def _parse_json(text: str, path: Path) -> Any:
    stripped = text.lstrip()
    if stripped[:1] == "<" or stripped[:15].lower().startswith("<!doctype"):
        raise UngradableSubmission(
            "this is a web page saved from the browser, not the notebook itself",
            path=path,
            advice=_DOWNLOAD_ADVICE,
        )
    if not stripped:
        raise UngradableSubmission(
            "the file holds only blank space", path=path, advice=_DOWNLOAD_ADVICE
        )
    try:
        return json.loads(text)
    except RecursionError:
        raise UngradableSubmission(
            "the file's JSON is nested too deeply to be a notebook",
            path=path,
            advice=_DOWNLOAD_ADVICE,
        ) from None
    except json.JSONDecodeError as err:
        raise UngradableSubmission(
            f"the file is not valid notebook JSON ({err.msg.removesuffix(' at')}: line "
            f"{err.lineno}, column {err.colno})",
            path=path,
            advice="The file was probably damaged while editing or uploading. " + _DOWNLOAD_ADVICE,
        ) from None


def _to_notebook(data: Any, path: Path) -> nbformat.NotebookNode:
    if not isinstance(data, dict) or "nbformat" not in data:
        raise UngradableSubmission(
            "the file is JSON but not a Jupyter notebook", path=path, advice=_DOWNLOAD_ADVICE
        )
    original_ids = _stable_ids(data)
    try:
        nb: nbformat.NotebookNode = nbformat.reads(  # type: ignore[no-untyped-call]
            json.dumps(data), as_version=4
        )
    except Exception as err:  # nbformat raises many unrelated types for bad input
        raise UngradableSubmission(
            f"the notebook structure cannot be read ({type(err).__name__}: {err})",
            path=path,
            advice=_DOWNLOAD_ADVICE,
        ) from None
    if not isinstance(nb.get("cells"), list):
        raise UngradableSubmission("the notebook has no cells", path=path, advice=_DOWNLOAD_ADVICE)
    if not original_ids:
        for index, cell in enumerate(nb.cells):
            cell["id"] = f"cell-{index}"
    return nb


def _stable_ids(data: dict[str, Any]) -> bool:
    """Give a v4 notebook's cells unique ids in place, before nbformat invents random ones.

    Returns False when the notebook predates cell ids (nbformat 3): those come later.
    """
    cells = data.get("cells")
    if data.get("nbformat") != 4 or not isinstance(cells, list):
        return False
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            cell_id = f"cell-{index}"
            cell["id"] = cell_id
        seen.add(cell_id)
    minor = data.get("nbformat_minor")
    data["nbformat_minor"] = max(minor if isinstance(minor, int) else 0, 5)
    return True


def _normalise(nb: nbformat.NotebookNode) -> None:
    """Drop outputs and execution counts: the grader runs every cell itself."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        if not isinstance(cell.get("source"), str):
            cell["source"] = "".join(cell.get("source") or [])
