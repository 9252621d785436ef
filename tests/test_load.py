"""Which files are notebooks kgrade can run, and what it says about the others."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from graders.errors import UngradableSubmission
from graders.load import load_submission


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.ipynb", b"", "empty"),
        ("blank.ipynb", b"  \n ", "blank"),
        ("page.ipynb", "<!DOCTYPE html><html><body>nb</body></html>", "web page"),
        ("broken.ipynb", '{"cells": [', "not valid notebook JSON"),
        ("latin1.ipynb", b'{"cells": "\xe9"}', "not UTF-8"),
        ("list.ipynb", "[1, 2]", "not a Jupyter notebook"),
        ("script.py", "print('hi')", "not a notebook"),
    ],
)
def test_unusable_files_are_ungradable_with_the_file_named(
    tmp_path: Path, name: str, content: bytes | str, words: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(UngradableSubmission) as caught:
        load_submission(path)
    message = str(caught.value)
    assert words in message
    assert str(path) in message
    assert caught.value.advice


def test_nbformat_3_is_upgraded_to_version_4(tmp_path: Path) -> None:
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "x = 1",
                        "outputs": [],
                        "language": "python",
                        "metadata": {},
                    }
                ]
            }
        ],
    }
    nb = load_submission(write(tmp_path, "old.ipynb", json.dumps(v3)))
    assert nb.nbformat == 4
    assert [c.source for c in nb.cells] == ["x = 1"]


def test_missing_and_duplicated_cell_ids_get_stable_unique_ids(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("a = 1"),
        nbformat.v4.new_code_cell("b = 2"),
        nbformat.v4.new_markdown_cell("text"),
    ]
    raw = json.loads(nbformat.writes(nb))
    raw["cells"][1]["id"] = raw["cells"][0]["id"]
    del raw["cells"][2]["id"]
    path = write(tmp_path, "ids.ipynb", json.dumps(raw))
    first, second = load_submission(path), load_submission(path)
    ids = [c["id"] for c in first.cells]
    assert len(set(ids)) == 3
    assert ids == [c["id"] for c in second.cells]


def test_outputs_of_the_submission_are_dropped(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", text="accuracy 1.000\n")]
    cell.execution_count = 3
    nb.cells = [cell]
    loaded = load_submission(write(tmp_path, "out.ipynb", nbformat.writes(nb)))
    assert loaded.cells[0].outputs == []
    assert loaded.cells[0].execution_count is None
