"""Progress on a terminal: a bar for each long phase of a command, and the engine's worker thread.

Every long phase (generating a demo's logs, reading logs, writing the ledger, rendering a
document) shows one line on stderr that moves at least ten times a second: a spinner and the
elapsed time always, and where the work can be counted a bar with records/s (and MB/s for
reading). Nothing is drawn when stderr is not a terminal (cron logs, pipes, CI) unless asked
with ``--progress``, so no escape codes reach a log file.

Why the engine runs in a worker thread: the engine releases the GIL, so the main thread stays
free to poll ``Job.progress()`` for the bar and, crucially, to receive KeyboardInterrupt. On
Ctrl-C it asks the engine to stop (``Job.cancel()``), waits for the worker to unwind, and
re-raises, so the caller can roll its transaction back.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from wattledger._core import Progress

T = TypeVar("T")

_POLL_SECONDS = 0.1
#: Redraws per second: the spinner and the elapsed time move even while the main thread waits
#: in DuckDB (rich redraws from a thread of its own).
_REFRESH_PER_SECOND = 10


class _ProgressSource(Protocol):
    def progress(self) -> Progress: ...
    def cancel(self) -> None: ...


def should_show(progress: bool | None) -> bool:
    """Show bars when asked, or by default only on an interactive terminal (not in cron logs)."""
    return sys.stderr.isatty() if progress is None else progress


def rate(count: float, seconds: float | None, unit: str) -> str:
    """``1.25M records/s``, ``48.1 MB/s``: a throughput with a metric prefix."""
    if not seconds or seconds <= 0:
        return f"- {unit}/s"
    return f"{_metric(count / seconds, '.3g')} {unit}/s"


class Phase:
    """The handle a phase's code advances; without a terminal every call does nothing."""

    def __init__(self, bar: RichProgress | None = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, records: int) -> None:
        """``records`` more are done."""
        if self._bar is not None:
            self._bar.advance(self._task, records)

    def update(self, **fields: Any) -> None:
        """Set the task's counts (``completed``, ``total``, ``records``, ``rejects``)."""
        if self._bar is not None:
            self._bar.update(self._task, **fields)


def count(n: float) -> str:
    """``1.25M``, ``830k``, ``412``: a count short enough for one line of a bar."""
    return _metric(n, ".0f")


def _metric(n: float, below_1000: str) -> str:
    """``n`` with a metric prefix and three significant digits; below 1000 in ``below_1000``."""
    for size, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{prefix}"
    return format(n, below_1000)


def _counted_columns(kind: str) -> tuple[Any, ...]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Rates(ProgressColumn):
        """Throughput averaged over the phase so far: MB/s and records/s while reading,
        records/s while generating. (Short: the line must fit an 80-column terminal.)"""

        def render(self, task: Any) -> Text:
            elapsed = task.elapsed
            if kind == "bytes":
                records = task.fields.get("records", 0)
                megabytes = task.completed / 1e6
                return Text(f"{rate(megabytes, elapsed, 'MB')} {rate(records, elapsed, 'records')}")
            done = f"{count(task.completed)}/{count(task.total or 0)} {kind}"  # records, files
            return Text(f"{done} {rate(task.completed, elapsed, kind)}")

    return (
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(bar_width=12),
        *((DownloadColumn(),) if kind == "bytes" else ()),
        Rates(),
        TimeElapsedColumn(),
    )


def _open_columns() -> tuple[Any, ...]:
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    return (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), TimeElapsedColumn())


@contextmanager
def phase(
    description: str, *, show: bool, total: int | None = None, kind: str = "records"
) -> Iterator[Phase]:
    """One line on stderr for the duration of the block (nothing when ``show`` is False).

    ``total``: the records the phase will do, advanced through the yielded :class:`Phase`;
    ``kind="bytes"``: a bar over bytes read with records counted beside it (the engine's scan).
    None and records: a spinner and the elapsed time only (work that cannot be counted, such
    as the ledger's write), cleared when the phase ends; a counted phase leaves its last line
    (what was done, how fast)."""
    if not show:
        yield Phase()
        return
    from rich.console import Console
    from rich.progress import Progress

    counted = total is not None or kind == "bytes"
    columns = _counted_columns(kind) if counted else _open_columns()
    with Progress(
        *columns,
        console=Console(stderr=True),
        transient=not counted,
        refresh_per_second=_REFRESH_PER_SECOND,
    ) as bar:
        task = bar.add_task(description, total=total, records=0, rejects=0)
        yield Phase(bar, task)
        if counted:
            done = bar.tasks[0]
            bar.update(task, total=done.total or done.completed, completed=done.total or done.completed)


def run_with_progress(
    work: Callable[[], T], job: _ProgressSource, *, show: bool, description: str = "reading logs"
) -> T:
    """Run ``work()`` in a worker thread and return its result (or raise its exception); with
    ``show``, a bar over the bytes the engine has read, with its records/s and MB/s."""
    values: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            values.append(work())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target, name="wattledger-engine", daemon=True)
    try:
        with phase(description, show=show, kind="bytes") as bar:
            worker.start()  # once the bar's clock runs (rich loads first): its rates are the run's
            while True:
                finished = not worker.is_alive()  # read before the counts: they are then final
                p = job.progress()
                bar.update(
                    total=p.bytes_total or None, completed=p.bytes_read, records=p.records, rejects=p.rejects
                )
                if finished:
                    break
                worker.join(_POLL_SECONDS)
    except KeyboardInterrupt:
        job.cancel()
        if worker.is_alive():
            worker.join()
        raise
    if errors:
        raise errors[0]
    return values[0]
