"""How much of a notebook's output is kept: text, rich outputs and images are all bounded."""

from __future__ import annotations

from nbformat import NotebookNode

from graders.outputs import MAX_IMAGE_CHARS, NOTEBOOK_IMAGE_CHARS, OutputCap


def rich(data: dict[str, str]) -> NotebookNode:
    return NotebookNode({"output_type": "display_data", "data": data, "metadata": {}})  # type: ignore[no-untyped-call]


def image(chars: int) -> NotebookNode:
    return rich({"image/png": "A" * chars, "text/plain": "<Figure>"})


def test_an_image_larger_than_the_limit_is_cut_and_counted() -> None:
    cap = OutputCap(cell_chars=1000, notebook_chars=10_000, images_per_cell=20)
    assert cap.admit(0, image(MAX_IMAGE_CHARS + 1)) is None
    assert cap.admit(0, image(1000)) is not None
    outputs: list[NotebookNode] = []
    cap.finish(0, outputs)
    assert "1 images of this cell's output were cut" in outputs[0]["text"]


def test_images_share_one_budget_for_the_whole_notebook() -> None:
    cap = OutputCap(cell_chars=1000, notebook_chars=10_000, images_per_cell=20)
    half = image(MAX_IMAGE_CHARS // 2)
    size = sum(len(v) for v in half["data"].values())
    kept = [cap.admit(cell, image(MAX_IMAGE_CHARS // 2)) is not None for cell in range(30)]
    assert sum(kept) == NOTEBOOK_IMAGE_CHARS // size


def test_every_representation_of_a_rich_output_counts_against_the_text_budget() -> None:
    cap = OutputCap(cell_chars=1000, notebook_chars=10_000, images_per_cell=20)
    assert cap.admit(0, rich({"application/json": "x" * 2000, "text/plain": "{}"})) is None
    assert cap.admit(0, rich({"text/html": "<b>ok</b>"})) is not None


def test_an_update_of_a_shown_output_is_held_to_one_cells_share() -> None:
    cap = OutputCap(cell_chars=1000, notebook_chars=10_000, images_per_cell=20)
    assert cap.fits_update({"text/plain": "x" * 1000})
    assert not cap.fits_update({"text/plain": "x" * 1001})
    assert not cap.fits_update({"image/png": "A" * (MAX_IMAGE_CHARS + 1)})
