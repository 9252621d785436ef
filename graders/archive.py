"""Unpack a class's zip archive, as an LMS exports it, without trusting it.

Every member name is checked before anything is written: an archive with a member that
would land outside the target folder (``../``, an absolute path, a drive letter) is
refused whole. The member count and the unpacked size are capped, both as the archive
declares them and as the bytes actually come out, so a zip bomb stops early.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from graders.errors import UsageError

log = logging.getLogger(__name__)

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 2 * 1024**3
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_ADVICE = (
    "Download the submissions from the LMS again, or unpack them yourself and pass the folder."
)


def extract_zip(
    archive: Path,
    into: Path,
    *,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_UNPACKED_BYTES,
) -> Path:
    """Unpack ``archive`` into the fresh folder ``into`` and return it.

    Files keep the modification time the archive records, so "the newest file of a
    student" means the same thing whether the archive was unpacked or not.

    Raises:
        UsageError: The archive is corrupt, has an unsafe member name, or unpacks to
            more members or bytes than allowed. Nothing is left in ``into`` then.
    """
    with _open(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        _check_sizes(archive, members, max_members=max_members, max_bytes=max_bytes)
        targets = [(member, _safe_name(archive, member.filename)) for member in members]
        if into.exists():
            shutil.rmtree(into)
        into.mkdir(parents=True)
        try:
            _unpack(archive, zf, targets, into, max_bytes)
        except BaseException:
            shutil.rmtree(into, ignore_errors=True)
            raise
    log.info("unpacked %d files of %s into %s", len(targets), archive, into)
    return into


def _open(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise UsageError(
            f"this is not a readable zip archive ({err})", path=archive, advice=_ADVICE
        ) from None


def _check_sizes(
    archive: Path, members: list[zipfile.ZipInfo], *, max_members: int, max_bytes: int
) -> None:
    if len(members) > max_members:
        raise UsageError(
            f"the archive holds {len(members):,} files, more than the {max_members:,} "
            "a class export can have; it looks like a zip bomb and was not unpacked",
            path=archive,
            advice=_ADVICE,
        )
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise UsageError(
            f"the archive would unpack to {declared:,} bytes, more than the limit of "
            f"{max_bytes:,}; it looks like a zip bomb and was not unpacked",
            path=archive,
            advice=_ADVICE,
        )


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or an error when it would escape the target folder."""
    relative = PurePosixPath(name.replace("\\", "/"))
    drive = bool(relative.parts) and _DRIVE.match(relative.parts[0]) is not None
    if relative.is_absolute() or drive or ".." in relative.parts or not relative.parts:
        raise UsageError(
            f"the archive member {name!r} would be written outside the folder it is "
            "unpacked into; the archive was refused and nothing was unpacked",
            path=archive,
            advice=_ADVICE,
        )
    return relative


def _unpack(
    archive: Path,
    zf: zipfile.ZipFile,
    targets: list[tuple[zipfile.ZipInfo, PurePosixPath]],
    into: Path,
    max_bytes: int,
) -> None:
    root = into.resolve()
    written = 0
    for member, relative in targets:
        target = root.joinpath(*relative.parts)
        if not target.resolve().is_relative_to(root):
            raise UsageError(
                f"the archive member {member.filename!r} resolves outside {into}",
                path=archive,
                advice=_ADVICE,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        written = _copy_member(archive, zf, member, target, written, max_bytes)
        stamp = time.mktime((*member.date_time, 0, 0, -1))
        os.utime(target, (stamp, stamp))


def _copy_member(
    archive: Path,
    zf: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    target: Path,
    written: int,
    max_bytes: int,
) -> int:
    """Stream one member to ``target``; return the bytes unpacked so far in all."""
    try:
        with zf.open(member) as source, target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UsageError(
                        f"the archive unpacks to more than {max_bytes:,} bytes; it looks "
                        "like a zip bomb and was not unpacked",
                        path=archive,
                        advice=_ADVICE,
                    )
                sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
        raise UsageError(
            f"the archive member {member.filename!r} cannot be read ({err})",
            path=archive,
            advice=_ADVICE,
        ) from None
    return written
