"""Read and validate the trace the probe wrote: what the namespace held after each cell.

The trace is written inside the student's process, so nothing in it is trusted blindly:
every file is checked against the expected shape, arrays are loaded without pickles, and
a step that fails validation is dropped (and reported) rather than half-read.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_STEP_JSON_BYTES = 5 * 1024 * 1024
MAX_STEP_NPZ_BYTES = 200 * 1024 * 1024
MAX_TRACE_NPZ_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class LayerState:
    """One layer of a captured model."""

    class_name: str
    config: dict[str, Any]
    weights: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class ModelState:
    """One Keras model as it was after a cell."""

    key: str
    names: tuple[str, ...]
    class_name: str
    built: bool
    params: int | None
    layers: tuple[LayerState, ...]
    compiled: bool
    compile: dict[str, Any] | None
    iterations: int | None

    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trained(self) -> bool:
        return bool(self.iterations)


@dataclass(frozen=True)
class FrameState:
    """One pandas DataFrame as it was after a cell; numeric columns only carry data."""

    names: tuple[str, ...]
    shape: tuple[int, ...]
    columns: tuple[str, ...]
    data: dict[str, np.ndarray]


@dataclass(frozen=True)
class Step:
    """Everything captured after one code cell."""

    number: int
    cell: int
    models: tuple[ModelState, ...]
    frames: tuple[FrameState, ...]
    arrays: dict[str, np.ndarray | None]
    problems: tuple[str, ...] = ()

    def model(self, key: str) -> ModelState | None:
        return next((m for m in self.models if m.key == key), None)


@dataclass(frozen=True)
class Trace:
    """The steps of one run, in execution order, and what could not be read."""

    steps: tuple[Step, ...]
    problems: tuple[str, ...] = field(default=())


class _Invalid(Exception):
    """A trace file is not of the shape the probe writes."""


def read_trace(trace_dir: Path, tokens: Mapping[int, str]) -> Trace:
    """Read the steps the harness asked for; anything else in ``trace_dir`` is dropped.

    ``tokens`` maps each requested step to the one-time token its file must carry, so a
    file written by other means than the harness's own request is not believed.
    """
    steps: list[Step] = []
    problems: list[str] = []
    read_bytes = 0
    for meta in sorted(trace_dir.glob("*.json")):
        blobs = meta.with_suffix(".npz")
        size = blobs.stat().st_size if blobs.is_file() else 0
        if read_bytes + size > MAX_TRACE_NPZ_BYTES:
            # Earlier steps keep what they earned; the grader's memory stays bounded.
            problems.append(
                f"{meta.stem}: not read, the notebook's arrays passed "
                f"{MAX_TRACE_NPZ_BYTES // (1024 * 1024)} MB in all"
            )
            continue
        read_bytes += size
        try:
            step = _read_step(meta, blobs, tokens)
        except _Invalid as err:
            log.warning("trace file %s dropped: %s", meta.name, err)
            problems.append(f"{meta.stem}: {err}")
            continue
        steps.append(step)
        problems += [f"after cell {step.cell + 1}: {p}" for p in step.problems]
    steps.sort(key=lambda s: s.number)
    return Trace(steps=tuple(steps), problems=tuple(problems))


def _read_step(meta: Path, blobs_path: Path, tokens: Mapping[int, str]) -> Step:
    if meta.stat().st_size > MAX_STEP_JSON_BYTES:
        raise _Invalid("description too large")
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Invalid(f"not JSON ({err})") from None
    record = _mapping(record, "step")
    number = record.get("step")
    if not isinstance(number, int) or tokens.get(number) != record.get("token"):
        raise _Invalid("not written at the harness's request")
    if meta.name != f"step-{number:04d}.json":
        raise _Invalid("misnamed")
    tampered = _list(record.get("tampered", []), "tampered")
    if tampered:
        reasons = "; ".join(str(t) for t in tampered)
        raise _Invalid(f"the notebook interfered with kgrade's recording ({reasons})")
    blobs = _read_blobs(blobs_path)
    return Step(
        number=_int(record.get("step"), "step"),
        cell=_int(record.get("cell"), "cell"),
        models=tuple(_model(m, blobs) for m in _list(record.get("models"), "models")),
        frames=tuple(_frame(f, blobs) for f in _list(record.get("frames"), "frames")),
        arrays={
            str(name): _blob(_mapping(entry, name).get("key"), blobs, optional=True)
            for name, entry in _mapping(record.get("arrays"), "arrays").items()
        },
        problems=tuple(str(e) for e in _list(record.get("errors"), "errors")),
    )


def _read_blobs(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise _Invalid("array file missing")
    if path.stat().st_size > MAX_STEP_NPZ_BYTES:
        raise _Invalid("array file too large")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name.replace("__", "/"): archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise _Invalid(f"array file unreadable ({err})") from None


def _model(raw: Any, blobs: dict[str, np.ndarray]) -> ModelState:
    entry = _mapping(raw, "model")
    compile_config = entry.get("compile")
    params = entry.get("params")
    iterations = entry.get("iterations")
    return ModelState(
        key=_str(entry.get("key"), "model key"),
        names=tuple(_str(n, "model name") for n in _list(entry.get("names"), "names")),
        class_name=_str(entry.get("class_name"), "model class"),
        built=bool(entry.get("built")),
        params=None if params is None else _int(params, "params"),
        layers=tuple(_layer(layer, blobs) for layer in _list(entry.get("layers"), "layers")),
        compiled=bool(entry.get("compiled")),
        compile=None if compile_config is None else _mapping(compile_config, "compile"),
        iterations=None if iterations is None else _int(iterations, "iterations"),
    )


def _layer(raw: Any, blobs: dict[str, np.ndarray]) -> LayerState:
    entry = _mapping(raw, "layer")
    weights = []
    for key in _list(entry.get("weights"), "weights"):
        array = _blob(key, blobs)
        if array is None or array.dtype.kind != "f":
            raise _Invalid(f"weight {key!r} is not a float array")
        weights.append(array)
    return LayerState(
        class_name=_str(entry.get("class_name"), "layer class"),
        config=_mapping(entry.get("config"), "layer config"),
        weights=tuple(weights),
    )


def _frame(raw: Any, blobs: dict[str, np.ndarray]) -> FrameState:
    entry = _mapping(raw, "frame")
    data = {
        str(column): array
        for column, key in _mapping(entry.get("data"), "frame data").items()
        if (array := _blob(key, blobs)) is not None
    }
    shape = tuple(_int(n, "frame shape") for n in _list(entry.get("shape"), "shape"))
    if len(shape) != 2:
        raise _Invalid(f"a frame of shape {shape}, not rows by columns")
    for column, array in data.items():
        if array.shape != (shape[0],):
            raise _Invalid(f"column {column!r} of shape {array.shape}, frame of {shape[0]} rows")
    return FrameState(
        names=tuple(_str(n, "frame name") for n in _list(entry.get("names"), "names")),
        shape=shape,
        columns=tuple(_str(c, "column") for c in _list(entry.get("columns"), "columns")),
        data=data,
    )


def _blob(key: Any, blobs: dict[str, np.ndarray], *, optional: bool = False) -> np.ndarray | None:
    if key is None and optional:
        return None
    if not isinstance(key, str) or key not in blobs:
        raise _Invalid(f"array {key!r} missing")
    array = blobs[key]
    if array.dtype.kind not in "biuf":
        raise _Invalid(f"array {key!r} is not numeric")
    return array


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(f"{what} is not a list")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{what} is not a string")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{what} is not an integer")
    return value
