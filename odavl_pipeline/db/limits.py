"""What the columns of the models can hold: integer ranges, text lengths, storable text.

Read from the SQLAlchemy column types once, when a source's validation limits are
built (ingest/sources.py): a change of a model moves the bound with it.
"""

from collections.abc import Mapping

from sqlalchemy import BigInteger, Column, Integer, SmallInteger, String, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase

# A B-tree entry holds at most 2,704 bytes (8 KiB pages) and UTF-8 takes up to 4 bytes a
# character; 64 bytes are left for the entry's header and its other key columns.
INDEXED_TEXT_CHARS = (2_704 - 64) // 4

_INTEGER_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))  # subclasses first


def integer_range(column: Column) -> tuple[int, int]:
    """The values an integer column holds: int2, int4 or int8."""
    for kind, bits in _INTEGER_BITS:
        if isinstance(column.type, kind):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    raise TypeError(f"{column} is not an integer column")


def text_length(column: Column) -> int | None:
    """The characters a text column (or each item of a text array) holds, None when
    unbounded; an indexed column holds no more than a B-tree entry takes."""
    kind = column.type.item_type if isinstance(column.type, ARRAY) else column.type
    if not isinstance(kind, String):
        raise TypeError(f"{column} is not a text column")
    if _indexed(column):
        return min(kind.length or INDEXED_TEXT_CHARS, INDEXED_TEXT_CHARS)
    return kind.length


def is_utf8(text: str) -> bool:
    """Whether `text` encodes as UTF-8: a lone surrogate does not."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_storable_text(text: str) -> bool:
    """Whether PostgreSQL's text holds `text`: UTF-8, without NUL."""
    return "\x00" not in text and is_utf8(text)


def column_limits(
    model: type[DeclarativeBase], columns: Mapping[str, str]
) -> tuple[dict[str, tuple[int, int]], dict[str, int | None]]:
    """The integer ranges and text lengths of the columns that store a source's fields, by
    field (`columns` maps each field to its column of `model`): what `Limits.within` takes."""
    ranges: dict[str, tuple[int, int]] = {}
    lengths: dict[str, int | None] = {}
    table = model.__table__
    assert isinstance(table, Table)  # a declarative model maps one table
    for field, name in columns.items():
        column = table.c[name]
        if isinstance(column.type, Integer):
            ranges[field] = integer_range(column)
        else:
            lengths[field] = text_length(column)
    return ranges, lengths


def _indexed(column: Column) -> bool:
    """Whether an index (primary key, unique constraint or index) holds the column's values."""
    table = column.table
    return (
        column.primary_key
        or bool(column.unique)
        or bool(column.index)
        or any(index.columns.contains_column(column) for index in table.indexes)
        or any(
            constraint.contains_column(column)
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
        )
    )
