"""The filter of `corrections void ID --where FILTER` (CONTRACT.md section 8): which usage events
of a correction's window it voids.

A filter is a conjunction of conditions, read by a small hand-written scanner (no eval, no regular
expression ever touches SQL):

    filter    = condition { space "AND" space condition } ;   (* AND in any case *)
    condition = field [ space ] op [ space ] value ;
    field     = "event_type" | "project" | "user" | "endpoint" | "status" | "quantity" ;
    op        = "=" | "!=" | ">=" | "<=" ;                     (* >= and <= for quantity only *)
    value     = bare | "'" { char - "'" | "''" } "'" | '"' { char - '"' | '""' } '"' ;
    bare      = { char - space - quote - "=" - "!" - "<" - ">" }- ;   (* and not "AND" *)

Space is any Unicode white space; around a filter it is ignored. A quantity is an integer (optional sign, ASCII digits) that fits a
signed 64-bit integer; an event_type is one of the usage event types. Whatever else a text holds
is refused with a `FilterError` saying why and where. `filter_sql` turns the conditions into a
SQL expression whose values are only ever parameters.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from odavl_pipeline.billing.catalogue import METRIC_OF_EVENT_TYPE

FIELDS = ("event_type", "project", "user", "endpoint", "status", "quantity")
OPERATORS = ("=", "!=", ">=", "<=")
RANGE_OPERATORS = (">=", "<=")  # quantity only
EVENT_TYPES = tuple(METRIC_OF_EVENT_TYPE)
MAX_CHARS = 4_000
MAX_CONDITIONS = 50
INT64 = (-(2**63), 2**63 - 1)

# the SQL each field and operator becomes: fixed text, never built from the filter
_COLUMN_SQL = {
    "event_type": "event_type",
    "project": "project",
    "user": "user_email",
    "endpoint": "(payload->>'endpoint')",
    "status": "(payload->>'status')",
    "quantity": "quantity",
}
_OPERATOR_SQL = {"=": "=", "!=": "IS DISTINCT FROM", ">=": ">=", "<=": "<="}
_PARAMETER_SQL = {field: "%s::bigint" if field == "quantity" else "%s::text" for field in FIELDS}

_QUOTES = "'\""
_OPERATOR_CHARS = "=!<>"
_DIGITS = "0123456789"
_SHOWN = 30  # characters of an unexpected token a message shows


class FilterError(ValueError):
    """A filter refused, with the reason and where in the text."""


@dataclass(frozen=True)
class Condition:
    """One condition: `field op value`, the value an int for quantity, else text."""

    field: str
    op: str
    value: str | int


def parse_filter(text: str) -> tuple[Condition, ...]:
    """The conditions of a filter text (at least one), or `FilterError` with the reason."""
    if not isinstance(text, str):
        raise FilterError(f"a filter is text, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise FilterError(f"filter is {len(text):,} characters long: at most {MAX_CHARS:,}")
    for index, char in enumerate(text):
        if char == "\x00":
            raise FilterError(f"NUL character at character {index + 1}")
        if "\ud800" <= char <= "\udfff":
            raise FilterError(f"character {index + 1} is not valid text (a lone surrogate)")
    if not text.strip():
        raise FilterError("empty filter")
    return _Scanner(text).filter()


def filter_sql(conditions: Sequence[Condition]) -> tuple[str, list]:
    """A SQL boolean expression of `conditions` with `%s` placeholders, and its parameters.

    Over a relation with columns event_type, project (slug), user_email, payload (jsonb, holding
    endpoint and status) and quantity; `!=` is IS DISTINCT FROM, so a missing value differs.
    """
    if not conditions:
        raise FilterError("empty filter")
    parts, params = [], []
    for condition in conditions:
        field, op = condition.field, condition.op
        if field not in _COLUMN_SQL:
            raise FilterError(f"unknown field {field!r}")
        if op not in _OPERATOR_SQL or (op in RANGE_OPERATORS and field != "quantity"):
            raise FilterError(f"operator {op!r} does not apply to {field}")
        if type(condition.value) is not (int if field == "quantity" else str):
            raise FilterError(f"{field}: {condition.value!r} is not a {field} value")
        parts.append(f"({_COLUMN_SQL[field]} {_OPERATOR_SQL[op]} {_PARAMETER_SQL[field]})")
        params.append(condition.value)
    return " AND ".join(parts), params


class _Scanner:
    """Reads a filter text left to right; positions in messages count from 1."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def filter(self) -> tuple[Condition, ...]:
        conditions = [self.condition()]
        while True:
            end = self.pos
            self.skip_space()
            if self.pos == len(self.text):
                return tuple(conditions)
            if self.pos == end or not self.keyword_and():
                space = " (with space before it)" if self.pos == end else ""
                raise FilterError(
                    f"expected AND{space} after the condition ending at character {end}, "
                    f"found {self.found(self.pos)} at character {self.pos + 1}"
                )
            if len(conditions) == MAX_CONDITIONS:
                raise FilterError(f"more than {MAX_CONDITIONS} conditions")
            conditions.append(self.condition())

    def keyword_and(self) -> bool:
        """Consumes `AND` and the space after it, if they are next."""
        at, after = self.pos, self.pos + 3
        if not _is_and(self.text[at:after]):
            return False
        if after < len(self.text) and not self.text[after].isspace():
            return False  # a longer word, such as ANDROID
        self.pos = after
        self.skip_space()
        if self.pos == len(self.text):
            raise FilterError(f"expected a condition after AND at character {at + 1}")
        return True

    def condition(self) -> Condition:
        self.skip_space()
        field_at = self.pos
        field = self.run(lambda c: not (c.isspace() or c in _QUOTES or c in _OPERATOR_CHARS))
        if not field:
            raise FilterError(
                f"expected a field at character {field_at + 1}, "
                f"found {self.found(field_at)}: the fields are {', '.join(FIELDS)}"
            )
        if field not in FIELDS:
            raise FilterError(
                f"unknown field {self.shown(field)!r} at character {field_at + 1}: "
                f"the fields are {', '.join(FIELDS)}"
            )
        self.skip_space()
        op_at = self.pos
        op = self.run(lambda c: c in _OPERATOR_CHARS)
        if not op:
            raise FilterError(
                f"expected an operator ({', '.join(OPERATORS)}) after {field} at character "
                f"{op_at + 1}, found {self.found(op_at)}"
            )
        if op not in OPERATORS:
            raise FilterError(
                f"unknown operator {self.shown(op)!r} at character {op_at + 1}: "
                f"the operators are {', '.join(OPERATORS)}"
            )
        if op in RANGE_OPERATORS and field != "quantity":
            raise FilterError(
                f"{op!r} applies to quantity only, not {field} (character {op_at + 1})"
            )
        self.skip_space()
        value_at = self.pos
        value = self.value(op)
        return Condition(field, op, _typed(field, value, value_at))

    def value(self, op: str) -> str:
        at = self.pos
        if at == len(self.text):
            raise FilterError(f"expected a value after {op!r} at character {at + 1}")
        if self.text[at] in _QUOTES:
            return self.quoted()
        value = self.run(lambda c: not (c.isspace() or c in _QUOTES or c in _OPERATOR_CHARS))
        if self.pos < len(self.text) and not self.text[self.pos].isspace():
            raise FilterError(
                f"unexpected {self.text[self.pos]!r} at character {self.pos + 1}: "
                "quote a value holding quotes or = ! < >"
            )
        if _is_and(value):
            raise FilterError(
                f"expected a value after {op!r} at character {at + 1}, found the keyword "
                f"{value!r} (quote it to mean the text)"
            )
        return value

    def quoted(self) -> str:
        quote, start = self.text[self.pos], self.pos
        self.pos += 1
        chars = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise FilterError(f"unterminated quoted value at character {start + 1}")
            chars.append(self.text[self.pos : end])
            self.pos = end + 1
            if self.text[self.pos : self.pos + 1] != quote:
                return "".join(chars)
            chars.append(quote)  # a doubled quote stands for itself
            self.pos += 1

    def run(self, accepts) -> str:
        start = self.pos
        while self.pos < len(self.text) and accepts(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def skip_space(self) -> None:
        self.run(str.isspace)

    def found(self, pos: int) -> str:
        """What a message shows of the text at `pos`: up to the next space, shortened."""
        end = pos
        while end < len(self.text) and not self.text[end].isspace():
            end += 1
        return repr(self.shown(self.text[pos:end])) if end > pos else "the end of the filter"

    @staticmethod
    def shown(token: str) -> str:
        return token if len(token) <= _SHOWN else token[:_SHOWN] + "…"


def _is_and(word: str) -> bool:
    return word.isascii() and word.lower() == "and"


def _typed(field: str, value: str, at: int) -> str | int:
    """The value as its field takes it: quantity an int64, event_type a usage event type."""
    shown = _Scanner.shown(value)
    if field == "quantity":
        digits = value[1:] if value[:1] in "+-" else value
        if not digits or any(c not in _DIGITS for c in digits):
            raise FilterError(f"quantity: {shown!r} is not an integer (character {at + 1})")
        if len(digits.lstrip("0")) > 19 or not INT64[0] <= int(value) <= INT64[1]:
            raise FilterError(
                f"quantity: {shown!r} does not fit a signed 64-bit integer (character {at + 1})"
            )
        return int(value)
    if field == "event_type" and value not in EVENT_TYPES:
        raise FilterError(
            f"event_type: {shown!r} is not one of {', '.join(EVENT_TYPES)} (character {at + 1})"
        )
    return value
