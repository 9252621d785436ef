"""The comparison's header, table and notes, and its figures as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import click
import psutil
from grader_runs import Row, cores
from nbgrader_course import find_python


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(count: int, load: tuple[float, float, float]) -> dict[str, Any]:
    nbgrader_python, nbgrader = find_python()
    return {
        "cores": cores(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in load],
        "n": count,
        "kgrade": _version("kgrade"),
        "tensorflow": _version("tensorflow-cpu"),
        "nbclient": _version("nbclient"),
        "nbgrader": nbgrader if nbgrader_python else "not available",
    }


def print_header(facts: dict[str, Any]) -> None:
    load = " ".join(f"{x:.2f}" for x in facts["load_average"])
    click.echo(f"machine: {facts['cores']} cores, {facts['memory_gib']} GiB, load average {load}")
    click.echo(
        f"N = {facts['n']} submissions; kgrade {facts['kgrade']}, tensorflow "
        f"{facts['tensorflow']}, nbclient {facts['nbclient']}, nbgrader {facts['nbgrader']}"
    )


def plain_wall(rows: list[Row]) -> float | None:
    """Plain nbclient's wall time, the base of every ratio; None when it did not run."""
    return next((r.wall_s for r in rows if r.name == "nbclient" and r.wall_s), None)


def print_table(rows: list[Row], count: int) -> None:
    base = plain_wall(rows)
    click.echo(
        f"{'row':<15} {'workers':>7} {'wall s':>8} {'s/sub':>7} {'x nbclient':>10} "
        f"{'MB/worker':>9} {'MB total':>8} {'overhead s (%)':>15}  finished"
    )
    for row in rows:
        if row.wall_s is None:
            click.echo(f"{row.name:<15} skipped: {row.skipped}")
            continue
        ratio = f"{base / row.wall_s:.2f}" if base else "-"
        extra = row.overhead
        overhead = f"{extra.seconds:.1f} ({extra.percent:.0f}%)" if extra else "-"
        click.echo(
            f"{row.name:<15} {row.workers:>7} {row.wall_s:>8.1f} {row.wall_s / count:>7.1f} "
            f"{ratio:>10} {mb(row.peak_worker_mb):>9} {mb(row.peak_total_mb):>8} "
            f"{overhead:>15}  {row.finished}"
        )


def print_notes(rows: list[Row], count: int) -> None:
    """What the overhead column means, with the figures that put it in proportion."""
    kgrade = [r for r in rows if r.overhead is not None]
    if not kgrade:
        return
    click.echo(
        "overhead: mean over the graded results (results/*.json) of grade() minus the "
        "launcher's readiness (a warm pool's start), the kernel start, the probe's set-up "
        "(which imports TensorFlow in a cold kernel) and the cells' run time: the trace "
        "captures, reading the trace and the checks."
    )
    _print_floor(rows, count)
    plain = next((r for r in rows if r.name == "nbclient" and r.kernel_start_s), None)
    if plain is not None and plain.kernel_start_s is not None and plain.cells_s is not None:
        click.echo(
            f"plain nbclient, per notebook: kernel start {plain.kernel_start_s:.1f} s, "
            f"cells {plain.cells_s:.1f} s (TensorFlow imported by the first cell)"
        )
    for row in kgrade:
        extra = row.overhead
        if extra is None:
            continue
        click.echo(
            f"{row.name}: grade() {extra.grade_s:.1f} s, launcher, kernel start and set-up "
            f"{extra.start_s:.1f} s, cells {extra.cells_s:.1f} s; "
            f"outside grade() (spawn, reports, gradebook, idle workers) "
            f"{row.outside_grade_s or 0:.1f} s per submission"
        )
        if (row.peak_outside_workers_mb or 0) > 100:
            click.echo(
                f"{row.name}: {mb(row.peak_outside_workers_mb)} MB at peak in processes "
                "outside the workers' trees (counted in MB total only)"
            )


@dataclass(frozen=True)
class Floor:
    """The cells' mean run time in ``row``, and what it allows per submission on these cores."""

    row: str
    cells_s: float
    per_submission_s: float


def floor_per_submission(rows: list[Row], count: int) -> Floor | None:
    """The least seconds per submission any grader needs here: the cells' own time over cores.

    Taken from the one-worker warm row when there is one (its cells never shared a core),
    else the first kgrade row; with the row's name and the cells' mean time.
    """
    measured = [r for r in rows if r.overhead is not None]
    row = next((r for r in measured if r.name == "kgrade-w1-warm"), None) or (
        measured[0] if measured else None
    )
    if row is None or row.overhead is None:
        return None
    cells_s, graded = row.overhead.cells_s, row.overhead.graded
    return Floor(row.name, cells_s, cells_s * graded / count / cores())


def _print_floor(rows: list[Row], count: int) -> None:
    floor = floor_per_submission(rows, count)
    if floor is None:
        return
    line = (
        f"floor: the cells of a graded submission ran {floor.cells_s:.1f} s on average "
        f"({floor.row}); on {cores()} cores no grader that runs them all needs less than "
        f"{floor.per_submission_s:.2f} s per submission"
    )
    plain = plain_wall(rows)
    if plain:
        line += f", i.e. at most {plain / count / floor.per_submission_s:.1f}x plain nbclient"
    click.echo(line)


def mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row_json(row: Row, count: int, base: float | None) -> dict[str, Any]:
    data = asdict(row)
    if row.wall_s is not None:
        data["per_submission_s"] = row.wall_s / count
        data["ratio_to_nbclient"] = base / row.wall_s if base else None
    if row.overhead is not None:
        data["overhead"].update(seconds=row.overhead.seconds, percent=row.overhead.percent)
    return data
