"""Run a submission cell by cell in a fresh kernel, capturing a trace after each cell."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, cast

import nbformat
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from graders.errors import HarnessError
from graders.kernel import KernelLauncher
from graders.options import GradeOptions
from graders.outputs import OutputCap, clip, placeholder
from graders.workspace import Workspace

log = logging.getLogger(__name__)

CellStatus = Literal["ok", "error", "timeout", "not-run"]

SETUP_TIMEOUT = 180.0
PROBE_TIMEOUT = 60.0
START_ATTEMPTS = 2  # a kernel that dies before it answers is started once more
TIMEOUT_ERROR = "CellTimeoutError"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class CellRun:
    """What happened to one code cell of the submission."""

    index: int
    status: CellStatus = "not-run"
    error_name: str | None = None
    error_value: str | None = None
    traceback: str | None = None
    reason: str | None = None
    outputs: list[Any] = field(default_factory=list)
    duration_s: float = 0.0


@dataclass
class Execution:
    """Every code cell's run, and what stopped the run early, if anything.

    ``captures`` maps each trace step the harness asked for to the one-time token the
    probe had to write into it; any other trace file is not the harness's.
    """

    cells: list[CellRun]
    stopped: str | None = None
    captures: dict[int, str] = field(default_factory=dict)
    capture_problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


async def execute_submission(
    nb: nbformat.NotebookNode,
    ws: Workspace,
    options: GradeOptions,
    launcher: KernelLauncher,
    arrays: tuple[str, ...] = (),
) -> Execution:
    """Execute every code cell of ``nb`` in ``ws``, writing the trace into ``ws.trace_dir``.

    Besides models and DataFrames, the trace holds the variables named in ``arrays``.

    Raises:
        HarnessError: The kernel could not be started or prepared.
    """
    limits = options.sandbox
    cap = OutputCap(limits.cell_output_chars, limits.notebook_output_chars, limits.images_per_cell)
    for attempt in range(1, START_ATTEMPTS + 1):
        started = time.monotonic()
        km = await _start_kernel(launcher, ws, options.seed)
        client = _client(nb, km, cap)
        try:
            kc = cast(AsyncKernelClient, await client.async_start_new_kernel_client())
        except (RuntimeError, TimeoutError) as err:
            # No student code has run yet: starting again changes nothing about the grade.
            await launcher.stop(km)
            output = _log_tail(ws)
            if attempt == START_ATTEMPTS:
                raise HarnessError(
                    f"the kernel died while starting ({err}){output}",
                    advice="Grade the submission again; if it keeps failing, check that "
                    "ipykernel and TensorFlow import in kgrade's Python.",
                ) from err
            log.warning("the kernel died while starting (%s), starting another%s", err, output)
            continue
        try:
            return await _run_cells(client, nb, ws, options, km, kc, arrays, started)
        finally:
            kc.stop_channels()
            await launcher.stop(km)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _start_kernel(launcher: KernelLauncher, ws: Workspace, seed: int) -> AsyncKernelManager:
    try:
        return await launcher.start(ws, seed=seed)
    except HarnessError:
        raise
    except Exception as err:
        raise HarnessError(
            f"could not start a kernel ({err})", advice="Check that ipykernel is installed."
        ) from err


def _log_tail(ws: Workspace, limit: int = 2000) -> str:
    """The end of what the kernel process wrote, to say why it died; empty if nothing."""
    try:
        text = ws.log.read_bytes()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f"; the kernel's last output: {text}" if text else ""


def _client(nb: nbformat.NotebookNode, km: AsyncKernelManager, cap: OutputCap) -> _CappedClient:
    return _CappedClient(
        nb,
        cap,
        km=km,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_ERROR, "evalue": "", "traceback": []},
        iopub_timeout=10,
        # nbclient's stream coalescing takes quadratic time on one very long line.
        coalesce_streams=False,
        shutdown_kernel="immediate",
    )


async def _run_cells(
    client: _CappedClient,
    nb: nbformat.NotebookNode,
    ws: Workspace,
    options: GradeOptions,
    km: AsyncKernelManager,
    kc: AsyncKernelClient,
    arrays: tuple[str, ...],
    started: float,
) -> Execution:
    replies: dict[int, dict[str, Any]] = {}

    def remember_reply(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        replies[cell_index] = execute_reply.get("content", {})

    client.on_cell_executed = remember_reply
    ready = time.monotonic()
    await _prepare(kc, _bootstrap_code(ws, options.seed, arrays))
    prepared = time.monotonic()
    execution = await _run_each_cell(client, km, kc, nb, ws, options, replies)
    execution.timings["kernel_start_s"] = round(ready - started, 3)
    execution.timings["setup_s"] = round(prepared - ready, 3)
    return execution


async def _run_each_cell(
    client: _CappedClient,
    km: AsyncKernelManager,
    kc: AsyncKernelClient,
    nb: nbformat.NotebookNode,
    ws: Workspace,
    options: GradeOptions,
    replies: dict[int, dict[str, Any]],
) -> Execution:

    runs = [CellRun(index=i) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    execution = Execution(cells=runs)
    deadline = time.monotonic() + options.deadline
    capture_s = 0.0
    for step, run in enumerate(runs, start=1):
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            execution.stopped = "deadline"
            break
        client.timeout = max(1, int(min(options.cell_timeout, remaining)))
        cell = nb.cells[run.index]
        started = time.monotonic()
        try:
            await client.async_execute_cell(cell, run.index)
        except DeadKernelError:
            run.status, run.error_name = "error", "DeadKernelError"
            run.error_value = "the kernel stopped while running this cell"
            execution.stopped = "kernel-died"
            break
        finally:
            client.cap.finish(run.index, cell.setdefault("outputs", []))
        run.duration_s = time.monotonic() - started
        _record(run, cell, replies.get(run.index), client.timeout)
        log.debug("cell %d: %s in %.1fs", run.index, run.status, run.duration_s)
        exiting = run.error_name in ("NoReply", "SystemExit")
        if not await _still_alive(km, grace=5.0 if exiting else 0.0):
            execution.stopped = "kernel-died"
            break
        wait = min(PROBE_TIMEOUT, max(5.0, deadline - time.monotonic()))
        capture_started = time.monotonic()
        captured = await _capture(km, kc, execution, step, run.index, wait)
        # Out of the kernel's reach before any more student code runs.
        take_step(ws, step)
        capture_s += time.monotonic() - capture_started
        if not captured:
            execution.stopped = "unresponsive" if await km.is_alive() else "kernel-died"
            break
    execution.timings["capture_s"] = round(capture_s, 3)
    for run in runs:
        if run.status == "not-run" and run.reason is None and execution.stopped:
            run.reason = execution.stopped
    return execution


async def _still_alive(km: AsyncKernelManager, grace: float) -> bool:
    """Whether the kernel process lives, waiting up to ``grace`` seconds for it to exit."""
    ends = time.monotonic() + grace
    while await km.is_alive():
        if time.monotonic() >= ends:
            return True
        await asyncio.sleep(0.2)
    return False


def _record(run: CellRun, cell: Any, reply: dict[str, Any] | None, timeout: int) -> None:
    run.outputs = list(cell.get("outputs", []))
    if not cell.source.strip():
        run.status = "ok"
        return
    if reply is None:
        run.status, run.error_name = "error", "NoReply"
        run.error_value = "the kernel never finished this cell (it may have exited)"
        return
    if any(p.get("source") == "ask_exit" for p in reply.get("payload", [])):
        run.status, run.error_name = "error", "SystemExit"
        run.error_value = "the cell asked the notebook's Python process to exit"
        return
    if reply.get("status") != "error":
        run.status = "ok"
        return
    if reply.get("ename") == TIMEOUT_ERROR:
        run.status, run.error_name = "timeout", TIMEOUT_ERROR
        run.error_value = f"the cell ran longer than the {timeout} s limit and was stopped"
        return
    run.status = "error"
    run.error_name = clip(str(reply.get("ename", "Error")), 200)
    run.error_value = clip(strip_ansi(str(reply.get("evalue", ""))))
    run.traceback = clip(strip_ansi("\n".join(map(str, reply.get("traceback", [])))))


async def _capture(
    km: AsyncKernelManager,
    kc: AsyncKernelClient,
    execution: Execution,
    step: int,
    cell_index: int,
    timeout: float,
) -> bool:
    """Write the trace for the cell just run; False when the kernel no longer answers."""
    token = secrets.token_hex(16)
    execution.captures[step] = token
    code = (
        "__import__('sys').modules['__kgrade_probe__']"
        f".PROBE.capture({step}, {cell_index}, {token!r})"
    )
    for attempt in range(2):
        try:
            await _while_alive(km, _run_hidden(kc, code, timeout / 2, "capture"))
            return True
        except _KernelGone:
            return False
        except TimeoutError:
            log.warning("kernel did not answer the trace capture after cell %d", cell_index)
            if attempt == 0:
                await km.interrupt_kernel()
        except HarnessError as err:
            log.warning("trace capture failed after cell %d: %s", cell_index, err.detail)
            execution.capture_problems.append(
                f"nothing was recorded after cell {cell_index + 1}: {err.detail}"
            )
            return True
    return False


def take_step(ws: Workspace, step: int) -> None:
    """Move the files of trace ``step`` from the kernel's trace folder to the harness's own.

    Only regular files move: a link planted by the notebook is left where it is.
    """
    for suffix in (".json", ".npz"):
        source = ws.trace_dir / f"step-{step:04d}{suffix}"
        try:
            if stat.S_ISREG(source.lstat().st_mode):
                os.replace(source, ws.captured / source.name)
        except FileNotFoundError:
            continue


class _CappedClient(NotebookClient):
    """nbclient's client, keeping only as much of each cell's output as the cap allows."""

    def __init__(self, nb: nbformat.NotebookNode, cap: OutputCap, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.cap = cap

    def output(
        self,
        outs: list[nbformat.NotebookNode],
        msg: dict[str, Any],
        display_id: str | None,
        cell_index: int,
    ) -> nbformat.NotebookNode | None:
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or not outs or outs[-1] is not out:
            return out
        kept = self.cap.admit(cell_index, out)
        if kept is not None:
            return kept
        if display_id is None:
            outs.pop()
            return None
        # An output with a display id stays where it is (later updates address it by
        # place), emptied of what was too large.
        out["data"] = placeholder("this output")
        out["metadata"] = {}
        return out

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        content = msg.get("content", {})
        if not self.cap.fits_update(content.get("data", {})):
            content["data"] = placeholder("an update of this output")
            content["metadata"] = {}
        super()._update_display_id(display_id, msg)


class _KernelGone(Exception):
    """The kernel process ended while the harness waited for it."""


async def _while_alive(km: AsyncKernelManager, work: Awaitable[None]) -> None:
    """Await ``work``, giving up as soon as the kernel process is gone."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return task.result()
        if not await km.is_alive():
            task.cancel()
            raise _KernelGone


async def _run_hidden(kc: AsyncKernelClient, code: str, timeout: float, what: str) -> None:
    reply = await kc.execute_interactive(
        code,
        silent=True,
        store_history=False,
        allow_stdin=False,
        timeout=timeout,
        output_hook=lambda msg: None,
    )
    content = reply.get("content", {})
    if content.get("status") != "ok":
        raise HarnessError(
            f"could not {what} the kernel: {content.get('ename')}: "
            f"{strip_ansi(str(content.get('evalue')))}",
            advice="This is a problem of the grader's installation, not of the submission.",
        )


async def _prepare(kc: AsyncKernelClient, code: str) -> None:
    """Seed the kernel and install the probe, once more if a stray interrupt cut it short."""
    try:
        await _run_hidden(kc, code, SETUP_TIMEOUT, "prepare")
    except HarnessError as err:
        if "KeyboardInterrupt" not in err.detail:
            raise
        log.warning("preparing the kernel was interrupted; preparing it again")
        await _run_hidden(kc, code, SETUP_TIMEOUT, "prepare")


def _bootstrap_code(ws: Workspace, seed: int, arrays: tuple[str, ...]) -> str:
    source = resources.files("graders").joinpath("probe.py").read_text(encoding="utf-8")
    return (
        "def __kgrade_boot():\n"
        "    import sys, types\n"
        "    module = types.ModuleType('__kgrade_probe__')\n"
        f"    exec(compile({source!r}, 'kgrade-probe', 'exec'), module.__dict__)\n"
        "    sys.modules['__kgrade_probe__'] = module\n"
        f"    module.PROBE = module.Probe({str(ws.trace_dir)!r}, {seed}, {list(arrays)!r})\n"
        "    module.PROBE.setup()\n"
        "__kgrade_boot()\n"
        "del __kgrade_boot\n"
    )


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)
