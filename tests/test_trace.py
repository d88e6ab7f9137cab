"""A billed number traced to where each unit came from (odavl_pipeline/marts/trace.py, the
`trace` command and the Billing page's drill-down), through a real marts build: a landed file
and its line, an HTTP API request with the record's 0-based index, its key and its time, and a
correction batch."""

import json
import re
from datetime import UTC, date, datetime

import duckdb
import pytest

from odavl_pipeline.api import keys, records
from odavl_pipeline.billing import corrections
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.trace import (
    BilledDay,
    BilledPeriod,
    TraceRefused,
    choose_period,
    trace_billed_number,
)

from .commands import cli
from .marts_helpers import rows
from .records import ORG, usage

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")

DAY = date(2026, 11, 19)
LANDED_FILE = "usage_events/2026-11-19/a.ndjson"


@pytest.fixture
def sent(settings, landing):
    """Two analyses landed in a file (lines 1 and 3, a blank line between) and two sent in one
    API request by a key of alice (records 0 and 1), all on DAY; the marts built. Returns the
    request's id, its key's prefix and when it was received, as Postgres keeps them."""
    landing.write(
        "usage_events",
        "2026-11-19",
        "a.ndjson",
        [
            usage("landed-1", occurred_at="2026-11-19T08:00:00Z"),
            "",
            usage("landed-2", occurred_at="2026-11-19T09:00:00Z", quantity=4),
        ],
    )
    with connect(settings) as conn:
        ingest_days(conn, landing.root, "usage_events", [DAY])
        key, _ = keys.create(conn, "alice@odavl.com", "trace", ["usage:write"])
        holder = keys.holder(conn, key)
    request = [
        usage("api-0", occurred_at="2026-11-19T10:00:00Z"),
        usage("api-1", occurred_at="2026-11-19T11:00:00Z", quantity=2),
    ]
    with connect(settings) as conn:
        outcome = records.take_records(
            conn, holder, "usage_events", request, json.dumps(request).encode(), "application/json"
        )
        assert [r.status for r in outcome.results] == ["accepted", "accepted"]
        (received_at,) = conn.execute(
            "SELECT received_at FROM api_requests WHERE file_id = %s", (outcome.file_id,)
        ).fetchone()
    refresh_marts(settings)
    request_id = outcome.path.rsplit("/", 1)[1].removesuffix(".ndjson")
    return request_id, holder.prefix, received_at.astimezone(UTC)


def _described(request_id: str, prefix: str, record: int, received_at: datetime) -> str:
    return f"{request_id}, record {record}, key {prefix}, {received_at:%Y-%m-%d %H:%M:%S} UTC"


def test_a_billed_number_traces_to_a_file_line_and_to_an_api_request_and_record(settings, sent):
    request_id, prefix, received_at = sent
    trace = trace_billed_number(settings.marts_path, ORG, "analyses", day=DAY)

    assert (trace.period.period_start, trace.period.closed, trace.period.used) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        False,
        8,
    )
    assert trace.days == [BilledDay(DAY, 8, 4, 0, 0, 8)]
    origins = {entry.event_id: (entry.quantity, entry.origin()) for entry in trace.events}
    assert origins == {
        "landed-1": (1, {"kind": "file", "file": LANDED_FILE, "line": 1}),
        "landed-2": (4, {"kind": "file", "file": LANDED_FILE, "line": 3}),
        "api-0": (
            1,
            {
                "kind": "api",
                "request": request_id,
                "index": 0,
                "key_prefix": prefix,
                "received_at": received_at.isoformat(),
            },
        ),
        "api-1": (
            2,
            {
                "kind": "api",
                "request": request_id,
                "index": 1,
                "key_prefix": prefix,
                "received_at": received_at.isoformat(),
            },
        ),
    }
    words = {entry.event_id: entry.came_from for entry in trace.events}
    assert words["landed-2"] == f"{LANDED_FILE}:3"
    assert words["api-1"] == "API request " + _described(request_id, prefix, 1, received_at)
    # the dimension: the request's key and time beside its ledger file, nothing beside a file
    assert sorted(
        rows(
            settings,
            "SELECT path LIKE 'api/%', request, key_prefix, received_at FROM landing_files",
        )
    ) == [(False, None, None, None), (True, request_id, prefix, received_at)]


def test_a_correction_of_a_sent_record_traces_to_its_batch(settings, sent, monkeypatch):
    from dashlib import data

    from .dashboards_fixtures import ALICE, environment

    request_id, prefix, received_at = sent
    with connect(settings) as conn:
        batch = corrections.create(
            conn,
            ORG,
            datetime(2026, 11, 19, tzinfo=UTC),
            datetime(2026, 11, 20, tzinfo=UTC),
            "sent with the wrong quantity",
            "tests",
        )
        fixed = usage("api-1", occurred_at="2026-11-19T11:00:00Z", quantity=5)
        corrections.add(conn, batch, "fix.ndjson", [json.dumps(fixed).encode()])
        assert corrections.commit(conn, settings.marts_path, batch)
    refresh_marts(settings)

    trace = trace_billed_number(settings.marts_path, ORG, "analyses", day=DAY)
    assert trace.period.used == 11 == sum(day.billed for day in trace.days)
    api_1 = [(e.quantity, e.came_from) for e in trace.events if e.event_id == "api-1"]
    assert sorted(api_1) == [
        (-2, f"correction batch {batch}"),
        (2, "API request " + _described(request_id, prefix, 1, received_at)),
        (5, f"correction batch {batch}"),
    ]
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)
    versions = data.event_versions(data.Viewer(ALICE.email), ORG, "api-1")
    shown = versions[["version", "quantity", "source"]].astype(object)
    assert [tuple(row) for row in shown.where(shown.notna(), None).values] == [
        (
            "sent through the API",
            2,
            "API request " + _described(request_id, prefix, 1, received_at),
        ),
        ("retracted", -2, None),  # the version sent, taken back
        ("made", 5, "fix.ndjson"),
    ]
    assert versions["line"].isna().tolist() == [True, True, False]  # no line for a request


def test_the_command_prints_the_days_then_a_day_s_events_and_json_keeps_the_origin(settings, sent):
    request_id, prefix, received_at = sent
    summary = cli("trace", ORG, "--metric", "analyses").stdout
    assert "odavl-test-org analyses, billing period 2026-11-01 00:00 to 2026-12-01 00:00 UTC" in (
        summary
    )
    assert "8 used so far (open period)" in summary
    [day_line] = [line for line in summary.splitlines() if line.startswith("2026-11-19")]
    assert day_line.split() == ["2026-11-19", "8", "4", "0", "0", "8"]
    assert "API request" not in summary  # the events only with --day

    listed = cli("trace", ORG, "--metric", "analyses", "--day", "2026-11-19").stdout
    lines = {
        line.split()[5]: line
        for line in listed.splitlines()
        if re.match(r"2026-11-19 \d\d:\d\d:\d\d ", line)  # an event, not the day's row
    }
    assert sorted(lines) == ["api-0", "api-1", "landed-1", "landed-2"]
    assert lines["landed-2"].endswith(f"{LANDED_FILE}:3")
    assert lines["api-1"].endswith("API request " + _described(request_id, prefix, 1, received_at))
    assert "0 for the request's first" in listed

    answer = json.loads(
        cli(
            "trace",
            ORG,
            "--metric",
            "analyses",
            "--period-start",
            "2026-11-01",
            "--day",
            "2026-11-19",
            "--limit",
            "3",
            "--json",
        ).stdout
    )
    assert (answer["used"], answer["closed"], answer["day"], answer["more_events"]) == (
        8,
        False,
        "2026-11-19",
        True,
    )
    assert answer["days"] == [
        {
            "day": "2026-11-19",
            "occurred": 8,
            "events": 4,
            "billed_later": 0,
            "carried_in": 0,
            "billed": 8,
        }
    ]
    assert [(e["event_id"], e["from"]) for e in answer["events"]] == [
        ("landed-1", {"kind": "file", "file": LANDED_FILE, "line": 1}),
        ("landed-2", {"kind": "file", "file": LANDED_FILE, "line": 3}),
        (
            "api-0",
            {
                "kind": "api",
                "request": request_id,
                "index": 0,
                "key_prefix": prefix,
                "received_at": received_at.isoformat(),
            },
        ),
    ]


def test_the_command_refuses_in_one_line_what_the_marts_do_not_hold(settings, sent):
    for org, args, words in (
        ("no-such-org", [], "no organization 'no-such-org' in the marts"),
        (ORG, ["--period-start", "2026-11-02"], "no billing period of odavl-test-org starts on"),
        (ORG, ["--day", "2026-12-25"], "no billing period of odavl-test-org holds 2026-12-25"),
        (ORG, ["--period-start", "2026-11-01", "--day", "2026-10-30"], "2026-10-30 is not a day"),
    ):
        refused = cli("trace", org, "--metric", "analyses", *args, check=False)
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith(f"error: {words}") and refused.stderr.count("\n") == 1
        assert refused.stdout == ""
    for args in (["--metric", "api_calls"], ["--metric", "analyses", "--day", "19/11/2026"]):
        assert cli("trace", ORG, *args, check=False).returncode == 2


def test_the_command_before_any_build_says_what_to_run(settings):
    refused = cli("trace", ORG, "--metric", "analyses", check=False)
    assert (refused.returncode, refused.stderr.count("\n")) == (1, 1)
    assert "run `odavl-pipeline run` first" in refused.stderr


def test_marts_of_the_previous_schema_are_rebuilt_whole_with_the_requests(settings, sent):
    request_id, prefix, _ = sent
    with duckdb.connect(str(settings.marts_path)) as marts:  # as the previous code built them
        for column in ("request", "key_prefix", "received_at"):
            marts.execute(f"ALTER TABLE landing_files DROP COLUMN {column}")
        marts.execute("UPDATE _meta SET schema_version = 4")
    report = refresh_marts(settings)
    assert report.full
    assert rows(
        settings, "SELECT request, key_prefix FROM landing_files WHERE request IS NOT NULL"
    ) == [(request_id, prefix)]


def test_the_billing_page_shows_the_api_request_where_a_landed_event_shows_its_file(
    settings, sent, monkeypatch
):
    from .dashboards_fixtures import (
        ALICE,
        environment,
        main_module_kept,
        no_exceptions,
        signed_in_app,
    )

    request_id, prefix, received_at = sent
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)
    with main_module_kept():
        at = no_exceptions(signed_in_app(ALICE).switch_page("views/billing.py").run())
        at.selectbox(key="drill_metric").set_value("analyses").run()
        # the period by its first day, as the URL names it
        assert at.selectbox(key="drill_period").value == "2026-11-01"
        at.selectbox(key="drill_day").set_value(at.selectbox(key="drill_day").options[0]).run()
        [events] = [t.value for t in no_exceptions(at).dataframe if "api_request" in t.value]
    shown = {
        row.event_id: (row.landing_line, row.api_request)
        for row in events.astype(object).where(events.notna(), None).itertuples()
    }
    assert shown == {
        "landed-1": (f"{LANDED_FILE}:1", None),
        "landed-2": (f"{LANDED_FILE}:3", None),
        "api-0": (None, _described(request_id, prefix, 0, received_at)),
        "api-1": (None, _described(request_id, prefix, 1, received_at)),
    }


# --- choosing the period: plain function --------------------------------------------------


def _period(start: str, end: str) -> BilledPeriod:
    return BilledPeriod(
        ORG, "analyses", datetime.fromisoformat(start), datetime.fromisoformat(end), False, 0, 500
    )


# noon anchors, and a cancellation on 2026-12-14 that starts a FREE calendar month at 18:00
NOON = [
    _period("2026-10-14T12:00:00+00:00", "2026-11-14T12:00:00+00:00"),
    _period("2026-11-14T12:00:00+00:00", "2026-12-14T12:00:00+00:00"),
    _period("2026-12-14T12:00:00+00:00", "2026-12-14T18:00:00+00:00"),
    _period("2026-12-14T18:00:00+00:00", "2027-01-01T00:00:00+00:00"),
]


def test_the_period_is_the_latest_the_one_starting_then_or_the_one_holding_the_day():
    assert choose_period(NOON, ORG, None, None) == NOON[-1]
    assert choose_period(NOON, ORG, date(2026, 11, 14), None) == NOON[1]
    assert choose_period(NOON, ORG, NOON[3].period_start, None) == NOON[3]
    assert choose_period(NOON, ORG, None, date(2026, 11, 14)) == NOON[1]  # its last instant
    assert choose_period(NOON, ORG, None, date(2026, 11, 13)) == NOON[0]
    with pytest.raises(TraceRefused, match="2 billing periods of odavl-test-org start on"):
        choose_period(NOON, ORG, date(2026, 12, 14), None)
    with pytest.raises(TraceRefused, match="the latest start: 2026-12-14 18:00 UTC, 2026-12-14"):
        choose_period(NOON, ORG, date(2026, 11, 1), None)
    with pytest.raises(TraceRefused, match="holds 2026-10-13: they run from 2026-10-14 12:00"):
        choose_period(NOON, ORG, None, date(2026, 10, 13))
    with pytest.raises(TraceRefused, match="no billing periods in the marts"):
        choose_period([], ORG, None, None)
