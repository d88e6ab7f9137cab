"""API keys (CONTRACT.md sections 5, 7 and 9): a user's keys with their scopes, stored only as
a SHA-256 and an 8-character prefix; created, listed, revoked, and looked up for a request.

A key is its prefix (8 hex characters, shown in lists and named by `keys revoke`), an
underscore, then 256 random bits: nothing in it can be recovered from what is stored.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from odavl_pipeline.db.locks import lock_api_key_creation
from odavl_pipeline.errors import PipelineError

SCOPES = ("usage:write", "insight:write", "autopilot:write", "guardian:write", "quota:read")
PREFIX_LENGTH = 8
NAME_LENGTH = 200  # api_keys.name
MAX_EXPIRES_DAYS = 3650


class KeyRefused(PipelineError):
    """What the keys commands will not do, in one line saying why."""


@dataclass(frozen=True)
class KeyHolder:
    """Who a valid key acts for: its user, with its scopes."""

    key_id: int
    user_id: int
    prefix: str
    scopes: frozenset[str]


def new_key() -> str:
    return f"{secrets.token_hex(PREFIX_LENGTH // 2)}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> list[str]:
    """The scopes of `S[,S…]`, each known, in the order of SCOPES; refused otherwise."""
    named = {scope.strip() for scope in text.split(",") if scope.strip()}
    if not named:
        raise KeyRefused(f"--scopes names no scope: give one or more of {', '.join(SCOPES)}")
    unknown = sorted(named - set(SCOPES))
    if unknown:
        raise KeyRefused(
            f"unknown scope(s) {', '.join(map(repr, unknown))}: the scopes are {', '.join(SCOPES)}"
        )
    return [scope for scope in SCOPES if scope in named]


def create(
    conn: psycopg.Connection,
    email: str,
    name: str,
    scopes: list[str],
    expires_days: int | None = None,
) -> tuple[str, dict]:
    """A new key of the user with `email`; returns the key (never stored, never shown again)
    and its row as `listing` shows it."""
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise KeyRefused(f"--name must be 1 to {NAME_LENGTH} characters")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise KeyRefused(f"--expires-days must be 1 to {MAX_EXPIRES_DAYS}")
    with conn.transaction():
        user = conn.execute(
            "SELECT id FROM users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
        if user is None:
            raise KeyRefused(
                f"no user has the email {email!r} (`seed` loads the users of a reference.json)"
            )
        # one lock for every creation: two at once cannot both take a free prefix
        lock_api_key_creation(conn)
        key = new_key()
        while conn.execute(
            "SELECT 1 FROM api_keys WHERE key_prefix = %s", (key[:PREFIX_LENGTH],)
        ).fetchone():
            key = new_key()
        conn.execute(
            "INSERT INTO api_keys (user_id, name, key_hash, key_prefix, scopes, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, odavl_now() + make_interval(days => %s))",
            (user[0], name, hash_key(key), key[:PREFIX_LENGTH], scopes, expires_days),
        )
    [row] = listing(conn, prefix=key[:PREFIX_LENGTH])
    return key, row


LISTING = """
    SELECT k.key_prefix AS prefix, k.name, u.email, k.scopes, k.created_at, k.expires_at,
           k.revoked_at, k.last_used_at,
           CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                WHEN k.expires_at <= odavl_now() THEN 'expired'
                ELSE 'active' END AS state
    FROM api_keys AS k
    JOIN users AS u ON u.id = k.user_id
    WHERE (%(email)s::text IS NULL OR lower(u.email) = lower(%(email)s))
      AND (%(prefix)s::text IS NULL OR k.key_prefix = %(prefix)s)
    ORDER BY k.created_at DESC, k.id DESC
"""


def listing(
    conn: psycopg.Connection, email: str | None = None, prefix: str | None = None
) -> list[dict]:
    """Every key (of one user, or with one prefix), newest first, without anything secret."""
    cursor = conn.execute(LISTING, {"email": email, "prefix": prefix})
    assert cursor.description is not None  # a query that returns rows describes them
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def revoke(conn: psycopg.Connection, prefix: str) -> dict:
    """End the key with `prefix` now; refused for an unknown prefix, one shared by several keys
    (keys made before prefixes were unique), or a key already revoked."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, revoked_at FROM api_keys WHERE key_prefix = %s FOR UPDATE", (prefix,)
        ).fetchall()
        if not rows:
            raise KeyRefused(f"no API key has the prefix {prefix!r} (`keys list` shows them)")
        if len(rows) > 1:
            raise KeyRefused(
                f"{len(rows)} API keys share the prefix {prefix!r}: revoke them in the console"
            )
        [(key_id, revoked_at)] = rows
        if revoked_at is not None:
            raise KeyRefused(f"the API key {prefix!r} was revoked at {revoked_at.isoformat()}")
        conn.execute("UPDATE api_keys SET revoked_at = odavl_now() WHERE id = %s", (key_id,))
    [row] = listing(conn, prefix=prefix)
    return row


# the key of a hash, unless it is revoked or expired
VALID_KEY = """
    SELECT id, user_id, key_prefix, scopes FROM api_keys
    WHERE key_hash = %(hash)s AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > odavl_now())
"""
# ... and its request admitted at `rate` (GCRA over api_key_rates: its requests spread one `step`
# apart may run a `burst` ahead of now), in one statement that writes last_used_at only when it
# is older than `every`
ADMIT = f"""
    WITH k AS ({VALID_KEY}),
    used AS (
        UPDATE api_keys SET last_used_at = odavl_now()
        WHERE id = (SELECT id FROM k)
          AND (last_used_at IS NULL OR last_used_at < odavl_now() - %(every)s)),
    taken AS (
        INSERT INTO api_key_rates AS r (key_id, spread_until)
        SELECT id, odavl_now() + %(step)s FROM k
        ON CONFLICT (key_id) DO UPDATE
        SET spread_until = greatest(r.spread_until, odavl_now()) + %(step)s
        WHERE greatest(r.spread_until, odavl_now()) + %(step)s <= odavl_now() + %(burst)s
        RETURNING key_id)
    SELECT k.id, k.user_id, k.key_prefix, k.scopes, EXISTS (SELECT FROM taken),
           extract(epoch FROM (SELECT spread_until FROM api_key_rates WHERE key_id = k.id)
                   + %(step)s - %(burst)s - odavl_now())
    FROM k
"""
LAST_USED_EVERY = timedelta(minutes=1)  # how stale `keys list`'s last_used_at may be
BURST = timedelta(seconds=1)  # a key may send a second's worth of requests at once


@dataclass(frozen=True)
class Admission:
    """A request's key: who it acts for (None: unknown, expired or revoked), and how many
    seconds it must wait when it is over its rate (None: it may go on)."""

    holder: KeyHolder | None
    wait_seconds: float | None = None


def admit(conn: psycopg.Connection, key: str, rate_per_second: int) -> Admission:
    """Who `key` acts for, its request counted against `rate_per_second`, the limit every API
    process shares; its last_used_at written at most once a minute."""
    row = conn.execute(
        ADMIT,
        {
            "hash": hash_key(key),
            "every": LAST_USED_EVERY,
            "step": timedelta(seconds=1 / rate_per_second),
            "burst": BURST,
        },
    ).fetchone()
    if row is None:
        return Admission(None)
    key_id, user_id, prefix, scopes, admitted, wait = row
    holder = KeyHolder(key_id, user_id, prefix, frozenset(scopes))
    return Admission(holder, None if admitted else max(float(wait or 0), 0.0))


def holder(conn: psycopg.Connection, key: str) -> KeyHolder | None:
    """Who `key` acts for, or None for a key that is unknown, expired or revoked."""
    row = conn.execute(VALID_KEY, {"hash": hash_key(key)}).fetchone()
    return KeyHolder(row[0], row[1], row[2], frozenset(row[3])) if row else None


def as_json(row: dict) -> dict:
    """A `listing` row with its times as ISO 8601 text."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in row.items()
    }
