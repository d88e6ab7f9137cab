"""Every dashboard page through Streamlit's AppTest on real marts built from generated demo
data: the numbers shown are the marts' numbers, empty states say what to do, and nobody sees
what their role or memberships do not allow."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema.core import load_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from dashlib import data, ui
from odavl_pipeline.billing.quota import forecast

from .dashboards_fixtures import (
    ALICE,
    BOB,
    DEV,
    EMPTY_ORG,
    ERIN,
    MAYA,
    STAFF,
    VERA,
    captured_downloads,
    headers,
    markdown,
    marts_rows,
    metrics,
    no_exceptions,
    signed_in_app,
    texts,
)
from .records import ORG, OTHER_ORG

pytestmark = pytest.mark.usefixtures("app_test_leaves_main_alone", "dashboard_environment")


VEGA_LITE = load_schema()


def records(frame, *columns) -> list[tuple]:
    """The rows of `frame` as tuples, missing values as None (as the marts give them)."""
    return [
        tuple(None if value != value else value for value in row)
        for row in frame[list(columns)].itertuples(index=False)
    ]


def charts(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """Each chart's Vega-Lite spec and the rows it draws. Each spec is valid Vega-Lite: the
    pages draw their charts without Altair's own validation (`ui.draw`)."""
    drawn = [
        (
            json.loads(chart.proto.spec),
            convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data),
        )
        for chart in at.get("vega_lite_chart")
    ]
    for spec, _ in drawn:
        validate_jsonschema(spec, VEGA_LITE, rootschema=VEGA_LITE)
    return drawn


def chart_titled(at: AppTest, words: str) -> tuple[dict, pd.DataFrame]:
    return next((spec, rows) for spec, rows in charts(at) if words in spec.get("title", ""))


def luminance(hex_colour: str) -> float:
    """WCAG relative luminance: the lower, the stronger the colour on a white page."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """The bytes behind each download button's URL (`captured_downloads`)."""
    return captured_downloads(monkeypatch)


def downloaded(at: AppTest, stored: dict[str, bytes]) -> list[list[dict]]:
    """The CSV rows of each download button of the page, in order."""
    return [
        list(csv.DictReader(io.StringIO(stored[button.proto.url].decode("utf-8-sig"))))
        for button in at.get("download_button")
    ]


def test_overview_shows_the_quota_state_and_usage_of_the_marts(marts):
    at = no_exceptions(signed_in_app(ALICE))
    shown = metrics(at)
    assert at.title[0].value == "ODAVL Test Org"
    assert shown["Plan"] == "Pro" and shown["Your role"] == "Owner"
    assert shown["Billing period"] == "Nov 01 – Nov 30"  # its last day, not its exclusive end
    quota = marts_rows(
        marts,
        "SELECT metric, used, quota, pct_used, status, projected, "
        "projected_exhaustion, period_end FROM quota_status WHERE org = ? "
        "ORDER BY list_position(['analyses', 'fixes', 'audits'], metric)",
        ORG,
    )
    assert len(quota) == 3
    bars = [bar.value for bar in at.get("html")]  # one per card, in the cards' order
    assert len(bars) == 3
    for (metric, used, limit, pct, status, projected, exhaustion, end), bar in zip(
        quota, bars, strict=True
    ):
        state = ui.quota_state(status, exhaustion, end)
        assert f"**{metric.title()}** · {ui.STATE_SYMBOLS[state]} {state}" in markdown(at)
        assert f"{used:,} of {limit:,} used ({pct:.1f} %)" in markdown(at)
        assert ui.STATE_COLOURS[state] in bar
        assert shown[f"{metric.title()} projected at period end"] == f"{projected:,}"
        assert shown[f"{metric.title()} quota exhausted on"] == (
            f"{exhaustion:%Y-%m-%d}" if exhaustion else "not at this rate"
        )
    assert at.query_params["org"] == ORG
    assert at.query_params["to"] == "2026-11-05"  # the latest day with data
    usage, rows = chart_titled(at, "Usage per UTC day")
    assert len(charts(at)) == 4 and rows["quantity"].sum() > 0  # and a cumulative per quota
    assert usage["encoding"]["y"]["axis"] == {"format": ",d", "tickMinStep": 1}


def test_a_quota_forecast_to_run_out_before_the_period_ends_is_shown_at_risk(marts):
    ((status, pct, exhaustion, end),) = marts_rows(
        marts,
        "SELECT status, pct_used, projected_exhaustion, period_end FROM quota_status "
        "WHERE org = ? AND metric = 'audits'",
        ORG,
    )
    assert status == "ok" and pct < 80 and exhaustion < end.date()  # the demo's audit burst
    at = no_exceptions(signed_in_app(ALICE))
    assert "**Audits** · ◔ at risk" in markdown(at)
    assert f"{exhaustion:%Y-%m-%d}" == metrics(at)["Audits quota exhausted on"]
    audits_bar = at.get("html")[2].value
    assert ui.STATE_COLOURS[ui.AT_RISK] == "#DDAA33" and "#DDAA33" in audits_bar
    assert "◔ at risk: below 80 %, but used up before the period ends" in texts(at)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the pages' fixtures
@given(
    used=st.integers(0, 10**12),
    quota=st.integers(1, 10**12),
    elapsed=st.integers(0, 30 * 24 * 3600 * 10**6),
    anchor=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_quota_state_is_one_of_four_by_the_contracts_thresholds_and_the_forecast(
    used, quota, elapsed, anchor
):
    end = anchor + timedelta(days=30)
    result = forecast(used, quota, anchor, end, anchor + timedelta(microseconds=elapsed))
    state = ui.quota_state(result.status, result.projected_exhaustion, end)
    assert state in ui.STATES
    assert (state == ui.EXCEEDED) == (used >= quota)
    assert (state == ui.WARNING) == (quota * 80 <= used * 100 < quota * 100)
    length = 30 * 24 * 3600 * 10**6
    assert (state == ui.AT_RISK) == (
        used * 100 < quota * 80 and elapsed > 0 and used * length > quota * elapsed
    )
    assert ui.quota_state(result.status, None, end) == result.status  # no forecast, no risk


def test_quota_states_take_precedence_exceeded_warning_at_risk_ok():
    end = datetime(2026, 12, 1, tzinfo=UTC)
    assert [
        ui.quota_state(status, date(2026, 11, 20), end) for status in ("exceeded", "warning", "ok")
    ] == ["exceeded", "warning", "at risk"]
    assert ui.quota_state("ok", date(2026, 12, 1), end) == "ok"  # runs out once it has ended
    assert ui.worst_state(pd.Series(["ok", "at risk", "ok"])) == "at risk"
    assert ui.worst_state(pd.Series(["warning", "exceeded", "at risk"])) == "exceeded"


def test_one_palette_for_severities_and_states_with_critical_the_strongest(marts):
    assert ui.SEVERITY_COLOURS == {
        "CRITICAL": "#990000",
        "HIGH": "#CC3311",
        "MEDIUM": "#EE7733",
        "LOW": "#DDAA33",
        "INFO": "#BBBBBB",
    }
    assert ui.STATE_COLOURS == {
        "ok": "#0077BB",
        "at risk": "#DDAA33",
        "warning": "#EE7733",
        "exceeded": "#CC3311",
    }
    strengths = [luminance(c) for c in ui.SEVERITY_COLOURS.values()]
    assert strengths == sorted(strengths) and len(set(strengths)) == 5  # CRITICAL darkest
    severity_scale = {
        "domain": list(ui.SEVERITY_COLOURS),
        "range": list(ui.SEVERITY_COLOURS.values()),
    }
    at = no_exceptions(signed_in_app(ALICE, {"from": "2026-10-27", "to": "2026-11-05"}))
    at.switch_page("views/insight.py").run()
    by_severity, _ = chart_titled(no_exceptions(at), "by severity")
    assert by_severity["encoding"]["color"]["scale"] == severity_scale
    assert by_severity["encoding"]["color"]["sort"] == list(ui.SEVERITY_COLOURS)
    top = at.dataframe[-1]
    for severity in set(top.value["severity"]):
        colour = ui.SEVERITY_COLOURS[severity]
        assert f"background-color: {colour}" in top.proto.arrow_data.styler.styles
    at.switch_page("views/guardian.py").run()
    by_suite, _ = chart_titled(no_exceptions(at), "Issues by suite and severity")
    assert by_suite["encoding"]["color"]["scale"] == severity_scale
    assert by_suite["encoding"]["x"]["axis"] == {"format": ",d", "tickMinStep": 1}


def table_keyed(at: AppTest, prefix: str):
    """The one table whose key starts with `prefix` (the Billing page keys its drill-down's)."""
    (table,) = [t for t in at.dataframe if t.key and t.key.startswith(prefix)]
    return table


def test_billing_shows_every_period_and_each_billed_number_drills_down_to_landing_lines(marts):
    at = no_exceptions(signed_in_app(ALICE).switch_page("views/billing.py").run())
    periods = at.dataframe[0].value
    expected = marts_rows(
        marts,
        "SELECT period_start, metric, used, quota, overage, closed "
        "FROM billing_periods WHERE org = ? ORDER BY period_start DESC",
        ORG,
    )
    assert sorted(
        zip(
            periods["period_start"],
            periods["metric"],
            periods["used"],
            periods["quota"],
            periods["overage"],
            periods["state"] == "closed, billed",
            strict=True,
        )
    ) == sorted(expected)
    assert {"closed, billed", "open, so far"} == set(periods["state"])
    late = marts_rows(
        marts,
        "SELECT period_start, metric, sum(quantity) FROM billing_adjustments "
        "WHERE org = ? GROUP BY ALL",
        ORG,
    )
    assert sorted(
        zip(
            periods.loc[periods["adjusted_quantity"] > 0, "period_start"],
            periods.loc[periods["adjusted_quantity"] > 0, "metric"],
            periods.loc[periods["adjusted_quantity"] > 0, "adjusted_quantity"],
            strict=True,
        )
    ) == sorted(late)
    (adjustments,) = [t.value for t in at.dataframe if "kind" in t.value.columns]
    assert adjustments["quantity"].sum() == sum(n for _, _, n in late) and late

    viewer = data.Viewer(ALICE.email)
    for start, end, metric, used in marts_rows(
        marts,
        "SELECT period_start, period_end, metric, used FROM billing_periods WHERE org = ?",
        ORG,
    ):
        days = data.billed_days(viewer, ORG, start, end, metric)
        assert days["billed"].sum() == used, (start, metric)

    at.selectbox(key="drill_metric").set_value("analyses").run()  # the keyboard's way
    november = table_keyed(no_exceptions(at), "days|").value
    assert november["carried_in"].sum() >= 3  # with the late October event, billed in November
    at.selectbox(key="drill_period").set_value("2026-10-01").run()
    days = table_keyed(no_exceptions(at), "days|").value
    day = days["day"].iloc[-1]
    at.selectbox(key="drill_day").set_value(f"{day:%Y-%m-%d}").run()
    events = table_keyed(no_exceptions(at), "events|").value
    assert len(events) == days.loc[days["day"] == day, "events"].iloc[0]
    import psycopg
    from sqlalchemy.engine import make_url

    from odavl_pipeline.db.server import libpq_url

    with psycopg.connect(libpq_url(make_url(marts.database_url.get_secret_value()))) as conn:
        truth = conn.execute(
            "SELECT u.event_id, f.path || ':' || u.line_no FROM usage_events AS u "
            "JOIN organizations AS o ON o.id = u.organization_id "
            "LEFT JOIN ingested_files AS f ON f.id = u.file_id WHERE o.slug = %s "
            "AND u.event_type = 'insight_analysis' AND (u.occurred_at AT TIME ZONE 'UTC')::date = %s",
            (ORG, day),
        ).fetchall()
    assert sorted(zip(events["event_id"], events["landing_line"], strict=True)) == sorted(truth)


def test_billing_shows_no_none_and_calls_only_closed_periods_billed(marts):
    at = no_exceptions(signed_in_app(ALICE).switch_page("views/billing.py").run())
    open_start, closed_start = sorted(
        {
            s
            for (s,) in marts_rows(
                marts, "SELECT period_start FROM billing_periods WHERE org = ?", ORG
            )
        },
        reverse=True,
    )
    at.selectbox(key="drill_metric").set_value("audits").run()  # with the burst's events, no file
    for start, words, billed in (
        (open_start, "used so far in the open period", "Counted here so far"),
        (closed_start, "billed for", "Billed here"),
    ):
        at.selectbox(key="drill_period").set_value(f"{start:%Y-%m-%d}").run()
        days = table_keyed(no_exceptions(at), "days|")
        assert any(words in text for text in markdown(at)) and billed in headers(days)
        if start == open_start:
            assert not any("billed" in text.lower() for text in markdown(at))
            assert at.selectbox(key="drill_period").format_func(f"{start:%Y-%m-%d}") == (
                "Nov 01 – Nov 30 (open)"
            )
            at.selectbox(key="drill_day").set_value(f"{days.value['day'].iloc[-1]:%Y-%m-%d}")
            events = table_keyed(no_exceptions(at.run()), "events|").value
            assert events["landing_line"].isna().any()  # shown as the placeholder, never "None"
        options = [
            o
            for key in ("drill_period", "drill_metric", "drill_day")
            for o in at.selectbox(key=key).options
        ]
        assert "None" not in texts(at) and "None" not in " ".join(options)
        assert all(table.proto.placeholder == ui.MISSING for table in at.dataframe)
        assert all("None" not in text for table in at.dataframe for text in headers(table))


def test_insight_autopilot_and_guardian_show_the_marts_numbers(marts):
    at = no_exceptions(signed_in_app(ALICE, {"from": "2026-10-27", "to": "2026-11-05"}))
    window = (ORG, "2026-10-27", "2026-11-05")
    at.switch_page("views/insight.py").run()
    ((events,),) = marts_rows(
        marts, "SELECT sum(events) FROM error_trends WHERE org = ? AND day BETWEEN ? AND ?", *window
    )
    assert metrics(no_exceptions(at))["Error events"] == f"{events:,}"
    top = at.dataframe[-1].value
    expected = marts_rows(
        marts,
        "SELECT message, count FROM error_signatures WHERE org = ? "
        "ORDER BY count DESC, last_seen DESC, hash LIMIT 20",
        ORG,
    )
    assert list(zip(top["message"], top["count"], strict=True)) == expected

    at.switch_page("views/autopilot.py").run()
    outcomes = dict(
        marts_rows(
            marts,
            "SELECT status, sum(fixes) FROM fix_outcomes WHERE org = ? "
            "AND day BETWEEN ? AND ? AND chain_status = 'verified' GROUP BY status",
            *window,
        )
    )
    shown = metrics(no_exceptions(at))
    for status in ("SUCCESS", "PARTIAL", "FAILED"):
        assert shown[f"{status.title()} fixes"] == f"{outcomes.get(status, 0):,}"
    chains = at.dataframe[-1].value  # after the pending fixes
    assert sorted(
        records(chains, "project", "verified", "pending", "rejected", "head_hash")
    ) == sorted(
        marts_rows(
            marts,
            "SELECT project, verified, pending, rejected, head_hash FROM attestation_chains "
            "WHERE org = ?",
            ORG,
        )
    )

    at.switch_page("views/guardian.py").run()
    ((audits, issues),) = marts_rows(
        marts,
        "SELECT sum(audits), sum(issues) FROM audit_scores WHERE org = ? AND day BETWEEN ? AND ?",
        *window,
    )
    shown = metrics(no_exceptions(at))
    assert shown["Audits"] == f"{audits:,}" and shown["Issues found"] == f"{issues:,}"
    latest = at.dataframe[0].value
    assert sorted(zip(latest["message"], latest["recommendation"], strict=True)) == sorted(
        marts_rows(
            marts, "SELECT message, recommendation FROM latest_audit_issues WHERE org = ?", ORG
        )
    )
    assert all(
        at.query_params[k] == v
        for k, v in {"org": ORG, "from": "2026-10-27", "to": "2026-11-05"}.items()
    )


def test_staff_view_shows_every_organization_and_the_quarantine(marts):
    at = no_exceptions(signed_in_app(STAFF))
    assert "You are not a member of any organization yet" in texts(at)
    at.switch_page("views/staff.py").run()
    tables = [df.value for df in no_exceptions(at).dataframe]
    organizations, quarantine = tables[0], tables[-1]
    assert sorted(organizations["org"]) == sorted(
        o for (o,) in marts_rows(marts, "SELECT org FROM organizations")
    )
    states = {
        (org, metric): ui.quota_state(status, exhaustion, end)
        for org, metric, status, exhaustion, end in marts_rows(
            marts, "SELECT org, metric, status, projected_exhaustion, period_end FROM quota_status"
        )
    }
    attention = sorted(
        (org, metric, state) for (org, metric), state in states.items() if state != "ok"
    )
    # the demo's audit burst, and the FREE organization without a subscription (20 audits)
    assert attention == [("nimbus-retail", "audits", "at risk"), (ORG, "audits", "at risk")]
    assert sorted(records(tables[1], "org", "metric", "state")) == attention
    assert organizations.set_index("org").loc[ORG, "quota_state"] == "at risk"
    assert dict(
        zip(
            zip(quarantine["source"], quarantine["reason"], strict=True),
            quarantine["records"],
            strict=True,
        )
    ) == dict(
        ((s, r), n)
        for s, r, n in marts_rows(
            marts, "SELECT source, reason, sum(records) FROM quarantine_summary GROUP BY ALL"
        )
    )
    refused = no_exceptions(signed_in_app(ALICE).switch_page("views/staff.py").run())
    assert [e.value for e in refused.error] == [ui.STAFF_ONLY] and not refused.dataframe
    with pytest.raises(data.AccessDenied):
        data.all_organizations(data.Viewer(ALICE.email))
    with pytest.raises(data.AccessDenied):
        data.all_quotas(data.Viewer(ALICE.email))


def test_staff_tables_have_human_headers_separators_and_the_state_colours(marts):
    at = no_exceptions(signed_in_app(STAFF).switch_page("views/staff.py").run())
    assert len(at.dataframe) == 3
    for table in at.dataframe:
        shown = dict(zip(table.value.columns, headers(table), strict=True))
        assert not [h for name, h in shown.items() if "_" in h or h == name], shown
        config = json.loads(table.proto.columns)
        for name, column in table.value.items():
            if pd.api.types.is_integer_dtype(column):
                assert config[name]["type_config"]["format"] == "localized", name
    organizations, attention = at.dataframe[0], at.dataframe[1]
    assert "Members" in headers(organizations) and "Analyses % used" in headers(organizations)
    for table in (organizations, attention):
        styles = table.proto.arrow_data.styler.styles
        assert f"background-color: {ui.STATE_COLOURS[ui.AT_RISK]}; color: #000000" in styles
    ok = f"background-color: {ui.STATE_COLOURS[ui.OK]}; color: #FFFFFF"
    assert ok in organizations.proto.arrow_data.styler.styles
    assert (
        "◔ at risk"
        in convert_arrow_bytes_to_pandas_df(
            attention.proto.arrow_data.styler.display_values
        ).to_csv()
    )
    assert "progress" not in organizations.proto.columns  # no bars in one colour for all
    tier, _ = chart_titled(at, "by plan tier")
    assert tier["encoding"]["y"]["axis"]["tickMinStep"] == 1


def test_the_guardian_chart_draws_the_top_urls_and_one_other_per_device(marts):
    at = no_exceptions(signed_in_app(ALICE, {"from": "2026-10-27", "to": "2026-11-05"}))
    at.switch_page("views/guardian.py").run()
    ((urls,),) = marts_rows(
        marts, "SELECT count(DISTINCT url) FROM audit_scores WHERE org = ?", ORG
    )
    assert urls > ui.TOP_SERIES + 1  # many URLs, times three devices
    spec, rows = chart_titled(no_exceptions(at), "per UTC day, by URL (all devices)")
    assert rows["url"].nunique() == ui.TOP_SERIES + 1 and ui.OTHER in set(rows["url"])
    assert spec["encoding"]["color"]["scale"]["range"][-1] == ui.OTHER_COLOUR
    assert f"The {ui.TOP_SERIES} most audited URLs" in texts(at)
    for device in ("desktop", "mobile", "tablet"):
        at.selectbox(key="guardian_device").set_value(device).run()
        spec, rows = chart_titled(no_exceptions(at), f"by URL ({device})")
        assert rows["url"].nunique() <= ui.TOP_SERIES + 1
        assert rows["score_accessibility"].dropna().between(0, 100).all()


def test_day_axes_label_each_day_once_and_count_axes_are_whole_numbers(marts):
    at = no_exceptions(signed_in_app(ALICE, {"from": "2026-11-03", "to": "2026-11-04"}))
    at.switch_page("views/insight.py").run()
    for spec, _rows in charts(no_exceptions(at)):
        x, y = spec["encoding"]["x"], spec["encoding"]["y"]
        assert (x["timeUnit"], x["type"]) == ("yearmonthdate", "ordinal")  # one band per day
        assert x["scale"]["domain"] == [{"year": 2026, "month": 11, "date": d} for d in (3, 4)]
        assert y["axis"] == {"format": ",d", "tickMinStep": 1}
    axis = ui.day_axis(date(2026, 2, 27), date(2026, 3, 2))  # across a month
    assert [(d["month"], d["date"]) for d in axis.to_dict()["scale"]["domain"]] == [
        (2, 27),
        (2, 28),
        (3, 1),
        (3, 2),
    ]


def test_an_organization_without_data_says_what_is_missing_and_how_to_get_it(marts):
    at = no_exceptions(signed_in_app(ERIN))
    # no subscription: FREE's quotas over the calendar month, nothing used yet
    assert "0 of 100 used (0.0 %)" in texts(at) and "No usage between" in texts(at)
    assert metrics(at)["Plan"] == "Free" and metrics(at)["Billing period"] == "Nov 01 – Nov 30"
    for page, expected in (
        ("views/insight.py", "No errors between"),
        ("views/autopilot.py", "No attestation chains yet"),
        ("views/guardian.py", "No audits yet: run Guardian or `odavl-pipeline generate`"),
    ):
        shown = texts(no_exceptions(at.switch_page(page).run()))
        assert expected in shown and "odavl-pipeline" in shown, page


def test_before_the_first_build_the_app_says_how_to_build_the_marts(marts, monkeypatch, tmp_path):
    monkeypatch.setenv("ODAVL_MARTS_PATH", str(tmp_path / "none.duckdb"))
    at = no_exceptions(signed_in_app(ALICE))
    assert "No marts yet" in texts(at) and "odavl-pipeline run" in texts(at)


@pytest.mark.parametrize("person", [VERA, DEV], ids=["viewer", "developer"])
def test_viewers_and_developers_cannot_open_billing(marts, person):
    at = no_exceptions(signed_in_app(person))
    assert at.title[0].value == "ODAVL Test Org"
    at.switch_page("views/billing.py").run()  # by its address: out of the menu, refused
    assert [e.value for e in no_exceptions(at).error] == [
        f"The Billing page is for the owners and admins of {ORG}: ask one of them for its numbers."
    ]
    assert not at.dataframe and not at.get("vega_lite_chart")
    viewer = data.Viewer(person.email)
    for query in (
        lambda: data.billing_periods(viewer, ORG),
        lambda: data.billing_adjustments(viewer, ORG),
        lambda: data.usage_events(viewer, ORG, date(2026, 11, 3), "analyses"),
    ):
        with pytest.raises(data.AccessDenied):
            query()
    assert not data.may_see_billing(viewer, ORG)


def test_a_member_of_one_organization_sees_nothing_of_another_by_any_parameter(marts):
    alice_org_name = "ODAVL Test Org"
    for query in (
        {"org": ORG},
        {"org": ORG, "project": "web-app"},
        {"org": "x' OR 1=1 --"},
        {"org": EMPTY_ORG},
    ):
        at = no_exceptions(signed_in_app(BOB, query))
        shown = texts(at)
        assert "You are not a member of the organization" in shown
        assert at.title[0].value == "Enterprise Corp" and alice_org_name not in shown
        assert at.query_params["org"] == OTHER_ORG
        for page in (
            "views/billing.py",
            "views/insight.py",
            "views/autopilot.py",
            "views/guardian.py",
        ):
            shown = texts(no_exceptions(at.switch_page(page).run()))
            assert "web-app" not in shown and "api-backend" not in shown, page
    bob = data.Viewer(BOB.email)
    window = (date(2026, 10, 1), date(2026, 11, 30))
    for org in (ORG, EMPTY_ORG, "x' OR 1=1 --", "%"):
        for query in (
            lambda org=org: data.organization(bob, org),
            lambda org=org: data.quota_status(bob, org),
            lambda org=org: data.usage_trend(bob, org, *window),
            lambda org=org: data.projects(bob, org),
            lambda org=org: data.billing_periods(bob, org),
            lambda org=org: data.data_days(bob, org),
            lambda org=org: data.error_trends(bob, org, None, *window),
            lambda org=org: data.top_signatures(bob, org, None),
            lambda org=org: data.fix_outcomes(bob, org, None, *window),
            lambda org=org: data.attestation_chains(bob, org, None),
            lambda org=org: data.audit_scores(bob, org, None, *window),
            lambda org=org: data.latest_audit_issues(bob, org, None),
            lambda org=org: data.usage_events(bob, org, window[0], "analyses"),
        ):
            with pytest.raises(data.AccessDenied):
                query()
    assert list(data.organizations_of(bob)["org"]) == [OTHER_ORG]
    assert list(data.organizations_of(data.Viewer("BOB@odavl.com"))["org"]) == [OTHER_ORG]


def test_filters_live_in_the_url_and_survive_a_change_of_page_and_organization(marts):
    query = {"org": ORG, "project": "api-backend", "from": "2026-11-01", "to": "2026-11-03"}
    at = no_exceptions(signed_in_app(MAYA, query))
    assert at.query_params == query
    at.switch_page("views/insight.py").run()
    assert at.query_params == query and at.title[0].value == "Insight"
    assert at.selectbox(key="filter_project").value == "api-backend"
    ((events,),) = marts_rows(
        marts,
        "SELECT sum(events) FROM error_trends WHERE org = ? AND "
        "project = 'api-backend' AND day BETWEEN '2026-11-01' AND '2026-11-03'",
        ORG,
    )
    assert metrics(no_exceptions(at))["Error events"] == f"{events:,}"
    at.selectbox(key="filter_project").set_value("").run()
    assert "project" not in no_exceptions(at).query_params

    at = no_exceptions(signed_in_app(MAYA, query))
    at.selectbox(key="filter_org").set_value(OTHER_ORG).run()
    assert no_exceptions(at).query_params == {
        "org": OTHER_ORG,
        "from": "2026-11-01",
        "to": "2026-11-03",
    }  # its projects differ
    assert at.title[0].value == "Enterprise Corp"
    at.switch_page("views/autopilot.py").run()
    assert no_exceptions(at).query_params["org"] == OTHER_ORG
    at.switch_page("views/billing.py").run()  # MAYA is only a VIEWER there: refused
    assert "The Billing page is for the owners and admins" in no_exceptions(at).error[0].value
    assert not at.dataframe


def sidebar_filters(at: AppTest) -> set[str]:
    return {w.key for kind in ("selectbox", "date_input") for w in getattr(at.sidebar, kind)}


def test_each_page_shows_the_filters_it_applies_and_keeps_the_others(marts):
    query = {"org": ORG, "project": "api-backend", "from": "2026-11-01", "to": "2026-11-03"}
    at = no_exceptions(signed_in_app(ALICE, query))
    every = {"filter_org", "filter_project", "filter_dates"}
    for page, shown in (
        ("views/overview.py", every - {"filter_project"}),
        ("views/billing.py", {"filter_org"}),
        ("views/insight.py", every),
        ("views/autopilot.py", every),
        ("views/guardian.py", every),
    ):
        no_exceptions(at.switch_page(page).run())
        assert sidebar_filters(at) == shown, page
        assert at.query_params == query, page  # kept while a page does not show it
    assert at.selectbox(key="filter_project").value == "api-backend"
    assert at.date_input(key="filter_dates").value == (date(2026, 11, 1), date(2026, 11, 3))
    assert "Quotas count the whole organization" in texts(at.switch_page("views/overview.py").run())
    assert "Billing counts the whole organization" in texts(
        at.switch_page("views/billing.py").run()
    )
    at = no_exceptions(signed_in_app(STAFF).switch_page("views/staff.py").run())
    assert sidebar_filters(at) == {"filter_dates"}  # every organization, whatever is chosen


@pytest.mark.parametrize(
    "person, pages",
    [
        (
            ALICE,
            ("views/billing.py", "views/insight.py", "views/autopilot.py", "views/guardian.py"),
        ),
        (BOB, ("views/billing.py", "views/insight.py", "views/autopilot.py", "views/guardian.py")),
        (STAFF, ("views/staff.py",)),
    ],
    ids=["owner", "other-organization", "staff"],
)
def test_every_table_has_human_headers_and_a_csv_download_of_exactly_its_rows(
    marts, downloads, person, pages
):
    at = no_exceptions(signed_in_app(person, {"from": "2026-10-27", "to": "2026-11-05"}))
    for page in pages:
        no_exceptions(at.switch_page(page).run())
        files = downloaded(at, downloads)
        if page == "views/billing.py":
            ((periods,),) = marts_rows(
                marts, "SELECT count(*) FROM billing_periods WHERE org = ?", person.org
            )
            assert len(files[0]) == periods  # the viewer's organization, all of it, only it
        assert len(files) == len(at.dataframe) > 0, page
        for table, rows in zip(at.dataframe, files, strict=True):
            assert not [h for h in headers(table) if "_" in h], page
            assert table.proto.placeholder == ui.MISSING, page
            assert list(rows[0]) == headers(table), page  # the headers the table shows
            assert len(rows) == len(table.value), page
            for (name, column), header in zip(table.value.items(), headers(table), strict=True):
                if pd.api.types.is_integer_dtype(column) or pd.api.types.is_object_dtype(column):
                    assert [row[header] for row in rows] == [
                        "" if pd.isna(v) else str(v) for v in column
                    ], (page, name)
    if person.org:
        other_projects = {
            p
            for (p,) in marts_rows(marts, "SELECT project FROM projects WHERE org <> ?", person.org)
        }
        mine = {
            p
            for (p,) in marts_rows(marts, "SELECT project FROM projects WHERE org = ?", person.org)
        }
        shown = "\n".join(b.decode() for b in downloads.values())
        assert not {p for p in other_projects - mine if re.search(rf"\b{re.escape(p)}\b", shown)}
