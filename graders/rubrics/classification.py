"""Rubric of "Classification with Keras": a one-unit logistic model on visit durations.

Every check reads the trace only. The grader locates the lesson's steps in it (the model,
its first training, the reset, the split, the retraining) and computes every accuracy
itself with a NumPy forward pass on its own copy of the dataset.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from graders.errors import UnsupportedModel
from graders.forward import predict
from graders.rubric import Check, Evidence, Outcome, Rubric
from graders.rubrics.common import (
    ModelAt,
    compiled,
    created,
    loss_name,
    model_history,
    never_built,
    one_unit_on_one_input,
    output_activation,
    same_rows,
    sorted_rows,
)
from graders.trace import Step

# Calibrated with scripts/calibrate.py over 100 reference runs and 60 wrong-variant runs;
# docs/calibration.md has the distributions and the margin on each side of every value.
# Test accuracy (20 rows) separates nothing alone: it is set low to never fail the reference.
THRESHOLDS = {
    "trained_accuracy": 0.7,
    "train_accuracy": 0.7,
    "test_accuracy": 0.55,
}
TEST_FRACTION = 0.2
BOUNDARY_TOLERANCE = 1e-3
BCE_NAMES = {"binary_crossentropy", "binarycrossentropy", "bce"}
ACCURACY_NAMES = {"accuracy", "acc", "binary_accuracy", "binaryaccuracy"}


@dataclass(frozen=True)
class Split:
    """The student's train/test split, checked against the dataset."""

    step: Step
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


class Lesson:
    """The lesson's steps as found in one trace."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.steps = evidence.trace.steps
        self.history = model_history(evidence)

    @functools.cached_property
    def reset(self) -> ModelAt | None:
        """The first state whose every weight is zero after the model had other values."""
        had_values = False
        for at in self.history:
            weights = at.state.weights
            if weights and all(not np.any(w) for w in weights):
                if had_values:
                    return at
            elif weights:
                had_values = True
        return None

    @functools.cached_property
    def split(self) -> Split | None:
        """The first step holding all four parts of the split, if they are valid."""
        names = ("X_train", "X_test", "y_train", "y_test")
        for step in self.steps:
            parts = [step.arrays.get(name) for name in names]
            if all(p is not None for p in parts):
                x_train, x_test, y_train, y_test = (_column(p) for p in parts if p is not None)
                return Split(step, x_train, x_test, y_train, y_test)
        return None

    @functools.cached_property
    def reset_attempt(self) -> ModelAt | None:
        """The first state whose weights changed without training: a reset, maybe partial."""
        for before, after in itertools.pairwise(self.history):
            old, new = before.state, after.state
            if old.iterations != new.iterations or len(old.weights) != len(new.weights):
                continue
            if any(not np.array_equal(a, b) for a, b in zip(old.weights, new.weights, strict=True)):
                return after
        return None

    @functools.cached_property
    def first_training_end(self) -> int:
        """Step number before which the first training on all the data happened."""
        for reset in (self.reset_attempt, self.reset):
            if reset is not None:
                return reset.step.number
        if self.split is not None:
            base = self._iterations_at(self.split.step.number)
            for at in self.history:
                if at.step.number > self.split.step.number and (at.state.iterations or 0) > base:
                    return at.step.number
        return self.steps[-1].number + 1 if self.steps else 0

    def _iterations_at(self, step_number: int) -> int:
        states = [at for at in self.history if at.step.number <= step_number]
        return (states[-1].state.iterations or 0) if states else 0

    @functools.cached_property
    def first_trained(self) -> ModelAt | None:
        """The model's state just before the reset (or the retraining)."""
        before = [at for at in self.history if at.step.number < self.first_training_end]
        return before[-1] if before else None

    @functools.cached_property
    def retrained(self) -> ModelAt | None:
        """The model's last state, when it was trained again after the split and reset."""
        if not self.history or self.split is None:
            return None
        start = max(self.split.step.number, self.reset.step.number if self.reset else 0)
        final = self.history[-1]
        if final.step.number <= start or (final.state.iterations or 0) <= self._iterations_at(
            start
        ):
            return None
        return final

    def trained_in(self, at: ModelAt) -> int:
        """The cell where the model's training reached the progress of state ``at``."""
        for earlier in self.history:
            if earlier.state.iterations == at.state.iterations:
                return earlier.step.cell
        return at.step.cell

    def accuracy(self, at: ModelAt, x: np.ndarray, y: np.ndarray) -> float:
        probabilities = predict(at.state, x)[:, 0]
        return float(np.mean((probabilities > 0.5) == (y > 0.5)))


def _column(array: np.ndarray) -> np.ndarray:
    """A 1-D view of a one-column array; other shapes are returned unchanged."""
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    return array


def _lesson(evidence: Evidence) -> Lesson:
    if "lesson" not in evidence.memo:
        evidence.memo["lesson"] = Lesson(evidence)
    lesson: Lesson = evidence.memo["lesson"]
    return lesson


def data_loaded(evidence: Evidence) -> Outcome:
    dataset = evidence.dataset
    feature, target = RUBRIC.feature, RUBRIC.target
    seen_frame = False
    for step in evidence.trace.steps:
        for frame in step.frames:
            seen_frame = True
            if feature not in frame.data or target not in frame.data:
                continue
            if frame.shape[0] != dataset.rows:
                continue
            if same_rows(frame.data[feature], frame.data[target], dataset.x, dataset.y):
                name = frame.names[0]
                return Outcome(
                    True, f"`{name}` holds the {dataset.rows} rows of the dataset.", cell=step.cell
                )
    if seen_frame:
        return Outcome(
            False,
            f"No DataFrame holds the dataset's {dataset.rows} rows with the "
            f"columns {feature!r} and {target!r}.",
            hint="Load the file with pd.read_csv and keep it unchanged in `df`.",
        )
    return Outcome(
        False,
        "The dataset was never loaded into a DataFrame.",
        hint="Use df = pd.read_csv('data/user_visit_duration.csv').",
    )


_NO_MODEL = Outcome(
    False,
    "No Keras model was found in the notebook.",
    hint="Create it with keras.Sequential and keep it in a variable such as `model`.",
)


def model_architecture(evidence: Evidence) -> Outcome:
    at = created(evidence)
    if at is None:
        return _NO_MODEL
    model = at.state
    if not model.built or not model.weights:
        return never_built(at)
    one_unit, params = one_unit_on_one_input(model)
    dense = [layer for layer in model.layers if layer.class_name == "Dense"]
    if one_unit:
        return Outcome(
            True,
            "One Dense unit on one input: 2 parameters (a weight and a bias).",
            cell=at.step.cell,
            numbers={"parameters": params},
        )
    return Outcome(
        False,
        f"The model has {params} parameters in {len(dense)} Dense layer(s); the lesson's "
        "model has 2: one Dense unit with one weight and one bias.",
        hint="Use a single keras.layers.Dense(1, ...) after keras.Input(shape=(1,)); logistic "
        "regression needs no hidden layer.",
        cell=at.step.cell,
        numbers={"parameters": params},
    )


def sigmoid_activation(evidence: Evidence) -> Outcome:
    at = created(evidence)
    if at is None:
        return _NO_MODEL
    name = output_activation(at.state)
    if name == "sigmoid":
        return Outcome(
            True, "The output goes through a sigmoid, so it is a probability.", cell=at.step.cell
        )
    return Outcome(
        False,
        f"The output unit uses the {name!r} activation, so its output is not a "
        "probability between 0 and 1.",
        hint="Write activation='sigmoid' in the Dense layer: the sigmoid squeezes any number "
        "into (0, 1), which is what thresholding at 0.5 assumes.",
        cell=at.step.cell,
    )


_NOT_COMPILED = Outcome(
    False,
    "The model was never compiled, so it has no loss or metrics.",
    hint="Call model.compile(optimizer, loss, metrics=[...]) and make "
    "sure that cell runs without an error.",
)


def binary_crossentropy_loss(evidence: Evidence) -> Outcome:
    at = compiled(evidence)
    if at is None or at.state.compile is None:
        return _NOT_COMPILED
    name, from_logits = loss_name(at.state.compile.get("loss"))
    if name in BCE_NAMES and not from_logits:
        return Outcome(True, "The model is compiled with binary cross-entropy.", cell=at.step.cell)
    if name in BCE_NAMES:
        return Outcome(
            False,
            "Binary cross-entropy is set with from_logits=True, but the "
            "sigmoid output is already a probability.",
            hint="Drop from_logits=True.",
            cell=at.step.cell,
        )
    return Outcome(
        False,
        f"The model is compiled with the {name!r} loss, not binary cross-entropy.",
        hint="For a yes/no target use loss='binary_crossentropy': it punishes confident wrong "
        "probabilities much harder than mean squared error does.",
        cell=at.step.cell,
    )


def _metric_names(metrics: object) -> set[str]:
    names: set[str] = set()
    for metric in metrics if isinstance(metrics, list) else [metrics]:
        if isinstance(metric, dict):
            names.add(str(metric.get("class_name", "")).lower())
            config = metric.get("config")
            if isinstance(config, str | dict):
                names.add(str(config if isinstance(config, str) else config.get("name")).lower())
        elif metric is not None:
            names.add(str(metric).lower())
    return names


def accuracy_metric(evidence: Evidence) -> Outcome:
    at = compiled(evidence)
    if at is None or at.state.compile is None:
        return _NOT_COMPILED
    if _metric_names(at.state.compile.get("metrics")) & ACCURACY_NAMES:
        return Outcome(True, "The model reports accuracy while it trains.", cell=at.step.cell)
    return Outcome(
        False,
        "The model was compiled without the accuracy metric.",
        hint="Add metrics=['accuracy'] to model.compile(...).",
        cell=at.step.cell,
    )


def _learning_rate(at: ModelAt | None) -> float | None:
    if at is None or at.state.compile is None:
        return None
    optimizer = at.state.compile.get("optimizer")
    config = optimizer.get("config") if isinstance(optimizer, dict) else None
    rate = config.get("learning_rate") if isinstance(config, dict) else None
    return float(rate) if isinstance(rate, int | float) else None


def _slow_learning_hint(evidence: Evidence) -> str | None:
    rate = _learning_rate(compiled(evidence))
    if rate is not None and rate < 0.1:
        return (
            f"The learning rate is {rate:g}: with it 25 epochs are too few steps for the "
            "model to move far from its start. The lesson uses SGD(learning_rate=0.5)."
        )
    return None


def trained_accuracy(evidence: Evidence) -> Outcome:
    lesson = _lesson(evidence)
    at = lesson.first_trained
    if at is None:
        return _NO_MODEL
    if not at.state.trained:
        return Outcome(
            False,
            "The model was never trained on the data before the reset.",
            hint="Run model.fit(X, y, epochs=25) and make sure that cell runs without an error.",
            cell=at.step.cell,
        )
    threshold = THRESHOLDS["trained_accuracy"]
    cell = lesson.trained_in(at)
    try:
        accuracy = lesson.accuracy(at, evidence.dataset.x, evidence.dataset.y)
    except UnsupportedModel as err:
        return Outcome(
            False, f"The grader could not compute the model's accuracy: {err.detail}.", cell=cell
        )
    numbers = {"accuracy": accuracy}
    if accuracy >= threshold:
        return Outcome(
            True,
            f"After training, the model classifies {accuracy:.0%} of the visits correctly.",
            cell=cell,
            numbers=numbers,
        )
    hint = _slow_learning_hint(evidence) or (
        "Check the activation, the loss and the learning rate, then train for 25 epochs."
    )
    return Outcome(
        False,
        f"After training, the model classifies only {accuracy:.0%} of the "
        f"visits correctly; at least {threshold:.0%} is expected.",
        hint=hint,
        cell=cell,
        numbers=numbers,
    )


def class_predictions(evidence: Evidence) -> Outcome:
    lesson = _lesson(evidence)
    hint = "Turn probabilities into classes with a threshold: y_class_pred = model.predict(X) > 0.5"
    found = [
        (step, step.arrays["y_class_pred"])
        for step in evidence.trace.steps
        if step.arrays.get("y_class_pred") is not None
    ]
    if not found:
        return Outcome(False, "No class predictions `y_class_pred` were made.", hint=hint)
    step, raw = found[0]
    predicted = np.asarray(raw, dtype=np.float64).ravel()
    if predicted.size != evidence.dataset.rows:
        return Outcome(
            False,
            f"`y_class_pred` has {predicted.size} values; one per row of "
            f"the dataset ({evidence.dataset.rows}) is expected.",
            hint=hint,
            cell=step.cell,
        )
    if not np.isin(predicted, (0.0, 1.0)).all():
        return Outcome(
            False,
            "`y_class_pred` holds probabilities, not classes 0 and 1: "
            "accuracy_score cannot compare them with the labels.",
            hint=hint,
            cell=step.cell,
        )
    states = [at for at in lesson.history if at.step.number <= step.number]
    if not states:
        return Outcome(
            False, "`y_class_pred` was made before any model existed.", hint=hint, cell=step.cell
        )
    try:
        probabilities = predict(states[-1].state, _inputs_at(step, evidence))[:, 0]
    except UnsupportedModel as err:
        return Outcome(
            False,
            f"The grader could not compute the model's predictions: {err.detail}.",
            cell=step.cell,
        )
    expected = (probabilities > 0.5).astype(np.float64)
    disagree = (expected != predicted) & (np.abs(probabilities - 0.5) > BOUNDARY_TOLERANCE)
    if disagree.any():
        return Outcome(
            False,
            f"`y_class_pred` differs from the model's probabilities "
            f"thresholded at 0.5 on {int(disagree.sum())} rows.",
            hint=hint,
            cell=step.cell,
        )
    return Outcome(
        True, "`y_class_pred` is the model's probability thresholded at 0.5.", cell=step.cell
    )


def _inputs_at(step: Step, evidence: Evidence) -> np.ndarray:
    """The student's own `X` when it holds the dataset's times (in any order), else the
    dataset's, so that predictions line up with the student's rows."""
    dataset = evidence.dataset
    raw = step.arrays.get("X")
    if raw is None:
        return dataset.x
    x = _column(raw)
    if x.shape == dataset.x.shape and np.allclose(np.sort(x), np.sort(dataset.x)):
        return np.asarray(x, dtype=np.float64)
    return dataset.x


def train_test_split(evidence: Evidence) -> Outcome:
    split = _lesson(evidence).split
    hint = (
        "Use X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2) "
        "on the X and y of the whole dataset."
    )
    if split is None:
        return Outcome(
            False, "X_train, X_test, y_train and y_test were not all created.", hint=hint
        )
    problem = _split_problem(split, evidence)
    if problem:
        return Outcome(False, problem, hint=hint, cell=split.step.cell)
    return Outcome(
        True,
        f"The data is split into {len(split.y_train)} training rows and "
        f"{len(split.y_test)} test rows of the dataset.",
        cell=split.step.cell,
    )


def _split_problem(split: Split, evidence: Evidence) -> str | None:
    dataset = evidence.dataset
    test_rows = int(np.ceil(TEST_FRACTION * dataset.rows))
    parts = (split.x_train, split.x_test, split.y_train, split.y_test)
    if any(p.ndim != 1 for p in parts):
        return "The split parts are not one column of times and one column of labels."
    if len(split.x_train) != len(split.y_train) or len(split.x_test) != len(split.y_test):
        return "X_train and y_train (or X_test and y_test) have different lengths."
    if len(split.y_test) != test_rows or len(split.y_train) != dataset.rows - test_rows:
        return (
            f"The split has {len(split.y_train)} training and {len(split.y_test)} test "
            f"rows; test_size=0.2 gives {dataset.rows - test_rows} and {test_rows}."
        )
    given = np.concatenate(
        [
            np.stack([split.x_train, split.y_train], axis=1),
            np.stack([split.x_test, split.y_test], axis=1),
        ]
    )
    expected = np.stack([dataset.x, dataset.y], axis=1)
    if not np.allclose(sorted_rows(given), sorted_rows(expected)):
        return "Together, the train and test parts are not the rows of the dataset."
    return None


def weights_reset(evidence: Evidence) -> Outcome:
    lesson = _lesson(evidence)
    if not lesson.history:
        return _NO_MODEL
    if lesson.reset is not None:
        return Outcome(
            True,
            "Every weight and bias was set to exactly zero before retraining.",
            cell=lesson.reset.step.cell,
        )
    hint = (
        "Reset with params = model.get_weights(); "
        "params = [np.zeros(w.shape) for w in params]; model.set_weights(params)"
    )
    partial = lesson.reset_attempt
    if partial is not None:
        return Outcome(
            False,
            "The weights were changed without training, but not all of them are zero.",
            hint=hint,
            cell=partial.step.cell,
        )
    return Outcome(
        False,
        "The model's weights were never all set to zero between two cells, so "
        "retraining started from the trained model. (kgrade looks at the model after each "
        "cell: a reset and a retraining in the same cell cannot be told apart.)",
        hint=hint,
    )


def test_accuracy(evidence: Evidence) -> Outcome:
    lesson = _lesson(evidence)
    split, at = lesson.split, lesson.retrained
    if split is None or _split_problem(split, evidence):
        return Outcome(
            False,
            "Without a valid train/test split there is nothing to retrain on or test against.",
        )
    if at is None:
        return Outcome(
            False,
            "The model was not trained again on the training part after the split.",
            hint="Run model.fit(X_train, y_train, epochs=25) after resetting the weights.",
        )
    try:
        train = lesson.accuracy(at, split.x_train, split.y_train)
        test = lesson.accuracy(at, split.x_test, split.y_test)
    except UnsupportedModel as err:
        return Outcome(
            False,
            f"The grader could not compute the model's accuracy: {err.detail}.",
            cell=at.step.cell,
        )
    numbers = {"train_accuracy": train, "test_accuracy": test}
    cell = lesson.trained_in(at)
    low_train, low_test = THRESHOLDS["train_accuracy"], THRESHOLDS["test_accuracy"]
    if train >= low_train and test >= low_test:
        return Outcome(
            True,
            f"Retrained: {train:.0%} correct on the training part, {test:.0%} on the test part.",
            cell=cell,
            numbers=numbers,
        )
    return Outcome(
        False,
        f"Retrained: {_against(train, low_train, 'training')}; {_against(test, low_test, 'test')}.",
        hint=_slow_learning_hint(evidence) or "Retrain for 25 epochs from the zeroed weights.",
        cell=cell,
        numbers=numbers,
    )


def _against(share: float, low: float, part: str) -> str:
    """An accuracy on one part of the split, said against its threshold."""
    verdict = "below" if share < low else "reaching"
    return f"{share:.0%} correct on the {part} part, {verdict} the {low:.0%} expected"


RUBRIC = Rubric(
    exercise="classification",
    data_file="user_visit_duration.csv",
    feature="Time (min)",
    target="Buy",
    thresholds=THRESHOLDS,
    arrays=("X", "y", "y_pred", "y_class_pred", "X_train", "X_test", "y_train", "y_test"),
    checks=(
        Check("data-loaded", "Load the dataset", 1, data_loaded, r"read_csv"),
        Check(
            "model-architecture", "One Dense unit on one input", 2, model_architecture, r"Dense\("
        ),
        Check("sigmoid-activation", "Sigmoid output", 1, sigmoid_activation, r"sigmoid|Dense\("),
        Check(
            "binary-crossentropy-loss",
            "Binary cross-entropy loss",
            1,
            binary_crossentropy_loss,
            r"\.compile\(",
        ),
        Check("accuracy-metric", "Accuracy metric", 1, accuracy_metric, r"\.compile\("),
        Check("trained-accuracy", "Train on all the data", 2, trained_accuracy, r"\.fit\("),
        Check(
            "class-predictions",
            "Threshold the probabilities at 0.5",
            1,
            class_predictions,
            r"y_class_pred|predict_classes",
        ),
        Check(
            "train-test-split",
            "Split 80/20 into train and test",
            1,
            train_test_split,
            r"train_test_split\(",
        ),
        Check(
            "weights-reset",
            "Reset every weight to zero",
            2,
            weights_reset,
            r"set_weights|get_weights",
        ),
        Check("test-accuracy", "Retrain and test", 2, test_accuracy, r"fit\(\s*X_train"),
    ),
)
