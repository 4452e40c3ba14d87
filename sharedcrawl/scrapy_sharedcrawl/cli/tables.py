"""Plain-text tables for the operator commands: every cell printed without terminal escapes."""

from __future__ import annotations

from collections.abc import Sequence

from scrapy_sharedcrawl.reading import printable


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows under a header, columns padded to their widest cell, indented by two spaces (none: no lines)."""
    if not rows:
        return []
    cells = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
