"""The rollup as GitHub-flavoured markdown: the same sections and rounding as the HTML."""

from __future__ import annotations

from wattledger.formatting import escape_markdown_cell, escape_terminal
from wattledger.rollup.data import RollupData
from wattledger.rollup.document import SYNTHETIC_NOTICE, Section, Table, build, title


def _escape(text: str) -> str:
    return escape_markdown_cell(text)


def table_md(table: Table) -> list[str]:
    """One markdown table; numeric columns right-aligned."""
    numeric = [any(row[i].numeric for row in table.rows) for i in range(len(table.headers))]
    lines = [
        "| " + " | ".join(_escape(h) for h in table.headers) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    lines += ["| " + " | ".join(_escape(c.text) for c in row) + " |" for row in table.rows]
    if table.caption:
        lines += ["", f"*{_escape(table.caption)}*"]
    return lines


def _section(section: Section, level: int) -> list[str]:
    # Outside tables, text keeps its characters but no control ones (a raw ESC or newline in
    # a model name would reach the terminal or break the document's structure).
    lines = [f"{'#' * level} {escape_terminal(section.title)}", ""]
    for p in section.paragraphs:
        lines += [escape_terminal(p), ""]
    if section.bullets:
        lines += [f"- {escape_terminal(b)}" for b in section.bullets] + [""]
    for t in section.tables:
        lines += [*table_md(t), ""]
    for sub in section.subsections:
        lines += _section(sub, level + 1)
    return lines


def to_markdown(data: RollupData) -> str:
    """The whole document; deterministic for a given ledger (no wall-clock time). Synthetic
    data says so in the title and in a line at the top and at the bottom."""
    lines = [f"# {escape_terminal(title(data))}", ""]
    if data.synthetic:
        lines += [f"**{SYNTHETIC_NOTICE}**", ""]
    for section in build(data):
        lines += _section(section, 2)
    if data.synthetic:
        lines += ["---", "", f"**{SYNTHETIC_NOTICE}**", ""]
    return "\n".join(lines).rstrip() + "\n"
