"""Signing in to the dashboards, without Streamlit: whose email an identity provider vouches
for, and the console's passwords, checked behind a throttle kept in PostgreSQL.

The throttle (table `sign_in_throttle`) is shared by every dashboard process and survives
restarts. It counts failed password sign-ins per key, the hex SHA-256 of the key's text, so no
email or address is stored in clear:

- `email:<email>` (lowercased and stripped): the account, against guessing from anywhere;
- `client:<address>` (`unknown` when there is none): the accounts this address failed for,
  each counted once (a `pair` row of address and email remembers which), against one address
  trying many accounts;
- `device:<token>`: a browser that signed in to the account before (below).

Rules:

- An email's or a device's first 3 failures are free, a client's first 10 accounts; each next
  one blocks the key for twice as long as the one before, from 1 s up to 15 minutes.
- A browser that signed in to an account keeps its own allowance there, as OWASP's device
  cookies do: a successful sign-in gives it a device token (cookie `odavl_device`; table
  `sign_in_devices` keeps its SHA-256 and the user), trusted for that account for 90 days after
  its last sign-in. Its attempts count against its device key only, and neither the email's key
  nor its address's block them, so an attacker elsewhere cannot lock the user out of it.
- Any other attempt (a browser new to the account) is refused while the email's or the
  client's key is blocked, before any password is hashed, with the wait; its failure counts
  against both. An address stands for everyone behind it, so it is blocked only by failing for
  more than 10 accounts, never by one account's failures.
- A success clears the key the attempt counted against (the device's, or the email's), never
  the client's: one client guessing many emails stays slowed.
- A key with no failure for 24 hours starts over (and its row is deleted when another failure
  is recorded).
- A failure is one `INSERT … ON CONFLICT … DO UPDATE … RETURNING` per key, computed with the
  database's clock, so failures from concurrent processes are all counted.
"""

import hashlib
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeGuard

import psycopg

from odavl_pipeline.db.dashboard_sessions import LONGEST_TOKEN, end_sessions_of, token_hash
from odavl_pipeline.db.limits import is_storable_text, is_utf8
from odavl_pipeline.db.passwords import hash_password, verify_password

FREE_FAILURES = 3  # of an email or a device
CLIENT_FREE_ACCOUNTS = 10  # accounts one address may fail for before it waits
FIRST_WAIT = timedelta(seconds=1)
LONGEST_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=24)
UNKNOWN_CLIENT = "unknown"  # the client's key when its address is not known
DEVICE_COOKIE = "odavl_device"
DEVICE_LIFETIME = timedelta(days=90)  # a device is trusted this long after its last sign-in

Verify = Callable[[str, str | None], bool]  # (password, stored hash) -> matches
SHORTEST_PASSWORD = 12
LONGEST_PASSWORD = 1024


@dataclass(frozen=True)
class Attempt:
    """What became of a password sign-in."""

    email: str | None  # the user's email as stored, when the password was theirs
    wait: float  # seconds before this email or this client may try again; 0: at once
    refused: bool  # not checked at all, because the email or the client had to wait
    device: str | None = None  # after a success: the browser's device token to keep


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
    *,
    device: str | None = None,
) -> Attempt:
    """Check `password` for `email` from `client` (an address, or None) in a browser holding
    the device token `device` (or None), behind the throttle."""
    trusted = device if device is not None and is_trusted_device(conn, device, email) else None
    wait = (
        _wait(conn, [_device_key(trusted)])
        if trusted is not None
        else throttle_wait(conn, email, client)
    )
    if wait:
        return Attempt(None, wait, refused=True)
    signed_in = check_password(conn, email, password, verify)
    if signed_in:
        cleared = _device_key(trusted) if trusted is not None else _email_key(email)
        with conn.transaction():
            conn.execute("DELETE FROM sign_in_throttle WHERE key = %s", (cleared,))
            token = trust_device(conn, signed_in, trusted)
        return Attempt(signed_in, 0, refused=False, device=token)
    if trusted is not None:
        return Attempt(None, record_device_failure(conn, trusted), refused=False)
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
    """Seconds before a browser new to `email` may try again from `client`; 0 when neither the
    email nor the client is blocked."""
    return _wait(conn, [_email_key(email), _client_key(client)])


def record_failure(conn: psycopg.Connection, email: str, client: str | None) -> float:
    """Count a failed sign-in of a browser new to `email`, from `client`: for the email, and
    for the client when it had not failed for this email yet; the seconds either must now
    wait."""
    with conn.transaction():
        _, email_wait = _count_failure(conn, _email_key(email), "email", FREE_FAILURES)
        pair_failures, _ = _count_failure(conn, _pair_key(email, client), "pair", None)
        if pair_failures == 1:
            _, client_wait = _count_failure(
                conn, _client_key(client), "client", CLIENT_FREE_ACCOUNTS
            )
        else:
            client_wait = _wait(conn, [_client_key(client)])
        conn.execute(_FORGET_OLD_FAILURES, {"forget_after": FORGET_AFTER})
    return max(email_wait, client_wait)


def record_device_failure(conn: psycopg.Connection, device: str) -> float:
    """Count a failed sign-in of a trusted device; the seconds it must now wait."""
    with conn.transaction():
        return _count_failure(conn, _device_key(device), "device", FREE_FAILURES)[1]


def record_success(conn: psycopg.Connection, email: str) -> None:
    """Clear the failures of `email` (its clients' stay counted)."""
    with conn.transaction():
        conn.execute("DELETE FROM sign_in_throttle WHERE key = %s", (_email_key(email),))


def is_trusted_device(conn: psycopg.Connection, device: str | None, email: str) -> bool:
    """True when `device` is a token given to this email's browser by a sign-in in the last
    DEVICE_LIFETIME."""
    if not _is_token(device) or not is_storable_text(email):
        return False
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        return bool(
            conn.execute(
                "SELECT 1 FROM sign_in_devices AS d JOIN users AS u ON u.id = d.user_id "
                "WHERE d.token_sha256 = %s AND lower(u.email) = lower(%s) "
                "AND d.last_signed_in_at > odavl_now() - %s",
                (token_hash(device), email.strip(), DEVICE_LIFETIME),
            ).fetchone()
        )


def trust_device(conn: psycopg.Connection, email: str, device: str | None) -> str:
    """The device token of a browser that just signed in as `email` (as stored): `device`, when
    it already is this user's trusted device, its trust renewed; else a new one. Devices
    untrusted for long are deleted on the way."""
    if device is not None:
        conn.execute(
            "UPDATE sign_in_devices SET last_signed_in_at = odavl_now() WHERE token_sha256 = %s",
            (token_hash(device),),
        )
        return device
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO sign_in_devices (token_sha256, user_id) SELECT %s, id FROM users "
        "WHERE email = %s",
        (token_hash(token), email),
    )
    conn.execute(_FORGET_OLD_DEVICES, (DEVICE_LIFETIME,))
    return token


def wait_message(wait: float) -> str:
    """What a person told to wait `wait` seconds reads."""
    seconds = math.ceil(wait)
    delay = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return f"Too many failed sign-ins for this account or this connection: try again in {delay}."


def _wait(conn: psycopg.Connection, keys: list[str]) -> float:
    with conn.transaction():
        row = conn.execute(
            "SELECT extract(epoch FROM max(blocked_until) - odavl_now()) "
            "FROM sign_in_throttle WHERE key = ANY(%s) AND blocked_until > odavl_now()",
            (keys,),
        ).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return float(row[0] or 0)


def _count_failure(
    conn: psycopg.Connection, key: str, kind: str, free: int | None
) -> tuple[int, float]:
    """Count one failure of `key`, blocked after `free` of them (never when None): how many it
    now has, and the seconds it must now wait."""
    row = conn.execute(
        _RECORD_FAILURE,
        {
            "key": key,
            "kind": kind,
            "free": free,
            "first_wait": FIRST_WAIT,
            "longest_wait": LONGEST_WAIT,
            "forget_after": FORGET_AFTER,
        },
    ).fetchone()
    assert row is not None  # the upsert returns its one row, inserted or updated
    failures, wait = row
    return failures, float(wait or 0)


def _is_token(device: str | None) -> TypeGuard[str]:
    if not device:
        return False
    return len(device) <= LONGEST_TOKEN and is_storable_text(device)


def _email_key(email: str) -> str:
    return _key(f"email:{email.strip().lower()}")


def _client_key(client: str | None) -> str:
    return _key(f"client:{client or UNKNOWN_CLIENT}")


def _pair_key(email: str, client: str | None) -> str:
    address = client or UNKNOWN_CLIENT
    return _key(f"pair:{len(address)}:{address}:{email.strip().lower()}")


def _device_key(device: str) -> str:
    return _key(f"device:{device}")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _blocked_until(failures: str) -> str:
    """SQL: when a key with `failures` failures is blocked until (NULL while they are free)."""
    return (
        f"CASE WHEN {failures} > %(free)s::integer THEN odavl_now() + least(%(first_wait)s * "
        f"power(2, least({failures} - %(free)s::integer - 1, 30)), %(longest_wait)s) END"
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
    RETURNING failures, extract(epoch FROM blocked_until - odavl_now())
"""

# rows another attempt is updating right now are left for a later failure (no waiting)
_FORGET_OLD_FAILURES = """
    DELETE FROM sign_in_throttle WHERE key IN (
        SELECT key FROM sign_in_throttle WHERE last_failure_at <= odavl_now() - %(forget_after)s
        FOR UPDATE SKIP LOCKED)
"""

_FORGET_OLD_DEVICES = """
    DELETE FROM sign_in_devices WHERE token_sha256 IN (
        SELECT token_sha256 FROM sign_in_devices WHERE last_signed_in_at <= odavl_now() - %s
        FOR UPDATE SKIP LOCKED LIMIT 1000)
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
