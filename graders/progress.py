"""How the ``kgrade batch`` command shows a batch: part of the CLI, not of the library.

On a terminal a rich progress bar with counts and ETA; elsewhere (CI, a log file) one
plain line per submission; with ``--quiet`` neither. The final summary is the same in
every case.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from graders.batch import BatchOutcome
from graders.gradebook import Row

_STYLE = {"graded": "green", "ungradable": "yellow", "error": "red"}


def describe(row: Row) -> str:
    """One submission's outcome in a few words, as rich markup."""
    what = f"[{_STYLE[row.status]}]{row.status}[/]"
    if row.status == "graded":
        what = f"{row.score}/{row.max_score}"
    return f"[bold]{escape(row.student)}[/] {what} [dim]({row.duration_s:.0f} s)[/]"


class BarProgress:
    """A progress bar on a terminal: done of total, elapsed and remaining time."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def started(self, *, total: int, resumed: int) -> None:
        self._task = self._progress.add_task("", total=total, completed=resumed)

    def finished(self, row: Row) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, description=describe(row))


class LineProgress:
    """One plain line per finished submission, for logs and CI."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._done = 0
        self._total = 0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def started(self, *, total: int, resumed: int) -> None:
        self._done, self._total = resumed, total
        _say(
            self._console,
            f"{total} submissions: {resumed} already graded, {total - resumed} to grade",
        )

    def finished(self, row: Row) -> None:
        self._done += 1
        _say(self._console, f"[{self._done}/{self._total}] {describe(row)}")


def print_outcome(console: Console, outcome: BatchOutcome) -> None:
    """The final summary: counts, mean and median, and where every file is."""
    collection = outcome.collection
    lines = [
        f"[bold]{len(outcome.rows)} students[/]: "
        f"[green]{outcome.count('graded')} graded[/], "
        f"[yellow]{outcome.count('ungradable')} not gradable[/], "
        f"[red]{outcome.count('error')} grader errors[/] "
        f"({outcome.graded_now} graded now, {outcome.resumed} kept from the gradebook)"
    ]
    if outcome.mean is not None and outcome.median is not None:
        lines.append(f"score: mean {outcome.mean:.1f}, median {outcome.median:g}")
    if collection.superseded or collection.skipped:
        lines.append(
            f"not graded: {_count(len(collection.superseded), 'older notebook')} of a "
            f"student, {_count(len(collection.skipped), 'other file')} (listed in the summary)"
        )
    lines += [
        f"  [red]error[/] {escape(row.student)}: {escape(row.message or '')}"
        for row in outcome.rows
        if row.status == "error"
    ]
    lines += [f"gradebook: {outcome.gradebook}", f"grades:    {outcome.grades_csv}"]
    if outcome.canvas_csv is not None:
        lines.append(f"canvas:    {outcome.canvas_csv}")
    lines += [f"summary:   {outcome.summary_html}", f"reports:   {outcome.reports}/"]
    for line in lines:
        _say(console, line)


def _say(console: Console, line: str) -> None:
    """Print one line unwrapped: paths and messages stay whole in logs."""
    console.print(line, soft_wrap=True)


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is one."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
