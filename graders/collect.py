"""Turn what an instructor downloaded into submissions, one per student.

An input is a folder with one notebook per student (``alice.ipynb``), a folder with one
folder per student (``alice/anything.ipynb``, or Moodle's
``Alice Smith_123_assignsubmission_file_/``), a zip as an LMS exports it (Canvas's
``lastfirst_12345_67890_name.ipynb``), or a notebook path. The student id comes from
the name. No file is dropped silently: a student's older notebooks are listed as
superseded, and everything else that is not graded as skipped, each with the reason.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graders.archive import extract_zip
from graders.errors import UsageError
from graders.exercises import exercise_names

log = logging.getLogger(__name__)

_CANVAS = re.compile(r"^(?P<student>[^_]+)_(?:late_)?(?P<id>\d+)_(?P<seq>\d+)_(?P<file>.+)$", re.I)
_MOODLE_FILE = re.compile(
    r"^(?P<student>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_(?P<file>.+)$", re.I
)
_MOODLE_FOLDER = re.compile(r"^(?P<student>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_?$", re.I)
_SKIPPED_FOLDERS = {
    ".ipynb_checkpoints": "Jupyter's automatic checkpoint copies, not a submission",
    "__macosx": "macOS archive metadata, not a submission",
    "__pycache__": "Python's bytecode cache, not a submission",
}
_SKIPPED_SUFFIXES = {
    ".py": "a Python script, not a notebook: ask the student for the .ipynb file",
    ".html": "a web page, not a notebook: ask the student for the .ipynb file",
    ".pdf": "a PDF, not a notebook: ask the student for the .ipynb file",
    ".zip": "an archive inside the input: unpack it and pass its folder",
}


@dataclass(frozen=True)
class Submission:
    """The notebook that counts for one student."""

    student: str
    path: Path
    name: str
    lms_id: str | None = None
    modified: float = 0.0
    sequence: int = 0
    original: str = ""


@dataclass(frozen=True)
class Naming:
    """What a file name tells about its submission.

    ``sequence`` orders one student's LMS uploads; ``original`` is the file's name as
    the student uploaded it, without the LMS's prefix.
    """

    student: str
    lms_id: str | None
    sequence: int
    original: str


@dataclass(frozen=True)
class Skipped:
    """A file that is not graded, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Collection:
    submissions: list[Submission] = field(default_factory=list)
    superseded: list[Skipped] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def collect(
    inputs: Sequence[Path], *, unpack_into: Path, exclude: Path | None = None
) -> Collection:
    """The submissions found in ``inputs``: folders, zip archives or notebook files.

    Zip archives are unpacked safely into a folder of ``unpack_into``. ``exclude`` (the
    batch's output folder) is never read as a student's folder.

    Raises:
        UsageError: An input does not exist, or a zip archive is corrupt or unsafe.
    """
    found: list[Submission] = []
    skipped: list[Skipped] = []
    for item in inputs:
        if not item.exists():
            raise UsageError("no such file or folder", path=item, advice="Check the input path.")
        if item.is_dir():
            _scan_folder(item, found, skipped, exclude)
        elif item.suffix.lower() == ".zip":
            folder = extract_zip(item, unpack_into / (_slug(item.stem) or "archive"))
            _scan_folder(folder, found, skipped, exclude)
        elif reason := _file_skip_reason(item):
            skipped.append(Skipped(str(item), reason))
        else:
            found.append(_explicit(item))
    collection = _newest_per_student(found)
    collection.skipped.extend(skipped)
    log.info(
        "found %d submissions; %d superseded, %d skipped",
        len(collection.submissions),
        len(collection.superseded),
        len(skipped),
    )
    return collection


def student_of_file(filename: str) -> Naming:
    """What a file's name says: its student, and the LMS's additions if it has them."""
    for pattern in (_CANVAS, _MOODLE_FILE):
        match = pattern.match(filename)
        if match:
            seq = int(match["seq"]) if "seq" in pattern.groupindex else 0
            return Naming(_slug(match["student"]), match["id"], seq, match["file"])
    return Naming(_slug(Path(filename).stem), None, 0, filename)


def student_of_folder(folder: str) -> tuple[str, str | None]:
    """The student id and LMS user id a per-student folder's name gives."""
    match = _MOODLE_FOLDER.match(folder)
    if match:
        return _slug(match["student"]), match["id"]
    return _slug(folder), None


def _slug(name: str) -> str:
    """A file-name-safe student id: ASCII lower case, runs of other characters as ``-``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9._-]+", "-", ascii_name.lower()).strip("-.")


def _scan_folder(
    root: Path, found: list[Submission], skipped: list[Skipped], exclude: Path | None
) -> None:
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            reason = _folder_skip_reason(entry, exclude)
            if reason:
                skipped.append(Skipped(f"{entry.name}/", reason))
                continue
            student, lms_id = student_of_folder(entry.name)
            _scan_student_folder(entry, root, student, lms_id, found, skipped)
        elif reason := _file_skip_reason(entry):
            skipped.append(Skipped(entry.name, reason))
        else:
            found.append(_submission(entry, entry.name, student_of_file(entry.name)))


def _scan_student_folder(
    folder: Path,
    root: Path,
    student: str,
    lms_id: str | None,
    found: list[Submission],
    skipped: list[Skipped],
) -> None:
    for current, folders, files in os.walk(folder):
        here = Path(current)
        for name in sorted(folders):
            reason = _folder_skip_reason(here / name, None)
            if reason:
                skipped.append(Skipped(f"{(here / name).relative_to(root).as_posix()}/", reason))
                folders.remove(name)
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(root).as_posix()
            reason = _file_skip_reason(path)
            if reason:
                skipped.append(Skipped(relative, reason))
            else:
                naming = Naming(student, lms_id, 0, student_of_file(name).original)
                found.append(_submission(path, relative, naming))


def _explicit(path: Path) -> Submission:
    """A notebook named on the command line.

    A file still named like the exercise (``classification.ipynb``) says nothing about
    its student, so the folder it lies in names the student instead.
    """
    if path.stem in exercise_names():
        folder = path.resolve().parent.name
        student, lms_id = student_of_folder(folder)
        naming = Naming(student, lms_id, 0, path.name)
        return _submission(path, f"{folder}/{path.name}", naming)
    return _submission(path, path.name, student_of_file(path.name))


def _submission(path: Path, name: str, naming: Naming) -> Submission:
    return Submission(
        student=naming.student or "student",
        path=path,
        name=name,
        lms_id=naming.lms_id,
        modified=path.stat().st_mtime,
        sequence=naming.sequence,
        original=naming.original,
    )


def _folder_skip_reason(folder: Path, exclude: Path | None) -> str | None:
    if exclude is not None and folder.resolve() == exclude.resolve():
        return "kgrade's own output folder"
    name = folder.name
    if name.lower() in _SKIPPED_FOLDERS:
        return _SKIPPED_FOLDERS[name.lower()]
    if name.startswith("."):
        return "a hidden folder"
    return None


def _file_skip_reason(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if path.name.startswith("."):
        return "a hidden file"
    if suffix == ".ipynb":
        if path.stem.endswith("-checkpoint"):
            return "a Jupyter checkpoint copy, not the notebook itself"
        return None
    if suffix in _SKIPPED_SUFFIXES:
        return _SKIPPED_SUFFIXES[suffix]
    return f"not a notebook (a {suffix} file)" if suffix else "not a notebook (no file extension)"


def _newest_per_student(found: list[Submission]) -> Collection:
    """Keep each student's newest notebook; list the others as superseded."""
    by_student: dict[str, list[Submission]] = {}
    unique = {submission.path.resolve(): submission for submission in reversed(found)}
    for submission in unique.values():
        by_student.setdefault(submission.student, []).append(submission)
    collection = Collection()
    for student in sorted(by_student):
        ranked = sorted(
            by_student[student], key=lambda s: (s.modified, s.sequence, s.name), reverse=True
        )
        newest = ranked[0]
        collection.submissions.append(newest)
        for older in ranked[1:]:
            reason = f"an older notebook of {student}; {newest.name} counts"
            collection.superseded.append(Skipped(older.name, reason))
            log.info("%s: %s", older.name, reason)
    return collection
