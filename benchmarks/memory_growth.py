"""``--memory-growth``: one long ``kgrade batch``, each worker's memory over the run."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import click
from class_folder import notebooks_only
from grader_runs import Bench, cache_reference, kgrade_command
from process_memory import TreeSampler, at_progress, last_seen, peak_tree_between
from table import mb


def memory_growth(bench: Bench, workers: int | None, warm: bool) -> dict[str, Any]:
    """Grade the class once with ``kgrade batch``; each worker's memory over the run."""
    cache_reference(bench)
    folder, out = bench.root / "growth-in", bench.root / "growth"
    notebooks_only(folder, bench.submissions)
    results = out / "results"

    def progress() -> int:
        return sum(1 for _ in results.glob("*.json")) if results.is_dir() else 0

    command = kgrade_command(bench, folder, out, workers, warm)
    started = time.perf_counter()
    with (bench.root / "growth.log").open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=bench.root, env=bench.env, stdout=sink, stderr=subprocess.STDOUT
        )
        with TreeSampler(process.pid, pooled=True, progress=progress) as sampler:
            code = process.wait()
    return {
        "m": len(bench.submissions),
        "wall_s": time.perf_counter() - started,
        "exit_code": code,
        "workers": _growth_by_worker(sampler, len(bench.submissions)),
        "parent_mb": _parent(sampler, len(bench.submissions)),
    }


def _parent(sampler: TreeSampler, count: int) -> dict[str, float | None]:
    """The batch process's own memory (PSS) at 10%, 50% and 100% of the run."""
    points: dict[str, float | None] = {}
    for label, share in (("10%", 0.1), ("50%", 0.5), ("100%", 1.0)):
        done = max(1, round(share * count))
        # The last samples of an exiting batch read no memory: they are left out.
        seen = [s.root_mb for s in sampler.samples if s.done >= done and s.root_mb > 0]
        points[label] = seen[0] if seen and share < 1 else (seen[-1] if seen else None)
    return points


def _growth_by_worker(sampler: TreeSampler, count: int) -> list[dict[str, Any]]:
    """Per worker, at 10%, 50% and 100% of the run: its own memory (PSS) at that point and the
    peak of its tree (itself and its kernels) since the previous point."""
    pids = sorted({pid for s in sampler.samples for pid in s.workers})
    marks = [("10%", max(1, round(0.1 * count))), ("50%", max(1, round(0.5 * count)))]
    workers = []
    for pid in pids:
        points: dict[str, Any] = {"pid": pid}
        after = -1
        for label, done in marks:
            seen = at_progress(sampler.samples, pid, done)
            peak = peak_tree_between(sampler.samples, pid, after, done)
            points[label] = {"own_mb": seen.own_mb if seen else None, "peak_tree_mb": peak}
            after = done
        last = last_seen(sampler.samples, pid)
        peak = peak_tree_between(sampler.samples, pid, after, count)
        points["100%"] = {"own_mb": last[1].own_mb if last else None, "peak_tree_mb": peak}
        points["done_when_last_seen"] = last[0] if last else None
        workers.append(points)
    return workers


def print_growth(growth: dict[str, Any]) -> None:
    click.echo(
        f"memory growth: {growth['m']} submissions in {growth['wall_s']:.0f} s "
        f"(exit {growth['exit_code']}); MB: the worker's own memory (PSS) at that point / "
        "the peak of the worker with its kernels since the previous point"
    )
    click.echo(f"{'worker pid':>10} {'at 10%':>13} {'at 50%':>13} {'at 100%':>13}")
    for worker in growth["workers"]:
        cells = [_growth_cell(worker[label]) for label in ("10%", "50%", "100%")]
        click.echo(f"{worker['pid']:>10} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13}")
    parent = [mb(growth["parent_mb"][label]) for label in ("10%", "50%", "100%")]
    click.echo(f"{'batch':>10} {parent[0]:>13} {parent[1]:>13} {parent[2]:>13}")


def _growth_cell(point: dict[str, float | None]) -> str:
    own, peak = point["own_mb"], point["peak_tree_mb"]
    return f"{mb(own)} / {mb(peak)}"
