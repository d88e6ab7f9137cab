"""What the commands' output shares: a line cut to a width, a table, JSON."""

import json
import sys
from collections.abc import Callable, Collection, Iterable
from typing import Any


def shorten(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def print_table(
    headers: list[str],
    rows: list[list[str]],
    right_aligned: Collection[str] = frozenset(),
    indent: str = "",
) -> None:
    """Columns as wide as their widest cell, headers in capitals; the last one not padded."""
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if header in right_aligned else cell.ljust(width)
            for header, cell, width in zip(headers, cells, widths, strict=True)
        ]
        return (indent + "  ".join(padded)).rstrip()

    print(line([header.upper() for header in headers]))
    for row in rows:
        print(line(row))


def print_json(value: Any, default: Callable[[Any], Any] | None = None) -> None:
    """`value` as one JSON document on one line (`--json`)."""
    print(json.dumps(value, default=default))


def print_pieces(pieces: Iterable[str]) -> None:
    """A document written as its pieces come (one JSON array of a million records, say)."""
    sys.stdout.writelines(pieces)
