"""The bubblewrap arguments that wall a kernel, or a warm pool's fork server, in.

Each function returns a slice of a ``bwrap`` command line; :mod:`graders.sandbox` puts
them together for a cold kernel (one workspace's folders) or for a fork server (one
pool's folders).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@functools.cache
def bubblewrap() -> str | None:
    """The path of a ``bwrap`` that can create the namespaces kgrade needs, else None."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = [found, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("bubblewrap at %s cannot run: %s", found, err)
        return None
    if done.returncode != 0:
        log.warning("bubblewrap cannot create namespaces here: %s", done.stderr.decode()[-300:])
        return None
    return found


def namespaces(*, own_user: bool, network: bool, die_with_parent: bool) -> list[str]:
    """New namespaces for everything but, when ``network``, the network."""
    args = ["--die-with-parent"] if die_with_parent else []
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "kgrade"]
    if own_user:
        args.append("--unshare-user")
    if not network:
        args.append("--unshare-net")
    return args


def system(python: str, scratch: Path) -> list[str]:
    """The system folders, a private /proc and /dev, ``scratch`` as /tmp and /dev/shm, and
    the Python environment read-only (after /tmp: it may be installed below it)."""
    args: list[str] = []
    for top in SYSTEM_FOLDERS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
    args += ["--bind", str(scratch), "/tmp", "--bind", str(scratch), "/dev/shm"]
    prefixes = _python_prefixes(python)
    args += _folders_above(prefixes)
    for prefix in prefixes:
        args += ["--ro-bind", prefix, prefix]
    return args


def own_folders(writable: Sequence[Path], read_only: Sequence[Path] = ()) -> list[str]:
    """The given folders at their own paths, and the folders above them to reach them."""
    args = _folders_above([str(f) for f in (*writable, *read_only)])
    for folder in writable:
        args += ["--bind", str(folder), str(folder)]
    for folder in read_only:
        args += ["--ro-bind", str(folder), str(folder)]
    return args


def hide_grader(*, read_only: bool = False) -> list[str]:
    """An empty folder over kgrade's package when it lies inside the Python environment."""
    args: list[str] = []
    for hidden in _grader_folders():
        args += ["--tmpfs", hidden]
        if read_only:
            args += ["--remount-ro", hidden]
    return args


def _python_prefixes(python: str) -> list[str]:
    """Folders the kernel's Python needs: its environment and the installation below it."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.add(str(Path(os.path.realpath(python)).parent.parent))
    candidates.add(str(Path(python).parent.parent))
    real = sorted({os.path.realpath(c) for c in candidates} | candidates)
    # Nested prefixes are covered by their parent.
    kept = [p for p in real if not any(p != q and p.startswith(q + os.sep) for q in real)]
    return [p for p in kept if os.path.isdir(p) and p not in ("/", "/usr")]


def _folders_above(paths: list[str]) -> list[str]:
    """Arguments creating the folders above ``paths`` so that any user may pass through."""
    above: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in above and str(parent) not in ("/tmp", "/usr", "/etc"):
                above.append(str(parent))
    return [arg for folder in above for arg in ("--perms", "0755", "--dir", folder)]


def _grader_folders() -> list[str]:
    """kgrade's folders inside the Python environment.

    That is the package itself when it is installed there, and also the ``graders``
    folder an editable install leaves in site-packages with the shipped reference
    solutions, exercises and data.
    """
    package = Path(__file__).resolve().parent
    folders = set()
    for key in ("purelib", "platlib"):
        site = Path(sysconfig.get_paths()[key]).resolve()
        if site in package.parents:
            folders.add(package)
        if (site / package.name).is_dir():
            folders.add(site / package.name)
    return sorted(str(f) for f in folders)
