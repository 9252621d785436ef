"""The gradebook's rows as CSV files: ``grades.csv`` and the Canvas gradebook import.

A submission that was not graded (``ungradable`` or ``error``) has empty score cells,
never a zero: its status column says why, and an LMS import leaves its grade alone.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from graders.gradebook import Row

log = logging.getLogger(__name__)

CANVAS_FIXED = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def check_ids(rows: Sequence[Row]) -> list[str]:
    """Every check id the rows name, in rubric order (the order results list them)."""
    # TODO(one exercise per batch): a batch mixing exercises gets the union of their checks
    # as columns and one Canvas score column; exports per exercise would suit it better.
    ids: dict[str, None] = {}
    for row in rows:
        for check in row.result.get("checks", []):
            ids.setdefault(str(check["id"]), None)
    return list(ids)


def write_grades_csv(rows: Sequence[Row], path: Path) -> None:
    """One row per student: status, the points of every check, the score and max_score."""
    checks = check_ids(rows)
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(
            ["student", "lms_id", "submission", "status", *checks, "score", "max_score", "message"]
        )
        for row in sorted(rows, key=lambda r: r.student):
            graded = row.status == "graded"
            writer.writerow(
                [
                    row.student,
                    row.lms_id or "",
                    row.submission,
                    row.status,
                    *(row.points.get(c, "") if graded else "" for c in checks),
                    row.score if graded else "",
                    row.max_score,
                    row.message or "",
                ]
            )
    log.info("wrote %s (%d students)", path, len(rows))


def write_canvas_csv(rows: Sequence[Row], path: Path, *, column: str | None = None) -> None:
    """The scores in Canvas's gradebook import layout.

    Canvas matches students by ``ID``, the user id its submission downloads put in each
    file name. ``column`` names the assignment column; by default the exercise's name,
    which Canvas imports as a new assignment unless it matches an existing column.
    """
    column = column or (rows[0].exercise if rows else "kgrade")
    max_score = max((row.max_score for row in rows), default=0)
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow([*CANVAS_FIXED, column])
        writer.writerow(["Points Possible", "", "", "", "", max_score])
        for row in sorted(rows, key=lambda r: r.student):
            score = row.score if row.status == "graded" else ""
            writer.writerow([row.student, row.lms_id or "", "", "", "", score])
    missing = [row.student for row in rows if not row.lms_id]
    if missing:
        log.warning(
            "%d students have no Canvas id in their file names (%s); Canvas cannot match them",
            len(missing),
            ", ".join(missing[:5]),
        )
    log.info("wrote %s", path)
