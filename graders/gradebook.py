"""The gradebook: one SQLite file in a batch's output folder, the source of every export.

Each result is written in a transaction of its own as soon as its submission finishes,
in WAL mode with full syncs, so a batch killed at any moment keeps every result it had
recorded. A re-run finds those results by their key (student, content hash, kgrade
version, settings) and grades only the rest.

Tables::

    results  one row per key: the submission file, exercise, status, score, max_score,
             message, duration, when it was recorded, attempts, the full JSON result
    points   one row per check of a result: points, max_points, passed
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from graders.errors import UsageError
from graders.result import Result, Status

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FILENAME = "gradebook.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kgrade TEXT NOT NULL,
    settings TEXT NOT NULL,
    submission TEXT NOT NULL,
    lms_id TEXT,
    exercise TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('graded', 'ungradable', 'error')),
    score INTEGER,
    max_score INTEGER NOT NULL,
    message TEXT,
    duration_s REAL NOT NULL,
    graded_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    result_json TEXT NOT NULL,
    UNIQUE (student, sha256, kgrade, settings)
);
CREATE TABLE IF NOT EXISTS points (
    result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    points INTEGER NOT NULL,
    max_points INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (result_id, check_id)
);
"""
_COLUMNS = (
    "id, student, sha256, kgrade, settings, submission, lms_id, exercise, status, score, "
    "max_score, message, duration_s, graded_at, attempts, result_json"
)


@dataclass(frozen=True)
class Key:
    """What makes two gradings of a submission interchangeable."""

    student: str
    sha256: str
    kgrade: str
    settings: str


@dataclass(frozen=True)
class Row:
    """One recorded result, as the exports read it."""

    id: int
    key: Key
    submission: str
    lms_id: str | None
    exercise: str
    status: Status
    score: int | None
    max_score: int
    message: str | None
    duration_s: float
    graded_at: str
    attempts: int
    points: dict[str, int]
    result: dict[str, Any]

    @property
    def student(self) -> str:
        return self.key.student


class Gradebook:
    """The SQLite gradebook at ``path``, created on first use.

    Raises:
        UsageError: The file exists but is not a kgrade gradebook this version can read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise UsageError(
                f"the gradebook cannot be opened ({err})",
                path=path,
                advice="Move the file aside, or pass another --out folder.",
            ) from None

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def has_result(self, key: Key) -> bool:
        """Whether ``key`` has a result worth keeping: a harness error is not one."""
        found = self._db.execute(
            "SELECT 1 FROM results WHERE student = ? AND sha256 = ? AND kgrade = ? "
            "AND settings = ? AND status != 'error'",
            (key.student, key.sha256, key.kgrade, key.settings),
        ).fetchone()
        return found is not None

    def record(
        self, key: Key, result: Result, *, submission: str, lms_id: str | None, attempts: int
    ) -> None:
        """Store ``result`` under ``key`` in one transaction, replacing an earlier one."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        values = (
            *(key.student, key.sha256, key.kgrade, key.settings),
            *(submission, lms_id, result.exercise, result.status, result.score),
            *(result.max_score, result.message, result.harness.duration_s, now, attempts),
            result.to_json(),
        )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "DELETE FROM results WHERE student = ? AND sha256 = ? AND kgrade = ? "
                "AND settings = ?",
                values[:4],
            )
            cursor = self._db.execute(
                f"INSERT INTO results ({_COLUMNS.removeprefix('id, ')}) "
                f"VALUES ({', '.join('?' * len(values))})",
                values,
            )
            self._db.executemany(
                "INSERT INTO points VALUES (?, ?, ?, ?, ?)",
                [
                    (cursor.lastrowid, c.id, c.points, c.max_points, int(c.passed))
                    for c in result.checks
                ],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        log.debug("recorded %s: %s", key.student, result.status)

    def rows(self, keys: Iterable[Key]) -> list[Row]:
        """The recorded rows of ``keys``, in the order given; keys without a row are left out."""
        rows = []
        for key in keys:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM results WHERE student = ? AND sha256 = ? "
                "AND kgrade = ? AND settings = ?",
                (key.student, key.sha256, key.kgrade, key.settings),
            ).fetchone()
            if found is not None:
                rows.append(self._row(found))
        return rows

    def all_rows(self) -> list[Row]:
        """Every row, oldest first."""
        found = self._db.execute(f"SELECT {_COLUMNS} FROM results ORDER BY id").fetchall()
        return [self._row(values) for values in found]

    def _row(self, values: tuple[Any, ...]) -> Row:
        points = self._db.execute(
            "SELECT check_id, points FROM points WHERE result_id = ? ORDER BY rowid", (values[0],)
        ).fetchall()
        return Row(
            id=values[0],
            key=Key(*values[1:5]),
            submission=values[5],
            lms_id=values[6],
            exercise=values[7],
            status=cast(Status, values[8]),
            score=values[9],
            max_score=values[10],
            message=values[11],
            duration_s=values[12],
            graded_at=values[13],
            attempts=values[14],
            points=dict(points),
            result=json.loads(values[15]),
        )

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version != 0:
            raise sqlite3.DatabaseError(
                f"it has layout {version}, this kgrade reads layout {SCHEMA_VERSION}"
            )
        self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
