"""Staff and links through Streamlit's AppTest on the demo marts: staff find an organization by
name or slug and open its pages read-only, names carry their slugs and plans read one way; a
member is refused another organization and the Staff page in words; a link's dates, project or
organization that cannot be used are named in one warning with what is shown instead."""

import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashlib import data, filters, session_routes, ui
from odavl_pipeline import clock

from .clocks import ClockSetter
from .dashboards_fixtures import (
    ALICE,
    BOB,
    STAFF,
    headers,
    marts_rows,
    metrics,
    no_exceptions,
    signed_in_app,
    texts,
)
from .records import ORG, OTHER_ORG

PLANS = {"Free", "Pro", "Enterprise"}


pytestmark = pytest.mark.usefixtures("app_test_leaves_main_alone", "dashboard_environment")


def staff_page(query: dict | None = None):
    return no_exceptions(signed_in_app(STAFF, query).switch_page("views/staff.py").run())


def organizations_table(at):
    """The Staff page's organizations table, found by its headers."""
    return next(table for table in at.dataframe if "Members" in headers(table))


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]


# --- staff ----------------------------------------------------------------------------------


@pytest.mark.parametrize("search", ["test ORG", "ENTERPRISE-c", "o", "  corp  ", "zz-none"])
def test_staff_search_organizations_by_any_part_of_the_name_or_slug_in_any_case(marts, search):
    at = staff_page()
    every = dict(marts_rows(marts, "SELECT org, name FROM organizations"))
    assert sorted(organizations_table(at).value["org"]) == sorted(every)
    at.text_input(key="staff_search").input(search).run()
    wanted = search.strip().lower()
    expected = sorted(
        org for org, name in every.items() if wanted in org.lower() or wanted in name.lower()
    )
    if not expected:
        assert f"No organization's name or slug contains {search.strip()!r}" in texts(at)
        assert not [table for table in at.dataframe if "Members" in headers(table)]
        return
    assert sorted(organizations_table(at).value["org"]) == expected
    assert sorted(at.selectbox(key="staff_open").options) == sorted(
        f"{every[org]} ({org})" for org in expected
    )


def test_the_staff_page_puts_each_slug_beside_its_name_and_spells_plans_one_way(marts):
    at = staff_page()
    names = dict(marts_rows(marts, "SELECT org, name FROM organizations"))
    tiers = dict(marts_rows(marts, "SELECT org, tier FROM organizations"))
    organizations = organizations_table(at)
    attention = next(table for table in at.dataframe if "Exhausted on" in headers(table))
    for table in (organizations, attention):
        assert headers(table)[:3] == ["Organization", "Slug", "Plan"]
        rows = table.value
        assert [names[org] for org in rows["org"]] == list(rows["name"])
        assert [ui.PLAN_NAMES[tiers[org]] for org in rows["org"]] == list(rows["tier"])
        assert set(rows["tier"]) <= PLANS
    chart = next(c for c in at.get("vega_lite_chart") if "by plan tier" in c.proto.spec)
    assert '"PRO"' not in chart.proto.spec and '"Pro"' in chart.proto.spec
    overview = no_exceptions(signed_in_app(ALICE))
    assert metrics(overview)["Plan"] == ui.PLAN_NAMES[tiers[ORG]] == "Pro"
    assert [ui.plan_name(code) for code in ("FREE", "PRO", "ENTERPRISE")] == [
        "Free",
        "Pro",
        "Enterprise",
    ]


def test_staff_open_an_organization_and_read_its_billing_without_changing_anything(marts):
    at = staff_page()
    assert "You are not a member of any organization yet" in texts(
        no_exceptions(signed_in_app(STAFF))
    )
    at.text_input(key="staff_search").input("enterprise").run()
    at.selectbox(key="staff_open").select(OTHER_ORG).run()
    at.button(key="staff_open_button").click().run()
    no_exceptions(at)
    assert at.title[0].value == "Enterprise Corp"
    assert metrics(at)["Your role"] == "Staff, read-only"
    assert [i.value for i in at.sidebar.info] == [
        "You are viewing this organization as ODAVL staff: read-only."
    ]
    assert at.query_params["org"] == OTHER_ORG
    assert at.selectbox(key="filter_org").value == OTHER_ORG

    no_exceptions(at.switch_page("views/billing.py").run())
    assert at.title[0].value == "Billing"
    ((periods,),) = marts_rows(
        marts, "SELECT count(*) FROM billing_periods WHERE org = ?", OTHER_ORG
    )
    assert len(at.dataframe[0].value) == periods > 0
    assert [i.value for i in at.sidebar.info] == [
        "You are viewing this organization as ODAVL staff: read-only."
    ]
    no_exceptions(at.switch_page("views/alerts.py").run())  # where settings change: not theirs
    assert "The Alerts page is for the owners and admins" in " ".join(e.value for e in at.error)
    assert not at.main.text_input and not at.main.button and not at.dataframe

    staff = data.Viewer(STAFF.email)
    assert data.role_in(staff, OTHER_ORG) is None
    assert data.may_see_billing(staff, OTHER_ORG) and data.reads_as_staff(staff, OTHER_ORG)
    assert not data.may_change(staff, OTHER_ORG)
    assert data.may_change(data.Viewer(BOB.email), OTHER_ORG)  # an ADMIN member
    assert not data.reads_as_staff(data.Viewer(BOB.email), OTHER_ORG)


def test_a_staff_link_opens_any_organization_and_names_one_that_does_not_exist(marts):
    shared = no_exceptions(signed_in_app(STAFF, {"org": ORG}))
    assert shared.title[0].value == "ODAVL Test Org" and not warnings(shared)
    unknown = no_exceptions(signed_in_app(STAFF, {"org": "no-such-org"}))
    (warning,) = warnings(unknown)
    assert "There is no organization 'no-such-org'" in warning
    assert "Shown instead: no organization" in warning


def test_the_pages_reach_the_database_and_clock_of_their_environment_not_an_earlier_one(
    monkeypatch,
):
    """Nothing of an earlier environment is kept in the process: the Alerts page once reached
    the database of the test run before it in the same process (its URL found once)."""

    def reached(name: str) -> str:
        monkeypatch.setenv("ODAVL_DATABASE_URL", f"postgresql+psycopg://odavl@127.0.0.1:5/{name}")
        return session_routes.database_url()

    first = reached("first")
    assert urlsplit(first).path == "/first" and urlsplit(reached("second")).path == "/second"
    assert reached("first") == first
    ClockSetter(monkeypatch)("2031-06-15T08:00:00Z")
    moved = reached("first")
    assert moved != first and urlsplit(moved).path == "/first"
    assert parse_qs(urlsplit(moved).query)["options"] == [clock.database_options()]


# --- members -----------------------------------------------------------------------------


def test_a_member_is_refused_another_organization_and_told_what_is_shown(marts):
    at = no_exceptions(signed_in_app(BOB, {"org": ORG, "project": "web-app"}))
    (warning,) = warnings(at)
    start, end = at.date_input(key="filter_dates").value
    assert warning == (
        "You are not a member of the organization 'odavl-test-org': nothing of it is shown, "
        "nor the project the link names. Shown instead: Enterprise Corp (enterprise-corp), "
        f"every project, {start} – {end} (UTC)."
    )
    assert at.title[0].value == "Enterprise Corp" and "ODAVL Test Org" not in texts(at)
    assert not at.sidebar.info  # a member reads as a member
    assert at.query_params["org"] == OTHER_ORG


def test_a_member_opening_the_staff_page_is_told_it_is_for_staff(marts):
    at = no_exceptions(signed_in_app(ALICE).switch_page("views/staff.py").run())
    assert [e.value for e in at.error] == [ui.STAFF_ONLY]
    assert not at.dataframe and not at.title
    assert not at.sidebar.date_input  # no filter of a page that shows nothing
    with pytest.raises(data.AccessDenied):
        data.all_organizations(data.Viewer(ALICE.email))
    assert list(data.organizations_of(data.Viewer(ALICE.email))["org"]) == [ORG]


# --- links --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, said",
    [
        (
            {"from": "2026-11-31", "to": "2026-11-05"},
            "The dates in the link were ignored: from='2026-11-31' is not a day (YYYY-MM-DD).",
        ),
        (
            {"from": "2026-11-05", "to": "2026-11-01"},
            "The dates in the link were ignored: from=2026-11-05 is after to=2026-11-01.",
        ),
        (
            {"from": "2026-11-01"},
            "The dates in the link were ignored: a range needs both from= and to=.",
        ),
        (
            {"org": ORG, "project": "no-such-project", "from": "soon", "to": "later"},
            "The project 'no-such-project' is not one of ODAVL Test Org (odavl-test-org)'s "
            "projects. The dates in the link were ignored: from='soon' is not a day "
            "(YYYY-MM-DD) and to='later' is not a day (YYYY-MM-DD).",
        ),
    ],
    ids=["invalid", "reversed", "half", "project-and-dates"],
)
def test_a_link_that_cannot_be_used_says_what_was_ignored_and_what_is_shown(marts, query, said):
    at = no_exceptions(signed_in_app(ALICE, query))
    last = data.data_days(data.Viewer(ALICE.email), ORG)[1]
    start, end = last - timedelta(days=filters.DEFAULT_DAYS - 1), last
    assert warnings(at) == [
        f"{said} Shown instead: ODAVL Test Org (odavl-test-org), every project, "
        f"{start} – {end} (UTC)."
    ]
    assert at.date_input(key="filter_dates").value == (start, end)
    assert (at.query_params["from"], at.query_params["to"]) == (str(start), str(end))
    assert "project" not in at.query_params
    no_exceptions(at.switch_page("views/insight.py").run())
    assert len(warnings(at)) == 1  # said on every page until a filter changes
    at.date_input(key="filter_dates").set_value((date(2026, 11, 1), date(2026, 11, 3))).run()
    assert not warnings(no_exceptions(at))


def test_a_link_that_can_be_used_says_nothing(marts):
    query = {"org": ORG, "project": "web-app", "from": "2026-11-01", "to": "2026-11-03"}
    at = no_exceptions(signed_in_app(ALICE, query))
    assert not warnings(at) and not at.error
    assert at.query_params == query


# --- what a link's texts become --------------------------------------------------------------

MARKDOWN = "\\`*_[]<>~$|:"


def _link_texts() -> st.SearchStrategy[str | None]:
    days = st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat)
    return st.none() | st.text(max_size=30) | days | days.map(lambda day: day.replace("-", ""))


@given(start=_link_texts(), end=_link_texts())
def test_link_dates_are_a_range_of_two_days_or_a_reason(start, end):
    dates, reason = filters.link_dates(start, end)
    if not start and not end:
        assert (dates, reason) == (None, None)
        return
    strict = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
    if dates is not None:
        assert reason is None
        assert strict.fullmatch(start) and strict.fullmatch(end)
        assert dates == (date.fromisoformat(start), date.fromisoformat(end))
        assert dates[0] <= dates[1]
    else:
        assert reason.startswith("The dates in the link were ignored: ")


@given(text=st.text())
def test_a_quoted_link_value_is_cut_short_and_formats_nothing(text):
    shown = filters.quoted(text)
    assert shown[0] == shown[-1] == "'"
    inner = shown[1:-1]
    assert re.fullmatch(
        r"(?:[^%s]|\\[%s])*" % ((re.escape(MARKDOWN),) * 2), inner.removesuffix("…")
    )
    assert not re.search(r"\s", inner.replace(" ", ""))  # one line
    unescaped = re.sub(r"\\(.)", r"\1", inner)
    one_line = re.sub(r"\s", " ", text)
    if len(text) <= filters.QUOTED_CHARACTERS:
        assert unescaped == one_line
    else:
        assert unescaped == one_line[: filters.QUOTED_CHARACTERS] + "…"
