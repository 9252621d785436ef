"""The class summary: one self-contained HTML page of how a batch went.

It shows the score histogram, the pass rate of every check (which concept the class
struggles with), the most frequent cell errors and hints, the submissions that could
not be graded and why, and a link to every student's report. Plots are drawn with
matplotlib's Agg canvas, without pyplot, and embedded as PNG data.
"""

from __future__ import annotations

import base64
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from graders import __version__
from graders.collect import Collection
from graders.gradebook import Row
from graders.report import templates

TOP = 8
_PASS = "#1a7f37"
_FAIL = "#b42318"
_BAR = "#0b5cad"


@dataclass(frozen=True)
class CheckRate:
    """How many graded submissions passed one check."""

    id: str
    title: str
    max_points: int
    passed: int
    graded: int

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass(frozen=True)
class Frequent:
    """A message many submissions share, with the students it concerns."""

    text: str
    label: str
    students: list[str] = field(default_factory=list)


def pass_rates(rows: Sequence[Row]) -> list[CheckRate]:
    """Each check's pass rate over the graded submissions, in rubric order."""
    seen: dict[str, dict[str, Any]] = {}
    passed: dict[str, int] = {}
    graded: dict[str, int] = {}
    for row in rows:
        if row.status != "graded":
            continue
        for check in row.result["checks"]:
            seen.setdefault(check["id"], check)
            graded[check["id"]] = graded.get(check["id"], 0) + 1
            passed[check["id"]] = passed.get(check["id"], 0) + int(bool(check["passed"]))
    return [
        CheckRate(i, c["title"], c["max_points"], passed.get(i, 0), graded[i])
        for i, c in seen.items()
    ]


def frequent_errors(rows: Sequence[Row], limit: int = TOP) -> list[Frequent]:
    """The cell errors most submissions hit, each counted once per submission."""
    found: dict[str, Frequent] = {}
    for row in rows:
        for cell in row.result.get("cells", []):
            if cell["status"] not in ("error", "timeout"):
                continue
            name = cell.get("error_name") or cell["status"]
            text = f"{name}: {cell['message']}" if cell.get("message") else name
            entry = found.setdefault(text, Frequent(text, cell["status"]))
            if row.student not in entry.students:
                entry.students.append(row.student)
    return _most(found, limit)


def frequent_hints(rows: Sequence[Row], limit: int = TOP) -> list[Frequent]:
    """The hints of failed checks most submissions were given."""
    found: dict[str, Frequent] = {}
    for row in rows:
        for check in row.result.get("checks", []):
            if check["passed"] or not check.get("hint"):
                continue
            entry = found.setdefault(check["hint"], Frequent(check["hint"], check["id"]))
            if row.student not in entry.students:
                entry.students.append(row.student)
    return _most(found, limit)


def render_summary(rows: Sequence[Row], collection: Collection) -> str:
    """The summary of ``rows`` (and of the files ``collection`` set aside) as HTML."""
    return templates().get_template("summary.html.j2").render(**_context(rows, collection))


def write_summary(rows: Sequence[Row], collection: Collection, path: Path) -> None:
    """Write the summary page to ``path`` as UTF-8 HTML."""
    path.write_text(render_summary(rows, collection), encoding="utf-8")


def _context(rows: Sequence[Row], collection: Collection) -> dict[str, Any]:
    scores = [row.score for row in rows if row.status == "graded" and row.score is not None]
    max_score = max((row.max_score for row in rows), default=0)
    rates = pass_rates(rows)
    return {
        "rows": sorted(rows, key=lambda r: r.student),
        "exercises": sorted({row.exercise for row in rows}),
        "counts": {s: sum(r.status == s for r in rows) for s in ("graded", "ungradable", "error")},
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "max_score": max_score,
        "rates": rates,
        "errors": frequent_errors(rows),
        "hints": frequent_hints(rows),
        "not_graded": [r for r in sorted(rows, key=lambda r: r.student) if r.status != "graded"],
        "collection": collection,
        "histogram": _histogram(scores, max_score) if scores else None,
        "rate_chart": _rate_chart(rates) if rates else None,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
    }


def _most(found: dict[str, Frequent], limit: int) -> list[Frequent]:
    ranked = sorted(found.values(), key=lambda f: (-len(f.students), f.text))
    return ranked[:limit]


def _histogram(scores: list[int], max_score: int) -> str:
    figure = Figure(figsize=(6.4, 2.8), dpi=110)
    axes = figure.add_subplot()
    counts = [scores.count(points) for points in range(max_score + 1)]
    axes.bar(range(max_score + 1), counts, color=_BAR, width=0.8)
    axes.set_xticks(range(max_score + 1))
    axes.set_xlabel(f"score (of {max_score} points)")
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return _png(figure)


def _rate_chart(rates: list[CheckRate]) -> str:
    figure = Figure(figsize=(6.4, 0.9 + 0.34 * len(rates)), dpi=110)
    axes = figure.add_subplot()
    positions = range(len(rates))
    values = [100 * r.rate for r in rates]
    colors = [_PASS if r.rate >= 0.75 else _FAIL if r.rate < 0.5 else _BAR for r in rates]
    axes.barh(positions, values, color=colors)
    axes.set_yticks(positions, [r.id for r in rates])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("graded submissions that pass (%)")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return _png(figure)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
