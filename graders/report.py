"""Render a graded submission as a self-contained HTML feedback report."""

from __future__ import annotations

from pathlib import Path

import jinja2

from graders.exercises import shipped
from graders.grade import Graded


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(shipped("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(graded: Graded) -> str:
    """The report of ``graded`` as one HTML page with inline CSS and embedded plots."""
    template = _environment().get_template("report.html.j2")
    result = graded.result
    cells = {cell.index: cell for cell in result.cells}
    return template.render(result=result, cells=cells, figures=graded.figures)


def write_report(graded: Graded, path: Path) -> None:
    path.write_text(render_report(graded), encoding="utf-8")
