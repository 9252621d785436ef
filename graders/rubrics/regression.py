"""Rubric of "Linear regression with Keras": one linear unit predicting weight from height.

Every check reads the trace only. The model is the one the student worked on most, and
its fit is judged by the grader's own R², computed with a NumPy forward pass over the
final weights on the grader's own copy of the dataset.
"""

from __future__ import annotations

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
)
from graders.trace import ModelState

# Calibrated by grading the reference and wrong variants under many seeds: docs/exercises.md.
THRESHOLDS = {"r2": 0.7}
MSE_NAMES = {"mean_squared_error", "mse", "meansquarederror"}
# Steps (batches) the reference takes: 40 epochs of 100 batches.
LESSON_STEPS = 4000


def _trained(evidence: Evidence) -> ModelAt | None:
    """The model's last state, with the step of the training that produced it."""
    history = model_history(evidence)
    if not history:
        return None
    final = history[-1].state
    made = next(
        (at for at in history if at.state.iterations == final.iterations and at.state.trained),
        history[-1],
    )
    return ModelAt(made.step, final)


_NO_MODEL = Outcome(
    False,
    "No Keras model was found in the notebook.",
    hint="Create it with model = keras.Sequential([keras.Input(shape=(1,)), "
    "keras.layers.Dense(1)]) and make sure that cell runs without an error.",
)
_NOT_COMPILED = Outcome(
    False,
    "The model was never compiled, so it has no loss to minimise.",
    hint="Call model.compile(optimizer, loss='mean_squared_error') and make sure that "
    "cell runs without an error.",
)


def data_loaded(evidence: Evidence) -> Outcome:
    dataset = evidence.dataset
    feature, target = RUBRIC.feature, RUBRIC.target
    frames = [(step, frame) for step in evidence.trace.steps for frame in step.frames]
    for step, frame in frames:
        if feature not in frame.data or target not in frame.data:
            continue
        if frame.shape[0] != dataset.rows:
            continue
        if np.allclose(frame.data[feature], dataset.x) and np.allclose(
            frame.data[target], dataset.y
        ):
            return Outcome(
                True,
                f"`{frame.names[0]}` holds the {dataset.rows} rows of the dataset.",
                cell=step.cell,
            )
    if frames:
        return Outcome(
            False,
            f"No DataFrame holds the dataset's {dataset.rows} rows with the columns "
            f"{feature!r} and {target!r}.",
            hint="Load the file with pd.read_csv and keep it unchanged in `df`; filter or "
            "reshape copies of it, not `df` itself.",
        )
    return Outcome(
        False,
        "The dataset was never loaded into a DataFrame.",
        hint="Use df = pd.read_csv('data/weight-height.csv').",
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
    numbers = {"parameters": float(params)}
    if one_unit:
        return Outcome(
            True,
            "One Dense unit on one input: 2 parameters, the slope and the intercept.",
            cell=at.step.cell,
            numbers=numbers,
        )
    return Outcome(
        False,
        f"The model has {params} parameters in {len(dense)} Dense layer(s); a straight line "
        "needs exactly 2: one slope and one intercept.",
        hint="Use a single keras.layers.Dense(1) after keras.Input(shape=(1,)): one input "
        "(the height) and one output (the weight), no hidden layer.",
        cell=at.step.cell,
        numbers=numbers,
    )


def linear_activation(evidence: Evidence) -> Outcome:
    at = created(evidence)
    if at is None:
        return _NO_MODEL
    name = output_activation(at.state)
    if name == "linear":
        return Outcome(
            True,
            "The output has no activation, so the model is a straight line.",
            cell=at.step.cell,
        )
    if name == "none":
        return Outcome(False, "The model has no Dense layer.", hint=_NO_MODEL.hint)
    return Outcome(
        False,
        f"The output goes through the {name!r} activation, which {_bends(name)}: the model "
        "is no longer a straight line.",
        hint="Leave the activation out, keras.layers.Dense(1), so the unit outputs "
        "w * height + b unchanged. Squashing activations such as the sigmoid belong to "
        "classification, where the output is a probability.",
        cell=at.step.cell,
    )


def _bends(activation: str) -> str:
    """What an output activation does to a line, in words."""
    effects = {
        "sigmoid": "squeezes every output into (0, 1), far below any weight in pounds",
        "tanh": "squeezes every output into (-1, 1), far below any weight in pounds",
        "softmax": "makes a single unit output 1 whatever the height",
        "relu": "turns every negative output into 0",
    }
    return effects.get(activation, "bends the line")


def mse_loss(evidence: Evidence) -> Outcome:
    at = compiled(evidence)
    if at is None or at.state.compile is None:
        return _NOT_COMPILED
    name, _ = loss_name(at.state.compile.get("loss"))
    if name in MSE_NAMES:
        return Outcome(True, "The model is compiled with mean squared error.", cell=at.step.cell)
    return Outcome(
        False,
        f"The model is compiled with the {name!r} loss, not mean squared error.",
        hint="Use loss='mean_squared_error'. The lesson's line and its R² score both come "
        "from squared errors: the line that minimises them is the least-squares line.",
        cell=at.step.cell,
    )


def _r2(predicted: np.ndarray, actual: np.ndarray) -> float:
    residual = np.sum((actual - predicted) ** 2)
    spread = np.sum((actual - actual.mean()) ** 2)
    return float(1.0 - residual / spread)


def _optimizer(model: ModelState) -> tuple[str, float | None]:
    """The optimizer's lower-case class name and its learning rate, when it is a number."""
    optimizer = model.compile.get("optimizer") if model.compile else None
    if not isinstance(optimizer, dict):
        return str(optimizer).lower(), None
    config = optimizer.get("config")
    rate = config.get("learning_rate") if isinstance(config, dict) else None
    name = str(optimizer.get("class_name", "")).lower()
    return name, float(rate) if isinstance(rate, int | float) else None


def _fit_hint(evidence: Evidence, model: ModelState) -> str:
    """Why a trained line may still fit badly, most likely cause first."""
    activation = output_activation(model)
    if activation != "linear":
        return f"Remove the {activation!r} activation: it keeps the output from being a line."
    at = compiled(evidence)
    if at and at.state.compile:
        loss, _ = loss_name(at.state.compile.get("loss"))
        if loss not in MSE_NAMES:
            return f"Train with loss='mean_squared_error' instead of {loss!r}."
    steps = model.iterations or 0
    if steps < LESSON_STEPS / 2:
        return (
            f"The model took only {steps} training steps. Heights are large numbers, so "
            "the line moves slowly: the lesson takes 4,000 steps (40 epochs of batches "
            "of 100)."
        )
    name, rate = _optimizer(model)
    if name == "sgd":
        return (
            "Plain SGD barely moves the intercept on raw heights: the steps that suit the "
            "slope are far too small for it. Use keras.optimizers.Adam(learning_rate=0.8, "
            "beta_2=0.99), which sizes each parameter's steps separately."
        )
    if rate is not None and rate < 0.1:
        return (
            f"The learning rate is {rate:g}: too small for the line to travel far in 4,000 "
            "steps. The lesson uses keras.optimizers.Adam(learning_rate=0.8, beta_2=0.99)."
        )
    return (
        "Compare the optimizer, the epochs and the batch size with the lesson's: "
        "Adam(learning_rate=0.8, beta_2=0.99), 40 epochs, batch_size=100."
    )


def r2_score(evidence: Evidence) -> Outcome:
    at = _trained(evidence)
    if at is None:
        return _NO_MODEL
    if not at.state.trained:
        return Outcome(
            False,
            "The model was never trained, so its line is still the random one it started with.",
            hint="Run model.fit(X, y_true, epochs=40, batch_size=100) and make sure that cell "
            "runs without an error.",
        )
    dataset = evidence.dataset
    try:
        predicted = predict(at.state, dataset.x)[:, 0].astype(np.float64)
    except UnsupportedModel as err:
        return Outcome(
            False,
            f"The grader could not compute the model's predictions: {err}.",
            cell=at.step.cell,
        )
    if not np.all(np.isfinite(predicted)):
        return Outcome(
            False,
            "The model predicts NaN or infinite weights: training diverged.",
            hint="The steps were too large, so each one overshot further than the last. "
            "Lower the learning rate, or use Adam as the lesson does.",
            cell=at.step.cell,
        )
    r2 = _r2(predicted, dataset.y)
    threshold = THRESHOLDS["r2"]
    numbers = {"r2": r2}
    if r2 >= threshold:
        return Outcome(
            True,
            f"The trained line explains {r2:.0%} of the spread in weight (R² = {r2:.3f}).",
            cell=at.step.cell,
            numbers=numbers,
        )
    return Outcome(
        False,
        f"The trained model's R² on the whole dataset is {r2:.3f}; at least {threshold:.2f} "
        "is expected, as the best straight line explains about 85% of the spread in weight.",
        hint=_fit_hint(evidence, at.state),
        cell=at.step.cell,
        numbers=numbers,
    )


RUBRIC = Rubric(
    exercise="regression",
    data_file="weight-height.csv",
    feature="Height",
    target="Weight",
    thresholds=THRESHOLDS,
    arrays=("X", "y_true", "y_pred"),
    untouched_max_score=0,
    checks=(
        Check("data-loaded", "Load the dataset", 1, data_loaded, r"read_csv"),
        Check(
            "model-architecture", "One Dense unit on one input", 2, model_architecture, r"Dense\("
        ),
        Check("linear-activation", "No output activation", 1, linear_activation, r"Dense\("),
        Check("mse-loss", "Mean squared error loss", 1, mse_loss, r"\.compile\("),
        Check("r2-score", "Train the line until it fits", 2, r2_score, r"\.fit\("),
    ),
)
