"""Grade the same class with plain nbclient, nbgrader and kgrade, and compare.

The class is N submissions copied round-robin from the reference solution and the
course's shared cases (``../shared/cases``), named ``student-001.ipynb`` and so on. Each
row grades all of them and reports its wall time, seconds per submission, its throughput
against plain nbclient (nbclient's wall time over the row's), the peak memory of one
worker (the largest proportional memory, PSS, summed over a worker process and the kernels it
started) and, for kgrade, what the harness adds to running the cells::

    .venv/bin/python benchmarks/compare_graders.py --n 6 --only nbclient,kgrade-w1-cold
    .venv/bin/python benchmarks/compare_graders.py --setup-nbgrader --n 50 --json out.json
    .venv/bin/python benchmarks/compare_graders.py --memory-growth 500 --no-cases

Rows: ``nbclient`` (one notebook after another, a fresh python3 kernel each, no checks),
``nbgrader`` (``nbgrader autograde --force`` on a course with no grade cells: sanitise and
execute, nothing scored), ``kgrade-w1-cold`` and ``kgrade-cold`` (``kgrade batch`` with
one worker and with the default), ``kgrade-w1-warm`` and ``kgrade-warm`` (the same with
``--kernels warm``, when this kgrade has it). Every row uses the same per-cell time-out.
kgrade's reference figures are cached before any timing starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from class_folder import round_robin, sources
from grader_runs import (
    Bench,
    Row,
    cache_reference,
    kgrade_has_warm_kernels,
    kgrade_row,
    nbclient_row,
    nbgrader_row,
    warm_file_cache,
)
from memory_growth import memory_growth, print_growth
from nbgrader_course import setup_venv
from table import (
    floor_per_submission,
    header,
    plain_wall,
    print_header,
    print_notes,
    print_table,
    row_json,
)

ROWS = ("nbclient", "nbgrader", "kgrade-w1-cold", "kgrade-cold", "kgrade-w1-warm", "kgrade-warm")


def main_rows(bench: Bench, names: list[str]) -> list[Row]:
    rows = []
    warm_file_cache(sys.executable)
    warm = any(name.endswith("-warm") for name in names) and kgrade_has_warm_kernels()
    if any(name.startswith("kgrade") for name in names):
        cache_reference(bench)
    for name in names:
        click.echo(f"running {name} ...", err=True)
        if name == "nbclient":
            rows.append(nbclient_row(bench))
        elif name == "nbgrader":
            rows.append(nbgrader_row(bench))
        elif name.endswith("-warm") and not warm:
            reason = "this kgrade batch has no --kernels option (no warm kernel pool yet)"
            rows.append(Row(name, skipped=reason))
        else:
            workers = 1 if "-w1-" in name else None
            rows.append(kgrade_row(bench, name, workers, warm=name.endswith("-warm")))
    return rows


@contextlib.contextmanager
def _scratch(keep: bool) -> Iterator[Path]:
    """A temporary folder for everything a run writes; with ``keep``, left for inspection."""
    root = Path(tempfile.mkdtemp(prefix="kgrade-compare-"))
    try:
        yield root
    finally:
        if keep:
            click.echo(f"kept the submissions, outputs and logs in {root}", err=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


# command line -----------------------------------------------------------------------------


def parse_only(value: str | None) -> list[str]:
    if not value:
        return list(ROWS)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        raise click.BadParameter(f"unknown rows {', '.join(unknown)}; choose from {ROWS}")
    return [name for name in ROWS if name in names]


@click.command()
@click.option(
    "--n", "count", type=click.IntRange(min=1), default=50, show_default=True, help="Submissions."
)
@click.option("--only", help=f"Comma-separated rows to run, of: {', '.join(ROWS)}.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds a cell.")
@click.option(
    "--cases/--no-cases",
    default=True,
    help="Use the shared cases, or copies of the reference only.",
)
@click.option("--setup-nbgrader", is_flag=True, help="Create benchmarks/.nbgrader-venv first.")
@click.option(
    "--memory-growth",
    "growth",
    type=click.IntRange(min=1),
    help="Instead of the table: grade M submissions, show worker memory over the run.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="Workers for --memory-growth (default: kgrade's)."
)
@click.option(
    "--kernels",
    type=click.Choice(["cold", "warm"]),
    default="cold",
    show_default=True,
    help="Kernels for --memory-growth.",
)
@click.option("--keep", is_flag=True, help="Keep the scratch folder (outputs, logs).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the figures here.",
)
def main(
    count: int,
    only: str | None,
    timeout: float,
    cases: bool,
    setup_nbgrader: bool,
    growth: int | None,
    workers: int | None,
    kernels: str,
    keep: bool,
    json_path: Path | None,
) -> None:
    """Grade the same N submissions with nbclient, nbgrader and kgrade; print a table."""
    names = parse_only(only)
    load = os.getloadavg()
    if growth and kernels == "warm" and not kgrade_has_warm_kernels():
        raise click.UsageError("this kgrade batch has no --kernels option")
    if setup_nbgrader and "nbgrader" in names and not growth:
        _setup_nbgrader()
    facts = header(growth or count, load)
    with _scratch(keep) as root:
        env = {**os.environ, "KGRADE_CACHE_DIR": str(root / "cache")}
        submissions = round_robin(growth or count, sources(cases))
        bench = Bench(root=root, submissions=submissions, timeout=timeout, env=env)
        if growth:
            figures = memory_growth(bench, workers, kernels == "warm")
        else:
            rows = main_rows(bench, names)
    print_header(facts)
    if growth:
        print_growth(figures)
        report = {**facts, "memory_growth": figures}
    else:
        report = {**facts, "rows": _print_rows(rows, count)}
        floor = floor_per_submission(rows, count)
        if floor is not None:
            report["floor"] = asdict(floor)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _setup_nbgrader() -> None:
    click.echo("setting up benchmarks/.nbgrader-venv (pip install) ...", err=True)
    try:
        setup_venv()
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None


def _print_rows(rows: list[Row], count: int) -> list[dict[str, Any]]:
    """Print the table and its notes; the rows as JSON."""
    print_table(rows, count)
    print_notes(rows, count)
    return [row_json(r, count, plain_wall(rows)) for r in rows]


if __name__ == "__main__":
    main()
