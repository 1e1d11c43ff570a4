"""Run an engine call in a worker thread while the main thread shows progress and handles Ctrl-C.

Why a thread: the engine releases the GIL, so the main thread stays free to poll
``Job.progress()`` for a progress bar and, crucially, to receive KeyboardInterrupt. On Ctrl-C it
asks the engine to stop (``Job.cancel()``), waits for the worker to unwind, and re-raises, so
the caller can roll its transaction back.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from wattledger._core import Progress

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _ProgressSource(Protocol):
    def progress(self) -> Progress: ...
    def cancel(self) -> None: ...


def should_show(progress: bool | None) -> bool:
    """Show a bar when asked, or by default only on an interactive terminal (not in cron logs)."""
    return sys.stderr.isatty() if progress is None else progress


def run_with_progress(
    work: Callable[[], T], job: _ProgressSource, *, show: bool, description: str = "reading logs"
) -> T:
    """Run ``work()`` in a worker thread and return its result (or raise its exception)."""
    values: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            values.append(work())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target, name="wattledger-engine", daemon=True)
    worker.start()
    try:
        if show:
            _poll_with_bar(worker, job, description)
        else:
            while worker.is_alive():
                worker.join(_POLL_SECONDS)
    except KeyboardInterrupt:
        job.cancel()
        worker.join()
        raise
    if errors:
        raise errors[0]
    return values[0]


def _poll_with_bar(worker: threading.Thread, job: _ProgressSource, description: str) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[records]:,} records, {task.fields[rejects]:,} rejects"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None, records=0, rejects=0)
        while worker.is_alive():
            worker.join(_POLL_SECONDS)
            p = job.progress()
            bar.update(
                task,
                total=p.bytes_total or None,
                completed=p.bytes_read,
                records=p.records,
                rejects=p.rejects,
            )
