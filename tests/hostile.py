"""Run the real ``wattledger`` CLI as a child process and measure what it cost: exit code, output,
wall time and peak resident memory of that child alone (``os.wait4``), for the hostile-input
tests (issue 12: "the bombs at small scale with an RSS assertion measured from the child").

Why a child process and ``wait4``: the promise is about the memory of a real run, which the
test process (with its own imports and fixtures) cannot measure on itself, and
``RUSAGE_CHILDREN`` would mix every child the test suite ever started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_bytes: int  # peak resident set of the child, from the kernel's rusage

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_bytes / MIB

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def cli_command(*args: str | os.PathLike[str]) -> list[str]:
    """The command line of ``wattledger ARGS`` run by this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "wattledger", *map(str, args)]


def run_cli(
    *args: str | os.PathLike[str],
    timeout: float = 60.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    interrupt_after: float | None = None,
) -> ChildRun:
    """Run ``wattledger ARGS`` and return its outcome with peak RSS.

    ``interrupt_after``: send SIGINT (Ctrl-C) after that many seconds, then wait for the child.
    A child still running at ``timeout`` is killed and the test fails with what it printed.
    """
    child_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        # Output goes to files, not pipes, so the child never blocks on a full pipe while this
        # process waits for it with wait4 (which, unlike Popen.wait, returns the rusage).
        proc = subprocess.Popen(
            cli_command(*args), stdout=out, stderr=err, stdin=stdin, cwd=cwd, env=child_env
        )
        timers = [threading.Timer(timeout, proc.kill)]
        if interrupt_after is not None:
            timers.append(threading.Timer(interrupt_after, proc.send_signal, (signal.SIGINT,)))
        for timer in timers:
            timer.start()
        # Linux carries the parent's high-water RSS into ru_maxrss across fork and exec, so a
        # test process grown to 850 MB made every child "use" 850 MB. VmHWM in /proc is the
        # peak of the child's own (post-exec) memory; it only grows, so the last reading before
        # the child exits is its peak up to the last poll.
        hwm = [0]
        polling = threading.Thread(target=_poll_vmhwm, args=(proc.pid, hwm), daemon=True)
        polling.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            for timer in timers:
                timer.cancel()
        polling.join()
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if seconds >= timeout:
        raise AssertionError(
            f"wattledger {' '.join(map(str, args))} still running after {timeout} s, killed\n"
            f"stdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
        )
    # Linux reports ru_maxrss in KiB; it includes the parent's memory (above), so the child's
    # own peak wins when it could be read.
    rss = usage.ru_maxrss * 1024
    return ChildRun(proc.returncode, stdout, stderr, seconds, min(rss, hwm[0]) if hwm[0] else rss)


def _poll_vmhwm(pid: int, out: list[int]) -> None:
    """Keep ``out[0]`` at the child's VmHWM (bytes) until it exits."""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[0] = max(out[0], int(line.split()[1]) * 1024)
                        break
                else:
                    return  # a zombie: the memory is gone
        except (OSError, ValueError):
            return
        time.sleep(0.01)
