"""Run a command on a pseudo-terminal, as a person at a terminal would, and read what it drew.

Why a pty: progress bars, line editing and table widths depend on stdin/stdout/stderr being a
terminal; a pipe (subprocess's default, CliRunner's) shows the other behaviour.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: CSI and OSC escape sequences (cursor moves, colours, titles).
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]")


@dataclass
class Session:
    pid: int
    fd: int
    raw: bytes = b""

    def read(self, seconds: float) -> None:
        """Collect output for ``seconds`` (or until the program ends)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                self.raw += chunk

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Read until ``text`` appears in the plain output."""
        end = time.monotonic() + timeout
        while text not in self.text and time.monotonic() < end:
            self.read(0.1)
        assert text in self.text, self.text[-2000:]

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def finish(self, timeout: float = 120.0) -> int:
        """Read to the end; the exit code."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read(0.2)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.read(0.2)
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {timeout} s: {self.text[-2000:]}")

    @property
    def text(self) -> str:
        """What was drawn, escape sequences removed, carriage returns as line breaks."""
        plain = _ESCAPES.sub("", self.raw.decode("utf-8", "replace"))
        return plain.replace("\r\n", "\n").replace("\r", "\n")


def start(args: Sequence[str], *, columns: int = 100, env: dict[str, str] | None = None) -> Session:
    """``python -m wattledger ARGS`` on a new pseudo-terminal ``columns`` wide (stdin, stdout and
    stderr all on it)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: size its terminal, then exec
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        os.execvpe(sys.executable, [sys.executable, "-m", "wattledger", *args], env or dict(os.environ))
    return Session(pid, fd)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for the child, without a COLUMNS that would override the
    pty's width, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*sys.path, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env
