"""Dashboard sessions, without Streamlit: what the sign-in cookie stands for.

A password sign-in starts a session: a random token (256 bits) that the browser keeps in an
HTTP-only cookie, and whose SHA-256 the table `dashboard_sessions` keeps with the user and an
expiry. A session counts while it has not ended, has not expired and its user exists; the
database's clock decides. Signing out ends it; a new password ends all of its user's sessions,
so a stolen cookie or a forgotten browser stops working at once, not at the expiry.
"""

import hashlib
import secrets
from datetime import timedelta

import psycopg

from odavl_pipeline.db.limits import is_storable_text

COOKIE = "odavl_session"
LONGEST_TOKEN = 128  # characters; ours have 43, anything longer is not ours


def start_session(conn: psycopg.Connection, email: str, lifetime: timedelta) -> str:
    """A new session for the user with this email (as stored); its token. Sessions that have
    expired or ended are deleted on the way."""
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        started = conn.execute(
            "INSERT INTO dashboard_sessions (token_sha256, user_id, expires_at) "
            "SELECT %s, id, odavl_now() + %s FROM users WHERE email = %s RETURNING 1",
            (token_hash(token), lifetime, email),
        ).fetchone()
        conn.execute(_FORGET_OLD_SESSIONS)
    if not started:
        raise LookupError(f"no user with the email {email!r}")
    return token


def session_email(conn: psycopg.Connection, token: str | None) -> str | None:
    """The email of the session's user, or None when the token is no live session."""
    if not token or len(token) > LONGEST_TOKEN or not is_storable_text(token):
        return None
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute(
            "SELECT u.email FROM dashboard_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_sha256 = %s AND s.ended_at IS NULL AND s.expires_at > odavl_now()",
            (token_hash(token),),
        ).fetchone()
    return row[0] if row else None


def end_session(conn: psycopg.Connection, token: str | None) -> None:
    """Sign out: the session of this token no longer counts (nothing happens for another)."""
    if token and len(token) <= LONGEST_TOKEN and is_storable_text(token):
        with conn.transaction():
            conn.execute(
                "UPDATE dashboard_sessions SET ended_at = odavl_now() "
                "WHERE token_sha256 = %s AND ended_at IS NULL",
                (token_hash(token),),
            )


def end_sessions_of(conn: psycopg.Connection, email: str) -> int:
    """End every live session of the user with this email (as stored); how many there were."""
    with conn.transaction():
        return conn.execute(
            "UPDATE dashboard_sessions SET ended_at = odavl_now() WHERE ended_at IS NULL "
            "AND user_id IN (SELECT id FROM users WHERE email = %s)",
            (email,),
        ).rowcount


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# rows another sign-in is deleting right now are left for the next one (no waiting)
_FORGET_OLD_SESSIONS = """
    DELETE FROM dashboard_sessions WHERE token_sha256 IN (
        SELECT token_sha256 FROM dashboard_sessions
        WHERE expires_at <= odavl_now() OR ended_at IS NOT NULL
        FOR UPDATE SKIP LOCKED LIMIT 1000)
"""
