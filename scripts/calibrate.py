"""Calibrate the accuracy thresholds of the classification rubric.

The reference notebook is graded under many seeds on every dataset given, and known wrong
variants of it (made by editing one line of its text) under fewer seeds. For each dataset
and variant the distribution of every accuracy the rubric gates is printed, with the share
of runs passing the current thresholds, and then the highest threshold on a 0.05 grid that
every reference run reaches. Results are recorded in docs/calibration.md.

Example, from the project root::

    .venv/bin/python scripts/calibrate.py --data data/user_visit_duration.csv \\
        --data ../shared/data/user_visit_duration.csv --markdown /tmp/calib.md
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graders.grade import grade
from graders.options import DEFAULT_SEED, GradeOptions
from graders.rubrics.classification import THRESHOLDS

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "classification.ipynb"
REFERENCE_NAME = "reference"
# Each wrong variant replaces one exact piece of the reference notebook's text.
VARIANTS = {
    "sgd-default-lr": ("SGD(learning_rate=0.5)", "SGD()"),
    "relu": ("activation='sigmoid'", "activation='relu'"),
    "linear": ("activation='sigmoid'", "activation='linear'"),
}
# Metric name -> (check id, number name) in a graded result.
METRICS = {
    "trained_accuracy": ("trained-accuracy", "accuracy"),
    "train_accuracy": ("test-accuracy", "train_accuracy"),
    "test_accuracy": ("test-accuracy", "test_accuracy"),
}
# A variant fails the accuracy gate when one of these metrics is under its threshold.
GATE = ("trained_accuracy", "train_accuracy")
GRID = 0.05

Metrics = dict[str, float]
Runs = dict[tuple[str, str], list[Metrics]]


@dataclass(frozen=True)
class Job:
    dataset: str
    data: Path | None
    variant: str
    notebook: Path
    seed: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        action="append",
        type=Path,
        help="CSV to grade against; may be repeated (default: the exercise's shipped file)",
    )
    parser.add_argument("--seeds", type=int, default=50, help="seeds for the reference")
    parser.add_argument("--variant-seeds", type=int, default=10, help="seeds per wrong variant")
    parser.add_argument("--first-seed", type=int, default=DEFAULT_SEED, help="first seed used")
    parser.add_argument("--workers", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    return parser.parse_args(argv)


def write_variants(folder: Path) -> dict[str, Path]:
    """The reference notebook and each wrong variant of it, as files in ``folder``."""
    text = REFERENCE.read_text(encoding="utf-8")
    notebooks = {REFERENCE_NAME: REFERENCE}
    for name, (old, new) in VARIANTS.items():
        if text.count(old) != 1:
            raise SystemExit(f"{REFERENCE}: expected {old!r} exactly once to make {name!r}")
        notebooks[name] = folder / f"{name}.ipynb"
        notebooks[name].write_text(text.replace(old, new), encoding="utf-8")
    return notebooks


def plan(args: argparse.Namespace, notebooks: dict[str, Path]) -> list[Job]:
    datasets: list[Path | None] = list(args.data) if args.data else [None]
    jobs = []
    for data in datasets:
        label, path = (str(data), data.resolve()) if data else ("shipped", None)
        for variant, notebook in notebooks.items():
            count = args.seeds if variant == REFERENCE_NAME else args.variant_seeds
            for seed in range(args.first_seed, args.first_seed + count):
                jobs.append(Job(label, path, variant, notebook, seed))
    return jobs


def grade_one(job: Job) -> tuple[Job, str | None, Metrics]:
    """Why the run could not be graded (or None), and the accuracies the grader computed."""
    options = GradeOptions(
        exercise="classification", data=job.data, seed=job.seed, with_reference=False
    )
    result = grade(job.notebook, options).result
    if result.status != "graded":
        return job, f"{result.status}: {result.message}", {}
    # A trace the harness could not capture whole says nothing about the notebook.
    harness = result.harness
    if harness.trace_problems or harness.stopped:
        return job, f"harness: {harness.stopped or '; '.join(harness.trace_problems)}", {}
    checks = {check.id: check for check in result.checks}
    metrics = {}
    for metric, (check_id, number) in METRICS.items():
        check = checks.get(check_id)
        if check is not None and number in check.numbers:
            metrics[metric] = check.numbers[number].yours
    return job, None, metrics


def run_all(jobs: list[Job], workers: int) -> tuple[Runs, list[str]]:
    """The graded runs by dataset and variant, and a line for each run that was not graded."""
    runs: Runs = defaultdict(list)
    problems = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_one, job) for job in jobs]
        for done, future in enumerate(as_completed(futures), start=1):
            job, problem, metrics = future.result()
            name = f"{job.dataset} {job.variant} seed {job.seed}"
            if problem:
                problems.append(f"{name}: {problem}")
            else:
                runs[job.dataset, job.variant].append(metrics)
            shown = problem or " ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            print(f"[{done}/{len(jobs)}] {name}: {shown or 'no numbers'}", file=sys.stderr)
    order = {(job.dataset, job.variant): i for i, job in reversed(list(enumerate(jobs)))}
    return dict(sorted(runs.items(), key=lambda item: order[item[0]])), problems


def distribution_rows(runs: Runs) -> list[list[str]]:
    rows = []
    for (dataset, variant), results in runs.items():
        for metric in METRICS:
            values = np.array([r[metric] for r in results if metric in r])
            passing = sum(r.get(metric, -math.inf) >= THRESHOLDS[metric] for r in results)
            count = f"{values.size}/{len(results)}"
            share = f"{passing / len(results):.0%}"
            rows.append([dataset, variant, metric, count, *_statistics(values), share])
    return rows


def _statistics(values: np.ndarray) -> list[str]:
    """Min, 5th percentile, median, mean and max, or dashes when there are no values."""
    if not values.size:
        return ["-"] * 5
    figures = [values.min(), np.percentile(values, 5), np.median(values), values.mean()]
    return [f"{float(f):.3f}" for f in [*figures, values.max()]]


def suggest(runs: Runs) -> dict[str, float | None]:
    """Per metric, the highest grid value every reference run on every dataset reaches."""
    suggested: dict[str, float | None] = {}
    for metric in METRICS:
        results = [r for (_, v), rs in runs.items() if v == REFERENCE_NAME for r in rs]
        if not results or any(metric not in r for r in results):
            suggested[metric] = None
            continue
        lowest = min(r[metric] for r in results)
        suggested[metric] = round(math.floor(lowest / GRID + 1e-9) * GRID, 2)
    return suggested


def gate_rows(runs: Runs, thresholds: dict[str, float | None]) -> list[list[str]]:
    """How many runs of each wrong variant fail the accuracy gate under ``thresholds``."""
    rows = []
    for (dataset, variant), results in runs.items():
        if variant == REFERENCE_NAME:
            continue
        failing = sum(_fails_gate(r, thresholds) for r in results)
        verdict = "yes" if failing == len(results) else "NO"
        rows.append([dataset, variant, f"{failing}/{len(results)}", verdict])
    return rows


def _fails_gate(metrics: Metrics, thresholds: dict[str, float | None]) -> bool:
    for metric in GATE:
        threshold = thresholds[metric]
        if threshold is not None and metrics.get(metric, -math.inf) < threshold:
            return True
    return False


def table(header: list[str], rows: list[list[str]], *, markdown: bool) -> str:
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [[c.ljust(w) for c, w in zip(row, widths, strict=True)] for row in [header, *rows]]
    if markdown:
        rule = ["-" * w for w in widths]
        return "\n".join("| " + " | ".join(r) + " |" for r in [lines[0], rule, *lines[1:]])
    return "\n".join("  ".join(r).rstrip() for r in lines)


def report(runs: Runs, *, markdown: bool) -> str:
    current = ", ".join(f"{k} {v:g}" for k, v in THRESHOLDS.items())
    suggested = suggest(runs)
    shown = {k: "-" if v is None else f"{v:.2f}" for k, v in suggested.items()}
    sections = [
        (
            f"Distributions (pass: share of runs reaching the current threshold; {current})",
            ["dataset", "variant", "metric", "n", "min", "p5", "median", "mean", "max", "pass"],
            distribution_rows(runs),
        ),
        (
            "Suggested thresholds (the highest 0.05 step every reference run reaches)",
            ["metric", "current", "suggested"],
            [[m, f"{THRESHOLDS[m]:g}", shown[m]] for m in METRICS],
        ),
        (
            f"Wrong variants failing the gate ({' or '.join(GATE)}) if the suggestion is used",
            ["dataset", "variant", "failing", "all fail"],
            gate_rows(runs, suggested),
        ),
    ]
    parts = [f"{title}\n\n{table(head, rows, markdown=markdown)}" for title, head, rows in sections]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kgrade-calibrate-") as folder:
        jobs = plan(args, write_variants(Path(folder)))
        runs, problems = run_all(jobs, args.workers)
    print(report(runs, markdown=False))
    if args.markdown:
        args.markdown.write_text(report(runs, markdown=True), encoding="utf-8")
        print(f"Markdown tables written to {args.markdown}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(f"{len(problems)} runs could not be graded; the tables leave them out")


if __name__ == "__main__":
    main()
