"""The calendar tier of the Overview and Billing pages: at each instant of tests/clocks.py, a
little usage in the previous and the current period of two organizations (PRO on a period
anchored a few days back, FREE on calendar months), the marts built as of that instant, and
the pages through AppTest: the Overview shows the period containing the instant with the marts'
quota numbers; Billing calls a closed period billed and an open one open, so far."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from dashlib import ui
from odavl_pipeline import clock
from odavl_pipeline.db.server import connect
from odavl_pipeline.marts.build import DEFAULT_GRACE, refresh_marts
from odavl_pipeline.settings import Settings

from .dashboards_fixtures import (
    ALICE,
    environment,
    headers,
    markdown,
    metrics,
    no_exceptions,
    signed_in_app,
    texts,
)
from .marts_helpers import add_usage, anchor_subscription, rows
from .records import ORG

pytestmark = [pytest.mark.calendar, pytest.mark.usefixtures("app_test_leaves_main_alone")]

FREE_ORG = "calendar-free"  # FREE without a subscription: calendar months; ALICE owns it
EVENT_TYPES = {
    "analyses": "insight_analysis",
    "fixes": "autopilot_job",
    "audits": "guardian_test_run",
}
STATES = {True: "closed, billed", False: "open, so far"}
DAY = "Day of occurrence (UTC)"  # the header of the drill-down's table of days


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def months_after(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (or earlier): for days up to the 28th."""
    assert moment.day <= 28
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1)


@dataclass(frozen=True)
class Period:
    """A billing period and its usage: per metric, the instants and quantities of its events."""

    start: datetime
    end: datetime
    events: dict[str, list[tuple[datetime, int]]]

    def used(self, metric: str) -> int:
        return sum(quantity for _, quantity in self.events.get(metric, []))

    @property
    def key(self) -> str:
        """How the Billing page's URL and drill-down name it: its first day (at midnight)."""
        return f"{self.start:%Y-%m-%d}"

    def labels(self, years: set[int]) -> set[str]:
        """Its label by its first and last day, both included: with the year when it is not
        this year (one of `years`: the clock may cross a new year while a page is drawn), with
        both when it crosses one."""
        first, last = self.start.date(), (self.end - timedelta(days=1)).date()  # midnight ends
        if first.year != last.year:
            return {f"{first:%b %d, %Y} – {last:%b %d, %Y}"}
        return {
            f"{first:%b %d} – {last:%b %d}"
            if year == first.year
            else f"{first:%b %d} – {last:%b %d, %Y}"
            for year in years
        }


@dataclass(frozen=True)
class Calendar:
    """The instant, the marts (their settings, and the usage cut they were built as of) and,
    per organization, its previous and current period."""

    now: datetime
    settings: Settings
    as_of: datetime
    periods: dict[str, tuple[Period, Period]]

    def closed(self, period: Period) -> bool:
        """Whether the build closed `period`: it ended a grace or more before the build."""
        return period.end + DEFAULT_GRACE <= self.as_of


def add_events(conn, org: str, period: Period) -> None:
    """The period's usage events, each arriving as it occurs."""
    for metric, events in period.events.items():
        for number, (moment, quantity) in enumerate(events):
            add_usage(
                conn,
                org,
                f"{metric}-{moment:%Y%m%dT%H%M%S}-{number}",
                moment.isoformat(),
                moment.isoformat(),
                event_type=EVENT_TYPES[metric],
                quantity=quantity,
            )


@pytest.fixture
def calendar(calendar_now, settings, monkeypatch) -> Calendar:
    """ORG on a period that began a few days before the instant (on a day up to the 28th), so
    its previous period is closed; FREE_ORG on calendar months, its previous month closed or
    still in its grace; each with usage at its periods' edges; the marts built at the instant."""
    now, second = calendar_now, timedelta(seconds=1)
    start = midnight(now - timedelta(days=3))
    start = start.replace(day=min(start.day, 28))
    before = months_after(start, -1)
    month = midnight(now).replace(day=1)  # FREE's current period
    periods = {
        ORG: (
            Period(
                before,
                start,
                {"analyses": [(before + timedelta(days=1), 7)], "audits": [(start - second, 1)]},
            ),
            Period(
                start,
                months_after(start, 1),
                {
                    "analyses": [(start, 2), (now - timedelta(hours=2), 3)],
                    "fixes": [(now - timedelta(hours=1), 2)],
                },
            ),
        ),
        FREE_ORG: (
            Period(
                months_after(month, -1),
                month,
                {"analyses": [(months_after(month, -1), 1), (month - second, 4)]},
            ),
            Period(month, months_after(month, 1), {"analyses": [(month, 1)]}),  # maybe `now`
        ),
    }
    with connect(settings) as conn:  # after the clock is set: PostgreSQL follows it
        conn.execute(
            "INSERT INTO organizations (name, slug, tier, status) "
            "VALUES ('Calendar Free', %s, 'FREE', 'ACTIVE')",
            (FREE_ORG,),
        )
        conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, role) "
            "SELECT o.id, u.id, 'OWNER' FROM organizations AS o, users AS u "
            "WHERE o.slug = %s AND u.email = %s",
            (FREE_ORG, ALICE.email),
        )
        conn.commit()
        anchor_subscription(conn, ORG, start.isoformat(), months_after(start, 1).isoformat())
        for org, both in periods.items():
            for period in both:
                add_events(conn, org, period)
    as_of = refresh_marts(settings).as_of  # the clock's: the instant
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)
    return Calendar(now, settings, as_of, periods)


def test_the_overview_and_billing_show_the_periods_of_the_instant(calendar):
    assert calendar.now <= calendar.as_of < calendar.now + timedelta(minutes=1)
    for org in (ORG, FREE_ORG):
        years = {clock.today().year}
        at = no_exceptions(signed_in_app(ALICE, {"org": org}))
        years.add(clock.today().year)
        overview_shows_the_current_period(at, calendar, org, years)
        billing = no_exceptions(at.switch_page("views/billing.py").run())
        years.add(clock.today().year)
        billing_shows_closed_periods_billed_and_open_ones_so_far(billing, calendar, org, years)


def overview_shows_the_current_period(at, calendar: Calendar, org: str, years: set[int]) -> None:
    """The period containing the instant, with the marts' quota numbers, state and forecast;
    `years` holds the clock's years while the page was drawn."""
    _, current = calendar.periods[org]
    quotas = rows(
        calendar.settings,
        "SELECT metric, period_start, period_end, used, quota, pct_used, status, projected, "
        "projected_exhaustion FROM quota_status WHERE org = ? "
        "ORDER BY list_position(['analyses', 'fixes', 'audits'], metric)",
        [org],
    )
    assert current.start <= calendar.now < current.end
    assert [(m, s, e, u) for m, s, e, u, *_ in quotas] == [
        (metric, current.start, current.end, current.used(metric))
        for metric in ("analyses", "fixes", "audits")
    ]
    shown = metrics(at)
    assert shown["Billing period"] in current.labels(years)
    assert any(
        f"Current period {label}, from {current.start:%Y-%m-%d %H:%M} UTC, both days included; "
        f"figures as of {calendar.as_of:%Y-%m-%d %H:%M} UTC" in caption.value
        for caption in at.caption
        for label in current.labels(years)
    )
    for metric, _, end, used, quota, pct, status, projected, exhaustion in quotas:
        state = ui.quota_state(status, exhaustion, end)
        assert f"**{metric.title()}** · {ui.STATE_SYMBOLS[state]} {state}" in markdown(at)
        assert f"{used:,} of {quota:,} used ({pct:.1f} %)" in markdown(at)
        assert shown[f"{metric.title()} projected at period end"] == f"{projected:,}"
        assert shown[f"{metric.title()} quota exhausted on"] == (
            f"{exhaustion:%Y-%m-%d}" if exhaustion else "not at this rate"
        )
    assert "None" not in texts(at), org


def billing_shows_closed_periods_billed_and_open_ones_so_far(
    at, calendar: Calendar, org: str, years: set[int]
) -> None:
    """Both periods with their start, end, use and state; each one's drill-down in its words."""
    previous, current = calendar.periods[org]
    assert not calendar.closed(current)
    if org == ORG:
        assert calendar.closed(previous)  # it ended days before the instant
    table = at.dataframe[0].value
    assert sorted(
        zip(
            table["period_start"],
            table["period_end"],
            table["metric"],
            table["used"],
            table["state"],
            strict=True,
        )
    ) == sorted(
        (
            period.start,
            period.end,
            metric,
            period.used(metric),
            STATES[calendar.closed(period)],
        )
        for period in (previous, current)
        for metric in ("analyses", "fixes", "audits")
    )
    assert at.selectbox(key="drill_period").value == current.key  # the latest, first
    for period in (current, previous):
        if period is previous:
            years.add(clock.today().year)
            at.selectbox(key="drill_period").set_value(period.key).run()
            years.add(clock.today().year)
        closed = calendar.closed(period)
        assert at.selectbox(key="drill_period").format_func(period.key) in {
            f"{label} ({'closed' if closed else 'open'})" for label in period.labels(years)
        }
        counted = "billed for" if closed else "used so far in the open period"
        used = period.used("analyses")
        assert any(
            f"**{used:,} analyses** {counted} {label}, from" in " ".join(markdown(at))
            for label in period.labels(years)
        )
        days = next(t for t in no_exceptions(at).dataframe if DAY in headers(t))
        assert ("Billed here" if closed else "Counted here so far") in headers(days)
        assert days.value["billed"].sum() == used
        if not closed:
            assert not any("billed" in text.lower() for text in markdown(at))
        options = " ".join(
            option
            for key in ("drill_period", "drill_metric", "drill_day")
            for option in at.selectbox(key=key).options
        )
        assert "None" not in texts(at) and "None" not in options, (org, period)


def test_late_usage_is_one_number_on_the_overview_and_the_billing_page(calendar):
    """Usage of ORG's closed period that arrives now is billed in the current period: the
    Overview counts it in the quota and says where it came from, Billing lists it."""
    previous, current = calendar.periods[ORG]
    late_at = clock.now()  # after the build that closed the previous period
    with connect(calendar.settings) as conn:
        add_usage(
            conn,
            ORG,
            "late-1",
            (previous.start + timedelta(hours=1)).isoformat(),
            late_at.isoformat(),
            quantity=5,
        )
    refresh_marts(calendar.settings)
    own = current.used("analyses")
    assert rows(
        calendar.settings,
        "SELECT used FROM quota_status WHERE org = ? AND metric = 'analyses'",
        [ORG],
    ) == [(own + 5,)]

    at = no_exceptions(signed_in_app(ALICE, {"org": ORG}))
    assert f"{own + 5:,} of 500 used" in "\n".join(markdown(at))
    assert (
        f"{own:,} used in this period, +5 late usage of the period from {previous.start:%Y-%m-%d}"
        in [caption.value for caption in at.caption]
    )
    years = {clock.today().year}
    billing = no_exceptions(at.switch_page("views/billing.py").run())
    years.add(clock.today().year)
    adjustments = next(f.value for f in billing.dataframe if "kind" in f.value)
    assert list(zip(adjustments["kind"], adjustments["quantity"], strict=True)) == [
        ("Late usage", 5)
    ]
    [(into, since)] = zip(adjustments["into"], adjustments["since"], strict=True)
    assert into in current.labels(years) and since in previous.labels(years)
