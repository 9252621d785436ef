"""Warm kernels: forked from one pool, inside the same sandbox as cold kernels, and as
separate from each other as cold kernels are."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from click.testing import CliRunner

from graders.cli import main
from graders.errors import HarnessError
from graders.execute import Execution, execute_submission
from graders.options import GradeOptions
from graders.pool import request
from graders.sandbox import SandboxSettings, bubblewrap
from graders.warm import WARM_PROTECTION, WarmKernelLauncher, shared_launcher
from graders.workspace import POOL_PREFIX, PoolFolders, sweep_stale_folders, workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "user_visit_duration.csv"
REFERENCE = ROOT / "reference" / "classification.ipynb"
EXERCISE = ROOT / "exercises" / "classification.ipynb"
LIGHT = ["ipykernel.kernelapp"]  # a server that starts in a second, for tests of the pool

needs_bwrap = pytest.mark.skipif(bubblewrap() is None, reason="the sandbox needs bubblewrap")

DRAW = (
    "import random, numpy as np, tensorflow as tf\n"
    "print(repr(np.random.rand()), random.random(), hash('kgrade'), float(tf.random.uniform(())))"
)
ESCAPE = (
    "import subprocess, sys\n"
    "subprocess.Popen(['sleep', '301.7'], start_new_session=True)\n"
    "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); "
    "os.fork() and os._exit(0); time.sleep(302.7)'])"
)
LEFT_BEHIND = (
    "import os, json\n"
    "secret = 42\n"
    "for path in ('mine.txt', os.path.expanduser('~/home.txt'), '/tmp/tmp.txt', '/dev/shm/shm'):\n"
    "    open(path, 'w').write('one')"
)
FOUND = (
    "import os, json\n"
    "paths = ('mine.txt', os.path.expanduser('~/home.txt'), '/tmp/tmp.txt', '/dev/shm/shm')\n"
    "print(json.dumps([os.path.exists(p) for p in paths]))"
)


def pool_view(work: Path) -> str:
    """A cell printing which workspaces of the pool the kernel sees."""
    return f"import os, json\nprint(json.dumps(sorted(os.listdir({str(work)!r}))))"


def server_reach(socket_path: Path) -> str:
    """A cell printing whether the kernel can reach the fork server, by path or descriptor."""
    return (
        "import os, json, socket\n"
        f"path = {str(socket_path)!r}\n"
        "inherited = []\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        s = socket.socket(fileno=os.dup(fd))\n"
        "    except OSError:\n"
        "        continue\n"
        "    try:\n"
        "        inherited.append(s.family == socket.AF_UNIX and s.getsockname() == path)\n"
        "    except OSError:\n"
        "        pass\n"
        "    s.detach()\n"
        "print(json.dumps([os.path.exists(path), any(inherited)]))"
    )


# add_key and keyctl, by machine; a key is kept by the kernel, not by the process.
SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}
KEYS = (
    "import ctypes, os\n"
    f"add_key, keyctl = {SYSCALLS}[os.uname().machine]\n"
    "syscall = ctypes.CDLL(None).syscall\n"
    "syscall.restype = ctypes.c_long\n"
)
KEY_LEFT = KEYS + 'print(syscall(add_key, b"user", b"kgrade-escape-key", b"one", 3, -4) > 0)'
KEY_FOUND = KEYS + 'print(syscall(keyctl, 10, -4, b"user", b"kgrade-escape-key", 0) > 0)'

OTHERS = (
    "import os, json\n"
    "print(json.dumps([p for p in map(int, filter(str.isdigit, os.listdir('/proc')))"
    " if p not in (1, os.getppid(), os.getpid())]))"
)


@pytest.fixture(scope="module")
def launcher() -> Iterator[WarmKernelLauncher]:
    with WarmKernelLauncher() as warm:
        warm.open()
        yield warm


def run(sources: list[str], launcher: WarmKernelLauncher) -> Execution:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    base = launcher.workspace_base()
    with workspace(DATA, "user_visit_duration.csv", base=base) as ws:
        return asyncio.run(execute_submission(nb, ws, GradeOptions(cell_timeout=60), launcher))


def printed(execution: Execution, cell: int) -> Any:
    run = execution.cells[cell]
    text = "".join(o.get("text", "") for o in run.outputs if o.get("name") == "stdout").strip()
    assert run.status == "ok", (cell, run.error_name, run.error_value)
    return json.loads(text) if text[:1] in "[{" else text


def sandbox_processes(launcher: WarmKernelLauncher) -> list[psutil.Process]:
    """Every process in the grader's view below the server's sandbox, but the server."""
    assert launcher.server_process is not None
    top = psutil.Process(launcher.server_process)
    return [p for p in top.children(recursive=True) if "graders.forkserver" not in p.cmdline()]


def settled(launcher: WarmKernelLauncher, timeout: float = 10.0) -> list[psutil.Process]:
    """What is left below the server, once processes on their way out have gone."""
    ends = time.monotonic() + timeout
    while (left := sandbox_processes(launcher)) and time.monotonic() < ends:
        time.sleep(0.1)
    return left


def escapees() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "301.7" in (p.info["cmdline"] or [])]


def test_importing_the_warm_launcher_does_not_import_tensorflow() -> None:
    code = "import sys, graders.warm; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_the_server_is_single_threaded_and_has_run_no_tensorflow_op(
    launcher: WarmKernelLauncher,
) -> None:
    facts = launcher.server_facts
    assert facts is not None
    assert (facts["python_threads"], facts["tasks"]) == (1, 1)
    assert not facts["tf_context"]
    assert not facts["zmq_context"]


GRADE_BOTH = """
import json, sys
from pathlib import Path
from graders.grade import grade
from graders.options import GradeOptions
from graders.pool import request
from graders.warm import WarmKernelLauncher

options = GradeOptions(with_reference=False)
with WarmKernelLauncher() as warm:
    graded = {"warm": grade(Path(sys.argv[1]), options, launcher=warm)}
graded["cold"] = grade(Path(sys.argv[1]), options)
print(json.dumps({
    **{kind: g.result.to_dict() for kind, g in graded.items()},
    "figures": {kind: sorted(g.figures) for kind, g in graded.items()},
    "imported": sorted(m for m in ("tensorflow", "keras") if m in sys.modules),
}))
"""


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its timings, and without the protections, compared on their own."""
    result = json.loads(json.dumps(result))
    for key in ("duration_s", "protections", "timings"):
        result["harness"].pop(key, None)
    for cell in result["cells"]:
        cell.pop("duration_s")
    return result


@pytest.mark.slow
def test_the_reference_graded_warm_gives_the_cold_result_and_the_grader_imports_no_tensorflow() -> (
    None
):
    done = subprocess.run(
        [sys.executable, "-c", GRADE_BOTH, str(REFERENCE)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    graded = json.loads(done.stdout)
    warm, cold = graded["warm"], graded["cold"]

    assert warm["status"] == "graded"
    assert warm["score"] == warm["max_score"]
    assert comparable(warm) == comparable(cold)
    assert graded["figures"]["warm"] == graded["figures"]["cold"]
    assert warm["harness"]["protections"] == {
        "active": [*cold["harness"]["protections"]["active"], WARM_PROTECTION],
        "missing": cold["harness"]["protections"]["missing"],
    }
    assert graded["imported"] == []


@pytest.mark.slow
@needs_bwrap
def test_two_submissions_of_one_pool_share_nothing_and_nothing_of_the_first_outlives_it(
    launcher: WarmKernelLauncher,
) -> None:
    pool = launcher.pool
    assert pool is not None
    view, reach = pool_view(pool.work), server_reach(pool.socket)
    first = run([LEFT_BEHIND, DRAW, ESCAPE, reach, view, KEY_LEFT], launcher)
    left = settled(launcher)
    escaped = escapees()
    second = run(
        ["secret", FOUND, DRAW, OTHERS, view, KEY_FOUND, "import os\nos._exit(3)"], launcher
    )

    assert [c.status for c in first.cells] == ["ok"] * 6
    assert printed(first, 3) == [False, False]  # no socket file, no inherited descriptor
    assert len(printed(first, 4)) == 2  # its own workspace and trace folder, no other
    assert left == [] and escaped == []
    assert second.cells[0].error_name == "NameError"
    assert printed(second, 1) == [False, False, False, False]
    assert printed(second, 2) == printed(first, 1)
    assert printed(second, 3) == []
    assert set(printed(second, 4)).isdisjoint(printed(first, 4))
    assert printed(first, 5) == "True"  # the key was stored ...
    assert printed(second, 5) == "False"  # ... and is gone for the next submission
    assert second.stopped == "kernel-died"
    assert settled(launcher) == []


def run_directly(launcher: WarmKernelLauncher, code: str, seed: int) -> str:
    """Run ``code`` in a fresh kernel without the harness's probe; return what it printed."""

    async def go() -> str:
        with workspace(DATA, "user_visit_duration.csv", base=launcher.workspace_base()) as ws:
            km = await launcher.start(ws, seed=seed)
            kc = km.client()
            kc.start_channels()
            out: list[str] = []
            try:
                await kc.wait_for_ready(timeout=60)
                await kc.execute_interactive(
                    code,
                    timeout=60,
                    output_hook=lambda m: out.append(str(m["content"].get("text", ""))),
                )
            finally:
                kc.stop_channels()
                await launcher.stop(km)
            return "".join(out).strip()

    return asyncio.run(go())


@pytest.mark.slow
def test_a_dead_server_is_replaced_and_another_seed_gets_a_server_of_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="graders.warm")
    code = "print(hash('kgrade'))"
    with WarmKernelLauncher(preload=LIGHT, seed=1) as light:
        light.open()
        first = light.server_process
        assert first is not None and light.pool is not None
        with light.pool.log.open("a") as server_log:  # as the server's last words would be
            server_log.write("MemoryError: the last line before it died\n")
        os.killpg(first, signal.SIGKILL)
        psutil.Process(first).wait(10)

        again = run_directly(light, code, seed=1)
        replaced = light.server_process
        other = run_directly(light, code, seed=7)

    def hashed(seed: int) -> str:
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        command = [sys.executable, "-c", code]
        return subprocess.run(command, env=env, capture_output=True, text=True).stdout.strip()

    assert replaced not in (None, first)
    assert (again, other) == (hashed(1), hashed(7))
    stopped = [r.getMessage() for r in caplog.records if "server stopped" in r.getMessage()]
    assert len(stopped) == 1 and "the last line before it died" in stopped[0]


@pytest.mark.slow
def test_a_server_that_dies_under_a_kernel_is_a_grader_error_not_the_submissions() -> None:
    async def kill_the_server_under_a_kernel(light: WarmKernelLauncher) -> None:
        with workspace(DATA, "user_visit_duration.csv", base=light.workspace_base()) as ws:
            km = await light.start(ws, seed=light.seed)
            assert light.server_process is not None
            os.killpg(light.server_process, signal.SIGKILL)
            with pytest.raises(HarnessError, match="stopped while the submission ran"):
                await light.stop(km)

    with WarmKernelLauncher(preload=LIGHT) as light:
        asyncio.run(kill_the_server_under_a_kernel(light))


def test_the_server_answers_the_process_that_started_it_only() -> None:
    with WarmKernelLauncher(preload=LIGHT, sandbox=SandboxSettings(isolate=False)) as light:
        light.open()
        assert light.pool is not None
        ask = (
            "from graders.pool import request\n"
            "try:\n"
            f"    print(request({str(light.pool.socket)!r}, {{'op': 'status'}}))\n"
            "except ConnectionError:\n"
            "    print('refused')\n"
        )
        other = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True)
        answer = request(light.pool.socket, {"op": "status"})

    assert other.stdout.strip() == "refused"
    assert answer["kernels"] == []


def test_where_no_server_can_run_kernels_are_cold_and_say_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="graders.warm")
    with WarmKernelLauncher(python="/nonexistent/python") as broken:
        first, second = broken.protections(), broken.protections()
        base = broken.workspace_base()
        with pytest.raises(HarnessError, match="warm kernel server"):
            broken.open()

    assert first == second
    assert first.active[-1].startswith("cold kernels (warm pool unavailable: ")
    assert first.active[:-1] == broken.sandbox.protections().active
    assert base is None
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1


def test_a_worker_process_keeps_one_launcher_for_its_settings() -> None:
    settings = SandboxSettings()
    first = shared_launcher(settings, seed=1)

    assert shared_launcher(settings, seed=2) is first
    assert shared_launcher(SandboxSettings(memory_mb=1024), seed=1) is not first
    assert first.server_facts is None  # nothing starts before the first kernel


def test_batch_grades_with_warm_kernels_unless_asked_for_cold_ones() -> None:
    shown = CliRunner().invoke(main, ["batch", "--help"]).output
    assert "--kernels [warm|cold]" in shown
    assert "[default: warm]" in " ".join(shown.split())


def test_a_pool_whose_grader_was_killed_is_swept_when_the_next_one_starts() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.mkdtemp(prefix=POOL_PREFIX))
    (stale / "owner").write_text(str(dead.pid))
    alive = PoolFolders.create()
    try:
        assert not stale.exists()
        assert alive.root.is_dir()
        assert sweep_stale_folders() == []  # this process still owns the new pool
    finally:
        alive.remove()
        shutil.rmtree(stale, ignore_errors=True)


@pytest.mark.slow
def test_watch_grades_every_save_with_warm_kernels_and_tidies_up_when_stopped(
    tmp_path: Path,
) -> None:
    notebook = tmp_path / "classification.ipynb"
    shutil.copyfile(EXERCISE, notebook)
    out = tmp_path / "out"
    result = out / "classification.json"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "graders", "grade", str(notebook), "--out", str(out), "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = wait_for_result(result, lambda r: r["status"] == "graded")
        children = psutil.Process(watcher.pid).children(recursive=True)
        shutil.copyfile(REFERENCE, notebook)
        second = wait_for_result(result, lambda r: r["score"] == r["max_score"])
        watcher.send_signal(signal.SIGTERM)
        output, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()

    assert first["score"] == 0
    assert WARM_PROTECTION in second["harness"]["protections"]["active"]
    assert second["harness"]["timings"]["setup_s"] < first["harness"]["duration_s"]
    # The pool was running when the save came: readying the launcher cost next to nothing.
    assert second["harness"]["timings"]["launcher_s"] < second["harness"]["timings"]["setup_s"] + 1
    assert watcher.returncode == 0, output
    assert "Stopped watching." in output
    assert children and not any(p.is_running() for p in children)
    assert str(watcher.pid) not in [
        owner.read_text() for owner in Path(tempfile.gettempdir()).glob(f"{POOL_PREFIX}*/owner")
    ]


def wait_for_result(path: Path, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The result at ``path`` once ``ready`` holds for it."""
    ends = time.monotonic() + 300
    while time.monotonic() < ends:
        with contextlib.suppress(OSError, ValueError):
            result: dict[str, Any] = json.loads(path.read_text())
            if ready(result):
                return result
        time.sleep(0.5)
    raise AssertionError(f"no such result in {path} within 300 s")
