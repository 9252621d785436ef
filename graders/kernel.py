"""The one place where a kernel for a submission is started.

Whatever the notebook's own kernelspec says, the submission runs in a Python kernel of
the grader's own environment, inside the sandbox (``graders.sandbox``), with an
environment chosen here. Other ways to get a kernel plug in by providing another launcher.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from graders.sandbox import Protections, Sandbox, SandboxSettings
from graders.workspace import Workspace

_log = logging.getLogger(__name__)

KERNEL_NAME = "kgrade-python"

# Variables that quiet TensorFlow, pin determinism and keep plots headless.
_KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "GLOG_minloglevel": "3",
    "KERAS_BACKEND": "tensorflow",
    "CUDA_VISIBLE_DEVICES": "",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "PYTHONWARNINGS": "ignore",
}


class KernelLauncher(Protocol):
    """Starts and stops the kernel of one submission."""

    async def start(self, ws: Workspace, *, seed: int) -> AsyncKernelManager:
        """Return a started kernel manager whose kernel runs in ``ws.workdir``.

        The kernel process's own output (start-up noise, crashes) goes to ``ws.log``.
        """
        ...

    async def stop(self, km: AsyncKernelManager) -> None:
        """Stop the kernel and everything it started, whatever state it is in."""
        ...

    def protections(self) -> Protections:
        """The protections the kernels of this launcher run with."""
        ...

    def workspace_base(self) -> Path | None:
        """Where the workspaces of this launcher's kernels must be made; None: anywhere."""
        ...


class LocalKernelLauncher:
    """Starts a fresh IPython kernel process per submission, inside the sandbox."""

    def __init__(
        self, python: str = sys.executable, sandbox: SandboxSettings | None = None
    ) -> None:
        self._python = python
        self._settings = sandbox or SandboxSettings()
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self._settings)
        return self._sandbox

    def protections(self) -> Protections:
        return self.sandbox.protections()

    def workspace_base(self) -> Path | None:
        return None

    async def start(self, ws: Workspace, *, seed: int) -> AsyncKernelManager:
        sandbox = self.sandbox
        sandbox.prepare(ws)
        specs = KernelSpecManager(kernel_dirs=[str(_write_kernelspec(ws, sandbox, self._python))])
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        km.connection_file = str(ws.sockets / "connection.json")
        await start_kernel(km, ws, sandbox, seed)
        _log.debug("started a kernel in %s", ws.workdir)
        return km

    async def stop(self, km: AsyncKernelManager) -> None:
        try:
            await shut_down(km)
        finally:
            self.sandbox.kill_leftovers()


async def start_kernel(km: AsyncKernelManager, ws: Workspace, sandbox: Sandbox, seed: int) -> None:
    """Start ``km``'s kernel in ``ws``, its own output going to ``ws.log``.

    Inside the sandbox the kernel has no network: the harness reaches it over Unix sockets.
    """
    if sandbox.isolated:
        km.transport = "ipc"
        km.ip = str(ws.sockets / "kernel")
    with ws.log.open("wb") as sink:
        await km.start_kernel(
            cwd=str(ws.workdir),
            env=sandbox.environment(ws, kernel_environment(seed)),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


async def shut_down(km: AsyncKernelManager) -> None:
    """Stop ``km``'s kernel at once if it still runs, and release its ports and files."""
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)
    except Exception:  # the kernel may already be gone; never mask the grading result
        _log.warning("kernel shutdown failed", exc_info=True)
    finally:
        await km.cleanup_resources()


def kernel_environment(seed: int) -> dict[str, str]:
    """What a submission's kernel finds in its environment besides the basics."""
    return {**_KERNEL_ENV, "PYTHONHASHSEED": str(seed)}


def _write_kernelspec(ws: Workspace, sandbox: Sandbox, python: str) -> Path:
    """A kernelspec folder for this one kernel, in the harness's part of ``ws``."""
    root = ws.root / "kernelspec"
    (root / KERNEL_NAME).mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": sandbox.command(ws, python),
        "display_name": "kgrade",
        "language": "python",
        # Interrupts travel as messages: no signal has to cross the sandbox's walls.
        "interrupt_mode": "message",
    }
    (root / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root
