"""Sample the memory of a process tree while a benchmark runs.

Memory is the proportional set size (PSS) where the system reports it: a page shared by
several processes counts a share to each, so a warm pool's forked kernels are not charged
again for the TensorFlow their server imported. Elsewhere it is the resident size (RSS).

A sampler thread looks at the tree under one process every ``interval`` seconds. The tree
is split into *workers*: for a kgrade batch, each pool process with the kernels it started;
for a run with no pool (plain nbclient, nbgrader), the whole tree is one worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class WorkerSample:
    """One worker at one moment: its own memory and that of its whole tree, in MB."""

    own_mb: float
    tree_mb: float


@dataclass(frozen=True)
class Sample:
    """The tree at one moment: seconds since the start, progress, and every worker."""

    at_s: float
    done: int
    root_mb: float
    total_mb: float
    workers: dict[int, WorkerSample]
    others_mb: float = 0.0


@dataclass
class TreeSampler:
    """Samples the tree under ``root`` in a thread until stopped.

    With ``pooled``, each child of ``root`` that is a multiprocessing worker is a worker
    (the resource tracker is not); otherwise ``root`` and all it started are one worker.
    ``progress`` tells how many submissions are finished, for memory-over-time reports.
    """

    root: int
    pooled: bool
    interval: float = 0.2
    progress: Callable[[], int] | None = None
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeSampler:
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            sample = self._take()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def _take(self) -> Sample | None:
        try:
            root = psutil.Process(self.root)
            root_mb = _memory(root)
            everything = root.children(recursive=True)
            children = root.children() if self.pooled else []
        except psutil.Error:  # a process ended while the tree was being listed
            return None
        total = root_mb + sum(_memory(p) for p in everything)
        workers = {self.root: WorkerSample(root_mb, total)}
        if self.pooled:
            workers = {p.pid: _worker(p) for p in children if _is_pool_worker(p)}
        others = total - root_mb - sum(w.tree_mb for w in workers.values())
        done = self.progress() if self.progress is not None else 0
        at = time.perf_counter() - self._started
        return Sample(at, done, root_mb, total, workers, others_mb=max(0.0, others))

    @property
    def peak_worker_mb(self) -> float | None:
        """The largest tree of a single worker seen in any sample."""
        trees = [w.tree_mb for s in self.samples for w in s.workers.values()]
        return max(trees) if trees else None

    @property
    def peak_others_mb(self) -> float | None:
        """With ``pooled``: the largest sum over processes outside the root and the workers."""
        return max((s.others_mb for s in self.samples), default=None) if self.pooled else None

    @property
    def peak_total_mb(self) -> float | None:
        """The largest sum over the whole tree, the root included."""
        return max((s.total_mb for s in self.samples), default=None)


def _memory(process: psutil.Process) -> float:
    """The process's proportional set size in MB, or its resident size where there is none."""
    try:
        full = process.memory_full_info()
    except psutil.AccessDenied:
        full = None
    except psutil.Error:  # it ended between listing and reading
        return 0.0
    if full is not None and hasattr(full, "pss"):
        return float(full.pss) / MB
    try:
        return float(process.memory_info().rss) / MB
    except psutil.Error:
        return 0.0


def _worker(process: psutil.Process) -> WorkerSample:
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        children = []
    own = _memory(process)
    return WorkerSample(own_mb=own, tree_mb=own + sum(_memory(c) for c in children))


def _is_pool_worker(process: psutil.Process) -> bool:
    """A process of a ``multiprocessing`` pool (spawn or forkserver), not its helpers."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing" in command and "resource_tracker" not in command


def at_progress(samples: list[Sample], pid: int, done: int) -> WorkerSample | None:
    """The worker ``pid`` in the first sample that had ``done`` submissions finished."""
    for sample in samples:
        if sample.done >= done and pid in sample.workers:
            return sample.workers[pid]
    return None


def last_seen(samples: list[Sample], pid: int) -> tuple[int, WorkerSample] | None:
    """The worker ``pid`` in the last sample that could read its memory, with the progress then.

    A worker that is exiting still shows in the process tree, with no memory left to read.
    """
    for sample in reversed(samples):
        if pid in sample.workers and sample.workers[pid].own_mb > 0:
            return sample.done, sample.workers[pid]
    return None


def peak_tree_between(samples: list[Sample], pid: int, after: int, upto: int) -> float | None:
    """The largest tree of worker ``pid`` while more than ``after`` and at most ``upto``
    submissions were finished."""
    trees = [s.workers[pid].tree_mb for s in samples if after < s.done <= upto and pid in s.workers]
    return max(trees, default=None)
