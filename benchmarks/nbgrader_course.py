"""nbgrader for the comparison: where to find it, its own virtualenv, and a course folder.

nbgrader drags in Jupyter Server, JupyterLab and Notebook, so by default it lives in
``benchmarks/.nbgrader-venv`` (git-ignored) with the same TensorFlow, Keras, pandas,
scikit-learn and Matplotlib as kgrade's environment, never in kgrade's own.

The course has one assignment, ``classification``, whose source is the reference solution.
It has no grade cells: nbgrader's autograde then sanitises each submission (clears its
outputs, fixes its kernelspec), executes it in a fresh kernel and saves it, but scores
nothing. That is the part of nbgrader comparable to a kgrade run (kgrade's checks read a
trace, not test cells).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from class_folder import REFERENCE, Submission, kernelspec_path, place_dataset

VENV = Path(__file__).resolve().parent / ".nbgrader-venv"
ASSIGNMENT = "classification"
PINNED = ("tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "matplotlib", "ipykernel")


@dataclass(frozen=True)
class Course:
    root: Path
    python: Path
    jupyter_path: Path
    students: list[str]

    def autograde(self) -> list[str]:
        return [str(self.python), "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"]

    def env(self) -> dict[str, str]:
        """Its kernelspec first, and its venv's ``bin`` on PATH (nbgrader runs ``alembic``)."""
        path = os.pathsep.join([str(self.python.parent), os.environ.get("PATH", "")])
        return {**os.environ, "JUPYTER_PATH": str(self.jupyter_path), "PATH": path}

    def autograded(self) -> int:
        """How many submissions nbgrader wrote an executed notebook for."""
        folder = self.root / "autograded"
        return sum(
            (folder / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file() for s in self.students
        )


def find_python() -> tuple[Path | None, str]:
    """A Python that can run nbgrader, and its version; else None and why not."""
    if find_spec("nbgrader") is not None:
        return Path(sys.executable), metadata.version("nbgrader")
    python = VENV / "bin" / "python"
    if not python.is_file():
        return None, "nbgrader is not installed: pass --setup-nbgrader to create its venv"
    found = subprocess.run(
        [str(python), "-c", "import nbgrader; print(nbgrader.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None, "benchmarks/.nbgrader-venv has no nbgrader: pass --setup-nbgrader"
    return python, found.stdout.strip()


def setup_venv() -> None:
    """Create ``benchmarks/.nbgrader-venv`` and install nbgrader and kgrade's pins into it.

    Raises:
        RuntimeError: venv or pip failed; the message ends with pip's last lines.
    """
    VENV.mkdir(exist_ok=True)
    if not (VENV / "bin" / "python").is_file():
        _run([sys.executable, "-m", "venv", str(VENV)])
    pins = [f"{name}=={metadata.version(name)}" for name in PINNED]
    _run([str(VENV / "bin" / "python"), "-m", "pip", "install", "nbgrader", *pins])


def _run(command: list[str]) -> None:
    log = VENV / "setup.log"
    with log.open("a", encoding="utf-8") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n" + "\n".join(tail))


def make_course(root: Path, python: Path, submissions: list[Submission], timeout: float) -> Course:
    """A course folder with the assignment released and every submission in place."""
    jupyter_path = kernelspec_path(root / "jupyter", str(python))
    course = Course(root / "course", python, jupyter_path, [s.student for s in submissions])
    source = course.root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    shutil.copyfile(REFERENCE, source / f"{ASSIGNMENT}.ipynb")
    _write_config(course.root, timeout)
    _release(course)
    for submission in submissions:
        _submit(course.root, submission)
    return course


def _write_config(root: Path, timeout: float) -> None:
    # The reference marks solutions without nbgrader cell metadata: allowed when releasing.
    config = (
        "c = get_config()  # noqa: F821\n"
        "c.CourseDirectory.course_id = 'kgrade-bench'\n"
        "c.ClearSolutions.enforce_metadata = False\n"
        f"c.Execute.timeout = {int(timeout)}\n"
    )
    (root / "nbgrader_config.py").write_text(config, encoding="utf-8")


def _release(course: Course) -> None:
    command = [str(course.python), "-m", "nbgrader", "generate_assignment", ASSIGNMENT]
    done = subprocess.run(
        [*command, "--force"], cwd=course.root, env=course.env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stderr[-2000:]}")


def _submit(root: Path, submission: Submission) -> None:
    """The student's notebook with the dataset beside it, as nbgrader expects it."""
    folder = root / "submitted" / submission.student / ASSIGNMENT
    folder.mkdir(parents=True)
    shutil.copyfile(submission.source, folder / f"{ASSIGNMENT}.ipynb")
    place_dataset(folder)
    # Notebooks run in autograded/STUDENT/ASSIGNMENT, so ../data is autograded/STUDENT/data.
    place_dataset(root / "autograded" / submission.student, beside=False)
