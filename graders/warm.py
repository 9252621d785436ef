"""Warm kernels: forked from a server that has already imported TensorFlow and Keras.

A cold kernel costs a Python start and the import of TensorFlow and Keras, most of the
time a short notebook takes. :class:`WarmKernelLauncher` keeps one fork server
(:mod:`graders.forkserver`, run by :mod:`graders.pool`) and asks it for each submission's
kernel, one at a time. jupyter_client and nbclient drive that kernel as any other: the
kernel provisioner :class:`graders.provisioner.WarmProvisioner` launches, polls, signals
and releases it through the server, which is its parent.

Warm kernels run in the same sandbox as cold ones (:mod:`graders.sandbox`): the server
runs inside bubblewrap's walls around the pool's folders; each kernel it forks walls
itself in further as bubblewrap walls a cold kernel (IPC and mount namespaces of its own,
its workspace's /tmp, no other workspace), applies the resource limits and drops to the
sandbox's user. The workspace of a submission lies in the pool
(:meth:`WarmKernelLauncher.workspace_base`). When a kernel is released, the server kills
everything else in the sandbox's process namespace.

Where the server cannot run (no fork, bubblewrap that cannot hold it), the launcher says
so once and starts cold kernels instead. The grader's own process never imports
TensorFlow because of this module.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jupyter_client.manager import AsyncKernelManager

from graders.errors import HarnessError
from graders.forkserver.wire import PRELOAD
from graders.kernel import KernelLauncher, LocalKernelLauncher, shut_down, start_kernel
from graders.options import DEFAULT_SEED
from graders.pool import SERVER_START_TIMEOUT, ForkServer
from graders.provisioner import WarmProvisioner, warm_kernel_manager, write_kernelspec
from graders.sandbox import Protections, Sandbox, SandboxSettings
from graders.workspace import PoolFolders, Workspace

__all__ = ["WARM_PROTECTION", "WarmKernelLauncher", "shared_launcher"]

log = logging.getLogger(__name__)

WARM_PROTECTION = "warm kernel forked from a pool that imported TensorFlow once"


class WarmKernelLauncher:
    """Starts each submission's kernel by forking it from a warm server.

    Use it as a context manager, or call :meth:`close`; the server is also stopped when
    the interpreter exits. A server that died is replaced at the next kernel.

    Args:
        python: The Python that runs the server.
        sandbox: The sandbox of every kernel, as for cold kernels.
        seed: The seed the first server serves; a kernel asked for with another seed
            gets a server of its own seed (hash randomisation is fixed at Python's start).
        preload: The modules the server imports before it forks any kernel.
        start_timeout: Seconds the server may take to import everything and listen.
    """

    def __init__(
        self,
        *,
        python: str = sys.executable,
        sandbox: SandboxSettings | None = None,
        seed: int = DEFAULT_SEED,
        preload: Sequence[str] = PRELOAD,
        start_timeout: float = SERVER_START_TIMEOUT,
    ) -> None:
        self._python = python
        self.settings = sandbox or SandboxSettings()
        self._seed = seed
        self._preload = tuple(preload)
        self._start_timeout = start_timeout
        self._sandbox: Sandbox | None = None
        self._cold: LocalKernelLauncher | None = None
        self._pool: PoolFolders | None = None
        self._pool_finalizer: weakref.finalize[[PoolFolders, int], WarmKernelLauncher] | None = None
        self._server: ForkServer | None = None
        self._unavailable: str | None = None if _can_fork() else "warm kernels need Linux"
        self._lock = threading.RLock()

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.settings)
        return self._sandbox

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def unavailable(self) -> str | None:
        """Why this launcher starts cold kernels instead, if it does."""
        return self._unavailable

    @property
    def server_facts(self) -> dict[str, Any] | None:
        """What the running server reported when it was ready (pid, threads, memory)."""
        return None if self._server is None else dict(self._server.facts)

    @property
    def pool(self) -> PoolFolders | None:
        """The pool's folders, once the first server has been started."""
        return self._pool

    @property
    def server_process(self) -> int | None:
        """The process id, in the grader's view, of the server or the sandbox around it."""
        return None if self._server is None else self._server.process.pid

    def open(self) -> None:
        """Start the fork server now rather than at the first kernel.

        Raises:
            HarnessError: The server cannot run here (the launcher then starts cold kernels).
        """
        if self._running(self._seed) is None:
            raise HarnessError(f"the warm kernel server cannot run here: {self._unavailable}")

    def close(self) -> None:
        """Stop the fork server and every kernel it still runs; remove the pool's folders."""
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._pool_finalizer is not None:
                self._pool_finalizer()
                self._pool = self._pool_finalizer = None

    def __enter__(self) -> WarmKernelLauncher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def protections(self) -> Protections:
        """The sandbox's protections, and whether the kernels are warm or, failing that, cold."""
        base = self.sandbox.protections()
        if self._running(self._seed) is None:
            line = f"cold kernels (warm pool unavailable: {self._unavailable})"
        else:
            line = WARM_PROTECTION
        return Protections([*base.active, line], list(base.missing))

    def workspace_base(self) -> Path | None:
        """The pool's folder for workspaces, which the server sees; None when kernels are cold."""
        return None if self._running(self._seed) is None or self._pool is None else self._pool.work

    async def start(self, ws: Workspace, *, seed: int) -> AsyncKernelManager:
        """Return a started kernel manager whose kernel was forked into ``ws.workdir``.

        ``ws`` must lie in :meth:`workspace_base`. A server that fails to start the kernel
        is replaced once.

        Raises:
            HarnessError: The kernel could not be started.
        """
        server = await asyncio.to_thread(self._running, seed)
        if server is None:
            return await self._cold_launcher().start(ws, seed=seed)
        if server.pool.work not in ws.root.parents:
            raise HarnessError("a warm kernel's workspace must be made in the pool's folder")
        self.sandbox.prepare(ws)
        try:
            return await self._fork(server, ws, seed)
        except HarnessError as err:
            log.warning(
                "the warm kernel server could not start a kernel (%s); replacing it. "
                "Its log ends: %s",
                err,
                server.log_tail(),
            )
            await asyncio.to_thread(self._drop, server)
            server = await asyncio.to_thread(self._running, seed)
            if server is None:
                return await self._cold_launcher().start(ws, seed=seed)
            return await self._fork(server, ws, seed)

    async def stop(self, km: AsyncKernelManager) -> None:
        """Stop the kernel and everything it started.

        Raises:
            HarnessError: The server stopped while the kernel ran, so the kernel's end
                says nothing about the submission.
        """
        provisioner = km.provisioner
        if not isinstance(provisioner, WarmProvisioner):
            await self._cold_launcher().stop(km)
            return
        try:
            await shut_down(km)
        finally:
            await asyncio.to_thread(self._after_kernel, provisioner)

    async def _fork(self, server: ForkServer, ws: Workspace, seed: int) -> AsyncKernelManager:
        # Nothing of an earlier submission stays where this kernel could find it.
        await asyncio.to_thread(server.clear_work, {ws.root, ws.trace_dir})
        km = warm_kernel_manager(server, ws, seed)
        try:
            await start_kernel(km, ws, self.sandbox, seed)
        except (OSError, HarnessError) as err:
            with contextlib.suppress(Exception):
                await km.cleanup_resources()
            raise HarnessError(f"the warm kernel server did not start a kernel ({err})") from err
        log.debug("forked a warm kernel into %s", ws.workdir)
        return km

    def _after_kernel(self, provisioner: WarmProvisioner) -> None:
        if not provisioner.clean:
            log.warning("a warm kernel may have left processes behind: stopping its server")
            self._drop(provisioner.server)
        if not self.sandbox.isolated:
            self.sandbox.kill_leftovers()
        if provisioner.server_lost:
            raise HarnessError(
                "the warm kernel server stopped while the submission ran",
                advice="Grade the submission again; a new server is started.",
            )

    def _cold_launcher(self) -> LocalKernelLauncher:
        if self._cold is None:
            self._cold = LocalKernelLauncher(self._python, sandbox=self.settings)
        return self._cold

    def _drop(self, server: ForkServer) -> None:
        with self._lock:
            server.close()
            if self._server is server:
                self._server = None

    def _running(self, seed: int) -> ForkServer | None:
        """The server for ``seed``, started or restarted as needed; None when unavailable."""
        with self._lock:
            if self._unavailable is not None:
                return None
            self._seed = seed
            server = self._server
            if server is not None and not server.alive():
                log.warning(
                    "the warm kernel server stopped (exit %s); starting another. Its log ends: %s",
                    server.exit,
                    server.log_tail(),
                )
            if server is not None and (not server.alive() or server.seed != seed):
                self._drop(server)
            if self._server is None:
                self._server = self._start_server(seed)
            return self._server

    def _start_server(self, seed: int) -> ForkServer | None:
        sandbox = self.sandbox
        if self._pool is None:
            self._pool = PoolFolders.create()
            # Removed with the launcher, or at exit (after the server, started later).
            self._pool_finalizer = weakref.finalize(self, _remove, self._pool, os.getpid())
            write_kernelspec(self._pool, self._python)
        try:
            return ForkServer.start(
                sandbox=sandbox,
                pool=self._pool,
                python=self._python,
                seed=seed,
                preload=self._preload,
                timeout=self._start_timeout,
            )
        except HarnessError as err:
            self._unavailable = err.detail
            _warn_unavailable(err.detail)
            return None


_SHARED: WarmKernelLauncher | None = None


def shared_launcher(settings: SandboxSettings, seed: int) -> WarmKernelLauncher:
    """This process's one warm launcher, made on first use and closed when the process exits.

    A batch's worker process grades every job it gets with it, so its server imports
    TensorFlow once. Other sandbox settings replace it.
    """
    global _SHARED
    if _SHARED is not None and _SHARED.settings != settings:
        _SHARED.close()
        _SHARED = None
    if _SHARED is None:
        _SHARED = WarmKernelLauncher(sandbox=settings, seed=seed)
        atexit.register(_SHARED.close)
    return _SHARED


def _remove(pool: PoolFolders, owner: int) -> None:
    if os.getpid() == owner:  # a forked copy of the grader does not own the pool
        pool.remove()


def _can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux")


@functools.cache
def _warn_unavailable(reason: str) -> None:
    log.warning("warm kernels are unavailable, grading with cold kernels: %s", reason)


if TYPE_CHECKING:  # the launcher keeps to the protocol the harness calls
    _CHECK: type[KernelLauncher] = WarmKernelLauncher
