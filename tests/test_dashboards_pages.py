"""Every dashboard page through Streamlit's AppTest on real marts built from generated demo
data: the numbers shown are the marts' numbers, empty states say what to do, and nobody sees
what their role or memberships do not allow."""

import pytest
from streamlit.testing.v1 import AppTest

from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.settings import Settings

from .dashboards_fixtures import (ALICE, APP, BOB, DEV, EMPTY_ORG, ERIN, MAYA, STAFF, VERA,
                                  build_demo_marts, environment, main_module_kept,
                                  scratch_database)
from .records import ORG, OTHER_ORG

from dashlib import data  # noqa: E402  (made importable by dashboards_fixtures)

OIDC_SECRETS = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                         "cookie_secret": "a-test-cookie-secret-of-some-length"}}



@pytest.fixture(autouse=True)
def app_test_leaves_main_alone():
    with main_module_kept():
        yield

@pytest.fixture(scope="module")
def marts(server_url, template_url, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("dashboards")
    with scratch_database(server_url, template_url.database) as url:
        settings = Settings.from_env({"ODAVL_HOME": str(root / "home"),
                                      "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
                                      "ODAVL_LANDING_DIR": str(root / "landing")})
        build_demo_marts(settings)
        yield settings


@pytest.fixture(autouse=True)
def dashboard_environment(marts, monkeypatch):
    for key, value in environment(marts).items():
        monkeypatch.setenv(key, value)


def marts_rows(settings: Settings, query: str, *parameters) -> list[tuple]:
    with open_marts(settings.marts_path) as con:
        return con.execute(query, list(parameters)).fetchall()


def app_for(person, query: dict | None = None) -> AppTest:
    """The app as `person`, signed in through OpenID Connect (`[auth]` configured)."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets = OIDC_SECRETS
    at.user = {"is_logged_in": True, "email": person.email, "email_verified": True}
    at.query_params = dict(query or {})
    return at.run()


def no_exceptions(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def records(frame, *columns) -> list[tuple]:
    """The rows of `frame` as tuples, missing values as None (as the marts give them)."""
    return [tuple(None if value != value else value for value in row)
            for row in frame[list(columns)].itertuples(index=False)]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "error", "success")
             for e in getattr(at, kind)]
    parts += [str(m.value) for m in at.metric] + [p.proto.text for p in at.get("progress")]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(parts)


def test_overview_shows_the_quota_status_and_usage_of_the_marts(marts):
    at = no_exceptions(app_for(ALICE))
    shown = metrics(at)
    assert at.title[0].value == "ODAVL Test Org"
    assert shown["Plan"] == "Pro" and shown["Your role"] == "Owner"
    assert shown["Billing period"] == "Nov 01 – Dec 01"
    quota = marts_rows(marts, "SELECT metric, used, quota, pct_used, status, projected, "
                       "projected_exhaustion FROM quota_status WHERE org = ?", ORG)
    assert len(quota) == 3
    progress = [p.proto.text for p in at.get("progress")]
    for metric, used, limit, pct, status, projected, exhaustion in quota:
        assert f"{used:,} of {limit:,} used ({pct:.1f} %)" in progress
        assert shown[f"{metric.title()} projected at period end"] == f"{projected:,}"
        assert shown[f"{metric.title()} quota exhausted on"] == (
            f"{exhaustion:%Y-%m-%d}" if exhaustion else "not at this rate")
        assert f"**{metric.title()}** · {status}" in [m.value for m in at.markdown]
    assert at.query_params["org"] == ORG
    assert at.query_params["to"] == "2026-11-05"  # the latest day with data
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1 and "Usage per UTC day" in charts[0].proto.spec


def test_billing_shows_every_period_and_each_billed_number_drills_down_to_landing_lines(marts):
    at = no_exceptions(app_for(ALICE).switch_page("views/billing.py").run())
    periods = at.dataframe[0].value
    expected = marts_rows(marts, "SELECT period_start, metric, used, quota, overage, closed "
                          "FROM billing_periods WHERE org = ? ORDER BY period_start DESC", ORG)
    assert sorted(zip(periods["period_start"], periods["metric"], periods["used"], periods["quota"],
                      periods["overage"], periods["state"] == "closed")) == sorted(expected)
    assert {"closed", "open"} <= set(periods["state"])
    late = marts_rows(marts, "SELECT period_start, metric, sum(quantity) FROM billing_adjustments "
                      "WHERE org = ? GROUP BY ALL", ORG)
    assert sorted(zip(periods.loc[periods["late_quantity"] > 0, "period_start"],
                      periods.loc[periods["late_quantity"] > 0, "metric"],
                      periods.loc[periods["late_quantity"] > 0, "late_quantity"])) == sorted(late)
    adjustments = at.dataframe[1].value
    assert adjustments["quantity"].sum() == sum(n for _, _, n in late) and late

    viewer = data.Viewer(ALICE.email)
    for start, end, metric, used in marts_rows(
            marts, "SELECT period_start, period_end, metric, used FROM billing_periods WHERE org = ?", ORG):
        days = data.billed_days(viewer, ORG, start, end, metric)
        assert days["billed"].sum() == used, (start, metric)

    at.selectbox(key="drill_metric").set_value("analyses").run()
    november = at.dataframe[2].value
    assert november["carried_in"].sum() >= 3  # with the late October event, billed in November
    october_first = periods["period_start"].min()
    at.selectbox(key="drill_period").set_value(october_first).run()
    days = no_exceptions(at).dataframe[2].value
    day = days["day"].iloc[-1]
    at.selectbox(key="drill_day").set_value(day).run()
    events = no_exceptions(at).dataframe[3].value
    assert len(events) == days.loc[days["day"] == day, "events"].iloc[0]
    import psycopg

    from odavl_pipeline.db.server import libpq_url
    from sqlalchemy.engine import make_url

    with psycopg.connect(libpq_url(make_url(marts.database_url))) as conn:
        truth = conn.execute(
            "SELECT u.event_id, f.path, u.line_no FROM usage_events AS u "
            "JOIN organizations AS o ON o.id = u.organization_id "
            "LEFT JOIN ingested_files AS f ON f.id = u.file_id WHERE o.slug = %s "
            "AND u.event_type = 'insight_analysis' AND (u.occurred_at AT TIME ZONE 'UTC')::date = %s",
            (ORG, day)).fetchall()
    assert sorted(zip(events["event_id"], events["landing_file"], events["line"])) == sorted(truth)


def test_insight_autopilot_and_guardian_show_the_marts_numbers(marts):
    at = no_exceptions(app_for(ALICE, {"from": "2026-10-27", "to": "2026-11-05"}))
    window = (ORG, "2026-10-27", "2026-11-05")
    at.switch_page("views/insight.py").run()
    (events,), = marts_rows(marts, "SELECT sum(events) FROM error_trends WHERE org = ? "
                            "AND day BETWEEN ? AND ?", *window)
    assert metrics(no_exceptions(at))["Error events"] == f"{events:,}"
    top = at.dataframe[-1].value
    expected = marts_rows(marts, "SELECT message, count FROM error_signatures WHERE org = ? "
                          "ORDER BY count DESC, last_seen DESC, hash LIMIT 20", ORG)
    assert list(zip(top["message"], top["count"])) == expected

    at.switch_page("views/autopilot.py").run()
    outcomes = dict(marts_rows(marts, "SELECT status, sum(fixes) FROM fix_outcomes WHERE org = ? "
                               "AND day BETWEEN ? AND ? GROUP BY status", *window))
    shown = metrics(no_exceptions(at))
    for status in ("SUCCESS", "PARTIAL", "FAILED"):
        assert shown[f"{status.title()} fixes"] == f"{outcomes.get(status, 0):,}"
    chains = at.dataframe[0].value
    assert sorted(records(chains, "project", "verified", "pending", "rejected",
                          "head_hash")) == sorted(marts_rows(
        marts, "SELECT project, verified, pending, rejected, head_hash FROM attestation_chains "
        "WHERE org = ?", ORG))

    at.switch_page("views/guardian.py").run()
    (audits, issues), = marts_rows(marts, "SELECT sum(audits), sum(issues) FROM audit_scores "
                                   "WHERE org = ? AND day BETWEEN ? AND ?", *window)
    shown = metrics(no_exceptions(at))
    assert shown["Audits"] == f"{audits:,}" and shown["Issues found"] == f"{issues:,}"
    latest = at.dataframe[0].value
    assert sorted(zip(latest["message"], latest["recommendation"])) == sorted(marts_rows(
        marts, "SELECT message, recommendation FROM latest_audit_issues WHERE org = ?", ORG))
    assert all(at.query_params[k] == v for k, v in {"org": ORG, "from": "2026-10-27",
                                                     "to": "2026-11-05"}.items())


def test_staff_view_shows_every_organization_and_the_quarantine(marts):
    at = no_exceptions(app_for(STAFF))
    assert "You are not a member of any organization yet" in texts(at)
    at.switch_page("views/staff.py").run()
    tables = [df.value for df in no_exceptions(at).dataframe]
    organizations, quarantine = tables[0], tables[-1]
    assert sorted(organizations["org"]) == sorted(o for (o,) in marts_rows(
        marts, "SELECT org FROM organizations"))
    near = marts_rows(marts, "SELECT org, metric, used FROM quota_status WHERE status <> 'ok'")
    if near:
        assert sorted(records(tables[1], "org", "metric", "used")) == sorted(near)
    else:
        assert len(tables) == 2 and "Every organization is below 80 %" in texts(at)
    assert dict(zip(zip(quarantine["source"], quarantine["reason"]), quarantine["records"])) == dict(
        ((s, r), n) for s, r, n in marts_rows(
            marts, "SELECT source, reason, sum(records) FROM quarantine_summary GROUP BY ALL"))
    with pytest.raises(ValueError):  # nobody else has the page
        app_for(ALICE).switch_page("views/staff.py")
    with pytest.raises(data.AccessDenied):
        data.all_organizations(data.Viewer(ALICE.email))


def test_an_organization_without_data_says_what_is_missing_and_how_to_get_it(marts):
    at = no_exceptions(app_for(ERIN))
    assert "No billing period yet" in texts(at) and "No usage between" in texts(at)
    for page, expected in (("views/insight.py", "No errors between"),
                           ("views/autopilot.py", "No attestation chains yet"),
                           ("views/guardian.py", "No audits yet: run Guardian or `odavl-pipeline generate`"),
                           ("views/billing.py", "No billing periods yet")):
        shown = texts(no_exceptions(at.switch_page(page).run()))
        assert expected in shown and "odavl-pipeline" in shown, page


def test_before_the_first_build_the_app_says_how_to_build_the_marts(marts, monkeypatch, tmp_path):
    monkeypatch.setenv("ODAVL_MARTS_PATH", str(tmp_path / "none.duckdb"))
    at = no_exceptions(app_for(ALICE))
    assert "No marts yet" in texts(at) and "odavl-pipeline run" in texts(at)


@pytest.mark.parametrize("person", [VERA, DEV], ids=["viewer", "developer"])
def test_viewers_and_developers_cannot_open_billing(marts, person):
    at = no_exceptions(app_for(person))
    assert at.title[0].value == "ODAVL Test Org"
    with pytest.raises(ValueError, match="not a registered page|Could not find"):
        at.switch_page("views/billing.py")
    viewer = data.Viewer(person.email)
    for query in (lambda: data.billing_periods(viewer, ORG), lambda: data.billing_adjustments(viewer, ORG),
                  lambda: data.usage_events(viewer, ORG, __import__("datetime").date(2026, 11, 3), "analyses")):
        with pytest.raises(data.AccessDenied):
            query()
    assert not data.may_see_billing(viewer, ORG)


def test_a_member_of_one_organization_sees_nothing_of_another_by_any_parameter(marts):
    alice_org_name = "ODAVL Test Org"
    for query in ({"org": ORG}, {"org": ORG, "project": "web-app"},
                  {"org": "x' OR 1=1 --"}, {"org": EMPTY_ORG}):
        at = no_exceptions(app_for(BOB, query))
        shown = texts(at)
        assert "You are not a member of the organization" in shown
        assert at.title[0].value == "Enterprise Corp" and alice_org_name not in shown
        assert at.query_params["org"] == OTHER_ORG
        for page in ("views/billing.py", "views/insight.py", "views/autopilot.py", "views/guardian.py"):
            shown = texts(no_exceptions(at.switch_page(page).run()))
            assert "web-app" not in shown and "api-backend" not in shown, page
    bob = data.Viewer(BOB.email)
    window = (__import__("datetime").date(2026, 10, 1), __import__("datetime").date(2026, 11, 30))
    for org in (ORG, EMPTY_ORG, "x' OR 1=1 --", "%"):
        for query in (lambda: data.organization(bob, org), lambda: data.quota_status(bob, org),
                      lambda: data.usage_trend(bob, org, *window), lambda: data.projects(bob, org),
                      lambda: data.billing_periods(bob, org), lambda: data.data_days(bob, org),
                      lambda: data.error_trends(bob, org, None, *window),
                      lambda: data.top_signatures(bob, org, None),
                      lambda: data.fix_outcomes(bob, org, None, *window),
                      lambda: data.attestation_chains(bob, org, None),
                      lambda: data.audit_scores(bob, org, None, *window),
                      lambda: data.latest_audit_issues(bob, org, None),
                      lambda: data.usage_events(bob, org, window[0], "analyses")):
            with pytest.raises(data.AccessDenied):
                query()
    assert list(data.organizations_of(bob)["org"]) == [OTHER_ORG]
    assert list(data.organizations_of(data.Viewer("BOB@odavl.com"))["org"]) == [OTHER_ORG]


def test_filters_live_in_the_url_and_survive_a_change_of_page_and_organization(marts):
    query = {"org": ORG, "project": "api-backend", "from": "2026-11-01", "to": "2026-11-03"}
    at = no_exceptions(app_for(MAYA, query))
    assert at.selectbox(key="filter_project").value == "api-backend"
    assert at.query_params == query
    at.switch_page("views/insight.py").run()
    assert at.query_params == query and at.title[0].value == "Insight"
    (events,), = marts_rows(marts, "SELECT sum(events) FROM error_trends WHERE org = ? AND "
                            "project = 'api-backend' AND day BETWEEN '2026-11-01' AND '2026-11-03'", ORG)
    assert metrics(no_exceptions(at))["Error events"] == f"{events:,}"
    at.selectbox(key="filter_project").set_value("").run()
    assert "project" not in no_exceptions(at).query_params

    at = no_exceptions(app_for(MAYA, query))
    at.selectbox(key="filter_org").set_value(OTHER_ORG).run()
    assert no_exceptions(at).query_params == {"org": OTHER_ORG, "from": "2026-11-01",
                                              "to": "2026-11-03"}  # its projects differ
    assert at.title[0].value == "Enterprise Corp"
    at.switch_page("views/autopilot.py").run()
    assert no_exceptions(at).query_params["org"] == OTHER_ORG
    with pytest.raises(ValueError):  # MAYA is only a VIEWER there: no billing page
        at.switch_page("views/billing.py")
