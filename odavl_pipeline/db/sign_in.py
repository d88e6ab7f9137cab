"""Signing in to the dashboards, without Streamlit: whose email an identity provider vouches
for, and the console's passwords, checked behind a throttle kept in PostgreSQL.

The throttle (table `sign_in_throttle`) is shared by every dashboard process and survives
restarts. It counts failed password sign-ins per key: one for the email (lowercased and
stripped) and one for the client (its address, or `unknown` when there is none); a key is the
hex SHA-256 of `email:<email>` or `client:<address>`, so neither is stored in clear.

- The first 3 failures of a key are free; each next one blocks the key for twice as long as
  the one before, from 1 s up to 15 minutes.
- An attempt while its email's or its client's key is blocked is refused before any password
  is hashed, with the wait.
- A success clears the email's key, not the client's: one client guessing many emails stays
  slowed.
- A key with no failure for 24 hours starts over (and its row is deleted when another
  failure is recorded).
- A failure is one `INSERT … ON CONFLICT … DO UPDATE … RETURNING` per key, computed with the
  database's clock, so failures from concurrent processes are all counted.
"""

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from odavl_pipeline.db.dashboard_sessions import end_sessions_of
from odavl_pipeline.db.limits import is_storable_text, is_utf8
from odavl_pipeline.db.seed import hash_password, verify_password

FREE_FAILURES = 3
FIRST_WAIT = timedelta(seconds=1)
LONGEST_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=24)
UNKNOWN_CLIENT = "unknown"  # the client's key when its address is not known

Verify = Callable[[str, str | None], bool]  # (password, stored hash) -> matches
SHORTEST_PASSWORD = 12
LONGEST_PASSWORD = 1024


@dataclass(frozen=True)
class Attempt:
    """What became of a password sign-in."""

    email: str | None  # the user's email as stored, when the password was theirs
    wait: float  # seconds before this email or this client may try again; 0: at once
    refused: bool  # not checked at all, because the email or the client had to wait


def verified_email(claims: Mapping[str, object]) -> str | None:
    """The email of an identity provider's claims, when the provider says it is verified: only
    an `email_verified` claim that is true or the string "true" (any case) counts; a missing
    claim does not."""
    email, verified = claims.get("email"), claims.get("email_verified")
    says_true = verified is True or (isinstance(verified, str) and verified.lower() == "true")
    return email if says_true and isinstance(email, str) and email else None


def sign_in(
    conn: psycopg.Connection,
    email: str,
    password: str,
    client: str | None,
    verify: Verify = verify_password,
) -> Attempt:
    """Check `password` for `email` from `client` (an address, or None), behind the throttle."""
    wait = throttle_wait(conn, email, client)
    if wait:
        return Attempt(None, wait, refused=True)
    signed_in = check_password(conn, email, password, verify)
    if signed_in:
        record_success(conn, email)
        return Attempt(signed_in, 0, refused=False)
    return Attempt(None, record_failure(conn, email, client), refused=False)


def check_password(
    conn: psycopg.Connection, email: str, password: str, verify: Verify = verify_password
) -> str | None:
    """The user's email as stored when `password` is theirs, else None. The hash is read in a
    read-only transaction; an unknown email, or text no user can have (a NUL, a lone
    surrogate), costs the same hash as a known one."""
    row = None
    if is_storable_text(email):
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(
                "SELECT email, hashed_password FROM users WHERE lower(email) = lower(%s)",
                (email.strip(),),
            ).fetchone()
    stored_email, hashed = row or (None, None)
    encodable = is_utf8(password)
    matches = verify(password if encodable else "", hashed) and encodable
    return stored_email if matches and stored_email else None


def throttle_wait(conn: psycopg.Connection, email: str, client: str | None) -> float:
    """Seconds before `email` or `client` may try again; 0 when neither is blocked."""
    with conn.transaction():
        wait = conn.execute(
            "SELECT extract(epoch FROM max(blocked_until) - odavl_now()) "
            "FROM sign_in_throttle WHERE key = ANY(%s) AND blocked_until > odavl_now()",
            ([_email_key(email), _client_key(client)],),
        ).fetchone()[0]
    return float(wait or 0)


def record_failure(conn: psycopg.Connection, email: str, client: str | None) -> float:
    """Count a failed sign-in for `email` and for `client`; the seconds either must now wait."""
    waits = []
    with conn.transaction():
        for kind, key in (("email", _email_key(email)), ("client", _client_key(client))):
            waits.append(
                conn.execute(
                    _RECORD_FAILURE,
                    {
                        "key": key,
                        "kind": kind,
                        "free": FREE_FAILURES,
                        "first_wait": FIRST_WAIT,
                        "longest_wait": LONGEST_WAIT,
                        "forget_after": FORGET_AFTER,
                    },
                ).fetchone()[0]
            )
        conn.execute(_FORGET_OLD_FAILURES, {"forget_after": FORGET_AFTER})
    return float(max(wait or 0 for wait in waits))


def record_success(conn: psycopg.Connection, email: str) -> None:
    """Clear the failures of `email` (its client's stay counted)."""
    with conn.transaction():
        conn.execute("DELETE FROM sign_in_throttle WHERE key = %s", (_email_key(email),))


def wait_message(wait: float) -> str:
    """What a person told to wait `wait` seconds reads."""
    seconds = math.ceil(wait)
    delay = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return f"Too many failed sign-ins for this account or this connection: try again in {delay}."


def _email_key(email: str) -> str:
    return _key(f"email:{email.strip().lower()}")


def _client_key(client: str | None) -> str:
    return _key(f"client:{client or UNKNOWN_CLIENT}")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _blocked_until(failures: str) -> str:
    """SQL: when a key with `failures` failures is blocked until (NULL while they are free)."""
    return (
        f"CASE WHEN {failures} > %(free)s THEN odavl_now() + least(%(first_wait)s * "
        f"power(2, least({failures} - %(free)s - 1, 30)), %(longest_wait)s) END"
    )


_FAILURES_NOW = (
    "CASE WHEN t.last_failure_at > odavl_now() - %(forget_after)s THEN t.failures + 1 ELSE 1 END"
)

_RECORD_FAILURE = f"""
    INSERT INTO sign_in_throttle AS t (key, kind, failures, last_failure_at, blocked_until)
    VALUES (%(key)s, %(kind)s, 1, odavl_now(), {_blocked_until("1")})
    ON CONFLICT (key) DO UPDATE SET
        failures = {_FAILURES_NOW},
        last_failure_at = odavl_now(),
        blocked_until = {_blocked_until(_FAILURES_NOW)}
    RETURNING extract(epoch FROM blocked_until - odavl_now())
"""

# rows another attempt is updating right now are left for a later failure (no waiting)
_FORGET_OLD_FAILURES = """
    DELETE FROM sign_in_throttle WHERE key IN (
        SELECT key FROM sign_in_throttle WHERE last_failure_at <= odavl_now() - %(forget_after)s
        FOR UPDATE SKIP LOCKED)
"""


def password_problem(password: str) -> str | None:
    """Why `password` cannot be set, or None when it can."""
    if not is_utf8(password):
        return "the password is not valid text"
    if len(password) < SHORTEST_PASSWORD:
        return f"a password has at least {SHORTEST_PASSWORD} characters"
    if len(password) > LONGEST_PASSWORD:
        return f"a password has at most {LONGEST_PASSWORD} characters"
    return None


def set_password(conn: psycopg.Connection, email: str, password: str) -> str | None:
    """Store the hash of `password` for the user with this email (any case), end the user's
    dashboard sessions and clear the email's throttle; return the email as stored, or None when
    there is no such user."""
    if problem := password_problem(password):
        raise ValueError(problem)
    if not is_storable_text(email):
        return None
    with conn.transaction():
        row = conn.execute(
            "UPDATE users SET hashed_password = %s WHERE lower(email) = lower(%s) RETURNING email",
            (hash_password(password), email.strip()),
        ).fetchone()
        if row:
            end_sessions_of(conn, row[0])  # whoever knew the old password is signed out
            record_success(conn, row[0])  # the throttle lets the user in at once
    return row[0] if row else None
