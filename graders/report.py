"""Render a graded submission as a self-contained HTML feedback report."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from graders.exercises import shipped
from graders.grade import Graded
from graders.result import Result

CELL_STATUS = {"ok": "ran cleanly", "error": "error", "timeout": "timed out", "not-run": "not run"}
STOPPED = {
    "deadline": "The notebook ran past the overall time limit, so later cells were not run.",
    "kernel-died": "The Python kernel crashed, so the cells after the crash were not run.",
    "unresponsive": "The Python kernel stopped answering, so later cells were not run.",
}
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def percent(fraction: float) -> str:
    """A fraction 0..1 as a whole percentage, e.g. ``0.813`` as ``81%``."""
    return f"{fraction:.0%}"


def number(value: float, name: str = "") -> str:
    """A number the way a student reads it: accuracies as percentages, counts whole."""
    if "accuracy" in name:
        return percent(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def seconds(value: float) -> str:
    """A duration as ``4.2 s``, ``30 s``, ``10 min`` or ``3 min 5 s``."""
    if value < 60:
        return f"{value:.0f} s" if float(value).is_integer() else f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def code_spans(text: str) -> Markup:
    """Escape ``text``, then show its `backticked` parts as inline code."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def verdict(result: Result) -> str:
    """One line that sums up a graded result."""
    failed = [c for c in result.checks if not c.passed]
    if not result.checks:
        return "No checks were run on this notebook."
    if not failed:
        return f"All {len(result.checks)} checks passed. Well done!"
    missing = sum(c.max_points - c.points for c in failed)
    return (
        f"{len(result.checks) - len(failed)} of {len(result.checks)} checks passed. "
        f"Fix the {len(failed)} marked ✗ below to earn the remaining {missing} "
        f"point{'s' if missing != 1 else ''}."
    )


@functools.cache
def templates() -> jinja2.Environment:
    """The shipped templates, compiled once per process and shared by every page kgrade writes."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(shipped("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(percent=percent, number=number, seconds=seconds, code_spans=code_spans)
    return env


def _context(graded: Graded) -> dict[str, Any]:
    result = graded.result
    cells = {cell.index: cell for cell in result.cells}
    # Each cell's plots appear once: in the first check card that shows the cell, else apart.
    plots_in_check: dict[int, str] = {}
    for check in result.checks:
        if check.cell in cells and check.cell in graded.figures:
            plots_in_check.setdefault(check.cell, check.id)
    return {
        "result": result,
        "cells": cells,
        "figures": graded.figures,
        "plots_in_check": plots_in_check,
        "other_plots": {i: f for i, f in sorted(graded.figures.items()) if i not in plots_in_check},
        "share": result.score / result.max_score if result.score and result.max_score else 0.0,
        "verdict": verdict(result),
        "cell_status": CELL_STATUS,
        "stopped": STOPPED.get(result.harness.stopped or "", result.harness.stopped),
    }


def render_report(graded: Graded) -> str:
    """The report of ``graded`` as one HTML page with inline CSS and embedded plots."""
    template = templates().get_template("report.html.j2")
    return template.render(**_context(graded))


def write_report(graded: Graded, path: Path) -> None:
    """Write the report of ``graded`` to ``path`` as UTF-8 HTML."""
    path.write_text(render_report(graded), encoding="utf-8")
