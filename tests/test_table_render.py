"""The plain box-table renderer draws exactly what rich draws, so `report` can skip rich.

Why a property test: ``formatting._plain_box_table`` re-implements rich's layout for printable
ASCII text (start-up time, issue 13); any table it accepts must come out byte for byte as
``formatting._rich_table`` draws it, whatever the names, widths, numbers and title.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattledger import formatting
from wattledger.formatting import ResultRows

ASCII = st.text(alphabet=string.printable, max_size=14)  # includes tab/newline: escaped first
VALUE = st.one_of(
    st.none(),
    ASCII,
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[ResultRows, str | None]:
    width = draw(st.integers(min_value=1, max_value=6))
    columns = draw(st.lists(ASCII, min_size=width, max_size=width))
    numeric = draw(st.lists(st.booleans(), min_size=width, max_size=width))
    rows = draw(st.lists(st.tuples(*[VALUE] * width), max_size=5))
    title = draw(st.one_of(st.none(), ASCII))
    return ResultRows(columns, numeric, rows), title


@settings(max_examples=500, deadline=None)
@given(tables())
def test_plain_tables_are_drawn_as_rich_draws_them(case: tuple[ResultRows, str | None]) -> None:
    frame, title = case
    assert formatting.to_table(frame, title=title) == formatting._rich_table(frame, title=title)


@pytest.mark.parametrize(
    "name",
    ["café", "模型", "e\u0301", "\U0001f600", "a\u200bb"],
    ids=["latin", "wide", "combining", "emoji", "zwsp"],
)
def test_other_text_is_left_to_rich(name: str) -> None:
    frame = ResultRows(["model", "requests"], [False, True], [(name, 1.0), ("ascii", 22.0)])
    assert formatting._plain_box_table(["model", "requests"], [False, True], [[name, "1"]], None) is None
    assert formatting.to_table(frame, title="t") == formatting._rich_table(frame, title="t")


def test_the_report_table_of_the_worked_example_is_unchanged() -> None:
    frame = ResultRows(
        ["model", "requests", "energy_kwh"],
        [False, True, True],
        [("llama-3.1-8b", 505062.0, 14.078586485174803), ("qwen-2.5-72b", 59492.0, None)],
    )
    drawn = formatting.to_table(frame, title="2025 by model (UTC)")
    assert drawn == formatting._rich_table(frame, title="2025 by model (UTC)")
    assert drawn.splitlines()[1] == "┏━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┓"
