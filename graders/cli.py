"""The ``kgrade`` command line: thin wrappers around the library's functions."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from graders.assign import assign as write_student_version
from graders.batch import grade_batch
from graders.errors import KgradeError
from graders.exercises import exercise_names, get_exercise
from graders.grade import grade as grade_notebook
from graders.kernel import KernelLauncher
from graders.options import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_NOTEBOOK_DEADLINE,
    DEFAULT_SEED,
    GradeOptions,
    Kernels,
)
from graders.progress import BarProgress, LineProgress, print_outcome
from graders.report import write_report
from graders.result import Result
from graders.sandbox import SandboxSettings
from graders.validate import junit_xml
from graders.validate import validate as validate_exercises
from graders.warm import WarmKernelLauncher

Command = TypeVar("Command", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_BELOW_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_HARNESS = 3
WATCH_POLL_S = 0.5


def _options(
    console: Console,
    exercise: str | None,
    data: Path | None,
    seed: int,
    timeout: float,
    deadline: float,
    sandbox_file: Path | None,
) -> GradeOptions:
    """The options of one grading run, from the shared command-line options."""
    try:
        sandbox = SandboxSettings.from_toml(sandbox_file) if sandbox_file else SandboxSettings()
    except KgradeError as err:
        _fail(console, str(err))
    return GradeOptions(
        exercise=exercise,
        data=data,
        seed=seed,
        cell_timeout=timeout,
        deadline=deadline,
        sandbox=sandbox,
    )


def run_options(command: Command) -> Command:
    """The options of how one notebook runs, shared by every command that grades."""
    for option in reversed(
        [
            click.option(
                "--data",
                type=click.Path(path_type=Path, dir_okay=False),
                help="CSV to run the notebooks against instead of the exercise's own data.",
            ),
            click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True),
            click.option(
                "--timeout",
                type=click.FloatRange(min=1),
                default=DEFAULT_CELL_TIMEOUT,
                show_default=True,
                help="Seconds one cell may run.",
            ),
            click.option(
                "--deadline",
                type=click.FloatRange(min=1),
                default=DEFAULT_NOTEBOOK_DEADLINE,
                show_default=True,
                help="Seconds one notebook may run.",
            ),
            click.option(
                "--sandbox",
                "sandbox_file",
                type=click.Path(path_type=Path, dir_okay=False, exists=True),
                help="TOML file whose [sandbox] table tightens or relaxes the kernel's limits "
                "(see docs/security.md).",
            ),
        ]
    ):
        command = option(command)
    return command


@click.group()
@click.version_option(package_name="kgrade")
@click.option("-v", "--verbose", count=True, help="Log more (-v: per submission, -vv: per cell).")
def main(verbose: int) -> None:
    """Grade Jupyter notebooks that teach Keras."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # nbclient and jupyter_client log a student's crash as their own ERROR; the
        # result already reports it.
        for noisy in ("traitlets", "nbclient", "jupyter_client"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Folder for NOTEBOOK.json and .html.",
)
@click.option(
    "--exercise",
    help="Exercise whose rubric applies (default: told from the notebook's name or data).",
)
@run_options
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result to stdout.")
@click.option(
    "--fail-under",
    type=float,
    default=None,
    help="Exit with 1 when the score is below this many points.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Keep running: grade NOTEBOOK again each time it is saved with new content, with "
    "warm kernels forked from a pool that imports TensorFlow once. Ctrl-C stops.",
)
def grade(
    notebook: Path,
    out_dir: Path,
    exercise: str | None,
    data: Path | None,
    seed: int,
    timeout: float,
    deadline: float,
    sandbox_file: Path | None,
    as_json: bool,
    fail_under: float | None,
    watch: bool,
) -> None:
    """Grade NOTEBOOK and write NOTEBOOK.json and NOTEBOOK.html into --out."""
    console = Console(stderr=as_json, highlight=False, soft_wrap=True)
    if not notebook.exists():
        _fail(console, f"{notebook}: no such file. Check the path of the notebook to grade.")
    options = _options(console, exercise, data, seed, timeout, deadline, sandbox_file)
    if watch:
        _watch(console, notebook, out_dir, options, as_json)
        sys.exit(EXIT_OK)
    result = _grade_one(console, notebook, out_dir, options, as_json, launcher=None)
    code = _exit_code(result, fail_under)
    if code == EXIT_BELOW_THRESHOLD:
        console.print(f"Below --fail-under: {result.score} points, {fail_under} needed.")
    sys.exit(code)


def _grade_one(
    console: Console,
    notebook: Path,
    out_dir: Path,
    options: GradeOptions,
    as_json: bool,
    launcher: KernelLauncher | None,
) -> Result:
    """Grade ``notebook``, write its result and report into ``out_dir`` and summarise it."""
    try:
        graded = grade_notebook(notebook, options, launcher=launcher)
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / f"{notebook.stem}.json"
        html_path = out_dir / f"{notebook.stem}.html"
        graded.result.write_json(json_path)
        write_report(graded, html_path)
    except KgradeError as err:
        _fail(console, str(err))
    except OSError as err:
        _fail(console, f"{err.filename or out_dir}: cannot write the result ({err.strerror}).")
    if as_json:
        click.echo(graded.result.to_json(), nl=False)
    _summarise(console, graded.result, json_path, html_path)
    return graded.result


def _watch(
    console: Console, notebook: Path, out_dir: Path, options: GradeOptions, as_json: bool
) -> None:
    """Grade ``notebook`` now and again after every save that changes it, until Ctrl-C.

    One warm pool serves every run, so each re-grade skips starting Python and importing
    TensorFlow. A save is graded once the file has stopped changing for a moment.
    """
    # Stopped by a service manager or `kill`, it tidies up as after Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with WarmKernelLauncher(sandbox=options.sandbox, seed=options.seed) as launcher:
        try:
            graded = _content(notebook)
            _grade_one(console, notebook, out_dir, options, as_json, launcher)
            console.print(
                f"Watching {escape(str(notebook))}: save it to grade it again; Ctrl-C stops."
            )
            while True:
                time.sleep(WATCH_POLL_S)
                current = _content(notebook)
                if current is None or current == graded:
                    continue
                time.sleep(WATCH_POLL_S)  # let the editor finish writing
                if _content(notebook) != current:
                    continue
                graded = current
                console.rule(time.strftime("%H:%M:%S"))
                _grade_one(console, notebook, out_dir, options, as_json, launcher)
        except KeyboardInterrupt:
            console.print("Stopped watching.")


def _content(path: Path) -> bytes | None:
    """The file's bytes, or None while it cannot be read (e.g. being replaced)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _exit_code(result: Result, fail_under: float | None) -> int:
    if result.status == "error":
        return EXIT_HARNESS
    if fail_under is not None and (result.score or 0) < fail_under:
        return EXIT_BELOW_THRESHOLD
    return EXIT_OK


def _summarise(console: Console, result: Result, json_path: Path, html_path: Path) -> None:
    if result.status == "graded":
        console.print(f"[bold]{escape(result.submission)}[/]: {result.score}/{result.max_score}")
        for check in result.checks:
            mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
            console.print(
                f"  {mark} {check.id:<26} {check.points}/{check.max_points}  "
                f"{escape(check.message)}"
            )
        for cell in result.problems:
            console.print(
                f"  [yellow]![/] cell {cell.index + 1}: "
                + escape(" ".join(filter(None, [cell.status, cell.error_name, cell.message])))
            )
    else:
        label = "could not be graded" if result.status == "error" else "is not gradable"
        console.print(
            f"[bold]{escape(result.submission)}[/] {label}: {escape(result.message or '')}"
        )
    console.print(f"Result: {json_path}\nReport: {html_path}")


def _fail(console: Console, message: str) -> NoReturn:
    console.print(f"[red]error:[/] {escape(message)}")
    sys.exit(EXIT_USAGE)


@main.command()
@click.argument("names", nargs=-1)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Course folder holding reference/ and exercises/ (default: kgrade's).",
)
def assign(names: tuple[str, ...], root: Path | None) -> None:
    """Write exercises/NAME.ipynb from reference/NAME.ipynb (every exercise by default)."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        for exercise in [get_exercise(n, root) for n in names or exercise_names(root)]:
            changed = write_student_version(exercise)
            console.print(f"{exercise.student}: {'written' if changed else 'unchanged'}")
    except KgradeError as err:
        _fail(console, str(err))


@main.command()
@click.argument("names", nargs=-1)
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Also require full marks on this copy of an exercise's dataset.",
)
@click.option(
    "--junit-xml",
    "junit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the findings as JUnit XML for CI systems.",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Course folder holding reference/, exercises/ and data/ (default: kgrade's).",
)
def validate(
    names: tuple[str, ...], data: Path | None, junit_path: Path | None, root: Path | None
) -> None:
    """Check that every reference earns full marks and every exercise is in sync."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        findings = validate_exercises(list(names), data=data, root=root)
    except KgradeError as err:
        _fail(console, str(err))
    for finding in findings:
        mark = "[green]ok  [/]" if finding.ok else "[red]FAIL[/]"
        console.print(
            f"{mark} {escape(finding.exercise)}: {escape(finding.name)}: {escape(finding.message)}"
        )
    failed = sum(not f.ok for f in findings)
    console.print(f"{len(findings) - failed} passed, {failed} failed")
    if junit_path is not None:
        junit_path.write_text(junit_xml(findings), encoding="utf-8")
    sys.exit(EXIT_BELOW_THRESHOLD if failed else EXIT_OK)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the gradebook, reports, grades.csv and summary.html.",
)
@click.option("--exercise", help="Exercise whose rubric applies (default: told by file names).")
@run_options
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Submissions graded at once [default: the number of cores].",
)
@click.option(
    "--resume/--force",
    default=True,
    show_default=True,
    help="Keep the gradebook's results for unchanged submissions, or grade everything again.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Grade on the Dask cluster of this scheduler (tcp://HOST:PORT) instead of locally.",
)
@click.option(
    "--kernels",
    type=click.Choice(["warm", "cold"]),
    default="warm",
    show_default=True,
    help="warm: each worker forks kernels from a pool that imported TensorFlow once; "
    "cold: a fresh kernel process per submission. Same results, same sandbox.",
)
@click.option(
    "--canvas-csv",
    is_flag=True,
    help="Also write canvas.csv for the Canvas import (then kept current by later runs).",
)
@click.option("--quiet", is_flag=True, help="Show no progress, only the final summary.")
def batch(
    inputs: tuple[Path, ...],
    out_dir: Path,
    exercise: str | None,
    data: Path | None,
    seed: int,
    timeout: float,
    deadline: float,
    sandbox_file: Path | None,
    workers: int | None,
    resume: bool,
    scheduler: str | None,
    kernels: Kernels,
    canvas_csv: bool,
    quiet: bool,
) -> None:
    """Grade every submission in INPUTS (folders, LMS zip archives or notebooks)."""
    console = Console(highlight=False, soft_wrap=True)
    progress = None
    if not quiet:
        progress = BarProgress(console) if console.is_terminal else LineProgress(console)
    options = _options(console, exercise, data, seed, timeout, deadline, sandbox_file)
    try:
        with progress or nullcontext():
            outcome = grade_batch(
                inputs=list(inputs),
                out_dir=out_dir,
                options=options,
                workers=workers,
                scheduler=scheduler,
                force=not resume,
                canvas_csv=canvas_csv,
                listener=progress,
                kernels=kernels,
            )
    except KgradeError as err:
        _fail(console, str(err))
    except OSError as err:
        _fail(console, f"{err.filename or out_dir}: cannot read or write ({err.strerror}).")
    print_outcome(console, outcome)
    sys.exit(EXIT_HARNESS if outcome.count("error") else EXIT_OK)
