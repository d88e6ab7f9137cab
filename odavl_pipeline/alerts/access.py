"""Who may manage an organization's alert settings: its OWNER or ADMIN, checked in the
transaction that reads or changes them."""

from dataclasses import dataclass

import psycopg

from odavl_pipeline.errors import PipelineError

MANAGERS = ("OWNER", "ADMIN")


class AlertSettingsRefused(PipelineError):
    """What the alert settings will not do, in one line saying why."""


@dataclass(frozen=True)
class Organization:
    id: int
    slug: str
    name: str


def organization(conn: psycopg.Connection, org: str) -> Organization:
    """The organization with the slug `org`; refused when there is none."""
    row = conn.execute(
        "SELECT id, slug, name FROM organizations WHERE slug = %s", (org,)
    ).fetchone()
    if row is None:
        raise AlertSettingsRefused(f"no organization has the slug {org!r}")
    return Organization(*row)


def managed_by(conn: psycopg.Connection, org: str, by: str) -> tuple[Organization, str]:
    """The organization `org` and the email of `by` as stored, when `by` is its OWNER or ADMIN.

    Call it inside the transaction that does the work: the membership stays locked (FOR SHARE)
    until that transaction ends, so a role taken away meanwhile waits for it."""
    found = organization(conn, org)
    rows = conn.execute(
        "SELECT u.email, m.role::text FROM organization_members AS m "
        "JOIN users AS u ON u.id = m.user_id "
        "WHERE m.organization_id = %s AND lower(u.email) = lower(%s) FOR SHARE OF m",
        (found.id, by.strip()),
    ).fetchall()
    emails = [email for email, role in rows if role in MANAGERS]
    if not emails:
        raise AlertSettingsRefused(
            f"{by!r} is not an OWNER or ADMIN of {org}: only they manage its alert settings"
        )
    return found, emails[0]
