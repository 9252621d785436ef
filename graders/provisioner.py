"""How jupyter_client drives a warm kernel: a provisioner that goes through the fork server.

:class:`WarmProvisioner` reuses :class:`LocalProvisioner`'s preparation (ports, connection
file) and its cleanup of cached ports; everything about the process goes through the
server (:class:`graders.pool.ForkServer`), which is the kernel's parent: launch, poll,
signal, and release, after which the server has swept up what the kernel left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from graders.errors import HarnessError
from graders.pool import ForkServer
from graders.sandbox import kernel_folders
from graders.workspace import PoolFolders, Workspace

log = logging.getLogger(__name__)

WARM_KERNEL_NAME = "kgrade-warm"
# How long kill() waits for the server to see a killed kernel end, and how often it asks.
KILL_WAIT = 1.0
KILL_POLL = 0.005


class WarmProvisioner(LocalProvisioner):
    """A kernel provisioner whose kernels are forked, polled and killed by a fork server.

    After :meth:`cleanup`, ``clean`` tells whether the server left no process behind, and
    ``server_lost`` whether the server stopped answering while the kernel was there: the
    kernel then died with it, through no fault of the submission.
    """

    def __init__(self, *, server: ForkServer, ws: Workspace, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = server
        self.clean: bool | None = None
        self.server_lost = False
        self._ws = ws
        self._seed = seed
        self._kernel: int | None = None
        self._returncode: int | None = None

    @property
    def has_process(self) -> bool:
        return self._kernel is not None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        km = self.parent
        if km is None:
            raise HarnessError("a warm kernel needs its kernel manager")
        spawn: dict[str, Any] = {
            "op": "spawn",
            "connection_file": os.path.realpath(km.connection_file),
            "workdir": str(kwargs["cwd"]),
            "env": dict(kwargs["env"]),
            "seed": self._seed,
            "tmp": str(self._ws.tmp),
            "folders": [str(folder) for folder in kernel_folders(self._ws)],
            "hide": str(self.server.pool.work),
        }
        with _output_descriptors(kwargs.get("stdout"), kwargs.get("stderr")) as fds:
            reply = await self._ask(spawn, fds)
        self._kernel = int(reply["pid"])
        self._returncode = None
        self.clean = None
        self.cwd = str(kwargs["cwd"])
        return self.connection_info

    async def poll(self) -> int | None:
        if self._kernel is None:
            return 0
        if self._returncode is None:
            try:
                reply = await self._ask({"op": "poll", "pid": self._kernel})
                self._returncode = reply["returncode"]
            except (OSError, HarnessError) as err:
                # The server is gone, and the sandbox's process namespace with it.
                log.warning(
                    "the fork server no longer answers for kernel %s: %s", self._kernel, err
                )
                self._returncode = -1
                self.server_lost = True
        return self._returncode

    async def wait(self) -> int | None:
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.1)
        return code

    async def send_signal(self, signum: int) -> None:
        if self._kernel is None:
            return
        try:
            await self._ask({"op": "signal", "pid": self._kernel, "signum": signum})
        except (OSError, HarnessError) as err:
            log.debug("no signal for kernel %s: %s", self._kernel, err)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)
        # jupyter_client looks for the end every 0.1 s; a killed kernel ends within
        # milliseconds, so asking more often here saves most of that wait per submission.
        ends = time.monotonic() + KILL_WAIT
        while time.monotonic() < ends and await self.poll() is None:
            await asyncio.sleep(KILL_POLL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        if self._kernel is None:
            return
        kernel, self._kernel = self._kernel, None
        try:
            reply = await self._ask({"op": "release", "pid": kernel})
            self.clean = bool(reply.get("clean"))
        except (OSError, HarnessError) as err:
            log.warning("could not release kernel %s: %s", kernel, err)
            self.clean = False
            self.server_lost = self.server_lost or isinstance(err, OSError)

    async def _ask(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.server.ask, message, fds or [])


def warm_kernel_manager(server: ForkServer, ws: Workspace, seed: int) -> AsyncKernelManager:
    """A kernel manager whose kernel ``server`` will fork into ``ws``."""
    specs = KernelSpecManager(kernel_dirs=[str(server.pool.root / "kernels")])
    km = AsyncKernelManager(kernel_name=WARM_KERNEL_NAME, kernel_spec_manager=specs)
    km.connection_file = str(ws.sockets / "connection.json")
    km.kernel_id = str(uuid.uuid4())
    # Given here, the provisioner needs no entry point: the manager uses it as it is.
    km.provisioner = WarmProvisioner(
        server=server,
        ws=ws,
        seed=seed,
        kernel_id=km.kernel_id,
        kernel_spec=km.kernel_spec,
        parent=km,
    )
    return km


def write_kernelspec(pool: PoolFolders, python: str) -> None:
    """The warm kernelspec; its argv (a cold kernel) runs only without the provisioner."""
    spec_dir = pool.root / "kernels" / WARM_KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kgrade (warm)",
        "language": "python",
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


@contextmanager
def _output_descriptors(*targets: Any) -> Iterator[list[int]]:
    """Descriptors for Popen-style ``stdout``/``stderr`` values; None and DEVNULL → /dev/null."""
    opened: list[int] = []
    fds: list[int] = []
    try:
        for target in targets:
            if isinstance(target, int) and target >= 0:
                fds.append(target)
            elif hasattr(target, "fileno"):
                fds.append(target.fileno())
            else:
                opened.append(os.open(os.devnull, os.O_WRONLY))
                fds.append(opened[-1])
        yield fds
    finally:
        for fd in opened:
            os.close(fd)
