"""An organization's own alert endpoints: added, listed, tested and removed by its OWNER or
ADMIN (docs/operations.md, "Quota alerts").

Each endpoint added here gets its own signing secret, shown once: `whsec_` + hex HMAC-SHA256 of
ODAVL_ALERT_WEBHOOK_SECRET over a random salt kept in the endpoint's row (`endpoint_secret`).
The sender recomputes it for every alert, and nothing that signs is stored: the database alone
reveals no secret. An endpoint carried over from before migration 0020 has no salt and keeps
the secret its receiver verifies today, `organization_secret`. Removal is soft: the deliveries
to a removed endpoint stay in the ledger, and those still pending fail at once.
"""

import ipaddress
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC

import psycopg
from psycopg.rows import dict_row

from odavl_pipeline import clock
from odavl_pipeline.alerts.access import AlertSettingsRefused, managed_by, organization
from odavl_pipeline.alerts.http import Delivery, post
from odavl_pipeline.alerts.signing import (
    SIGNATURE_HEADER,
    endpoint_secret,
    organization_secret,
    sign,
)
from odavl_pipeline.db.locks import lock_alert_endpoints

MAX_URL_LENGTH = 2048  # what browsers, servers and proxies all take
MOST_ENDPOINTS = 10  # an organization's endpoints not removed
SCHEMES = ("http", "https")
NO_MASTER = (
    "ODAVL_ALERT_WEBHOOK_SECRET is not set: every endpoint's signing secret derives from it; "
    "set it (the same value wherever the pipeline runs), then try again"
)
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def checked_url(text: str) -> str:
    """`text` (surrounding blanks dropped) as an endpoint's URL: http or https, a host, no
    credentials, at most MAX_URL_LENGTH printable ASCII characters; else refused in one line
    saying what is wrong."""
    url = text.strip()
    if not url:
        raise AlertSettingsRefused("the URL is empty: give the endpoint's https:// address")
    if len(url) > MAX_URL_LENGTH:
        raise AlertSettingsRefused(
            f"the URL is {len(url):,} characters long: at most {MAX_URL_LENGTH:,}"
        )
    if not all(33 <= ord(character) <= 126 for character in url):
        raise AlertSettingsRefused(
            "the URL holds a space, a control or a non-ASCII character: percent-encode them "
            "(and write an international host name in its xn-- form)"
        )
    scheme, _, rest = url.partition(":")
    if scheme.lower() not in SCHEMES or not rest.startswith("//"):
        raise AlertSettingsRefused("the URL must start with https:// or http://")
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        raise AlertSettingsRefused(
            "the URL holds credentials (user@ or user:password@): put the receiver's token "
            "in its path or query instead"
        )
    host, port = _host_and_port(authority)
    if not host:
        raise AlertSettingsRefused("the URL names no host")
    if not _valid_host(host):
        raise AlertSettingsRefused(f"{host!r} is no host name or IP address")
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise AlertSettingsRefused(f"the URL's port {port!r} is no number from 1 to 65535")
    return url


def _host_and_port(authority: str) -> tuple[str, str | None]:
    """The host (an IPv6 address without its brackets) and the port text of `authority`."""
    if authority.startswith("["):
        host, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            return "[" + host, None
        return host, after[1:] if after else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 address, written in brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    name = host.lower().removesuffix(".")
    return len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


_LISTING = """
SELECT e.id, e.uid, e.url, e.created_at, e.created_by, e.removed_at, e.removed_by,
       e.secret_salt IS NULL AS signed_as_organization, o.slug AS org,
       d.state AS last_state, d.attempts AS last_attempts, d.last_error,
       coalesce(d.delivered_at, d.created_at) AS last_at
FROM organization_alert_endpoints AS e
JOIN organizations AS o ON o.id = e.organization_id
LEFT JOIN LATERAL (
    SELECT state, attempts, last_error, delivered_at, created_at FROM quota_alert_deliveries
    WHERE endpoint_id = e.id ORDER BY id DESC LIMIT 1
) AS d ON true
WHERE e.organization_id = %(organization_id)s
  AND (%(removed)s OR e.removed_at IS NULL)
  AND (%(uid)s::text IS NULL OR e.uid = %(uid)s)
ORDER BY e.created_at, e.id
"""


def last_delivery(row: dict) -> str:
    """The state of an endpoint's latest delivery, as one phrase."""
    if row["last_state"] is None:
        return "none yet"
    if row["last_state"] == "sent":
        return f"sent {row['last_at']:%Y-%m-%d %H:%M} UTC"
    if row["last_state"] == "failed":
        return f"failed ({row['last_error']})"
    if row["last_attempts"]:
        return f"retrying ({row['last_attempts']} failed, the last: {row['last_error']})"
    return "sending"


def _rows(conn: psycopg.Connection, organization_id: int, removed: bool, uid: str | None = None):
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            _LISTING, {"organization_id": organization_id, "removed": removed, "uid": uid}
        ).fetchall()
    for row in rows:
        row["state"] = "removed" if row["removed_at"] else "active"
        row["last_delivery"] = last_delivery(row)
    return rows


def listing(
    conn: psycopg.Connection, org: str, by: str | None = None, removed: bool = False
) -> list[dict]:
    """The endpoints of `org`, oldest first (with `removed`, the removed ones too), each with its
    latest delivery; with `by`, only for its OWNER or ADMIN, without, for the operator."""
    with conn.transaction():
        found = managed_by(conn, org, by)[0] if by is not None else organization(conn, org)
        return _rows(conn, found.id, removed)


def add(
    conn: psycopg.Connection, org: str, url: str, by: str, master: str | None
) -> tuple[str, dict]:
    """A new endpoint of `org` at `url`, added by its OWNER or ADMIN `by`; returns its signing
    secret (never stored, never shown again) and its row as `listing` gives it."""
    url = checked_url(url)
    with conn.transaction():
        found, email = managed_by(conn, org, by)
        if not master:
            raise AlertSettingsRefused(NO_MASTER)
        # one at a time per organization: the count and the duplicate check hold until commit
        lock_alert_endpoints(conn, found.id)
        active = conn.execute(
            "SELECT uid, url FROM organization_alert_endpoints "
            "WHERE organization_id = %s AND removed_at IS NULL",
            (found.id,),
        ).fetchall()
        same = [uid for uid, existing in active if existing == url]
        if same:
            raise AlertSettingsRefused(f"{org} already has this URL as endpoint {same[0]}")
        if len(active) >= MOST_ENDPOINTS:
            raise AlertSettingsRefused(
                f"{org} has {len(active)} endpoints, the most it may have: remove one first"
            )
        salt = secrets.token_hex(16)
        added = None
        while added is None:
            added = conn.execute(
                "INSERT INTO organization_alert_endpoints (uid, organization_id, url, "
                "secret_salt, created_by) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (uid) DO NOTHING RETURNING uid",
                (f"ep_{secrets.token_hex(4)}", found.id, url, salt, email),
            ).fetchone()
        [row] = _rows(conn, found.id, False, added[0])
    return endpoint_secret(master, salt), row


def remove(conn: psycopg.Connection, org: str, uid: str, by: str) -> dict:
    """Removes endpoint `uid` of `org`, by its OWNER or ADMIN `by`: nothing more is sent to it,
    its pending deliveries fail, its ledger stays. Returns its row."""
    with conn.transaction():
        found, email = managed_by(conn, org, by)
        removed = conn.execute(
            "UPDATE organization_alert_endpoints SET removed_at = odavl_now(), removed_by = %s "
            "WHERE organization_id = %s AND uid = %s AND removed_at IS NULL RETURNING id",
            (email, found.id, uid),
        ).fetchone()
        if removed is None:
            raise _unknown(conn, found.id, org, uid)
        conn.execute(
            "UPDATE quota_alert_deliveries SET state = 'failed', "
            "last_error = 'the endpoint was removed' WHERE endpoint_id = %s AND state = 'pending'",
            (removed[0],),
        )
        [row] = _rows(conn, found.id, True, uid)
    return row


def _unknown(
    conn: psycopg.Connection, organization_id: int, org: str, uid: str
) -> AlertSettingsRefused:
    """Why endpoint `uid` cannot be used: removed, or none of the organization's."""
    row = conn.execute(
        "SELECT removed_at FROM organization_alert_endpoints "
        "WHERE organization_id = %s AND uid = %s",
        (organization_id, uid),
    ).fetchone()
    if row is not None:
        return AlertSettingsRefused(
            f"endpoint {uid} of {org} was removed on {row[0]:%Y-%m-%d %H:%M} UTC"
        )
    return AlertSettingsRefused(
        f"{org} has no endpoint {uid!r}: `odavl-pipeline alerts endpoints list {org}` lists them"
    )


def send_test(
    conn: psycopg.Connection,
    org: str,
    uid: str,
    master: str | None,
    by: str | None = None,
    send: Callable[[str, bytes, dict], Delivery] = post,
) -> Delivery:
    """Sends a signed test alert (type `quota.test`, an id of its own) to endpoint `uid` of `org`
    now, and returns the answer: its HTTP status, or why there was none. Nothing is recorded:
    the quota alerts' ledger never sees it. With `by`, only for the OWNER or ADMIN."""
    with conn.transaction():
        found = managed_by(conn, org, by)[0] if by is not None else organization(conn, org)
        if not master:
            raise AlertSettingsRefused(NO_MASTER)
        endpoint = conn.execute(
            "SELECT url, secret_salt FROM organization_alert_endpoints "
            "WHERE organization_id = %s AND uid = %s AND removed_at IS NULL",
            (found.id, uid),
        ).fetchone()
        if endpoint is None:
            raise _unknown(conn, found.id, org, uid)
    url, salt = endpoint
    key = endpoint_secret(master, salt) if salt else organization_secret(master, found.id)
    alert_id = f"qt_{secrets.token_hex(16)}"
    body = {
        "id": alert_id,
        "type": "quota.test",
        "created": clock.now().astimezone(UTC).isoformat(),
        "organization": {"slug": found.slug, "name": found.name},
        "endpoint": uid,
        "text": f"ODAVL: a test alert to endpoint {uid} of {found.name} ({found.slug}); "
        f"its quota alerts come signed the same way.",
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return send(url, raw, {SIGNATURE_HEADER: sign(key, raw), "ODAVL-Alert-Id": alert_id})
