"""Grade many submissions at once: in a local pool of processes, or on a Dask cluster.

A job carries the notebook's bytes, and the data file's when one was chosen, never a
path: a Dask worker on another machine needs kgrade installed but no shared file
system. Either way each submission runs in a fresh kernel of its own. A local worker
process forks its kernels from one warm pool of its own (``graders.warm``) unless cold
kernels were asked for; a Dask worker starts a cold kernel per submission. A job that
ends in status ``error``, or whose worker died, is tried once more before its error
stands; a student's result is never retried.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Protocol

from graders import __version__
from graders.errors import UsageError
from graders.grade import Graded, grade
from graders.kernel import KernelLauncher
from graders.options import GradeOptions, Kernels
from graders.result import HarnessFacts, Result
from graders.warm import shared_launcher
from graders.workspace import remove_tree, temporary_folder

log = logging.getLogger(__name__)

RETRIES = 1
DASK_CONNECT_TIMEOUT = 30.0

# Set in each local worker process; a Dask worker keeps cold kernels.
_worker_kernels: Kernels = "cold"


@dataclass(frozen=True)
class DataFile:
    """A data file sent along with a job: its name and its bytes."""

    name: str
    content: bytes


@dataclass(frozen=True)
class Job:
    """One submission to grade, self-contained so that any worker can grade it.

    ``name`` is the submission as the instructor knows it (``alice/classification.ipynb``).
    ``options.exercise`` is already resolved and ``options.data`` is None: the data file,
    if one was chosen, travels in ``data``.
    """

    student: str
    name: str
    notebook: bytes
    options: GradeOptions
    max_score: int
    data: DataFile | None = None


@dataclass(frozen=True)
class Finished:
    job: Job
    graded: Graded
    attempts: int


def grade_job(job: Job) -> Graded:
    """Grade ``job`` in a temporary folder of this worker (the function workers run).

    The result names the submission as ``job.name``, never by the temporary copy.
    """
    folder = temporary_folder("job")
    try:
        notebook = folder / PurePath(job.name).name
        notebook.write_bytes(job.notebook)
        options = job.options
        if job.data is not None:
            data = folder / "data" / PurePath(job.data.name).name
            data.parent.mkdir()
            data.write_bytes(job.data.content)
            options = replace(options, data=data)
        graded = grade(notebook, options, launcher=_launcher(options))
    finally:
        remove_tree(folder)
    result = graded.result
    message = result.message.replace(str(notebook), job.name) if result.message else None
    return replace(graded, result=replace(result, submission=job.name, message=message))


def _launcher(options: GradeOptions) -> KernelLauncher | None:
    """This worker process's warm launcher, or None for a cold kernel per submission."""
    if _worker_kernels != "warm":
        return None
    return shared_launcher(options.sandbox, options.seed)


def run_jobs(
    jobs: Iterable[Job],
    *,
    workers: int,
    scheduler: str | None = None,
    kernels: Kernels = "warm",
) -> Iterator[Finished]:
    """Grade ``jobs`` in parallel and yield each as it finishes, in no fixed order.

    Jobs are taken from ``jobs`` only as workers free up, so a large class is never
    held in memory at once. With ``scheduler`` (a Dask scheduler's address) the jobs go
    to that cluster and ``workers`` is not used.

    Args:
        jobs: The submissions to grade.
        workers: Local worker processes grading at once.
        scheduler: The address of a Dask scheduler to send the jobs to instead.
        kernels: ``warm``: each local worker forks its kernels from a pool of its own;
            ``cold``: a fresh kernel process per submission. Dask workers start cold ones.

    Raises:
        UsageError: The scheduler cannot be reached, or its workers run another kgrade.
    """
    if scheduler and kernels == "warm":
        log.info("the Dask workers start a cold kernel per submission")
    backend: Backend = DaskBackend(scheduler) if scheduler else LocalBackend(workers, kernels)
    waiting = iter(jobs)
    pending: dict[Future[Graded], tuple[Job, int]] = {}
    complete = False
    try:
        _top_up(backend, waiting, pending)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job, attempt = pending.pop(future)
                graded = _outcome(future, job)
                if graded.result.status == "error" and attempt <= RETRIES:
                    log.warning("%s: %s; trying once more", job.student, graded.result.message)
                    pending[backend.submit(job)] = (job, attempt + 1)
                    continue
                yield Finished(job, graded, attempt)
            _top_up(backend, waiting, pending)
        complete = True
    finally:
        backend.close(wait=complete)


def _top_up(
    backend: Backend, waiting: Iterator[Job], pending: dict[Future[Graded], tuple[Job, int]]
) -> None:
    """Submit jobs until twice as many are pending as the backend grades at once."""
    while len(pending) < 2 * backend.capacity():
        job = next(waiting, None)
        if job is None:
            return
        pending[backend.submit(job)] = (job, 1)


class Backend(Protocol):
    def capacity(self) -> int:
        """How many jobs it grades at once."""
        ...

    def submit(self, job: Job) -> Future[Graded]: ...

    def close(self, *, wait: bool) -> None: ...


class LocalBackend:
    """A pool of ``workers`` fresh (spawned) processes, replaced if one of them dies."""

    def __init__(self, workers: int, kernels: Kernels = "warm") -> None:
        self._workers = workers
        self._kernels = kernels
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_prepare_worker,
            initargs=(os.getpid(), _log_levels(), self._kernels),
        )

    def capacity(self) -> int:
        return self._workers

    def submit(self, job: Job) -> Future[Graded]:
        try:
            return self._pool.submit(grade_job, job)
        except BrokenProcessPool:
            log.warning("a worker process died; starting a new pool of %d", self._workers)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(grade_job, job)

    def close(self, *, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


class DaskBackend:
    """The workers of the Dask cluster whose scheduler listens at ``address``."""

    def __init__(self, address: str) -> None:
        from distributed import Client  # only batches sent to a cluster need Dask loaded

        try:
            self._client = Client(address, timeout=DASK_CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
            self._client.wait_for_workers(1, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise UsageError(
                f"cannot reach a Dask scheduler with workers at {address} ({err})",
                advice="Check --scheduler and that `dask worker` processes are running.",
            ) from None
        self._check_versions(address)
        self._executor = self._client.get_executor(pure=False)  # type: ignore[no-untyped-call]

    def _check_versions(self, address: str) -> None:
        versions: dict[str, str] = self._client.run(_kgrade_version)
        others = {worker: v for worker, v in versions.items() if v != __version__}
        if others:
            self._client.close()  # type: ignore[no-untyped-call]
            listed = ", ".join(f"{worker} has {v}" for worker, v in sorted(others.items()))
            raise UsageError(
                f"the Dask workers at {address} must run kgrade {__version__}: {listed}",
                advice="Install the same kgrade on every worker, or leave out --scheduler.",
            )

    def capacity(self) -> int:
        threads: dict[str, int] = self._client.nthreads()  # type: ignore[no-untyped-call]
        return max(1, sum(threads.values()))

    def submit(self, job: Job) -> Future[Graded]:
        future: Future[Graded] = self._executor.submit(grade_job, job)
        return future

    def close(self, *, wait: bool) -> None:
        self._executor.shutdown(wait=wait)
        self._client.close()  # type: ignore[no-untyped-call]


def _outcome(future: Future[Graded], job: Job) -> Graded:
    """The job's graded result, or an ``error`` result when its worker failed."""
    try:
        return future.result()
    except Exception as err:  # whatever broke the worker, the batch goes on
        log.error("grading %s failed in its worker: %s: %s", job.student, type(err).__name__, err)
        return Graded(
            _error_result(job, f"the worker grading it failed ({type(err).__name__}: {err})")
        )


def _error_result(job: Job, message: str) -> Result:
    options = job.options
    facts = HarnessFacts(
        kgrade=__version__,
        python=platform.python_version(),
        packages={},
        seed=options.seed,
        data_file=job.data.name if job.data else None,
        data_sha256=None,
        cell_timeout=options.cell_timeout,
        deadline=options.deadline,
    )
    return Result(
        submission=job.name,
        exercise=options.exercise or "",
        status="error",
        score=None,
        max_score=job.max_score,
        harness=facts,
        message=message,
    )


def _kgrade_version() -> str:
    return __version__


def _log_levels() -> dict[str, int]:
    """The levels this process's loggers were set to, the root logger's as ``""``."""
    levels = {"": logging.getLogger().getEffectiveLevel()}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _prepare_worker(parent: int, levels: dict[str, int], kernels: Kernels = "cold") -> None:
    """Set up a pool process: log like the batch, take its kernels, exit if the batch dies.

    A warm pool's server stops when the worker that started it exits: its stdin closes.
    """
    global _worker_kernels
    _worker_kernels = kernels
    logging.basicConfig(level=levels[""], format="%(levelname)s %(name)s: %(message)s")
    for name, level in levels.items():
        if name:
            logging.getLogger(name).setLevel(level)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="kgrade-watch-batch", daemon=True).start()
