"""The cells of docs/' markdown tables, for the tests that hold a page against the seeds or the code (a page a
municipality follows must not drift from what the loader checks)."""

from __future__ import annotations

import re


def table_rows(text: str) -> list[list[str]]:
    """Cells of every markdown table row in `text` (header rows included, separator rows not), backticks
    stripped."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and not re.fullmatch(r"\|[-| :]+\|", line):
            rows.append([c.strip().strip("`").strip() for c in line[1:-1].split("|")])
    return rows
