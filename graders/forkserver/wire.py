"""What the grader and the fork server say to each other.

A client connects to the server's Unix socket, sends one JSON object ended by a newline
(with file descriptors attached for ``spawn``), reads one JSON object back
(``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``) and closes. Operations:

- ``spawn`` (connection_file, workdir, env, seed; descriptors: stdout, stderr) → pid;
  refused while another kernel of the pool has not been released;
- ``poll`` (pid) → returncode, null while the kernel runs;
- ``signal`` (pid, signum) → delivered, sent to the kernel's process group;
- ``release`` (pid) → clean: kills the kernel and, inside the sandbox, every other process
  but the server, and says whether none is left;
- ``status`` → the server's facts and its live kernels.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

READY = "kgrade-forkserver-ready "
MAX_MESSAGE = 4 * 1024 * 1024
REQUEST_TIMEOUT = 30.0

# Imported once in the server so that every kernel starts with them loaded. Not
# matplotlib_inline.backend_inline: importing it wires matplotlib to the IPython shell
# that exists at that moment, and the shell exists only in the child.
_DATA = ("numpy", "pandas", "scipy.linalg", "sklearn", "sklearn.metrics", "sklearn.model_selection")
_PLOTS = ("matplotlib", "matplotlib.pyplot", "matplotlib.backends.backend_agg")
_KERNEL = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger")
PRELOAD = (*_DATA, *_PLOTS, "tensorflow", "keras", *_KERNEL, "sqlite3")


class SpawnRequest(TypedDict):
    """What a child needs to become a submission's kernel.

    ``tmp`` becomes the kernel's /tmp and /dev/shm, and ``folders`` (its workspace's) the
    only ones it sees of ``hide`` (the pool's folder of workspaces), when the kernel is
    walled in (:attr:`ChildRestrictions.walls`).
    """

    connection_file: str
    workdir: str
    env: dict[str, str]
    seed: int
    tmp: str
    folders: list[str]
    hide: str


@dataclass(frozen=True)
class ChildRestrictions:
    """What every forked kernel applies to itself before it reads the submission.

    The same as a cold kernel's start: the resource limits, then the user to drop to.

    Attributes:
        limits: ``resource`` limit names (``RLIMIT_AS``) and the value of each, soft and hard.
        uid: User (and group) id the kernel drops to; the server runs as root then.
        walls: Wall each kernel in as bubblewrap walls a cold kernel in, inside the
            server's own walls: an IPC namespace of its own (System V objects and message
            queues die with it) and a mount namespace of its own, where /tmp and
            /dev/shm are its workspace's and no other workspace of the pool exists.
    """

    limits: dict[str, int] = field(default_factory=dict)
    uid: int | None = None
    walls: bool = False

    def to_json(self) -> str:
        """This value as JSON, for the server's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChildRestrictions:
        """The value :meth:`to_json` wrote."""
        raw = json.loads(text)
        limits = {str(name): int(value) for name, value in raw.get("limits", {}).items()}
        uid = raw.get("uid")
        return cls(limits, None if uid is None else int(uid), bool(raw.get("walls")))


def send_message(sock: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    """Send ``message`` as one JSON line, with ``fds`` attached to its first bytes."""
    data = json.dumps(message).encode() + b"\n"
    sent = socket.send_fds(sock, [data], list(fds)) if fds else 0
    sock.sendall(data[sent:])


def receive_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """Read one JSON line and the file descriptors that came with it.

    Raises:
        ConnectionError: The message ended early or was too long.
        ValueError: The message is not a JSON object.
    """
    buffer, fds = bytearray(), []
    while not buffer.endswith(b"\n"):
        data, received, _, _ = socket.recv_fds(sock, 65536, max_fds)
        fds += received
        if not data or len(buffer) + len(data) > MAX_MESSAGE:
            for fd in fds:
                os.close(fd)
            raise ConnectionError("the message ended early or was too long")
        buffer += data
    message = json.loads(buffer)
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("a message must be a JSON object")
    return message, fds
