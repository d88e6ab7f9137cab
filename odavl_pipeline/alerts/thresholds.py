"""An organization's quota alert thresholds: the percentages of a quota that alert, and whether
the forecast does (docs/operations.md, "Quota alerts"). No row is the catalogue's defaults.

A threshold is named in `quota_alerts.threshold` by the text of its integer (`"80"`, `"100"`,
`"250"`) or `"forecast"`, so the alerts of 80 and 100 keep their names and uids.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from odavl_pipeline.alerts.access import AlertSettingsRefused, managed_by, organization
from odavl_pipeline.billing.catalogue import ALERT_THRESHOLDS

FORECAST = "forecast"
# the bounds of the models' CHECK `percents_bounded` (organization_alert_thresholds)
SMALLEST_PERCENT, LARGEST_PERCENT = 1, 1000
MOST_PERCENTS = 10


@dataclass(frozen=True)
class AlertThresholds:
    percents: tuple[int, ...]  # ascending, distinct, each within the bounds
    forecast: bool

    @property
    def names(self) -> tuple[str, ...]:
        """The thresholds as alerts name them: the percentages ascending, then `forecast`."""
        return (*map(str, self.percents), *((FORECAST,) if self.forecast else ()))

    def describe(self) -> str:
        percents = ", ".join(f"{percent} %" for percent in self.percents) or "no percentage"
        return f"{percents}; forecast {'on' if self.forecast else 'off'}"


DEFAULT_THRESHOLDS = AlertThresholds(
    tuple(int(name) for name in ALERT_THRESHOLDS if name != FORECAST), FORECAST in ALERT_THRESHOLDS
)


@dataclass(frozen=True)
class Settled:
    """An organization's thresholds, and who set them when (None: the defaults)."""

    org: str
    thresholds: AlertThresholds
    updated_at: datetime | None
    updated_by: str | None


def checked(percents: Iterable[object], forecast: bool) -> AlertThresholds:
    """The thresholds of `percents` (in any order, repeats ignored) and `forecast`; refused in
    one line when a percentage is no whole number within the bounds, or there are too many."""
    chosen: set[int] = set()
    for percent in percents:
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int)
            or not SMALLEST_PERCENT <= percent <= LARGEST_PERCENT
        ):
            raise AlertSettingsRefused(
                f"{percent!r} is no percentage a threshold takes: whole numbers from "
                f"{SMALLEST_PERCENT} to {LARGEST_PERCENT}"
            )
        chosen.add(percent)
    if len(chosen) > MOST_PERCENTS:
        raise AlertSettingsRefused(
            f"{len(chosen)} percentages: an organization has at most {MOST_PERCENTS}"
        )
    return AlertThresholds(tuple(sorted(chosen)), bool(forecast))


def parse_percents(text: str) -> tuple[int, ...]:
    """The percentages of `P[,P…]` (or `none`), each checked; refused in one line otherwise."""
    items = [item.strip().removesuffix("%").strip() for item in text.split(",")]
    if text.strip().lower() == "none":
        return ()
    if not all(item.isascii() and item.isdigit() for item in items):
        raise AlertSettingsRefused(
            f"--percent takes whole percentages separated by commas (e.g. 50,80,100) or "
            f"`none`, not {text!r}"
        )
    # more digits than the largest percentage has: out of bounds, without converting them
    return checked(
        (int(item) if len(item.lstrip("0")) <= 4 else item for item in items), True
    ).percents


def of_organizations(conn: psycopg.Connection, slugs: Iterable[str]) -> dict[str, AlertThresholds]:
    """The thresholds of each organization of `slugs` that chose its own; the others take
    DEFAULT_THRESHOLDS."""
    rows = conn.execute(
        "SELECT o.slug, t.percents, t.forecast FROM organization_alert_thresholds AS t "
        "JOIN organizations AS o ON o.id = t.organization_id WHERE o.slug = ANY(%s)",
        (sorted(set(slugs)),),
    ).fetchall()
    return {slug: AlertThresholds(tuple(percents), forecast) for slug, percents, forecast in rows}


def show(conn: psycopg.Connection, org: str, by: str | None = None) -> Settled:
    """The thresholds of `org`; with `by`, only for its OWNER or ADMIN (the dashboards' viewer),
    without, for the operator."""
    with conn.transaction():
        found = managed_by(conn, org, by)[0] if by is not None else organization(conn, org)
        row = conn.execute(
            "SELECT percents, forecast, updated_at, updated_by FROM organization_alert_thresholds "
            "WHERE organization_id = %s",
            (found.id,),
        ).fetchone()
    if row is None:
        return Settled(found.slug, DEFAULT_THRESHOLDS, None, None)
    percents, forecast, updated_at, updated_by = row
    return Settled(found.slug, AlertThresholds(tuple(percents), forecast), updated_at, updated_by)


def set_thresholds(
    conn: psycopg.Connection,
    org: str,
    by: str,
    percents: Iterable[int] | None = None,
    forecast: bool | None = None,
) -> Settled:
    """Sets the thresholds of `org`, by its OWNER or ADMIN `by`: the percentages, the forecast
    or both (None keeps what it is). The alerts already recorded stay; a threshold newly crossed
    alerts at the next marts build."""
    if percents is not None:
        percents = list(checked(percents, True).percents)
    with conn.transaction():
        found, email = managed_by(conn, org, by)
        row = conn.execute(
            "INSERT INTO organization_alert_thresholds AS t (organization_id, percents, forecast, "
            "updated_by) VALUES (%(id)s, "
            "coalesce(%(percents)s::int[], %(default_percents)s::int[]), "
            "coalesce(%(forecast)s::boolean, %(default_forecast)s), %(by)s) "
            "ON CONFLICT (organization_id) DO UPDATE SET "
            "percents = coalesce(%(percents)s::int[], t.percents), "
            "forecast = coalesce(%(forecast)s::boolean, t.forecast), "
            "updated_by = excluded.updated_by, updated_at = odavl_now() "
            "RETURNING percents, forecast, updated_at",
            {
                "id": found.id,
                "percents": percents,
                "default_percents": list(DEFAULT_THRESHOLDS.percents),
                "forecast": forecast,
                "default_forecast": DEFAULT_THRESHOLDS.forecast,
                "by": email,
            },
        ).fetchone()
    assert row is not None  # the upsert returns its one row, inserted or updated
    return Settled(found.slug, AlertThresholds(tuple(row[0]), row[1]), row[2], email)
