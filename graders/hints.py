"""Hints for cells that raised or timed out: what the error means for this lesson."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from graders.execute import TIMEOUT_ERROR, CellRun


@dataclass(frozen=True)
class ErrorHint:
    """A hint shown when a cell's error matches ``name`` and ``pattern``."""

    name: str | None
    pattern: str
    text: str

    def matches(self, error_name: str, message: str) -> bool:
        if self.name is not None and self.name != error_name:
            return False
        return re.search(self.pattern, message) is not None


LR_HINT = (
    "Keras 3 renamed the optimizer's `lr` argument to `learning_rate`: write "
    "SGD(learning_rate=0.5). Until this cell runs, the model is not compiled or trained."
)
THRESHOLD_HINT = (
    "Class predictions come from thresholding the probabilities at 0.5 (the cut-off between "
    "'buys' and 'does not buy'): y_class_pred = model.predict(X) > 0.5"
)

ERROR_HINTS: tuple[ErrorHint, ...] = (
    ErrorHint(None, r"not recognized:.*'lr'|unexpected keyword argument 'lr'", LR_HINT),
    ErrorHint(
        None,
        r"must call `?compile\(\)`? before",
        "The model is not compiled, so it cannot be trained or evaluated: make the cell "
        "with model.compile(...) run without an error first.",
    ),
    ErrorHint(
        "AttributeError",
        r"predict_classes",
        "Keras no longer has predict_classes. " + THRESHOLD_HINT,
    ),
    ErrorHint(
        "ValueError",
        r"binary and continuous|continuous targets|continuous format",
        "accuracy_score compares classes 0 and 1, not probabilities. " + THRESHOLD_HINT,
    ),
    ErrorHint(
        None,
        r"unknown rank|expected axis -1 of input shape|incompatible with the layer",
        "The model was called with inputs of another shape than before (for example "
        "np.linspace(0, 4) is 1-D while X is a column). Give predict the same 2-D shape "
        "every time: np.linspace(0, 4).reshape(-1, 1).",
    ),
    ErrorHint(
        "StdinNotImplementedError",
        r"",
        "The grader runs your notebook without a keyboard, so input() cannot be "
        "answered (no interactive stdin). Write the value into the code, e.g. epochs=25.",
    ),
    ErrorHint(
        "FileNotFoundError",
        r"user_visit_duration|\.csv",
        "Read the data with pd.read_csv('data/user_visit_duration.csv'); the grader "
        "provides the file there, in the working folder and in ../data/.",
    ),
    ErrorHint(
        "ModuleNotFoundError",
        r"",
        "That module is not available while grading. Use only the lesson's packages: "
        "numpy, pandas, matplotlib, scikit-learn and keras (or tensorflow.keras).",
    ),
    ErrorHint(
        "NotImplementedError",
        r"",
        "This cell still holds the exercise's placeholder: replace "
        "`raise NotImplementedError()` with your code.",
    ),
    ErrorHint(
        "MemoryError",
        r"",
        "This cell asked for more memory than a notebook may use while grading. Look for "
        "a huge array (check its shape) or a list that grows in a loop without end.",
    ),
    ErrorHint(
        None,
        r"Resource temporarily unavailable|can't start new thread",
        "The notebook started more processes or threads than grading allows. The lesson "
        "needs no extra processes: remove os.fork, subprocess or threading code.",
    ),
    ErrorHint(
        None,
        r"Network is unreachable|Temporary failure in name resolution|Name or service not "
        r"known|No address associated|Connection refused|Errno 101",
        "There is no network while grading: the notebook cannot download or connect to "
        "anything. Use the dataset the grader provides and the lesson's packages.",
    ),
    ErrorHint(
        None,
        r"File too large|Errno 27",
        "The notebook wrote a file larger than grading allows. The lesson needs to write "
        "no files at all.",
    ),
    ErrorHint(
        None,
        r"Read-only file system|Permission denied|Operation not permitted",
        "While grading, the notebook may only write in its own working folder and the "
        "temporary folder, and may not touch other processes. The lesson needs neither.",
    ),
    ErrorHint(
        TIMEOUT_ERROR,
        r"",
        "This cell ran past the time limit and was stopped. Look for a loop that never "
        "ends, or far more epochs than the lesson's 25, then run it again.",
    ),
    ErrorHint(
        "SystemExit",
        r"",
        "exit() and sys.exit() stop the notebook's Python process. Remove the call: a "
        "notebook should simply end after its last cell.",
    ),
    ErrorHint(
        "NoReply",
        r"",
        "The notebook's Python process stopped answering in this cell (it may have called "
        "exit()). Later cells could not run.",
    ),
    ErrorHint(
        "DeadKernelError",
        r"",
        "The Python process running your notebook stopped in this cell (it ran out of "
        "memory or called exit()). Later cells could not run.",
    ),
)

_NAME_ERROR = re.compile(r"name '(\w+)' is not defined")


def hint_for(run: CellRun, runs: Sequence[CellRun], sources: dict[int, str]) -> str | None:
    """A hint for a cell that did not end well, or None when nothing specific applies."""
    if run.status == "not-run":
        return _not_run_hint(run.reason)
    name, message = run.error_name or "", run.error_value or ""
    found = _NAME_ERROR.search(message) if name == "NameError" else None
    if found:
        return _name_error_hint(found.group(1), run, runs, sources)
    for hint in ERROR_HINTS:
        if hint.matches(name, message):
            return hint.text
    return None


def _name_error_hint(
    missing: str, run: CellRun, runs: Sequence[CellRun], sources: dict[int, str]
) -> str:
    assigns = re.compile(rf"(^|[\s,(]){re.escape(missing)}\s*(,[^=\n]*)?=(?!=)", re.MULTILINE)
    for earlier in runs:
        if earlier.index >= run.index:
            break
        if earlier.status != "ok" and assigns.search(sources.get(earlier.index, "")):
            return (
                f"`{missing}` is created in cell {earlier.index + 1}, which failed, so it "
                f"never existed here. Fix cell {earlier.index + 1} first; this error "
                "should then disappear."
            )
    return (
        f"`{missing}` is used before any cell created it. Check its spelling, and that "
        "the cell defining it comes earlier in the notebook."
    )


def _not_run_hint(reason: str | None) -> str:
    if reason == "deadline":
        return (
            "Not run: the whole notebook reached its time limit before this cell. "
            "Make the slow cells faster (fewer epochs, no endless loops)."
        )
    if reason == "kernel-died":
        return "Not run: the Python process stopped in an earlier cell."
    return "Not run: the notebook stopped answering in an earlier cell."
