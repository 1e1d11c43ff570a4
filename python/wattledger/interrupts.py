"""Ctrl-C stops a running DuckDB statement at once.

Why: while the main thread is inside a DuckDB statement (the ledger write, a report's query,
the pre-write block check), Python runs its SIGINT handler only when DuckDB's client next
checks for signals, which took 1.7 s in an ingest's write and longer in big queries.
``con.interrupt()`` from another thread stops a statement within milliseconds. So the CLI
installs a wakeup file descriptor (``signal.set_wakeup_fd``): the C-level signal handler writes
to it the moment SIGINT arrives, a watcher thread reads it and interrupts every open ledger
connection. Python's own handler still raises KeyboardInterrupt in the main thread as usual, so
transactions roll back and the CLI exits 130.

Library use is unaffected: without :func:`install` (the CLI calls it), ``track`` only keeps a
list of connections.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Protocol


class _Interruptible(Protocol):
    def interrupt(self) -> None: ...


_lock = threading.Lock()
_open: list[_Interruptible] = []
_installed = False


def is_interrupt(exc: BaseException) -> bool:
    """True when ``exc``, or an exception raised while handling it, is a Ctrl-C: Python's
    KeyboardInterrupt, DuckDB's InterruptException, or the plain RuntimeError("Query
    interrupted") DuckDB's Python client raises when SIGINT stopped a statement. (After a
    stopped statement the next one fails with "transaction is aborted": its context is the
    interrupt.)"""
    import duckdb

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt | duckdb.InterruptException):
            return True
        if type(seen) is RuntimeError and "Query interrupted" in str(seen):
            return True
        seen = seen.__context__
    return False


def track(con: _Interruptible) -> None:
    """Interrupt ``con`` on Ctrl-C for as long as the process runs (closed ones are skipped)."""
    with _lock:
        _open.append(con)


def _interrupt_all() -> None:
    with _lock:
        cons = list(_open)
    for con in cons:
        try:
            con.interrupt()
        except Exception:
            pass


def install() -> None:
    """Start the watcher (main thread only; once per process)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(read_fd)
        os.close(write_fd)
        return
    _installed = True

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGINT in data:
                _interrupt_all()

    threading.Thread(target=watch, name="wattledger-sigint", daemon=True).start()
