"""Errors raised by kgrade.

Every error kgrade raises derives from :class:`KgradeError`, so a caller that
wants to report problems without crashing needs to catch only that one class::

    KgradeError
    ├── UsageError            the caller asked for something that cannot be done
    │                         (missing file, unknown exercise, bad option)
    ├── UngradableSubmission  the submission is not a usable notebook; the result
    │                         status is ``ungradable`` and the student is told why
    ├── HarnessError          kgrade itself failed (kernel would not start, trace
    │                         unreadable); the result status is ``error``, which is
    │                         never a student's zero
    └── UnsupportedModel      the grader cannot evaluate a captured model itself; the
                              check that needed it fails with this message

Each error carries the path it concerns and the next step to take, so the
message reads as a sentence a student or an instructor can act on.
"""

from __future__ import annotations

from pathlib import Path


class KgradeError(Exception):
    """Base class of every error kgrade raises."""

    def __init__(self, message: str, *, path: Path | None = None, advice: str = "") -> None:
        self.path = path
        self.advice = advice
        self.detail = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        tail = f" {self.advice}" if self.advice else ""
        return f"{where}{self.detail}.{tail}"


class UsageError(KgradeError, ValueError):
    """The caller asked for something kgrade cannot do as asked."""


class UngradableSubmission(KgradeError, ValueError):
    """The submission is not a notebook kgrade can run."""


class HarnessError(KgradeError, RuntimeError):
    """kgrade itself failed while grading; the submission is not to blame."""


class UnsupportedModel(KgradeError, ValueError):
    """The grader cannot compute a captured model's predictions itself."""
