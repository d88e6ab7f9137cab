"""Every query of the dashboards, against the DuckDB marts opened read-only.

Each function takes the signed-in `Viewer` and checks, on the same connection and snapshot as
the query, that the viewer may see what is asked: a member of the organization (OWNER or ADMIN
for billing), or staff, who read the staff view and every organization's pages (never writing:
`may_change`). A refused request raises `AccessDenied` and returns
nothing, whatever the URL or the widgets said. SQL is parameterized; results are cached per
viewer, query, parameters and version of the marts file, so a rebuild is seen at once and one
person's cache never serves another.
"""

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from odavl_pipeline.billing.catalogue import QUOTA_METRICS, WARNING_PCT
from odavl_pipeline.domain.records import AUDIT_SCORES
from odavl_pipeline.marts import trace
from odavl_pipeline.marts.store import MartsNotBuilt, facts_dir, open_marts
from odavl_pipeline.settings import Settings, secret_value

BILLING_ROLES = ("OWNER", "ADMIN")
EVERY_ROLE = ("OWNER", "ADMIN", "DEVELOPER", "VIEWER")
CACHE_SECONDS = 300
EVENTS_SHOWN = 5_000  # rows of one day's usage events sent to the browser at most


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, by the email their sign-in proved."""

    email: str

    @property
    def staff(self) -> bool:
        return is_staff(self.email)


class AccessDenied(Exception):
    """The viewer may not see this organization or this view."""


def is_staff(email: str) -> bool:
    """ODAVL's own analysts: the emails listed in ODAVL_STAFF_EMAILS (comma-separated)."""
    return email.strip().lower() in Settings.from_env().staff_emails


def marts_path() -> Path:
    return Settings.from_env().marts_path


def marts_version(path: Path) -> tuple[int, int, int]:
    """Identity of the published file: the builder replaces it by rename, so a new build has a
    new inode (and mtime)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise MartsNotBuilt(
            f"no marts at {path}: run `odavl-pipeline run` (or `odavl-pipeline demo`) first"
        ) from None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@st.cache_resource(max_entries=2, show_spinner=False)
def _database(path: str, version: tuple[int, int, int]) -> duckdb.DuckDBPyConnection:
    """One read-only connection per version of the marts file, shared by every session
    (`open_marts` attaches the file as it is now, never a replaced one)."""
    return open_marts(Path(path))


def _cursor(path: Path) -> duckdb.DuckDBPyConnection:
    con = _database(str(path), marts_version(path)).cursor()  # one per query: thread-safe
    con.execute("USE marts")
    con.execute("SET TimeZone = 'UTC'")
    return con


def _allowed(
    con: duckdb.DuckDBPyConnection, email: str, org: str | None, roles: tuple[str, ...]
) -> bool:
    """Whether `email` may read `org` (None: the staff view): a member with one of `roles`, or
    staff, who read every organization's pages, Billing included (`may_change` never lets them
    write)."""
    if is_staff(email):
        return True
    if org is None:
        return False
    row = con.execute(
        "SELECT count(*) FROM memberships WHERE org = ? AND lower(email) = lower(?) "
        "AND list_contains(?, role)",
        [org, email, list(roles)],
    ).fetchone()
    assert row is not None  # count(*) returns one row
    return bool(row[0])


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=2_000)
def _cached(
    email: str,
    org: str | None,
    roles: tuple[str, ...],
    sql: str,
    parameters: tuple,
    path: str,
    version: tuple[int, int, int],
) -> pd.DataFrame:
    """Check access, then run the query, both on one connection to one version of the file.
    Refusals raise and so are never cached."""
    con = _cursor(Path(path))
    try:
        if not _allowed(con, email, org, roles):
            raise AccessDenied(f"{email} may not see {org or 'the staff view'}")
        return con.execute(sql, list(parameters)).df()
    finally:
        con.close()


def _query(
    viewer: Viewer, org: str | None, sql: str, *parameters, roles: tuple[str, ...] = EVERY_ROLE
) -> pd.DataFrame:
    """Rows of `sql` for `viewer`: `org` is the organization they must belong to with one of
    `roles`, or None for a staff-only query."""
    path = marts_path()
    return _cached(
        viewer.email.lower(), org, roles, sql, parameters, str(path), marts_version(path)
    )


def _staff_query(viewer: Viewer, sql: str, *parameters) -> pd.DataFrame:
    return _query(viewer, None, sql, *parameters)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _own_organizations(
    email: str, staff: bool, path: str, version: tuple[int, int, int]
) -> pd.DataFrame:
    con = _cursor(Path(path))
    try:
        return con.execute(
            "SELECT m.org, coalesce(o.name, m.org) AS name, o.tier, m.role FROM memberships AS m "
            "LEFT JOIN organizations AS o USING (org) WHERE lower(m.email) = lower(?) "
            "UNION ALL SELECT o.org, o.name, o.tier, NULL FROM organizations AS o WHERE ? "
            "AND NOT EXISTS (SELECT 1 FROM memberships AS m WHERE m.org = o.org "
            "AND lower(m.email) = lower(?)) "
            "ORDER BY role IS NULL, name, org",
            [email, staff, email],
        ).df()
    finally:
        con.close()


# --- who may see what ---------------------------------------------------------------


def organizations_of(viewer: Viewer) -> pd.DataFrame:
    """The organizations the viewer may open: org, name, tier, role. Their memberships first
    (role set), then, for staff, every other organization (role None: read-only)."""
    path = marts_path()
    return _own_organizations(viewer.email.lower(), viewer.staff, str(path), marts_version(path))


def role_in(viewer: Viewer, org: str) -> str | None:
    """The viewer's role in the organization as a member; None when they are not one (staff
    reading it are not)."""
    rows = organizations_of(viewer)
    match = rows.loc[rows["org"] == org, "role"]
    return None if match.empty or pd.isna(match.iloc[0]) else str(match.iloc[0])


def may_see_billing(viewer: Viewer, org: str) -> bool:
    """An OWNER or ADMIN member, or staff (read-only)."""
    return role_in(viewer, org) in BILLING_ROLES or viewer.staff


def may_change(viewer: Viewer, org: str) -> bool:
    """Whether the viewer may change the organization's settings (alert endpoints and
    thresholds): an OWNER or ADMIN member only. Staff read every organization but change none
    they are not an OWNER or ADMIN of."""
    return role_in(viewer, org) in BILLING_ROLES


def reads_as_staff(viewer: Viewer, org: str | None) -> bool:
    """Whether the viewer reads this organization as staff, not as a member: read-only."""
    return org is not None and viewer.staff and role_in(viewer, org) is None


def projects(viewer: Viewer, org: str) -> pd.DataFrame:
    return _query(
        viewer, org, "SELECT project, name, status FROM projects WHERE org = ? ORDER BY name", org
    )


def data_days(viewer: Viewer, org: str) -> tuple[date | None, date | None]:
    """First and last UTC day with any data of the organization."""
    rows = _query(
        viewer,
        org,
        "SELECT min(day) AS first, max(day) AS last FROM (SELECT day FROM usage_daily "
        "WHERE org = ? UNION ALL SELECT day FROM error_trends WHERE org = ? "
        "UNION ALL SELECT day FROM fix_outcomes WHERE org = ? "
        "UNION ALL SELECT day FROM audit_scores WHERE org = ?)",
        org,
        org,
        org,
        org,
    )
    first, last = rows.iloc[0]["first"], rows.iloc[0]["last"]
    return (None, None) if pd.isna(last) else (_day(first), _day(last))


def _day(value) -> date:
    return value.date() if isinstance(value, (datetime, pd.Timestamp)) else value


# --- overview -----------------------------------------------------------------------


def organization(viewer: Viewer, org: str) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT org, name, tier, status, has_subscription FROM organizations WHERE org = ?",
        org,
    )


def quota_status(viewer: Viewer, org: str) -> pd.DataFrame:
    """The current billing period, one row per quota metric."""
    return _query(
        viewer,
        org,
        "SELECT metric, tier, period_start, period_end, used, quota, pct_used, status, "
        "projected, projected_exhaustion, as_of FROM quota_status WHERE org = ? "
        "ORDER BY list_position(?, metric)",
        org,
        list(QUOTA_METRICS),
    )


def current_adjustments(viewer: Viewer, org: str) -> pd.DataFrame:
    """What was booked into the current period from outside it, per metric, kind and origin:
    the part of quota_status.used that did not occur in the period."""
    return _query(
        viewer,
        org,
        "SELECT a.metric, a.kind, a.from_period_start, a.batch, a.quantity "
        "FROM billing_adjustments AS a "
        "JOIN (SELECT DISTINCT org, period_start FROM quota_status) USING (org, period_start) "
        "WHERE a.org = ? ORDER BY a.metric, a.kind, a.from_period_start, a.batch",
        org,
    )


def usage_trend(viewer: Viewer, org: str, start: date, end: date) -> pd.DataFrame:
    """Usage per UTC day and metric (api_calls included) in [start, end]."""
    return _query(
        viewer,
        org,
        "SELECT day, metric, quantity, events FROM usage_daily "
        "WHERE org = ? AND day BETWEEN ? AND ? ORDER BY day, metric",
        org,
        start,
        end,
    )


def compared_periods(viewer: Viewer, org: str) -> pd.DataFrame:
    """The current billing period ('this', from quota_status) and the one before it ('last',
    from billing_periods; none before the first): `period`, `period_start`, `period_end`. Only
    their bounds: what was billed stays on the Billing page."""
    return _query(
        viewer,
        org,
        "WITH this AS (SELECT DISTINCT period_start, period_end FROM quota_status WHERE org = ?) "
        "SELECT 'this' AS period, period_start, period_end FROM this UNION ALL "
        "SELECT * FROM (SELECT DISTINCT 'last' AS period, period_start, period_end "
        "FROM billing_periods WHERE org = ? AND period_start < (SELECT min(period_start) FROM this) "
        "ORDER BY period_start DESC LIMIT 1)",
        org,
        org,
    )


# The alerts and their delivery ledger live in PostgreSQL, written by the marts build and the
# sensor `quota_alert_delivery`; the membership (or staff) is checked there, in the same query's
# snapshot.
_QUOTA_ALERTS = """
WITH viewer AS (
    SELECT o.id FROM organizations AS o
    WHERE o.slug = %(org)s
      AND (%(staff)s OR EXISTS (
          SELECT 1 FROM organization_members AS m JOIN users AS u ON u.id = m.user_id
          WHERE m.organization_id = o.id AND lower(u.email) = lower(%(email)s)
            AND m.role::text = ANY(%(roles)s))))
SELECT (SELECT count(*) FROM viewer) AS allowed, a.uid, a.detected_at, a.metric, a.threshold,
       a.used, a.quota, a.period_start, a.period_end, a.projected_exhaustion,
       CASE WHEN bool_or(d.state = 'sent') THEN 'sent'
            WHEN bool_or(d.state = 'pending') THEN 'sending'
            WHEN bool_or(d.state = 'failed') THEN 'failed'
            ELSE 'not sent (no webhook)' END AS delivery
FROM (SELECT 1) AS one
LEFT JOIN quota_alerts AS a ON a.organization_id IN (SELECT id FROM viewer)
LEFT JOIN quota_alert_deliveries AS d ON d.alert_id = a.id
GROUP BY a.id ORDER BY a.detected_at DESC NULLS LAST, a.metric, a.threshold
"""


def threshold_state(threshold: str) -> str:
    """The quota state an alert's threshold stands for: `at risk` for the forecast, else the
    status of a quota used to that percentage (`ok` below 80 %, `warning`, `exceeded` from
    100 %)."""
    if threshold == "forecast":
        return "at risk"
    percent = int(threshold)
    return "exceeded" if percent >= 100 else "warning" if percent >= WARNING_PCT else "ok"


def threshold_label(threshold: str) -> str:
    """`forecast`, or a percentage as `N %`."""
    return threshold if threshold == "forecast" else f"{threshold} %"


def quota_alerts(viewer: Viewer, org: str) -> pd.DataFrame:
    """The organization's quota alerts, newest first: what crossed which threshold, and whether
    it was delivered."""
    database = secret_value(Settings.from_env().database_url)
    return _quota_alerts(viewer.email.lower(), viewer.staff, org, str(database))


@st.cache_data(ttl=60, show_spinner=False, max_entries=1_000)
def _quota_alerts(email: str, staff: bool, org: str, database: str) -> pd.DataFrame:
    from odavl_pipeline.db.server import connect

    with connect(Settings.from_env()) as conn:
        cursor = conn.execute(
            _QUOTA_ALERTS,
            {"org": org, "email": email, "staff": staff, "roles": list(EVERY_ROLE)},
        )
        rows = cursor.fetchall()
        names = [column.name for column in cursor.description]
    if not rows or not rows[0][0]:
        raise AccessDenied(f"{email} may not see {org}")
    frame = pd.DataFrame([row for row in rows if row[1] is not None], columns=names)
    frame = frame.drop(columns="allowed")
    return frame.assign(state=frame["threshold"].map(threshold_state))


# --- billing ------------------------------------------------------------------------


def billing_periods(viewer: Viewer, org: str) -> pd.DataFrame:
    """Every billing period and quota metric, with the adjustments booked into it (late usage,
    corrections of closed periods)."""
    return _query(
        viewer,
        org,
        "SELECT b.period_start, b.period_end, b.metric, b.used, b.quota, b.overage, "
        "b.closed, coalesce(a.quantity, 0)::BIGINT AS adjusted_quantity, "
        "coalesce(a.events, 0)::BIGINT AS adjusted_events FROM billing_periods AS b "
        "LEFT JOIN (SELECT period_start, metric, sum(quantity) AS quantity, "
        "sum(events) AS events FROM billing_adjustments WHERE org = ? GROUP BY ALL) "
        "AS a USING (period_start, metric) WHERE b.org = ? "
        "ORDER BY b.period_start DESC, list_position(?, b.metric)",
        org,
        org,
        list(QUOTA_METRICS),
        roles=BILLING_ROLES,
    )


def billing_adjustments(viewer: Viewer, org: str) -> pd.DataFrame:
    """What was booked into each period from outside it (late usage, corrections)."""
    return _query(
        viewer,
        org,
        "SELECT period_start, metric, kind, from_period_start, batch, quantity, events "
        "FROM billing_adjustments WHERE org = ? "
        "ORDER BY period_start DESC, metric, kind, from_period_start, batch",
        org,
        roles=BILLING_ROLES,
    )


def _fact_globs(viewer: Viewer, org: str, first: date, last: date) -> list[str]:
    """Absolute globs of the usage fact files of the UTC days first..last."""
    rows = _query(viewer, org, trace.FACT_FILES_OF_DAYS, first, last, roles=BILLING_ROLES)
    root = facts_dir(marts_path())
    return [str(root / path) for path in rows["path"]]


def billed_days(
    viewer: Viewer, org: str, period_start: datetime, period_end: datetime, metric: str
) -> pd.DataFrame:
    """The days behind one billed number: per UTC day of occurrence, the usage that occurred
    in the period, the part of it that arrived after the period closed (billed later, in
    another period), the late usage of earlier periods carried into this one, and what is
    billed here. The `billed` column sums to `billing_periods.used`."""
    last_day = trace.last_day(pd.Timestamp(period_end).to_pydatetime())
    globs = _fact_globs(viewer, org, pd.Timestamp(period_start).date(), last_day)
    sql, parameters = trace.billed_days_statement(globs, org, period_start, period_end, metric)
    return _query(viewer, org, sql, *parameters, roles=BILLING_ROLES)


def usage_events(viewer: Viewer, org: str, day: date, metric: str) -> pd.DataFrame:
    """The usage entries of one UTC day and metric, each with where it came from: the landing
    file and the 1-based line, the HTTP API request and the record's 0-based `index` in its
    answer (with the key's prefix and when the request was received, in `api_request`), or the
    correction batch that booked it (a signed quantity: a version it made, or one it
    retracted); at most EVENTS_SHOWN rows, the earliest first (`trace.EVENT_COLUMNS`)."""
    globs = _fact_globs(viewer, org, day, day)
    if not globs:
        return pd.DataFrame(columns=list(trace.EVENT_COLUMNS))
    sql, parameters = trace.day_events_statement(globs, org, metric, EVENTS_SHOWN)
    return _query(viewer, org, sql, *parameters, roles=BILLING_ROLES)


# --- Insight ------------------------------------------------------------------------


PROJECT_FILTER = "AND (?::VARCHAR IS NULL OR project = ?)"  # parameters: project, project


def error_trends(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT day, detector, severity, sum(events) AS events FROM error_trends "
        f"WHERE org = ? {PROJECT_FILTER} AND day BETWEEN ? AND ? GROUP BY ALL ORDER BY day",
        org,
        project,
        project,
        start,
        end,
    )


def distinct_signatures(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> int:
    """The error signatures that occurred at least once in [start, end], each counted once
    (a signature is one per project)."""
    rows = _query(
        viewer,
        org,
        "SELECT count(DISTINCT (project, hash)) AS signatures FROM error_signature_days "
        f"WHERE org = ? {PROJECT_FILTER} AND day BETWEEN ? AND ?",
        org,
        project,
        project,
        start,
        end,
    )
    return int(rows.iloc[0]["signatures"])


def signature_changes(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    """Signatures first seen in the range (new) and those regressed, most recent first."""
    return _query(
        viewer,
        org,
        "SELECT CASE WHEN status = 'regressed' THEN 'regressed' ELSE 'new' END AS change, "
        "project, detector, severity, message, file, line, count, first_seen, last_seen "
        f"FROM error_signatures WHERE org = ? {PROJECT_FILTER} "
        "AND (status = 'regressed' OR (first_seen AT TIME ZONE 'UTC')::DATE BETWEEN ? AND ?) "
        "ORDER BY change DESC, first_seen DESC LIMIT 200",
        org,
        project,
        project,
        start,
        end,
    )


def top_signatures(viewer: Viewer, org: str, project: str | None, limit: int = 20) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT project, detector, severity, message, file, line, count, first_seen, "
        f"last_seen, status FROM error_signatures WHERE org = ? {PROJECT_FILTER} "
        "ORDER BY count DESC, last_seen DESC, hash LIMIT ?",
        org,
        project,
        project,
        limit,
    )


# --- Autopilot ----------------------------------------------------------------------


PENDING_SHOWN = 1_000  # pending attestations listed at most, those missing their parent first


def fix_outcomes(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    """Fixes per UTC day, outcome and chain status (`verified`: a fix; `pending`: waiting for
    its chain's parent, not yet a fix)."""
    return _query(
        viewer,
        org,
        "SELECT day, status, chain_status, sum(fixes) AS fixes, "
        "sum(files_changed) AS files_changed, sum(lines_added) AS lines_added, "
        "sum(lines_removed) AS lines_removed, sum(avg_risk * fixes) / sum(fixes) AS avg_risk, "
        f"max(max_risk) AS max_risk FROM fix_outcomes WHERE org = ? {PROJECT_FILTER} "
        "AND day BETWEEN ? AND ? GROUP BY ALL ORDER BY day, status, chain_status",
        org,
        project,
        project,
        start,
        end,
    )


def pending_attestations(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    """The attestations created in [start, end] still pending, with the parent each waits for:
    those whose parent has not arrived first, then the oldest; at most PENDING_SHOWN."""
    return _query(
        viewer,
        org,
        "SELECT project, created_at, status, request_id, hash, prev_hash, parent_received "
        f"FROM pending_attestations WHERE org = ? {PROJECT_FILTER} "
        "AND (created_at AT TIME ZONE 'UTC')::DATE BETWEEN ? AND ? "
        "ORDER BY parent_received, project, created_at, hash LIMIT ?",
        org,
        project,
        project,
        start,
        end,
        PENDING_SHOWN,
    )


def attestation_chains(viewer: Viewer, org: str, project: str | None) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT project, verified, pending, rejected, head_hash, head_created_at "
        f"FROM attestation_chains WHERE org = ? {PROJECT_FILTER} ORDER BY project",
        org,
        project,
        project,
    )


# --- Guardian -----------------------------------------------------------------------


def audit_scores(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    """Average scores per day, URL and device (environments weighted by their audits)."""
    averages = ", ".join(
        f"sum({s} * audits) / sum(CASE WHEN {s} IS NOT NULL THEN audits END) AS {s}"
        for s in AUDIT_SCORES
    )
    return _query(
        viewer,
        org,
        f"SELECT day, url, device, sum(audits) AS audits, {averages}, sum(issues) AS issues "
        f"FROM audit_scores WHERE org = ? {PROJECT_FILTER} "
        "AND day BETWEEN ? AND ? GROUP BY ALL ORDER BY day, url, device",
        org,
        project,
        project,
        start,
        end,
    )


def audit_issues(
    viewer: Viewer, org: str, project: str | None, start: date, end: date
) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT suite, severity, sum(issues) AS issues FROM audit_issues WHERE org = ? "
        f"{PROJECT_FILTER} AND day BETWEEN ? AND ? GROUP BY ALL "
        "ORDER BY suite, severity",
        org,
        project,
        project,
        start,
        end,
    )


def latest_audit_issues(viewer: Viewer, org: str, project: str | None) -> pd.DataFrame:
    return _query(
        viewer,
        org,
        "SELECT project, url, device, occurred_at, suite, severity, message, "
        "recommendation, element, documentation FROM latest_audit_issues WHERE org = ? "
        f"{PROJECT_FILTER} ORDER BY project, "
        "list_position(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO'], severity), suite",
        org,
        project,
        project,
    )


# --- staff --------------------------------------------------------------------------


def all_organizations(viewer: Viewer) -> pd.DataFrame:
    """Every organization side by side, each quota metric's used, quota and % as columns."""
    pivots = ", ".join(
        f"max(q.used) FILTER (WHERE q.metric = '{m}') AS {m}_used, "
        f"max(q.quota) FILTER (WHERE q.metric = '{m}') AS {m}_quota, "
        f"max(q.pct_used) FILTER (WHERE q.metric = '{m}') AS {m}_pct"
        for m in QUOTA_METRICS
    )
    return _staff_query(
        viewer,
        "SELECT o.org, o.name, o.tier, o.status, o.has_subscription, "
        f"(SELECT count(*) FROM memberships AS m WHERE m.org = o.org) AS members, {pivots} "
        "FROM organizations AS o LEFT JOIN quota_status AS q USING (org) "
        "GROUP BY ALL ORDER BY o.name",
    )


def all_quotas(viewer: Viewer) -> pd.DataFrame:
    """Every organization's quota status of its current period, the fullest first."""
    return _staff_query(
        viewer,
        "SELECT org, tier, metric, used, quota, pct_used, status, projected, "
        "projected_exhaustion, period_end FROM quota_status "
        "ORDER BY pct_used DESC NULLS LAST, org, metric",
    )


def usage_by_tier(viewer: Viewer, start: date, end: date) -> pd.DataFrame:
    return _staff_query(
        viewer,
        "SELECT u.day, o.tier, u.metric, sum(u.quantity) AS quantity FROM usage_daily AS u "
        "JOIN organizations AS o USING (org) WHERE u.day BETWEEN ? AND ? "
        "GROUP BY ALL ORDER BY u.day, o.tier, u.metric",
        start,
        end,
    )


def quarantine(viewer: Viewer) -> pd.DataFrame:
    return _staff_query(
        viewer,
        "SELECT source, reason, sum(records)::BIGINT AS records, "
        "count(DISTINCT org) AS organizations "
        "FROM quarantine_summary GROUP BY ALL ORDER BY records DESC, source, reason",
    )


# --- usage corrections and credits due (PostgreSQL) ----------------------------------------

_BATCHES = """
    SELECT b.id AS batch, o.slug AS org, b.state, b.window_start, b.window_end,
           b.created_by AS by, b.reason, b.created_at, b.committed_at, b.reverted_at,
           b.added, b.amended, b.voided
    FROM correction_batches AS b JOIN organizations AS o ON o.id = b.organization_id
    WHERE %(org)s::text IS NULL OR o.slug = %(org)s
    ORDER BY b.id DESC
"""

# every version of one event: landed (or sent through the API: its request, the record's
# 0-based index, the key's prefix, when received), then what each batch retracted or made
_VERSIONS = """
    SELECT CASE WHEN r.file_id IS NULL THEN 'landed' ELSE 'sent through the API' END AS version,
           NULL::bigint AS batch, u.occurred_at, u.quantity, u.ingested_at AS at,
           CASE WHEN r.file_id IS NULL THEN f.path
                ELSE 'API request ' || substring(f.path from '([^/]+)\\.ndjson$')
                     || ', record ' || (u.line_no - 1) || ', key ' || r.key_prefix || ', '
                     || to_char(r.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                     || ' UTC' END AS source,
           CASE WHEN r.file_id IS NULL THEN u.line_no END AS line, NULL AS by, NULL AS reason
    FROM usage_events AS u
    JOIN organizations AS o ON o.id = u.organization_id
    LEFT JOIN ingested_files AS f ON f.id = u.file_id
    LEFT JOIN api_requests AS r ON r.file_id = u.file_id
    WHERE o.slug = %(org)s AND u.event_id = %(event)s
    UNION ALL
    SELECT CASE WHEN c.sign = 1 THEN 'made' ELSE 'retracted' END
           || CASE WHEN c.reverting THEN ' by the revert' ELSE '' END,
           c.batch_id, c.occurred_at, c.sign * c.quantity, c.booked_at, c.file_name, c.line_no,
           CASE WHEN c.reverting THEN b.reverted_by ELSE b.created_by END,
           CASE WHEN c.reverting THEN b.revert_reason ELSE b.reason END
    FROM usage_corrections AS c
    JOIN correction_batches AS b ON b.id = c.batch_id
    JOIN organizations AS o ON o.id = c.organization_id
    WHERE o.slug = %(org)s AND c.event_id = %(event)s
    ORDER BY at, version DESC  -- of one instant: what was retracted, then what was made
"""

_CREDITS = """
    SELECT c.metric, c.period_start, c.period_end, c.reported, c.used, c.credit, c.updated_at
    FROM stripe_credits_due AS c JOIN organizations AS o ON o.id = c.organization_id
    WHERE o.slug = %(org)s AND c.credit > 0
    ORDER BY c.period_start DESC, c.metric
"""


def correction_batches(viewer: Viewer, org: str | None) -> pd.DataFrame:
    """The usage correction batches of an organization (owners and admins), or of every
    organization (staff, `org` None), newest first, with their effect."""
    _query(viewer, org, "SELECT 1", roles=BILLING_ROLES)  # refuses whoever may not see them
    return _postgres(_BATCHES, {"org": org})


def event_versions(viewer: Viewer, org: str, event_id: str) -> pd.DataFrame:
    """Every version of one usage event: as it landed (file and line), then each one a
    correction batch retracted or made, with who, when and why."""
    _query(viewer, org, "SELECT 1", roles=BILLING_ROLES)
    return _postgres(_VERSIONS, {"org": org, "event": event_id})


def credits_due(viewer: Viewer, org: str) -> pd.DataFrame:
    """What Stripe was sent above a period's billed usage (corrections lowered it): a credit to
    give the customer, per period and metric."""
    _query(viewer, org, "SELECT 1", roles=BILLING_ROLES)
    return _postgres(_CREDITS, {"org": org})


def _postgres(sql: str, parameters: dict) -> pd.DataFrame:
    from odavl_pipeline.db.server import connect

    with connect(Settings.from_env()) as conn:
        cursor = conn.execute(sql, parameters)
        return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


# --- Stripe events set aside (PostgreSQL) ------------------------------------------------

STRIPE_DEAD_LETTER_COLUMNS = ["received_at", "id", "type", "reason", "detail", "attempts"]


def stripe_dead_letters(viewer: Viewer) -> pd.DataFrame:
    """Stripe events set aside, not processed, with their reason, oldest first (staff only;
    read afresh each time: a retried event leaves the list at once)."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.stripe_billing.inbox import dead_letters

    if not viewer.staff:
        raise AccessDenied(f"{viewer.email} may not see the staff view")
    with connect(Settings.from_env()) as conn:
        rows = dead_letters(conn)
    return pd.DataFrame(
        [[getattr(row, name) for name in STRIPE_DEAD_LETTER_COLUMNS] for row in rows],
        columns=STRIPE_DEAD_LETTER_COLUMNS,
    )


# --- Billing periods waiting to close (marts, PostgreSQL and the landing zone) --------------

HELD_FILE_COLUMNS = ["path", "day", "why"]


def periods_waiting_to_close(viewer: Viewer) -> pd.DataFrame:
    """Billing periods past their end and grace that the last build left open (staff only)."""
    from odavl_pipeline import clock

    settings = Settings.from_env()
    return _staff_query(
        viewer,
        "SELECT p.org, o.name, p.metric, p.period_start, p.period_end, p.used "
        "FROM billing_periods p JOIN organizations o USING (org) "
        "WHERE NOT p.closed AND p.period_end <= ? ORDER BY p.period_end, p.org, p.metric",
        clock.now() - settings.billing_grace,
    )


def files_holding_closes(viewer: Viewer) -> pd.DataFrame:
    """The landed usage files not ingested as they are, which keep periods from closing (staff
    only; read from the ledger and the landing zone, at most once a minute)."""
    if not viewer.staff:
        raise AccessDenied(f"{viewer.email} may not see the staff view")
    return _held_files()


@st.cache_data(ttl=60, show_spinner=False)
def _held_files() -> pd.DataFrame:
    from odavl_pipeline.billing.closing import files_holding_closes as held_files
    from odavl_pipeline.db.server import connect

    settings = Settings.from_env()
    with connect(settings) as conn:
        held = held_files(conn, settings.landing)
    return pd.DataFrame(
        [[file.path, file.day, file.why] for file in held], columns=HELD_FILE_COLUMNS
    )
