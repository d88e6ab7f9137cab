"""Which quota thresholds are crossed, and recording each alert once, ever.

Each organization's thresholds (alerts/thresholds.py; by default 80 %, 100 % and the forecast):

- a percentage `p` when `used × 100 ≥ p × quota`, in integers, and something was used: a quota
  of 0 is past every percentage at the first unit used, as its status is `exceeded` then, and
  past none before (status `ok`). With 80 and 100 this is the status rule exactly
  (billing/quota.py): `80` for `warning` or `exceeded`, `100` for `exceeded`; a jump past
  several records each;
- `forecast` when the quota is at risk, as the dashboards show it (`quota_state`): status `ok`,
  and the forecast reaches the quota (`projected_exhaustion`, a UTC day) before the period ends.
"""

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime

import psycopg

from odavl_pipeline.alerts.thresholds import (
    DEFAULT_THRESHOLDS,
    FORECAST,
    AlertThresholds,
    of_organizations,
)
from odavl_pipeline.billing.quota import AT_RISK, quota_state, quota_status

_UID_NAMESPACE = uuid.UUID("6f1c2a4e-9d0b-4e57-8a43-0d5f8e6b7c21")
QUOTA_COLUMNS = (
    "org",
    "period_start",
    "period_end",
    "metric",
    "used",
    "quota",
    "status",
    "projected",
    "projected_exhaustion",
    "as_of",
)


def percent_crossed(used: int, quota: int, percent: int) -> bool:
    """Whether `used` is at least `percent` % of `quota` (integers, exact), once anything is."""
    return used > 0 and used * 100 >= percent * quota


def thresholds_crossed(
    used: int,
    quota: int,
    projected_exhaustion: date | None,
    period_end: datetime,
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
) -> tuple[str, ...]:
    """The `thresholds` a quota_status row has crossed, by name: the percentages ascending,
    then `forecast`."""
    crossed = [str(p) for p in thresholds.percents if percent_crossed(used, quota, p)]
    state = quota_state(quota_status(used, quota), projected_exhaustion, period_end)
    if thresholds.forecast and state == AT_RISK:
        crossed.append(FORECAST)
    return tuple(crossed)


def alert_uid(org: str, period_start: datetime, metric: str, threshold: str) -> str:
    """The alert's stable id, the same whenever and however often it is detected."""
    key = f"{org}|{period_start.astimezone(UTC).isoformat()}|{metric}|{threshold}"
    return f"qa_{uuid.uuid5(_UID_NAMESPACE, key).hex}"


def record_alerts(conn: psycopg.Connection, rows: Iterable[Mapping]) -> list[str]:
    """Records the alerts of quota_status `rows` (mappings with QUOTA_COLUMNS), each by its
    organization's thresholds, and commits; returns the uids of those new. An alert already
    recorded, by this process or a concurrent one, is left as it is: the unique (organization,
    period_start, metric, threshold) decides."""
    rows = list(rows)
    try:
        chosen = of_organizations(conn, (row["org"] for row in rows))
        alerts = [
            (alert_uid(row["org"], row["period_start"], row["metric"], threshold), threshold, row)
            for row in rows
            for threshold in thresholds_crossed(
                row["used"],
                row["quota"],
                row["projected_exhaustion"],
                row["period_end"],
                chosen.get(row["org"], DEFAULT_THRESHOLDS),
            )
        ]
        columns = [[uid for uid, _, _ in alerts], [threshold for _, threshold, _ in alerts]]
        columns += [[row[name] for _, _, row in alerts] for name in QUOTA_COLUMNS]
        new = [uid for (uid,) in conn.execute(_RECORD_ALERTS, columns).fetchall()]
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return new


# one statement for every alert of a build; those already recorded are left as they are
_RECORD_ALERTS = """
    INSERT INTO quota_alerts (uid, organization_id, period_start, period_end, metric, threshold,
        used, quota, status, projected, projected_exhaustion, as_of)
    SELECT a.uid, o.id, a.period_start, a.period_end, a.metric, a.threshold, a.used, a.quota,
           a.status, a.projected, a.projected_exhaustion, a.as_of
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[],
                %s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::date[],
                %s::timestamptz[])
         AS a(uid, threshold, org, period_start, period_end, metric, used, quota, status,
              projected, projected_exhaustion, as_of)
    JOIN organizations AS o ON o.slug = a.org
    ORDER BY a.uid
    ON CONFLICT DO NOTHING
    RETURNING uid
"""


def record_from_marts(settings) -> list[str]:
    """Detects and records the alerts of the published quota_status; the new alerts' uids."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.marts.store import read_quota_status

    rows = read_quota_status(settings.marts_path)
    with connect(settings) as conn:
        return record_alerts(conn, rows)
