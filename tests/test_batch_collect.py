"""What a batch reads from its input, before anything runs: students, files set aside, zips."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from graders.archive import extract_zip
from graders.cli import EXIT_USAGE
from graders.collect import collect, student_of_file, student_of_folder
from graders.errors import UsageError


def notebook(path: Path, source: str = "x = 1", *, modified: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, str(path))
    if modified is not None:
        os.utime(path, (modified, modified))
    return path


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def kgrade_batch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graders", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def said(done: subprocess.CompletedProcess[str]) -> str:
    """What the command printed, with the console's line wrapping undone."""
    return " ".join((done.stdout + done.stderr).split())


def test_canvas_file_names_give_the_student_and_the_canvas_id() -> None:
    naming = student_of_file("lastfirst_12345_67890_classification.ipynb")
    assert (naming.student, naming.lms_id, naming.sequence) == ("lastfirst", "12345", 67890)
    assert naming.original == "classification.ipynb"
    late = student_of_file("smithjane_LATE_222_333_my notebook.ipynb")
    assert (late.student, late.lms_id, late.original) == ("smithjane", "222", "my notebook.ipynb")


def test_moodle_folders_and_plain_names_give_file_safe_student_ids() -> None:
    assert student_of_folder("José Núñez_4242_assignsubmission_file_") == ("jose-nunez", "4242")
    assert student_of_folder("Alice") == ("alice", None)
    assert student_of_file("Bob Smith.ipynb").student == "bob-smith"


def test_a_folder_per_student_names_the_student_by_the_folder(tmp_path: Path) -> None:
    notebook(tmp_path / "in" / "alice" / "anything.ipynb")
    notebook(tmp_path / "in" / "Bob Smith_77_assignsubmission_file_" / "classification.ipynb")
    found = collect([tmp_path / "in"], unpack_into=tmp_path / "out")
    assert [(s.student, s.lms_id, s.name) for s in found.submissions] == [
        ("alice", None, "alice/anything.ipynb"),
        ("bob-smith", "77", "Bob Smith_77_assignsubmission_file_/classification.ipynb"),
    ]


def test_of_two_notebooks_of_one_student_the_newest_counts_and_the_other_is_listed(
    tmp_path: Path,
) -> None:
    notebook(tmp_path / "in" / "alice" / "draft.ipynb", modified=1_600_000_000)
    notebook(tmp_path / "in" / "alice" / "final.ipynb", modified=1_700_000_000)
    found = collect([tmp_path / "in"], unpack_into=tmp_path / "out")
    assert [s.name for s in found.submissions] == ["alice/final.ipynb"]
    assert [(s.name, s.reason) for s in found.superseded] == [
        ("alice/draft.ipynb", "an older notebook of alice; alice/final.ipynb counts")
    ]


def test_files_that_are_not_notebooks_are_skipped_with_their_reason(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    notebook(folder / "alice.ipynb")
    notebook(folder / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    notebook(folder / "bob" / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    notebook(folder / "bob" / "x.ipynb")
    (folder / "bob" / "helper.py").write_text("x = 1\n")
    (folder / "carol.html").write_text("<html></html>")
    (folder / "README").write_text("notes")
    found = collect([folder], unpack_into=tmp_path / "out")
    assert [s.student for s in found.submissions] == ["alice", "bob"]
    reasons = {s.name: s.reason for s in found.skipped}
    assert set(reasons) == {
        ".ipynb_checkpoints/",
        "bob/.ipynb_checkpoints/",
        "bob/helper.py",
        "carol.html",
        "README",
    }
    assert "checkpoint" in reasons[".ipynb_checkpoints/"]
    assert "Python script" in reasons["bob/helper.py"]
    assert "web page" in reasons["carol.html"]
    assert "no file extension" in reasons["README"]


def test_explicit_notebooks_named_like_the_exercise_are_named_by_their_folder(
    tmp_path: Path,
) -> None:
    first = notebook(tmp_path / "alice" / "classification.ipynb")
    second = notebook(tmp_path / "bob" / "classification.ipynb")
    third = notebook(tmp_path / "carol.ipynb")
    found = collect([first, second, third, first], unpack_into=tmp_path / "out")
    assert [(s.student, s.name) for s in found.submissions] == [
        ("alice", "alice/classification.ipynb"),
        ("bob", "bob/classification.ipynb"),
        ("carol", "carol.ipynb"),
    ]
    assert not found.superseded


def test_the_output_folder_inside_the_input_is_not_read_as_a_student(tmp_path: Path) -> None:
    notebook(tmp_path / "in" / "alice.ipynb")
    notebook(tmp_path / "in" / "graded" / "submissions" / "x" / "alice.ipynb")
    found = collect(
        [tmp_path / "in"],
        unpack_into=tmp_path / "in" / "graded" / "submissions",
        exclude=tmp_path / "in" / "graded",
    )
    assert [s.student for s in found.submissions] == ["alice"]
    assert [s.reason for s in found.skipped] == ["kgrade's own output folder"]


def test_a_canvas_zip_is_unpacked_inside_the_output_folder_with_its_dates(tmp_path: Path) -> None:
    source = notebook(tmp_path / "nb.ipynb")
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("lastfirst_12_34_classification.ipynb", (2024, 3, 1, 12, 0, 0))
        zf.writestr(info, source.read_bytes())
        zf.writestr("lastfirst_12_30_classification-1.ipynb", source.read_bytes())
    found = collect([archive], unpack_into=tmp_path / "out" / "submissions")
    assert [(s.student, s.lms_id) for s in found.submissions] == [("lastfirst", "12")]
    assert found.submissions[0].path.is_relative_to(tmp_path / "out" / "submissions")
    assert found.submissions[0].name == "lastfirst_12_30_classification-1.ipynb"
    assert len(found.superseded) == 1


def test_a_zip_with_a_parent_member_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice_1_2_classification.ipynb", notebook(tmp_path / "a.ipynb").read_bytes())
        zf.writestr("../../../escaped.txt", "gotcha")
    before = files_under(tmp_path)
    done = kgrade_batch(archive, "--out", tmp_path / "out")
    assert done.returncode == EXIT_USAGE
    assert "../../../escaped.txt" in said(done)
    assert "outside" in said(done)
    assert files_under(tmp_path) == before
    assert not (tmp_path.parent / "escaped.txt").exists()


@pytest.mark.parametrize("name", ["/etc/escaped.txt", "C:/escaped.txt", "..\\escaped.txt"])
def test_a_zip_with_an_absolute_or_windows_escape_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, "gotcha")
    with pytest.raises(UsageError, match="outside the folder"):
        extract_zip(archive, tmp_path / "out" / "class")
    assert not (tmp_path / "out").exists()


def test_a_zip_bomb_claiming_a_huge_size_is_refused_before_unpacking(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice_1_2_classification.ipynb", b"0" * 1000)
    raw = bytearray(archive.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    before = files_under(tmp_path)
    done = kgrade_batch(archive, "--out", tmp_path / "out")
    assert done.returncode == EXIT_USAGE
    assert "zip bomb" in said(done)
    assert files_under(tmp_path) == before


def test_a_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index in range(101):
            zf.writestr(f"f{index}.txt", "")
    with pytest.raises(UsageError, match="101 files"):
        extract_zip(archive, tmp_path / "out", max_members=100)
    assert not (tmp_path / "out").exists()


def test_a_zip_over_the_byte_cap_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"0" * 5000)
    with pytest.raises(UsageError, match="zip bomb"):
        extract_zip(archive, tmp_path / "out", max_bytes=4000)
    assert not (tmp_path / "out").exists()


def test_a_corrupt_zip_is_a_usage_error_that_says_so(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    done = kgrade_batch(archive, "--out", tmp_path / "out")
    assert done.returncode == EXIT_USAGE
    assert "not a readable zip archive" in said(done)


def test_an_input_without_notebooks_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.py").write_text("x = 1\n")
    done = kgrade_batch(tmp_path / "in", "--out", tmp_path / "out")
    assert done.returncode == EXIT_USAGE
    assert "no notebook to grade" in said(done)
