"""The one place where a kernel for a submission is started.

Whatever the notebook's own kernelspec says, the submission runs in a Python kernel of
the grader's own environment, with an environment chosen here. Later protections
(a sandbox, a pool of warm kernels) plug in by providing another launcher.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

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
    """Starts a kernel for one submission."""

    async def start(self, *, workdir: Path, seed: int, log: Path) -> AsyncKernelManager:
        """Return a started kernel manager whose kernel runs in ``workdir``.

        The kernel process's own output (start-up noise, crashes) goes to ``log``.
        """
        ...


class LocalKernelLauncher:
    """Starts a fresh IPython kernel process per submission."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python

    async def start(self, *, workdir: Path, seed: int, log: Path) -> AsyncKernelManager:
        specs = KernelSpecManager(kernel_dirs=[str(_kernelspec_dir(self._python))])
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        with log.open("wb") as sink:
            await km.start_kernel(
                cwd=str(workdir),
                env=kernel_environment(seed),
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        _log.debug("started a kernel in %s", workdir)
        return km


def kernel_environment(seed: int) -> dict[str, str]:
    """The environment a submission's kernel starts with."""
    env = dict(os.environ)
    env.update(_KERNEL_ENV)
    env["PYTHONHASHSEED"] = str(seed)
    return env


@functools.cache
def _kernelspec_dir(python: str) -> Path:
    """A kernelspec folder naming ``python``, made once per process and removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="kgrade-kernelspec-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    spec_dir = root / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kgrade",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root
