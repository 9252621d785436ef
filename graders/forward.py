"""The grader's own predictions: a NumPy forward pass over a captured model.

Only the layers a beginner's classifier uses are understood (Dense, Activation, Dropout,
Flatten, InputLayer); any other layer raises :class:`UnsupportedModel`, and the check
that needed the prediction fails with that message instead of trusting the student's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from graders.errors import UnsupportedModel
from graders.trace import LayerState, ModelState

Activation = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "linear": lambda x: x,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "softmax": _softmax,
    "softplus": lambda x: np.logaddexp(0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "exponential": np.exp,
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
}


def activation_name(config: dict[str, Any]) -> str:
    """The activation a layer config names, as Keras would resolve it."""
    value = config.get("activation", "linear")
    if value is None:
        return "linear"
    if isinstance(value, dict):
        value = value.get("config", value.get("class_name", "unknown"))
        if isinstance(value, dict):
            value = value.get("name", "unknown")
    return str(value).lower()


def predict(model: ModelState, x: np.ndarray) -> np.ndarray:
    """The model's outputs for inputs ``x`` (one row per sample), as a 2-D float32 array."""
    if not model.layers:
        raise UnsupportedModel("the model has no layers with weights yet")
    out = np.asarray(x, dtype=np.float32)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    for layer in model.layers:
        out = _apply(layer, out)
    return out


def _apply(layer: LayerState, x: np.ndarray) -> np.ndarray:
    kind = layer.class_name
    if kind in ("InputLayer", "Dropout", "Identity"):
        return x
    if kind == "Flatten":
        return x.reshape(len(x), -1)
    if kind == "Activation":
        return _activate(layer.config, x)
    if kind == "Dense":
        return _dense(layer, x)
    raise UnsupportedModel(f"kgrade cannot evaluate a {kind} layer in this exercise")


def _dense(layer: LayerState, x: np.ndarray) -> np.ndarray:
    if not layer.weights:
        raise UnsupportedModel("a Dense layer has no weights yet")
    kernel = layer.weights[0].astype(np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != x.shape[1]:
        raise UnsupportedModel(
            f"a Dense layer expects {kernel.shape[0]} input features, the data has {x.shape[1]}"
        )
    out = x @ kernel
    if layer.config.get("use_bias", True) and len(layer.weights) > 1:
        bias = layer.weights[1].astype(np.float32)
        if bias.shape != (kernel.shape[1],):
            raise UnsupportedModel(
                f"a Dense layer has a bias of shape {bias.shape} for {kernel.shape[1]} units: "
                "not a layer Keras's Dense builds"
            )
        out = out + bias
    return _activate(layer.config, out)


def _activate(config: dict[str, Any], x: np.ndarray) -> np.ndarray:
    name = activation_name(config)
    if name not in ACTIVATIONS:
        raise UnsupportedModel(f"kgrade cannot evaluate the {name!r} activation")
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(ACTIVATIONS[name](x), dtype=np.float32)
