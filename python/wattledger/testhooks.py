"""Test hook: make a run stop at a named point so a fault test can kill it there.

Why it exists: the promise "kill -9 at any point leaves the ledger as before" can only be
tested at the interesting points (lock held, logs read, rows written but not committed) if a
real process can be caught exactly there, not by guessing timings. Setting
``WATTLEDGER_TEST_PAUSE_AT=<point>`` makes the process print ``wattledger-test-pause: <point>``
on stderr when it reaches that point and sleep (``WATTLEDGER_TEST_PAUSE_SECONDS``, default 60)
before going on. Unset, it costs one dictionary lookup. It is documented in docs/nightly.md as
a test hook, not a feature.

Points, in run order: ``before_read`` (ledger locked, unchanged files skipped, nothing read),
``before_write`` (logs read and estimated, no transaction yet), ``before_commit`` (every row of
the run inserted inside the open transaction), ``after_commit`` (committed, lock still held).
"""

from __future__ import annotations

import os
import sys
import time

ENV_POINT = "WATTLEDGER_TEST_PAUSE_AT"
ENV_SECONDS = "WATTLEDGER_TEST_PAUSE_SECONDS"
POINTS: tuple[str, ...] = ("before_read", "before_write", "before_commit", "after_commit")


def pause_at(point: str) -> None:
    """Sleep here when the environment asks for this point (see the module docstring)."""
    if os.environ.get(ENV_POINT) != point:
        return
    sys.stderr.write(f"wattledger-test-pause: {point}\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get(ENV_SECONDS, "60")))
