"""Comparing periods and clicking through: the bucketing and the alignment by day of period as
plain functions (Hypothesis properties over any anchor, month ends and leap days, the periods
drawn by `billing/plans.py`), then the Overview's and the Billing page's charts and drill-down
through Streamlit's AppTest on real marts built from generated demo data.

AppTest cannot click: a table's row is selected by writing its selection state under the
table's key, as the browser does; a bar of the days chart by writing the selection Streamlit's
chart sends (`{"selection": {"day": [{"day_key": …}]}}`). The browser test clicks for real."""

import json
from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from dashlib import compare, ui
from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.billing.plans import add_months
from odavl_pipeline.db.server import libpq_url
from odavl_pipeline.settings import Settings

from .dashboards_fixtures import (
    ALICE,
    OIDC_SECRETS,
    app_test,
    environment,
    main_module_kept,
    marts_rows,
    metrics,
    no_exceptions,
    signed_in_app,
    texts,
)
from .records import ORG

# --- the plain functions -------------------------------------------------------------------

DAYS = st.dates(date(2026, 1, 1), date(2029, 12, 31)) | st.just(date(2028, 2, 29))
USAGE = st.lists(
    st.tuples(DAYS, st.sampled_from(QUOTA_METRICS), st.integers(0, 10**9)), max_size=60
)
# anchors on any day at any time of day, the 29th to the 31st drawn often (they are clamped)
ANCHORS = st.builds(
    lambda year, month, day, moment: datetime.combine(
        date(year, month, min(day, monthrange(year, month)[1])), moment, UTC
    ),
    st.integers(2026, 2029),
    st.integers(1, 12),
    st.integers(28, 31) | st.integers(1, 31),
    st.just(time(0)) | st.times(),
)


def usage_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["day", "metric", "quantity"])


def midnights(start: datetime, end: datetime) -> list[date]:
    """The UTC days whose first instant lies in [start, end), counted one by one."""
    day, days = start.date(), []
    while datetime.combine(day, time(0), UTC) < end:
        if datetime.combine(day, time(0), UTC) >= start:
            days.append(day)
        day += timedelta(days=1)
    return days


@settings(max_examples=120, deadline=None)
@given(USAGE, st.sampled_from(compare.GRAINS))
def test_any_grain_keeps_the_totals_and_puts_each_day_in_its_own_bucket(rows, grain):
    usage = usage_frame(rows)
    buckets = compare.by_grain(usage, grain)
    for metric in QUOTA_METRICS:
        assert buckets.loc[buckets["metric"] == metric, "quantity"].sum() == sum(
            quantity for _, m, quantity in rows if m == metric
        )
    assert not buckets.duplicated(["day", "metric"]).any()
    for day, metric, _ in rows:
        stamp = pd.Timestamp(day)
        holding = buckets[(buckets["day"] <= stamp) & (stamp <= buckets["until"])]
        assert holding.loc[holding["metric"] == metric, "day"].nunique() == 1
    starts, ends = buckets["day"], buckets["until"]
    if grain == "week":
        assert (starts.dt.day_of_week == 0).all() and ((ends - starts).dt.days == 6).all()
    if grain == "month":
        assert (starts.dt.day == 1).all() and (ends.dt.is_month_end).all()
        assert (starts.dt.month == ends.dt.month).all()
    if grain == "day":
        assert (starts == ends).all()


@settings(max_examples=120, deadline=None)
@given(ANCHORS, st.integers(-3, 30), USAGE)
def test_aligning_two_periods_keeps_every_day_of_each_once_and_their_totals(anchor, index, rows):
    before = compare.Period(add_months(anchor, index - 1), add_months(anchor, index))
    this = compare.Period(add_months(anchor, index), add_months(anchor, index + 1))
    aligned = compare.align(
        usage_frame(rows), {"this": (this, None), "last": (before, None)}, QUOTA_METRICS
    )
    for name, period in (("this", this), ("last", before)):
        days = midnights(period.start, period.end)
        assert 28 <= len(days) == period.length <= 31
        for metric in QUOTA_METRICS:
            shown = aligned[(aligned["period"] == name) & (aligned["metric"] == metric)]
            assert list(shown["day"].dt.date) == days  # every day, once, in order
            assert list(shown["day_of_period"]) == list(range(1, len(days) + 1))
            used = sum(q for day, m, q in rows if m == metric and day in set(days))
            assert compare.used(aligned, name, metric) == used
            assert list(shown["cumulative"]) == list(shown["quantity"].cumsum())
    assert before.last_day + timedelta(days=1) == this.first_day  # no day shared, none left out


def test_periods_anchored_on_the_31st_around_a_leap_day():
    anchor = datetime(2028, 1, 31, tzinfo=UTC)
    january = compare.Period(anchor, add_months(anchor, 1))
    february = compare.Period(add_months(anchor, 1), add_months(anchor, 2))
    assert (january.first_day, january.last_day, january.length) == (
        date(2028, 1, 31),
        date(2028, 2, 28),
        29,
    )
    assert (february.first_day, february.last_day, february.length) == (
        date(2028, 2, 29),
        date(2028, 3, 30),
        31,
    )
    usage = usage_frame([(date(2028, 2, 29), "fixes", 7), (date(2028, 1, 31), "fixes", 5)])
    aligned = compare.align(
        usage, {"this": (february, None), "last": (january, None)}, ["fixes"]
    ).set_index(["period", "day_of_period"])
    assert aligned.loc[("this", 1), "quantity"] == 7  # the leap day is day 1 beside day 1
    assert aligned.loc[("last", 1), "quantity"] == 5
    assert ("last", 30) not in aligned.index and ("this", 31) in aligned.index
    assert ui.period_label(january.start, january.end, this_year=2028) == "Jan 31 – Feb 28"
    in_2027 = compare.Period(datetime(2027, 1, 31, tzinfo=UTC), add_months(anchor, -11))
    assert (in_2027.last_day, in_2027.length) == (date(2027, 2, 27), 28)  # ends before Feb 28


def test_an_anchor_within_a_day_counts_that_day_in_the_period_it_begins():
    start = datetime(2026, 10, 15, 13, 45, tzinfo=UTC)
    period = compare.Period(start, add_months(start, 1))
    assert (period.first_day, period.last_day) == (date(2026, 10, 16), date(2026, 11, 15))
    assert ui.period_label(period.start, period.end, this_year=2026) == "Oct 15 – Nov 15"


def test_an_open_period_is_shown_up_to_its_last_day_so_far():
    period = compare.Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    usage = usage_frame([(date(2026, 11, 2), "audits", 4), (date(2026, 11, 9), "audits", 50)])
    aligned = compare.align(usage, {"this": (period, date(2026, 11, 6))}, ["audits"])
    assert list(aligned["day_of_period"]) == [1, 2, 3, 4, 5, 6]
    assert compare.used(aligned, "this", "audits") == 4
    assert compare.used(aligned, "this", "audits", through_day=1) == 0


@pytest.mark.parametrize(
    "start, end, label",
    [
        ("2026-12-01", "2027-01-01", "Dec 01 – Dec 31"),
        ("2026-12-15", "2027-01-15", "Dec 15, 2026 – Jan 14, 2027"),
        ("2025-11-01", "2025-12-01", "Nov 01 – Nov 30, 2025"),
        ("2028-02-01", "2028-03-01", "Feb 01 – Feb 29, 2028"),
    ],
)
def test_a_period_reads_with_its_last_day_never_its_exclusive_end(start, end, label):
    moments = [datetime.fromisoformat(f"{text}T00:00:00+00:00") for text in (start, end)]
    assert ui.period_label(*moments, this_year=2026) == label


# --- the pages -------------------------------------------------------------------------------


@pytest.fixture
def dashboards(marts, monkeypatch) -> Settings:
    """The demo marts (conftest's `marts`), the clock where they were built: ORG's current
    period is November 2026 (open, up to November 6), the last October (closed)."""
    with main_module_kept():
        for key, value in environment(marts).items():
            monkeypatch.setenv(key, value)
        yield marts


def used_on(settings: Settings, metric: str, first: str, last: str) -> int:
    ((total,),) = marts_rows(
        settings,
        "SELECT coalesce(sum(quantity), 0) FROM usage_daily "
        "WHERE org = ? AND metric = ? AND day BETWEEN ? AND ?",
        ORG,
        metric,
        first,
        last,
    )
    return int(total)


def layers(at: AppTest, words: str) -> list[tuple[dict, pd.DataFrame]]:
    """The layers of the chart titled with `words`: each layer's spec and the rows it draws."""
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec.get("title", "")
        if words in (title if isinstance(title, str) else title.get("text", "")):
            rows = {
                data.name: convert_arrow_bytes_to_pandas_df(data.data.data)
                for data in chart.proto.datasets
            }
            return [(layer, rows[layer["data"]["name"]]) for layer in spec.get("layer", [spec])]
    raise AssertionError(f"no chart titled {words!r}")


def selected(at: AppTest, box: str, row: int) -> AppTest:
    """Select the `row` of the table in the container `box`, as a click does."""
    (table,) = [t for t in at.dataframe if t.key and t.key.startswith(box)]
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return no_exceptions(at.run())


def billing_link(query: dict) -> AppTest:
    """The Billing page opened from a link carrying `query`, signed in as ALICE."""
    app = app_test()
    app.secrets = OIDC_SECRETS
    app.user = {"is_logged_in": True, "email": ALICE.email, "email_verified": True}
    app.query_params = {"org": ORG, **query}
    app.switch_page("views/billing.py")
    return no_exceptions(app.run())


def test_the_overview_compares_this_period_with_the_last_by_day_of_period(dashboards):
    at = no_exceptions(signed_in_app(ALICE))
    assert metrics(at)["Billing period"] == "Nov 01 – Nov 30"
    quotas = dict(
        marts_rows(dashboards, "SELECT metric, quota FROM quota_status WHERE org = ?", ORG)
    )
    for metric in QUOTA_METRICS:  # the current period alone, and its quota
        (line, rows), (rule, limit), _ = layers(at, f"{ui.code_name(metric)} used so far")
        assert set(rows["label"]) == {"This period, Nov 01 – Nov 30"}
        assert rule["mark"]["type"] == "rule" and list(limit["quota"]) == [quotas[metric]]

    at.toggle(key="usage_compare").set_value(True).run()
    shown = texts(no_exceptions(at))
    assert "aligned by day of period, not by date: its day 1 is Oct 01" in shown
    for metric in QUOTA_METRICS:
        (line, rows), (rule, limit), _ = layers(at, f"{ui.code_name(metric)} used so far")
        this = rows[rows["label"] == "This period, Nov 01 – Nov 30"]
        last = rows[rows["label"] == "Last period, Oct 01 – Oct 31"]
        assert list(this["day_of_period"]) == list(range(1, 7))  # up to November 6, as of
        assert list(last["day_of_period"]) == list(range(1, 32))
        assert this["cumulative"].iloc[-1] == used_on(
            dashboards, metric, "2026-11-01", "2026-11-06"
        )
        assert last["cumulative"].iloc[-1] == used_on(
            dashboards, metric, "2026-10-01", "2026-10-31"
        )
        assert (this["day"].dt.day == this["day_of_period"]).all()
        assert list(limit["quota"]) == [quotas[metric]]
        assert line["encoding"]["x"]["field"] == "day_of_period"
    (table,) = [t for t in at.dataframe if "last_same_days" in t.value.columns]
    side = table.value.set_index("metric")
    for metric in QUOTA_METRICS:
        assert side.loc[ui.code_name(metric)].to_dict() == {
            "this": used_on(dashboards, metric, "2026-11-01", "2026-11-06"),
            "last_same_days": used_on(dashboards, metric, "2026-10-01", "2026-10-06"),
            "last": used_on(dashboards, metric, "2026-10-01", "2026-10-31"),
        }
    assert sum(side["last"]) > 0 and sum(side["this"]) > 0


@pytest.mark.parametrize("grain", ["week", "month"])
def test_weeks_and_months_sum_to_the_days(dashboards, grain):
    at = no_exceptions(signed_in_app(ALICE, {"from": "2026-10-13", "to": "2026-11-05"}))
    _, by_day = layers(at, "Usage per UTC day")[0]
    at.button_group(key="usage_grain").set_value(grain).run()
    ((spec, buckets),) = layers(no_exceptions(at), f"Usage per {grain}")
    assert (
        buckets.groupby("metric")["quantity"].sum().to_dict()
        == by_day.groupby("metric")["quantity"].sum().to_dict()
    )
    truth = marts_rows(
        dashboards,
        "SELECT metric, sum(quantity) FROM usage_daily WHERE org = ? "
        "AND day BETWEEN '2026-10-13' AND '2026-11-05' GROUP BY ALL",
        ORG,
    )
    assert sorted(buckets.groupby("metric")["quantity"].sum().items()) == sorted(
        (ui.code_name(metric), total) for metric, total in truth
    )
    every = (  # the range's buckets, those without usage (before October 27) included
        ["Oct 12 – Oct 18", "Oct 19 – Oct 25", "Oct 26 – Nov 01", "Nov 02 – Nov 08"]
        if grain == "week"
        else ["Oct 2026", "Nov 2026"]
    )
    assert spec["encoding"]["x"]["scale"]["domain"] == every
    assert set(buckets["bucket"]) == set(every[-2:])


def test_a_billed_number_a_day_and_an_event_open_by_selection_and_reopen_from_the_link(
    dashboards,
):
    at = no_exceptions(signed_in_app(ALICE).switch_page("views/billing.py").run())
    periods = at.dataframe[0].value
    assert set(periods["label"]) == {"Nov 01 – Nov 30", "Oct 01 – Oct 31"}
    october = periods.index[
        (periods["label"] == "Oct 01 – Oct 31") & (periods["metric"] == "analyses")
    ]
    at = selected(at, "periods|", int(october[0]))
    assert {k: at.query_params.get(k) for k in ("period", "metric", "day")} == {
        "period": "2026-10-01",
        "metric": "analyses",
        "day": None,
    }
    (days,) = [t.value for t in at.dataframe if t.key and t.key.startswith("days|")]
    truth = marts_rows(
        dashboards,
        "SELECT used FROM billing_periods WHERE org = ? AND metric = 'analyses' "
        "AND period_start = '2026-10-01'",
        ORG,
    )
    assert days["billed"].sum() == truth[0][
        0
    ] and "**18 analyses** billed for Oct 01 – Oct 31" in texts(at)
    ((bars, drawn),) = layers(at, "Analyses billed per UTC day")
    assert bars["params"][0]["select"] == {"type": "point", "fields": ["day_key"], "on": "click"}
    assert list(drawn["billed"]) == list(days["billed"])
    assert not [t for t in at.dataframe if t.key and t.key.startswith("events|")]

    busiest = int(days["events"].idxmax())
    at = selected(at, "days|", busiest)
    day = f"{days['day'].iloc[busiest]:%Y-%m-%d}"
    assert at.query_params["day"] == day
    (events,) = [t for t in at.dataframe if t.key and t.key.startswith("events|")]
    assert len(events.value) == days["events"].iloc[busiest] > 0
    with psycopg.connect(libpq_url(make_url(dashboards.database_url.get_secret_value()))) as conn:
        lines = dict(
            conn.execute(
                "SELECT u.event_id, f.path || ':' || u.line_no FROM usage_events AS u "
                "JOIN organizations AS o ON o.id = u.organization_id "
                "JOIN ingested_files AS f ON f.id = u.file_id WHERE o.slug = %s "
                "AND u.event_type = 'insight_analysis' "
                "AND (u.occurred_at AT TIME ZONE 'UTC')::date = %s",
                (ORG, day),
            ).fetchall()
        )
    assert dict(zip(events.value["event_id"], events.value["landing_line"], strict=True)) == lines
    columns = json.loads(events.proto.columns)
    landing = columns["landing_line"]
    assert landing["label"] == "Landing line" and list(events.value.columns)[:2] == [
        "event_id",
        "landing_line",
    ]  # beside the event, in view
    assert landing["width"] >= 8 * max(len(text) for text in lines.values())

    event = events.value["event_id"].iloc[-1]
    at = selected(at, "events|", len(events.value) - 1)
    assert at.query_params["event"] == event
    link, landing_path = [code.value for code in at.code]
    file, line = lines[event].rsplit(":", 1)
    assert landing_path == f"landing/{file}#L{line}"
    assert link.startswith("billing?") and f"event={event}" in link and f"day={day}" in link
    (versions,) = [t.value for t in at.dataframe if "source" in t.value.columns]
    assert versions["source"].iloc[0] == file and versions["line"].iloc[0] == int(line)

    opened = billing_link(dict(at.query_params))
    assert [code.value for code in opened.code] == [link, landing_path]
    assert opened.query_params["event"] == event

    at = selected(at, "days|", busiest - 1 if busiest else busiest + 1)  # another day
    assert "event" not in at.query_params and at.query_params["day"] != day


def test_a_bar_of_the_days_opens_its_day_and_the_selectboxes_follow(dashboards):
    at = billing_link({"period": "2026-11-01", "metric": "fixes"})
    (chart,) = [c for c in at.get("vega_lite_chart") if "bars|" in c.proto.id]
    key = next(k for k in at.session_state if k.startswith("bars|"))
    _, drawn = layers(at, "Fixes counted so far per UTC day")[0]
    clicked = f"{drawn['day'].iloc[1]:%Y-%m-%d}"
    at.session_state[key] = {"selection": {"day": [{"day_key": clicked}]}}
    no_exceptions(at.run())
    assert at.query_params["day"] == clicked
    assert at.selectbox(key="drill_day").value == clicked
    assert [t for t in at.dataframe if t.key and t.key.startswith("events|")]
    ((_, again),) = layers(at, "Fixes counted so far per UTC day")  # the day drawn stronger
    assert dict(zip(again["day_key"], again["strength"], strict=True)) == {
        day: 1.0 if day == clicked else 0.45 for day in again["day_key"]
    }

    at.selectbox(key="drill_metric").set_value("audits").run()
    assert no_exceptions(at).query_params["metric"] == "audits" and "day" not in at.query_params
    assert at.selectbox(key="drill_period").format_func("2026-10-01") == "Oct 01 – Oct 31 (closed)"
    at.selectbox(key="drill_period").set_value("2026-10-01").run()
    assert no_exceptions(at).query_params["period"] == "2026-10-01"
    chosen = at.dataframe[0].proto.selection_default
    assert json.loads(chosen)["selection"]["rows"] == [
        int(i)
        for i in at.dataframe[0].value.index[
            (at.dataframe[0].value["label"] == "Oct 01 – Oct 31")
            & (at.dataframe[0].value["metric"] == "audits")
        ]
    ]


def test_a_link_to_what_is_not_there_says_so(dashboards):
    at = billing_link({"period": "1999-01-01", "metric": "coffees", "day": "2026-10-30"})
    warnings = [w.value for w in at.warning]
    assert any("period '1999-01-01'" in text for text in warnings)
    assert any("metric 'coffees'" in text for text in warnings)
    assert "**19 analyses** used so far in the open period Nov 01 – Nov 30" in texts(at)
    at = billing_link({"period": "2026-10-01", "metric": "fixes", "day": "2026-12-25"})
    assert any("day '2026-12-25'" in w.value for w in at.warning)
    assert "day" not in at.query_params


def test_the_billing_page_compares_a_number_with_the_period_before(dashboards):
    at = billing_link({"period": "2026-11-01", "metric": "audits"})
    at.toggle(key="billing_compare").set_value(True).run()
    (_, rows), (_, limit), _ = layers(no_exceptions(at), "Audits used by day of period")
    assert rows.groupby("label")["quantity"].sum().to_dict() == {
        "Nov 01 – Nov 30": used_on(dashboards, "audits", "2026-11-01", "2026-11-06"),
        "Oct 01 – Oct 31": used_on(dashboards, "audits", "2026-10-01", "2026-10-31"),
    }
    ((quota,),) = marts_rows(
        dashboards,
        "SELECT quota FROM billing_periods WHERE org = ? AND metric = 'audits' "
        "AND period_start = '2026-11-01'",
        ORG,
    )
    assert list(limit["quota"]) == [quota]
