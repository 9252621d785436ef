"""What a submission's kernel can reach: its limits, its files, its network, its user."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nbformat
import pytest

from graders.errors import UsageError
from graders.execute import Execution, execute_submission
from graders.kernel import LocalKernelLauncher
from graders.options import GradeOptions
from graders.sandbox import SandboxSettings, bubblewrap
from graders.workspace import workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "user_visit_duration.csv"
SECRET = "KGRADE_TEST_SECRET_TOKEN"

# Each cell prints one JSON line describing what the kernel could see or do.
PROBES = {
    "whoami": "import os, json\nprint(json.dumps([os.getuid(), os.getgid()]))",
    "limits": (
        "import resource, json\n"
        "print(json.dumps([resource.getrlimit(getattr(resource, n))[0]"
        " for n in ('RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE')]))"
    ),
    "environment": (
        f"import os, json\nprint(json.dumps([{SECRET!r} in os.environ,"
        " os.environ['HOME'], os.environ['TMPDIR']]))"
    ),
    "project": (
        "import os, json\n"
        f"paths = [{str(ROOT / 'reference')!r}, {str(ROOT / 'graders')!r},"
        f" {str(ROOT / 'README.md')!r}]\n"
        "print(json.dumps([os.path.exists(p) for p in paths]))"
    ),
    "network": (
        "import socket, json\n"
        "def reach(host, port):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps([reach('1.1.1.1', 80), reach('127.0.0.1', PORT)]))"
    ),
    "environment_read_only": (
        "import json, os, sys\n"
        "try:\n"
        "    open(os.path.join(sys.prefix, 'kgrade-escape.txt'), 'w').close()\n"
        "    wrote = True\n"
        "except OSError:\n"
        "    wrote = False\n"
        "print(json.dumps(wrote))"
    ),
    "dataset": "import json, os\nprint(json.dumps(sorted(os.listdir('.'))))",
    "disk_search": (
        "import json, os\n"
        "found = []\n"
        "for folder, subs, files in os.walk('/'):\n"
        "    subs[:] = [s for s in subs if os.path.join(folder, s) not in ('/proc', '/sys')]\n"
        "    names = ('classification.ipynb', 'regression.ipynb', 'result.schema.json')\n"
        "    found += [os.path.join(folder, f) for f in files if f in names]\n"
        "print(json.dumps(found))"
    ),
}


def outputs(execution: Execution) -> dict[str, object]:
    seen = {}
    for name, run in zip(PROBES, execution.cells, strict=True):
        assert run.status == "ok", (name, run.error_name, run.error_value)
        text = "".join(o.get("text", "") for o in run.outputs if o.get("name") == "stdout")
        seen[name] = json.loads(text)
    return seen


@pytest.fixture(scope="module")
def inside(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What one sandboxed kernel reported about itself, with a harness-side listener."""
    settings = SandboxSettings(memory_mb=3072, processes=300, open_files=256, file_size_mb=64)
    os.environ[SECRET] = "do-not-leak"

    async def run() -> Execution:
        # A service on the harness's loopback that the kernel must not reach.
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(code.replace("PORT", str(port))) for code in PROBES.values()
        ]
        with workspace(DATA, "user_visit_duration.csv") as ws:
            options = GradeOptions(cell_timeout=30, sandbox=settings)
            launcher = LocalKernelLauncher(sandbox=settings)
            try:
                return await execute_submission(nb, ws, options, launcher)
            finally:
                server.close()

    try:
        return outputs(asyncio.run(run()))
    finally:
        del os.environ[SECRET]


def test_the_kernel_runs_under_the_configured_limits(inside: dict[str, object]) -> None:
    mb = 1024 * 1024
    assert inside["limits"] == [3072 * mb, 300, 256, 64 * mb]


def test_the_kernel_inherits_no_secret_and_has_its_own_home_and_tmp(
    inside: dict[str, object],
) -> None:
    leaked, home, tmp = inside["environment"]  # type: ignore[misc]
    assert not leaked
    assert home != os.environ.get("HOME")
    assert tmp != os.environ.get("TMPDIR", "")


@pytest.mark.skipif(os.geteuid() != 0, reason="only a grader running as root drops privileges")
def test_a_root_grader_runs_the_kernel_as_an_unprivileged_user(inside: dict[str, object]) -> None:
    uid, gid = inside["whoami"]  # type: ignore[misc]
    assert uid != 0 and gid != 0


def test_the_kernel_cannot_write_into_the_python_environment(inside: dict[str, object]) -> None:
    assert inside["environment_read_only"] is False


def test_the_kernel_sees_the_dataset_in_its_working_folder(inside: dict[str, object]) -> None:
    assert "user_visit_duration.csv" in inside["dataset"]  # type: ignore[operator]


@pytest.mark.skipif(bubblewrap() is None, reason="isolation needs bubblewrap")
def test_the_kernel_sees_neither_the_project_nor_any_network(inside: dict[str, object]) -> None:
    assert inside["project"] == [False, False, False]
    assert inside["disk_search"] == [], "kgrade's files, reference solutions included, are hidden"
    assert inside["network"] == [False, False]


def test_sandbox_settings_are_read_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "course.toml"
    path.write_text("[sandbox]\nmemory_mb = 8192\nallow_network = true\n")
    settings = SandboxSettings.from_toml(path)
    assert (settings.memory_mb, settings.allow_network) == (8192, True)
    assert settings.processes == SandboxSettings().processes


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ("memory = 2048", "unknown sandbox setting 'memory'"),
        ("memory_mb = '2 GB'", "must be a positive whole number"),
        ("memory_mb = -1", "must be a positive whole number"),
        ("isolate = 1", "must be true or false"),
        ("memory_mb = 2048", "below the 4096 MB TensorFlow needs"),
        ("isolate = false\nrequire_isolation = true", "contradict each other"),
    ],
)
def test_a_wrong_sandbox_setting_is_refused_naming_the_file(
    tmp_path: Path, table: str, complaint: str
) -> None:
    path = tmp_path / "course.toml"
    path.write_text(f"[sandbox]\n{table}\n")
    with pytest.raises(UsageError, match=complaint) as caught:
        SandboxSettings.from_toml(path)
    assert str(path) in str(caught.value)


def test_settings_outside_a_sandbox_table_are_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "course.toml"
    path.write_text("memory_mb = 8192\n")
    with pytest.raises(UsageError, match=r"no \[sandbox\] table") as caught:
        SandboxSettings.from_toml(path)
    assert str(path) in str(caught.value)
