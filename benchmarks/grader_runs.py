"""Each row of the comparison: run one grader over the class, time it, sample it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import nbformat
from class_folder import REFERENCE, Submission, kernelspec_path, notebooks_only, with_dataset
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from nbgrader_course import find_python, make_course
from process_memory import TreeSampler

KGRADE = Path(sys.executable).with_name("kgrade")


@dataclass(frozen=True)
class Overhead:
    """Means over a kgrade row's graded results, from its ``results/*.json``.

    ``grade_s`` is ``harness.duration_s`` (the whole of ``grade()`` in the worker);
    ``start_s`` is the launcher's readiness (a warm pool's start, once per worker), the
    kernel's start and the probe's set-up (which imports TensorFlow in a cold kernel),
    ``cells_s`` the cells' own run time. What remains is the harness's overhead: the
    trace capture after each cell, reading the trace and judging it.
    """

    graded: int
    grade_s: float
    start_s: float
    cells_s: float

    @property
    def seconds(self) -> float:
        return self.grade_s - self.start_s - self.cells_s

    @property
    def percent(self) -> float:
        return 100 * self.seconds / self.grade_s if self.grade_s else 0.0


@dataclass
class Row:
    name: str
    workers: int = 1
    skipped: str | None = None
    wall_s: float | None = None
    peak_worker_mb: float | None = None
    peak_total_mb: float | None = None
    peak_outside_workers_mb: float | None = None
    finished: str = ""
    exit_code: int | None = None
    overhead: Overhead | None = None
    outside_grade_s: float | None = None
    kernel_start_s: float | None = None
    cells_s: float | None = None


@dataclass(frozen=True)
class Bench:
    root: Path
    submissions: list[Submission]
    timeout: float
    env: dict[str, str] = field(default_factory=dict)


def warm_file_cache(python: str) -> None:
    """Import what the notebooks import once, untimed, so no row pays a cold disk cache."""
    code = "import tensorflow, keras, pandas, sklearn, matplotlib.pyplot"
    subprocess.run([python, "-c", code], capture_output=True, check=False)


# plain nbclient ---------------------------------------------------------------------------


@dataclass
class PlainRun:
    """One notebook run by plain nbclient: how it ended, and where its time went."""

    outcome: str
    kernel_start_s: float | None = None
    cells_s: float | None = None


def nbclient_row(bench: Bench) -> Row:
    paths = with_dataset(bench.root / "nbclient", bench.submissions)
    jupyter = kernelspec_path(bench.root / "nbclient-jupyter", sys.executable)
    runs = []
    with _environ("JUPYTER_PATH", str(jupyter)), TreeSampler(os.getpid(), pooled=False) as sampler:
        started = time.perf_counter()
        for path in paths:
            runs.append(execute_plainly(path, bench.timeout))
        wall = time.perf_counter() - started
    timed = [r for r in runs if r.kernel_start_s is not None and r.cells_s is not None]
    return Row(
        "nbclient",
        wall_s=wall,
        peak_worker_mb=sampler.peak_worker_mb,
        peak_total_mb=sampler.peak_total_mb,
        finished=_counted(Counter(r.outcome for r in runs)),
        kernel_start_s=_mean([r.kernel_start_s for r in timed]),
        cells_s=_mean([r.cells_s for r in timed]),
    )


def execute_plainly(path: Path, timeout: float) -> PlainRun:
    """Run the notebook as it is, in its folder; say how it went and how long it took."""
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # a page saved from the browser, not a notebook
        return PlainRun("unreadable")
    marks: dict[str, float] = {}
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_notebook_start=lambda **_: marks.setdefault("ready", time.perf_counter()),
        on_cell_executed=lambda **_: marks.__setitem__("last_cell", time.perf_counter()),
    )
    started = time.perf_counter()
    try:
        client.execute(stderr=subprocess.DEVNULL)
        errors = any(
            o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", [])
        )
        outcome = "ran with errors" if errors else "ran"
    except CellTimeoutError:
        outcome = "timed out"
    except Exception as err:  # nbclient itself failed: the kernel died, a message was lost
        outcome = f"failed ({type(err).__name__})"
    if "ready" not in marks or "last_cell" not in marks:
        return PlainRun(outcome)
    return PlainRun(outcome, marks["ready"] - started, marks["last_cell"] - marks["ready"])


def _mean(values: list[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


# nbgrader ---------------------------------------------------------------------------------


def nbgrader_row(bench: Bench) -> Row:
    python, version_or_reason = find_python()
    if python is None:
        return Row("nbgrader", skipped=version_or_reason)
    warm_file_cache(str(python))
    try:
        course = make_course(bench.root / "nbgrader", python, bench.submissions, bench.timeout)
    except RuntimeError as err:
        return Row("nbgrader", skipped=f"could not set up the course: {err}")
    log = bench.root / "nbgrader.log"
    with log.open("wb") as sink:
        wall, code, sampler = _timed_process(
            course.autograde(), cwd=course.root, env=course.env(), sink=sink, pooled=False
        )
    finished = f"{course.autograded()} autograded"
    if code != 0:
        finished += f", exit {code}: {_errors_in(log)}"
    return Row(
        "nbgrader",
        wall_s=wall,
        peak_worker_mb=sampler.peak_worker_mb,
        peak_total_mb=sampler.peak_total_mb,
        finished=finished,
        exit_code=code,
    )


def _errors_in(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    failed = [line for line in lines if "There was an error processing assignment '" in line]
    return f"{len(failed)} failed" if failed else "see its log"


# kgrade -----------------------------------------------------------------------------------


def kgrade_has_warm_kernels() -> bool:
    shown = subprocess.run(
        [str(KGRADE), "batch", "--help"], capture_output=True, text=True, check=False
    )
    return "--kernels" in shown.stdout


def cache_reference(bench: Bench) -> None:
    """Grade the reference once so that no timed row computes its figures."""
    command = [str(KGRADE), "grade", str(REFERENCE), "--exercise", "classification"]
    command += ["--out", str(bench.root / "reference"), "--timeout", str(bench.timeout)]
    done = subprocess.run(command, env=bench.env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"kgrade could not grade the reference:\n{done.stderr[-2000:]}")


def kgrade_command(
    bench: Bench, folder: Path, out: Path, workers: int | None, warm: bool
) -> list[str]:
    command = [str(KGRADE), "batch", str(folder), "--out", str(out)]
    command += ["--exercise", "classification", "--quiet", "--timeout", str(bench.timeout)]
    if workers is not None:
        command += ["--workers", str(workers)]
    if kgrade_has_warm_kernels():
        # Always say which: warm kernels are the default of a kgrade that has them.
        command += ["--kernels", "warm" if warm else "cold"]
    return command


def kgrade_row(bench: Bench, name: str, workers: int | None, *, warm: bool) -> Row:
    folder = bench.root / f"{name}-in"
    notebooks_only(folder, bench.submissions)
    out = bench.root / name
    command = kgrade_command(bench, folder, out, workers, warm)
    with (bench.root / f"{name}.log").open("wb") as sink:
        wall, code, sampler = _timed_process(
            command, cwd=bench.root, env=bench.env, sink=sink, pooled=True
        )
    results = _results(out)
    used = workers or cores()
    total_grade = sum(r["harness"]["duration_s"] for r in results)
    return Row(
        name,
        workers=used,
        wall_s=wall,
        peak_worker_mb=sampler.peak_worker_mb,
        peak_total_mb=sampler.peak_total_mb,
        peak_outside_workers_mb=sampler.peak_others_mb,
        finished=_counted(Counter(r["status"] for r in results)) + _exit_note(code),
        exit_code=code,
        overhead=_overhead(results),
        outside_grade_s=(used * wall - total_grade) / len(bench.submissions),
    )


def _results(out: Path) -> list[dict[str, Any]]:
    folder = out / "results"
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _overhead(results: list[dict[str, Any]]) -> Overhead | None:
    graded = [r for r in results if r["status"] == "graded"]
    if not graded:
        return None
    grade_s = sum(r["harness"]["duration_s"] for r in graded) / len(graded)
    cells_s = sum(c["duration_s"] for r in graded for c in r["cells"]) / len(graded)
    start_s = sum(
        r["harness"].get("timings", {}).get(key, 0.0)
        for r in graded
        for key in ("launcher_s", "kernel_start_s", "setup_s")
    ) / len(graded)
    return Overhead(graded=len(graded), grade_s=grade_s, start_s=start_s, cells_s=cells_s)


def _exit_note(code: int) -> str:
    return "" if code == 0 else f", exit {code}"


# shared -----------------------------------------------------------------------------------


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _timed_process(
    command: list[str], *, cwd: Path, env: dict[str, str], sink: Any, pooled: bool
) -> tuple[float, int, TreeSampler]:
    """Run ``command`` to its end, sampling its process tree; its wall time and exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    with TreeSampler(process.pid, pooled=pooled) as sampler:
        code = process.wait()
    return time.perf_counter() - started, code, sampler


def _counted(outcomes: Counter[str]) -> str:
    return ", ".join(f"{count} {what}" for what, count in outcomes.most_common())
