"""The filter of `corrections void --where` (odavl_pipeline/billing/filters.py): what it takes,
what it refuses and why, and that no value ever reaches the SQL text, checked by examples, by
Hypothesis, and against the real PostgreSQL.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from odavl_pipeline.billing.filters import (
    EVENT_TYPES,
    FIELDS,
    INT64,
    MAX_CONDITIONS,
    OPERATORS,
    Condition,
    FilterError,
    filter_sql,
    parse_filter,
)

TEXT_FIELDS = tuple(f for f in FIELDS if f not in ("event_type", "quantity"))


def refusal(text: str) -> str:
    with pytest.raises(FilterError) as refused:
        parse_filter(text)
    return str(refused.value)


# --- examples -------------------------------------------------------------------------------


def test_fields_are_the_contracts():
    assert FIELDS == ("event_type", "project", "user", "endpoint", "status", "quantity")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("project = web-app", Condition("project", "=", "web-app")),
        ("user!=alice@odavl.com", Condition("user", "!=", "alice@odavl.com")),
        ("event_type = api_call", Condition("event_type", "=", "api_call")),
        ("endpoint != /v1/analyses", Condition("endpoint", "!=", "/v1/analyses")),
        ("status = 200", Condition("status", "=", "200")),
        ("quantity >= 10", Condition("quantity", ">=", 10)),
        ("quantity<=-3", Condition("quantity", "<=", -3)),
        ("quantity = +0007", Condition("quantity", "=", 7)),
        ("quantity != 9223372036854775807", Condition("quantity", "!=", INT64[1])),
        ("quantity = -9223372036854775808", Condition("quantity", "=", INT64[0])),
        ("\t project \n=\r web-app  ", Condition("project", "=", "web-app")),
    ],
)
def test_each_operator(text, expected):
    assert parse_filter(text) == (expected,)


@pytest.mark.parametrize(
    "text, value",
    [
        ("user = 'it''s'", "it's"),
        ('user = "say ""hi"""', 'say "hi"'),
        ('user = "it\'s"', "it's"),
        ("user = 'say \"hi\"'", 'say "hi"'),
        ("user = ''", ""),
        ("user = ''''", "'"),
        ("user = ' two  words '", " two  words "),
        ("user = 'a = b AND c != d'", "a = b AND c != d"),
        ("user = 'AND'", "AND"),
        ("user = 'back\\slash'", "back\\slash"),
        ("user = '; DROP TABLE x; --'", "; DROP TABLE x; --"),
        ("user = ünïcødé✓", "ünïcødé✓"),
        ("quantity = '42'", 42),
    ],
)
def test_quoting_and_escaping(text, value):
    assert parse_filter(text)[0].value == value


def test_and_in_any_case_joins_conditions():
    expected = (
        Condition("project", "=", "web-app"),
        Condition("quantity", ">=", 2),
        Condition("status", "!=", "FAILED"),
        Condition("user", "=", "bob@odavl.com"),
    )
    text = "project = web-app and quantity >= 2 AnD status != FAILED\n\tAND user = bob@odavl.com"
    assert parse_filter(text) == expected


def test_fifty_conditions_are_taken_and_fifty_one_refused():
    fifty = " AND ".join(f"quantity >= {n}" for n in range(MAX_CONDITIONS))
    assert len(parse_filter(fifty)) == MAX_CONDITIONS
    assert "more than 50 conditions" in refusal(fifty + " AND quantity <= 1")


def test_four_thousand_characters_are_taken_and_more_refused():
    text = "user = '" + "x" * (4_000 - len("user = ''")) + "'"
    assert len(text) == 4_000 and parse_filter(text)
    assert "4,001 characters" in refusal(text + " ")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty filter"),
        ("  \n\t ", "empty filter"),
        ("foo = 1", "unknown field 'foo' at character 1"),
        ("foo = 1", "the fields are event_type, project, user, endpoint, status, quantity"),
        ("project = a AND Project = b", "unknown field 'Project' at character 17"),
        ("user_email = a", "unknown field 'user_email'"),
        ("'project' = a", "expected a field at character 1, found \"'project'\""),
        ("= a", "expected a field at character 1, found '='"),
        ("project >= a", "'>=' applies to quantity only, not project"),
        ("status <= 3", "'<=' applies to quantity only, not status"),
        ("project == a", "unknown operator '==' at character 9"),
        ("quantity <> 1", "unknown operator '<>'"),
        ("quantity > 1", "unknown operator '>'"),
        ("project LIKE a", "expected an operator (=, !=, >=, <=) after project at character 9"),
        ("project LIKE a", "found 'LIKE'"),
        ("project", "found the end of the filter"),
        ("project =", "expected a value after '=' at character 10"),
        ("project = AND user = a", "found the keyword 'AND'"),
        ("quantity = 1.5", "quantity: '1.5' is not an integer"),
        ("quantity = ''", "quantity: '' is not an integer"),
        ("quantity = 1e3", "quantity: '1e3' is not an integer"),
        ("quantity = ١٢", "quantity: '١٢' is not an integer"),
        ("quantity = 1_000", "quantity: '1_000' is not an integer"),
        ("quantity = 9223372036854775808", "'9223372036854775808' does not fit a signed 64-bit"),
        ("quantity = -9223372036854775809", "'-9223372036854775809' does not fit"),
        ("quantity = " + "9" * 3000, "does not fit a signed 64-bit integer"),
        (
            "event_type = x",
            "event_type: 'x' is not one of insight_analysis, autopilot_job, guardian_test_run, "
            "api_call",
        ),
        ("event_type != API_CALL", "event_type: 'API_CALL' is not one of"),
        ("project = 'web-app", "unterminated quoted value at character 11"),
        ('user = "it""s', "unterminated quoted value at character 8"),
        ("project = a b", "expected AND after the condition ending at character 11, found 'b'"),
        ("project = a OR user = b", "found 'OR' at character 13"),
        ("project = 'a'AND user = b", "expected AND (with space before it)"),
        ("project = a ANDuser = b", "found 'ANDuser'"),
        ("project = a AND", "expected a condition after AND at character 13"),
        ("project = a AND   ", "expected a condition after AND at character 13"),
        ("project = ab'c'", 'unexpected "\'" at character 13: quote a value'),
        ("project = a=b", "unexpected '=' at character 12"),
        ("project = a; DROP TABLE x", "found 'DROP' at character 14"),
        ("project = a\x00", "NUL character at character 12"),
        ("project = '\udcff'", "character 12 is not valid text (a lone surrogate)"),
        ("x" * 4_001, "filter is 4,001 characters long: at most 4,000"),
        (" AND ".join(["quantity >= 1"] * 51), "more than 50 conditions"),
    ],
)
def test_refusals_say_why(text, reason):
    assert reason in refusal(text)


def test_a_long_token_is_shortened_in_the_message():
    message = refusal("f" * 1_000 + " = 1")
    assert "unknown field 'ffffffffff" in message and len(message) < 200


def test_sql_maps_fields_and_operators_and_binds_every_value():
    conditions = parse_filter(
        "event_type = api_call AND project != web-app AND user = a AND endpoint = /x "
        "AND status != 500 AND quantity >= 1 AND quantity <= 9"
    )
    assert filter_sql(conditions) == (
        "(event_type = %s::text) AND (project IS DISTINCT FROM %s::text)"
        " AND (user_email = %s::text) AND ((payload->>'endpoint') = %s::text)"
        " AND ((payload->>'status') IS DISTINCT FROM %s::text)"
        " AND (quantity >= %s::bigint) AND (quantity <= %s::bigint)",
        ["api_call", "web-app", "a", "/x", "500", 1, 9],
    )


@pytest.mark.parametrize(
    "conditions",
    [
        (),
        (Condition("user_email", "=", "a"),),
        (Condition("project", ">=", "a"),),
        (Condition("project", "LIKE", "a"),),
        (Condition("quantity", "=", "1"),),
        (Condition("project", "=", 1),),
    ],
)
def test_sql_refuses_what_the_parser_never_makes(conditions):
    with pytest.raises(FilterError):
        filter_sql(conditions)


# --- Hypothesis -----------------------------------------------------------------------------

# text PostgreSQL and UTF-8 can hold (no NUL, no lone surrogate)
storable = st.characters(codec="utf-8", exclude_characters="\x00")
HOSTILE = [
    "",
    " ",
    "'",
    '"',
    "''",
    "\\",
    "back\\slash",
    "O'Brien",
    'say "hi"',
    "'; DROP TABLE x; --",
    '"; DROP TABLE x; --',
    "%s",
    "%(x)s",
    "$1",
    "AND",
    "and",
    "a = b",
    "ünïcødé ✓ 💥",
    "\u200b",
    "\u00a0",
    "tab\there",
    "line\nbreak",
    "web-app",
    "200",
    "FAILED",
]
values = st.one_of(st.sampled_from(HOSTILE), st.text(storable, max_size=12))


@st.composite
def a_condition(draw, text_values=values):
    """A condition parse_filter can return, its text values drawn from `text_values`."""
    field = draw(st.sampled_from(FIELDS))
    if field == "quantity":
        op = draw(st.sampled_from(OPERATORS))
        edge = st.sampled_from([INT64[0], INT64[1], -1, 0, 1, 2, 1_000_000])
        return Condition(field, op, draw(st.one_of(edge, st.integers(*INT64))))
    op = draw(st.sampled_from(("=", "!=")))
    if field == "event_type":
        return Condition(field, op, draw(st.sampled_from(EVENT_TYPES)))
    return Condition(field, op, draw(text_values))


condition_lists = st.lists(a_condition(), min_size=1, max_size=8).map(tuple)
# all the SQL text filter_sql writes, whatever the values
SQL_WORDS = filter_sql(
    [Condition("quantity", op, 0) for op in OPERATORS]
    + [Condition(f, op, "") for f in FIELDS if f != "quantity" for op in ("=", "!=")]
)[0]


@st.composite
def rendered(draw, conditions):
    """A text a person could write for `conditions`: any spacing, quoting and case of AND."""
    space = st.sampled_from(["", " ", "  ", "\t", "\n", "\u3000"])
    some_space = st.sampled_from([" ", "  ", "\t", "\n", " \r\n "])
    parts = []
    for condition in conditions:
        value = condition.value
        if isinstance(value, int):
            text = draw(st.sampled_from([str(value), f"'{value}'", f'"{value}"']))
            if value >= 0 and draw(st.booleans()):
                text = "+" + str(value)
        elif bare(value) and draw(st.booleans()):
            text = value
        else:
            quote = draw(st.sampled_from("'\""))
            text = quote + value.replace(quote, quote * 2) + quote
        parts.append(
            draw(space) + condition.field + draw(space) + condition.op + draw(space) + text
        )
    joined = parts[0]
    for part in parts[1:]:
        keyword = draw(st.sampled_from(["AND", "and", "And", "aNd"]))
        joined += draw(some_space) + keyword + draw(some_space) + part
    return joined + draw(space)


def bare(value: str) -> bool:
    """Whether `value` can be written without quotes."""
    return (
        value != ""
        and value.lower() != "and"
        and not any(c.isspace() or c in "'\"=!<>" for c in value)
    )


def evaluate(condition: Condition, row: dict) -> bool:
    """What a condition means, in Python: SQL's `=` never matches NULL, `!=` always does."""
    column = {"user": "user_email"}.get(condition.field, condition.field)
    if condition.field in ("endpoint", "status"):
        held = row["payload"].get(condition.field)
        have = None if held is None else str(held)
    else:
        have = row[column]
    if condition.op == "=":
        return have is not None and have == condition.value
    if condition.op == "!=":
        return have is None or have != condition.value
    if condition.op == ">=":
        return have >= condition.value
    return have <= condition.value


grammar_pieces = st.one_of(
    st.sampled_from(FIELDS + ("foo", "Project", "user_email", "payload", "")),
    st.sampled_from(OPERATORS + ("==", "<>", "<", ">", "!", "=!", "=>")),
    st.sampled_from(["'", '"', "''", '""', "'it''s'", '"a ""b"""', "'unterminated"]),
    st.sampled_from(["AND", "and", "AnD", "OR", "ANDROID", "AND AND"]),
    st.sampled_from([" ", "\t", "\n", "\x00", "\udcff", "\u3000", "\x1f", ";", "--", "%s"]),
    st.sampled_from(EVENT_TYPES + ("API_CALL", "x")),
    st.integers().map(str),
    st.sampled_from(["1.5", "+-1", "١٢", "9" * 30, "-9223372036854775809"]),
    st.sampled_from(HOSTILE),
    st.text(max_size=6),
)
grammar_texts = st.lists(grammar_pieces, max_size=14).flatmap(
    lambda pieces: st.sampled_from(["", " "]).map(lambda sep: sep.join(pieces))
)


@settings(max_examples=200)
@given(text=st.one_of(st.text(), grammar_texts, condition_lists.flatmap(rendered)))
def test_any_text_is_conditions_or_a_reason(text):
    try:
        parsed = parse_filter(text)
    except FilterError as refused:
        assert str(refused)
        return
    assert isinstance(parsed, tuple) and 1 <= len(parsed) <= MAX_CONDITIONS
    for condition in parsed:
        assert condition.field in FIELDS and condition.op in OPERATORS
        if condition.field == "quantity":
            assert type(condition.value) is int and INT64[0] <= condition.value <= INT64[1]
        else:
            assert condition.op in ("=", "!=") and type(condition.value) is str
            assert "\x00" not in condition.value
        if condition.field == "event_type":
            assert condition.value in EVENT_TYPES
    sql, params = filter_sql(parsed)
    assert sql.count("%s") == len(params) == len(parsed)


@settings(max_examples=200)
@given(data=st.data(), conditions=condition_lists)
def test_rendered_conditions_parse_back_to_themselves(data, conditions):
    assert parse_filter(data.draw(rendered(conditions))) == conditions


@settings(max_examples=200)
@given(conditions=condition_lists)
def test_no_value_reaches_the_sql_text(conditions):
    sql, params = filter_sql(conditions)
    assert params == [condition.value for condition in conditions]
    assert sql.count("%s") == len(params) and sql.count("%") == len(params)
    # the text depends on the fields and operators alone
    blank = [Condition(c.field, c.op, 0 if c.field == "quantity" else "") for c in conditions]
    assert filter_sql(blank)[0] == sql
    for value in params:
        if isinstance(value, str) and value not in SQL_WORDS:  # else only a coincidence
            assert value not in sql


rows = st.lists(
    st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(EVENT_TYPES),
            "project": st.one_of(st.none(), values),
            "user_email": st.one_of(st.none(), values),
            "payload": st.fixed_dictionaries(
                {},
                optional={
                    "endpoint": st.one_of(st.none(), values),
                    "status": st.one_of(st.none(), values, st.integers(100, 599)),
                    "surprise": values,
                },
            ),
            "quantity": st.one_of(st.integers(*INT64), st.integers(-3, 3)),
        }
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), table=rows)
def test_postgresql_runs_the_sql_and_agrees_with_python(conn, data, table):
    # conditions drawn mostly from the rows' own values, so that some of them match
    seen = [v for row in table for v in (row["project"], row["user_email"]) if v is not None]
    seen += [str(v) for row in table for v in row["payload"].values() if v is not None]
    ours = st.one_of(values, st.sampled_from(seen)) if seen else values
    drawn = data.draw(st.lists(a_condition(ours), min_size=1, max_size=4))
    count = count_matching(conn, table, drawn)
    assert count == sum(all(evaluate(c, row) for c in drawn) for row in table)


def count_matching(conn, table: list[dict], conditions) -> int:
    """How many of `table`'s rows PostgreSQL finds matching `conditions`."""
    expression, params = filter_sql(conditions)
    row_sql = "(%s::text, %s::text, %s::text, %s::jsonb, %s::bigint)"
    query = (
        "SELECT count(*) FROM (VALUES "
        + ", ".join([row_sql] * len(table))
        + ") AS v(event_type, project, user_email, payload, quantity) WHERE "
        + expression
    )
    row_params = [
        value
        for row in table
        for value in (
            row["event_type"],
            row["project"],
            row["user_email"],
            Jsonb(row["payload"]),
            row["quantity"],
        )
    ]
    with conn.transaction():
        [(count,)] = conn.execute(query, row_params + params).fetchall()
    return count


def test_postgresql_matches_missing_values_with_not_equal_only(conn):
    def row(project, user, payload, quantity=1):
        return {
            "event_type": "api_call",
            "project": project,
            "user_email": user,
            "payload": payload,
            "quantity": quantity,
        }

    table = [
        row(None, None, {}),
        row("web-app", "alice@odavl.com", {"endpoint": "/v1/x", "status": 200}, 5),
        row("O'Brien", None, {"endpoint": None, "status": "FAILED"}, -2),
    ]
    expected = {
        "project = web-app": 1,
        "project != web-app": 2,
        'project = "O\'Brien"': 1,
        "user != alice@odavl.com": 2,
        "endpoint != /v1/x": 2,
        "endpoint = /v1/x AND status = 200": 1,
        "status != 200 AND status != FAILED": 1,
        "quantity >= 1 AND quantity <= 5": 2,
        "quantity != 5 and project != 'web-app'": 2,
        "project = '; DROP TABLE x; --'": 0,
    }
    assert {text: count_matching(conn, table, parse_filter(text)) for text in expected} == expected
