"""The one clock: in this process, in the processes it starts and in PostgreSQL, moved together."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline import clock
from odavl_pipeline.db.server import connect

# how far apart two readings of the clock taken a moment apart may be
SAME_MOMENT = timedelta(seconds=30)

READ_IN_A_CHILD = (
    "from odavl_pipeline import clock; from odavl_pipeline.settings import Settings; "
    "from odavl_pipeline.db.server import connect; "
    "conn = connect(Settings.from_env()); "
    "print(clock.now().isoformat()); "
    "print(conn.execute('SELECT odavl_now()').fetchone()[0].isoformat())"
)


def _database_now(settings) -> datetime:
    with connect(settings) as conn:
        return conn.execute("SELECT odavl_now()").fetchone()[0]


def test_without_an_offset_the_clock_is_the_systems_and_so_is_the_databases(settings, monkeypatch):
    monkeypatch.delenv(clock.OFFSET_VARIABLE, raising=False)
    assert abs(clock.now() - datetime.now(UTC)) < SAME_MOMENT
    assert clock.database_options() is None
    with connect(settings) as conn:
        moment, statement = conn.execute("SELECT odavl_now(), statement_timestamp()").fetchone()
    assert moment == statement


@pytest.mark.parametrize(
    "moment", ["1970-01-01T00:00:00Z", "2027-01-31T23:59:59Z", "2028-02-29T12:00:00Z"]
)
def test_an_instant_set_reaches_this_process_a_child_process_and_postgresql(
    settings, clock_at, moment
):
    target = clock_at(moment)
    assert abs(clock.now() - target) < SAME_MOMENT
    assert clock.today() == clock.now().date()
    assert abs(_database_now(settings) - target) < SAME_MOMENT
    child = subprocess.run(
        [sys.executable, "-c", READ_IN_A_CHILD], capture_output=True, text=True, check=True
    )
    child_now, child_database_now = (datetime.fromisoformat(t) for t in child.stdout.split())
    assert abs(child_now - target) < SAME_MOMENT
    assert abs(child_database_now - target) < SAME_MOMENT


def test_time_flows_on_from_the_instant_set(settings, clock_at):
    clock_at("2027-01-31T23:59:59Z")
    first = clock.now()
    with connect(settings) as conn:
        a = conn.execute("SELECT odavl_now()").fetchone()[0]
        b = conn.execute("SELECT pg_sleep(0.01), odavl_now()").fetchone()[1]
    assert clock.now() > first
    assert b > a


def test_stamps_written_by_default_follow_the_clock(settings, conn, clock_at):
    """Column defaults (here a dashboard session's creation) read `odavl_now()`."""
    defaults = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_default IN ('now()', 'statement_timestamp()')"
    ).fetchone()[0]
    assert defaults == 0
    target = clock_at("2031-06-15T08:00:00Z")
    with connect(settings) as moved:
        created = moved.execute(
            "INSERT INTO users (email) VALUES ('clock@example.com') RETURNING created_at"
        ).fetchone()[0]
    assert abs(created - target) < SAME_MOMENT


def test_time_machine_moves_the_clock_in_this_process(monkeypatch):
    monkeypatch.delenv(clock.OFFSET_VARIABLE, raising=False)
    with time_machine.travel(datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), tick=False):
        assert clock.now() == datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)
        assert clock.today().isoformat() == "2028-02-29"


def test_the_offset_variable_is_refused_with_its_name_unless_a_number_of_seconds(monkeypatch):
    for bad in ("tomorrow", "1e400", "nan", str(10**15)):
        monkeypatch.setenv(clock.OFFSET_VARIABLE, bad)
        with pytest.raises(ValueError, match=clock.OFFSET_VARIABLE):
            clock.now()


@given(st.text(max_size=30))
def test_any_offset_text_is_a_clock_or_a_refusal_naming_the_variable(text):
    try:
        delta = clock._parse(text)
    except ValueError as error:
        assert clock.OFFSET_VARIABLE in str(error)
    else:
        assert abs(delta) <= clock.LARGEST_OFFSET


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31)))
def test_any_instant_from_1970_on_round_trips_through_the_variable(moment):
    target = moment.replace(tzinfo=UTC)
    system_now = datetime(2026, 12, 6, tzinfo=UTC)
    (text,) = clock.environment(clock.offset_to(target, system_now)).values()
    assert abs(system_now + clock._parse(text) - target) < timedelta(milliseconds=1)


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="time zone"):
        clock.offset_to(datetime(2027, 1, 1))


def test_a_connection_that_moves_the_clock_by_hand_is_read_as_seconds(settings):
    with connect(settings) as conn:
        conn.execute("SET odavl.clock_offset = '-86400'")
        moved, statement = conn.execute("SELECT odavl_now(), statement_timestamp()").fetchone()
    assert statement - moved == timedelta(days=1)
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        with connect(settings) as conn:
            conn.execute("SET odavl.clock_offset = 'soon'")
            conn.execute("SELECT odavl_now()")
