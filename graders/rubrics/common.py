"""What every Keras-lesson rubric reads from a trace: the student's main model over time,
where it was built and compiled, its output activation and its loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graders.forward import activation_name
from graders.rubric import Evidence, Outcome
from graders.trace import ModelState, Step

PASS_THROUGH_LAYERS = {"InputLayer", "Dropout", "Flatten", "Identity"}


@dataclass(frozen=True)
class ModelAt:
    """A model's state, with the step of the cell that made it what it is."""

    step: Step
    state: ModelState


def model_history(evidence: Evidence) -> list[ModelAt]:
    """Every state of the model the student worked on most: trained, compiled, built."""
    if "model_history" not in evidence.memo:
        histories: dict[str, list[ModelAt]] = {}
        for step in evidence.trace.steps:
            for model in step.models:
                histories.setdefault(model.key, []).append(ModelAt(step, model))

        def rank(history: list[ModelAt]) -> tuple[bool, bool, bool, int]:
            best = max((at.state.trained, at.state.compiled, at.state.built) for at in history)
            return (*best, history[-1].step.number)

        evidence.memo["model_history"] = max(histories.values(), key=rank) if histories else []
    history: list[ModelAt] = evidence.memo["model_history"]
    return history


def created(evidence: Evidence) -> ModelAt | None:
    """The model's last state, with the step where it was first built (its creation)."""
    history = model_history(evidence)
    if not history:
        return None
    built = [at for at in history if at.state.built] or history
    return ModelAt(built[0].step, history[-1].state)


def compiled(evidence: Evidence) -> ModelAt | None:
    """The model's last compiled state, with the step where that compilation happened."""
    states = [at for at in model_history(evidence) if at.state.compile is not None]
    if not states:
        return None
    last = states[-1].state
    first = next(at for at in states if at.state.compile == last.compile)
    return ModelAt(first.step, last)


def output_activation(model: ModelState) -> str:
    """The activation the model's output goes through last; 'none' without Dense layers."""
    for layer in reversed(model.layers):
        if layer.class_name in ("Dense", "Activation"):
            name = activation_name(layer.config)
            if layer.class_name == "Dense" or name != "linear":
                return name
        elif layer.class_name not in PASS_THROUGH_LAYERS:
            return f"unknown ({layer.class_name} layer)"
    return "none"


def loss_name(loss: object) -> tuple[str, bool]:
    """The compiled loss's normalised name, and whether it expects logits."""
    if isinstance(loss, dict):
        config = loss.get("config")
        if loss.get("class_name") == "function" and isinstance(config, str):
            return config.lower(), False
        from_logits = isinstance(config, dict) and bool(config.get("from_logits"))
        return str(loss.get("class_name", "")).lower(), from_logits
    return str(loss).lower(), False


def never_built(at: ModelAt) -> Outcome:
    """The failure of a check that counts weights, for a model that has none yet."""
    return Outcome(
        False,
        "The model was never built, so it has no weights to count.",
        hint="Give the model its input shape with keras.Input(shape=(1,)).",
        cell=at.step.cell,
    )


def one_unit_on_one_input(model: ModelState) -> tuple[bool, int]:
    """Whether the model is a single Dense unit on one input, and its parameter count."""
    params = sum(int(w.size) for w in model.weights)
    dense = [layer for layer in model.layers if layer.class_name == "Dense"]
    kernel_shape = dense[0].weights[0].shape if len(dense) == 1 and dense[0].weights else None
    return params == 2 and kernel_shape == (1, 1), params


def sorted_rows(pairs: np.ndarray) -> np.ndarray:
    """The rows of a two-column array in a canonical order."""
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def same_rows(x: np.ndarray, y: np.ndarray, dataset_x: np.ndarray, dataset_y: np.ndarray) -> bool:
    """Whether (x, y) holds the dataset's rows, in any order."""
    if x.shape != dataset_x.shape or y.shape != dataset_y.shape:
        return False
    given = sorted_rows(np.stack([x, y], axis=1).astype(np.float64))
    return bool(np.allclose(given, sorted_rows(np.stack([dataset_x, dataset_y], axis=1))))
