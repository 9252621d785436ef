"""Code the harness runs inside the submission's kernel; never imported by the grader.

The harness sends this file's source to the kernel before the first student cell, then
calls ``capture`` after every student cell. ``capture`` writes what the checks need into
the harness's trace folder: every Keras model found in the namespace by type, every
pandas DataFrame, and the variables the exercise's rubric names. It never prints and never raises.

Only the standard library and NumPy are imported at module level; Keras, pandas and
TensorFlow are looked up in ``sys.modules`` so that capturing never imports them.
"""

from __future__ import annotations

import json
import os
import random
import sys
import types
from typing import Any

import numpy as np

MAX_ARRAY_ITEMS = 1_000_000
MAX_FRAME_CELLS = 200_000
MAX_STEP_FRAME_CELLS = 1_000_000
MAX_MODEL_PARAMS = 5_000_000
IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}

# Bound before any student code runs, so that rebinding the public names cannot
# redirect what the harness writes.
_savez = np.savez
_asarray = np.asarray
_dumps = json.dumps
_loads = json.loads
_replace = os.replace
_open = open
_getprofile = sys.getprofile
_gettrace = sys.gettrace


class Probe:
    """Seeds the kernel and writes one trace file pair per captured step."""

    def __init__(self, trace_dir: str, seed: int, arrays: list[str]) -> None:
        self.trace_dir = trace_dir
        self.seed = seed
        self.arrays = arrays
        self._layer_get_weights: Any = None
        self._model_class: Any = None
        self._compile_config: Any = None
        self._count_params: Any = None
        self._configs: dict[type, Any] = {}
        self._shell: Any = None
        self._code: dict[Any, Any] = {}
        self._attributes: frozenset[str] = frozenset()

    def setup(self) -> None:
        random.seed(self.seed)
        np.random.seed(self.seed)
        import keras
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        keras.utils.set_random_seed(self.seed)
        tf.config.experimental.enable_op_determinism()
        self._layer_get_weights = keras.layers.Layer.get_weights
        self._model_class = keras.Model
        # What models and layers say about themselves comes from Keras's own methods as
        # they were before any student code ran: patching a class later changes nothing.
        self._compile_config = keras.Model.get_compile_config
        self._count_params = keras.Model.count_params
        classes: list[Any] = [c for c in vars(keras.layers).values() if isinstance(c, type)]
        self._configs = {c: c.get_config for c in classes if issubclass(c, keras.layers.Layer)}
        self._shell = sys.modules["IPython"].get_ipython()
        # Functions whose code a notebook could swap under the probe, and the probe's own.
        watched = [self._layer_get_weights, self._compile_config, self._count_params]
        watched += [*self._configs.values(), *_own_functions(type(self))]
        self._code = {function: function.__code__ for function in watched}
        self._attributes = frozenset(vars(self))

    def _tampering(self) -> list[str]:
        """What the notebook did to what the probe relies on, if anything."""
        found = []
        if _getprofile() is not None or _gettrace() is not None:
            found.append("a profiling or tracing hook is set")
        if any(function.__code__ is not code for function, code in self._code.items()):
            found.append("the code of a Keras or kgrade function was replaced")
        if frozenset(vars(self)) != self._attributes or any(
            type(self).__dict__.get(f.__name__) is not f for f in _own_functions(type(self))
        ):
            found.append("kgrade's probe was changed")
        return found

    def capture(self, step: int, cell: int, token: str) -> None:
        record: dict[str, Any] = {
            "token": token,
            "step": step,
            "cell": cell,
            "models": [],
            "arrays": {},
            "frames": [],
            "errors": [],
        }
        blobs: dict[str, np.ndarray] = {}
        record["tampered"] = self._tampering()
        if record["tampered"]:
            self._write(step, record, blobs)
            return
        try:
            namespace = self._namespace()
            self._capture_models(namespace, record, blobs)
            self._capture_frames(namespace, record, blobs)
            self._capture_arrays(namespace, record, blobs)
        except BaseException as err:  # the probe must never disturb the student's run
            record["errors"].append(f"{type(err).__name__}: {err}")
        self._write(step, record, blobs)

    def _namespace(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in list(self._shell.user_ns.items())
            if not name.startswith("_")
            and name not in IPYTHON_NAMES
            and not isinstance(value, types.ModuleType)
        }

    def _capture_models(
        self, namespace: dict[str, Any], record: dict[str, Any], blobs: dict[str, np.ndarray]
    ) -> None:
        seen: dict[int, dict[str, Any]] = {}
        for name, value in namespace.items():
            # The type's own MRO, not isinstance: a class can claim any __class__; and a
            # metaclass of its own could make up an MRO.
            kind = type(value)
            if type(kind) is not type(self._model_class) or self._model_class not in kind.__mro__:
                continue
            if id(value) in seen:
                seen[id(value)]["names"].append(name)
                continue
            try:
                entry = self._model_entry(value, len(seen), blobs)
            except Exception as err:
                record["errors"].append(f"model {name}: {type(err).__name__}: {err}")
                continue
            entry["names"] = [name]
            entry["key"] = f"m{id(value)}"
            seen[id(value)] = entry
            record["models"].append(entry)

    def _model_entry(self, model: Any, index: int, blobs: dict[str, np.ndarray]) -> dict[str, Any]:
        built = bool(getattr(model, "built", False))
        entry: dict[str, Any] = {
            "class_name": type(model).__name__,
            "built": built,
            "layers": [],
            "params": None,
            "compiled": False,
            "compile": None,
            "iterations": None,
        }
        if built:
            entry["params"] = int(self._count_params(model))
        if built and entry["params"] <= MAX_MODEL_PARAMS:
            for li, layer in enumerate(model.layers):
                entry["layers"].append(self._layer_entry(layer, f"m{index}/l{li}", blobs))
        entry["compiled"] = bool(getattr(model, "compiled", False))
        if entry["compiled"]:
            stored = getattr(model, "_compile_config", None)
            if stored is not None and not type(stored).__module__.startswith("keras."):
                raise TypeError("its compile settings were replaced by the notebook")
            entry["compile"] = _jsonable(self._compile_config(model))
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None:
                entry["iterations"] = int(_asarray(optimizer.iterations))
        return entry

    def _layer_entry(self, layer: Any, prefix: str, blobs: dict[str, np.ndarray]) -> dict[str, Any]:
        weights = []
        for wi, value in enumerate(self._layer_get_weights(layer)):
            key = f"{prefix}/w{wi}"
            blobs[key] = _asarray(value)
            weights.append(key)
        kind = type(layer)
        # A layer class written in the notebook computes what it likes, whatever its name.
        keras_made = kind.__module__.startswith("keras.")
        return {
            "class_name": kind.__name__ if keras_made else f"{kind.__module__}.{kind.__qualname__}",
            "config": _jsonable(self._layer_config(layer)),
            "weights": weights,
        }

    def _layer_config(self, layer: Any) -> Any:
        """The layer's config from the nearest Keras class's own ``get_config``."""
        for cls in type(layer).__mro__:
            if cls in self._configs:
                return self._configs[cls](layer)
        return {}

    def _capture_frames(
        self, namespace: dict[str, Any], record: dict[str, Any], blobs: dict[str, np.ndarray]
    ) -> None:
        pandas = sys.modules.get("pandas")
        if pandas is None:
            return
        seen: dict[int, dict[str, Any]] = {}
        budget = MAX_STEP_FRAME_CELLS
        for name, value in namespace.items():
            if not isinstance(value, pandas.DataFrame):
                continue
            if id(value) in seen:
                seen[id(value)]["names"].append(name)
                continue
            entry: dict[str, Any] = {
                "names": [name],
                "shape": list(value.shape),
                "columns": [str(c) for c in value.columns],
                "data": {},
            }
            if value.size <= min(MAX_FRAME_CELLS, budget):
                budget -= value.size
                for ci, column in enumerate(value.columns):
                    stored = _numeric(value[column])
                    if stored is not None and stored.shape == (len(value),):
                        key = f"f{len(seen)}/c{ci}"
                        blobs[key] = stored
                        entry["data"][str(column)] = key
            seen[id(value)] = entry
            record["frames"].append(entry)

    def _capture_arrays(
        self, namespace: dict[str, Any], record: dict[str, Any], blobs: dict[str, np.ndarray]
    ) -> None:
        for name in self.arrays:
            if name not in namespace:
                continue
            value = namespace[name]
            entry: dict[str, Any] = {"type": type(value).__name__, "key": None}
            stored = _numeric(value)
            if stored is not None:
                entry["dtype"] = str(stored.dtype)
                entry["shape"] = list(stored.shape)
                key = f"a/{name}"
                blobs[key] = stored
                entry["key"] = key
            record["arrays"][name] = entry

    def _write(self, step: int, record: dict[str, Any], blobs: dict[str, np.ndarray]) -> None:
        base = os.path.join(self.trace_dir, f"step-{step:04d}")
        with _open(base + ".npz.tmp", "wb") as handle:
            _savez(handle, **{k.replace("/", "__"): v for k, v in blobs.items()})  # type: ignore[arg-type]
        with _open(base + ".json.tmp", "w", encoding="utf-8") as handle:
            handle.write(_dumps(record))
        _replace(base + ".npz.tmp", base + ".npz")
        _replace(base + ".json.tmp", base + ".json")


def _own_functions(cls: type) -> list[Any]:
    return [f for f in vars(cls).values() if isinstance(f, types.FunctionType)]


def _numeric(value: Any) -> np.ndarray | None:
    """A plain numeric or boolean copy of ``value``, or None when it has none."""
    try:
        array = _asarray(value)
    except Exception:
        return None
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            return None
    if array.dtype.kind not in "biuf" or array.size > MAX_ARRAY_ITEMS:
        return None
    return np.array(array, copy=True)


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and anything else unknown as its string."""
    return _loads(_dumps(value, default=str))
