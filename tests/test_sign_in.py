"""Signing in to the dashboards: only a verified identity-provider email counts, and password
sign-ins are throttled per email, per client (by the accounts it failed for) and per trusted
device in PostgreSQL, across connections and threads, whatever text is typed."""

import re
import threading

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline.db.server import connect
from odavl_pipeline.db.sign_in import (
    CLIENT_FREE_ACCOUNTS,
    DEVICE_LIFETIME,
    Attempt,
    is_trusted_device,
    record_failure,
    sign_in,
    throttle_wait,
    verified_email,
    wait_message,
)

from .dashboards_fixtures import ALICE, app_test, main_module_kept

EMAIL = "alice@odavl.com"  # a demo user
RIGHT = "the right password"
OIDC_SECRETS = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
    }
}
CLIENT = "203.0.113.7"
ELSEWHERE = "198.51.100.1"
ANY_TEXT = st.text(st.characters(exclude_categories=()))  # lone surrogates and NUL included


class Verifier:
    """A stand-in for `verify_password` that counts its calls: `RIGHT` matches any stored hash."""

    def __init__(self):
        self.calls = 0

    def __call__(self, password: str, hashed: str | None) -> bool:
        password.encode()  # as the real one does: it is only given text it can hash
        self.calls += 1
        return password == RIGHT and hashed is not None


@pytest.fixture
def app_test_leaves_main_alone():
    with main_module_kept():
        yield


def rows(conn) -> list[tuple]:
    return conn.execute(
        "SELECT key, kind, failures FROM sign_in_throttle ORDER BY kind, key"
    ).fetchall()


def failures(conn, kind: str) -> list[int]:
    return [row[2] for row in rows(conn) if row[1] == kind]


@pytest.mark.parametrize(
    "claims, email",
    [
        ({"email": EMAIL, "email_verified": True}, EMAIL),
        ({"email": EMAIL, "email_verified": "true"}, EMAIL),
        ({"email": EMAIL, "email_verified": "TRUE"}, EMAIL),
        ({"email": EMAIL}, None),
        ({"email": EMAIL, "email_verified": None}, None),
        ({"email": EMAIL, "email_verified": False}, None),
        ({"email": EMAIL, "email_verified": "false"}, None),
        ({"email": EMAIL, "email_verified": "yes"}, None),
        ({"email": EMAIL, "email_verified": 1}, None),
        ({"email": EMAIL, "email_verified": " true"}, None),
        ({"email_verified": True}, None),
        ({"email": "", "email_verified": True}, None),
    ],
)
def test_only_a_claim_that_says_true_verifies_the_email(claims, email):
    assert verified_email({"is_logged_in": True, **claims}) == email


def test_the_sign_in_screen_says_when_the_provider_gave_no_verified_email(
    app_test_leaves_main_alone,
):
    app = app_test()
    app.secrets = OIDC_SECRETS
    app.user = {"is_logged_in": True, "email": ALICE.email}  # no email_verified claim
    app.run()
    assert [e.value for e in app.error] == [
        "Your identity provider did not give a verified email address."
    ]
    assert app.title[0].value == "ODAVL dashboards" and not app.sidebar.button


def test_three_free_failures_then_waits_that_double_up_to_15_minutes(conn):
    waits = [record_failure(conn, EMAIL, CLIENT) for _ in range(16)]
    assert waits == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert failures(conn, "email") == failures(conn, "pair") == [16]
    assert failures(conn, "client") == [1]  # one account: the client counts it once
    assert wait_message(8) == (
        "Too many failed sign-ins for this account or this connection: try again in 8 s."
    )
    assert wait_message(900).endswith("try again in 15 min.")


def test_failures_a_day_old_start_over(conn):
    for _ in range(6):
        record_failure(conn, EMAIL, CLIENT)
    record_failure(conn, "other@odavl.com", "198.51.100.1")
    conn.execute(
        "UPDATE sign_in_throttle SET blocked_until = NULL, "
        "last_failure_at = last_failure_at - interval '25 hours'"
    )
    conn.commit()
    assert record_failure(conn, EMAIL, CLIENT) == 0
    assert failures(conn, "email") == failures(conn, "client") == [1]  # the other two deleted


def test_a_blocked_attempt_is_refused_before_any_password_is_hashed(conn):
    verify = Verifier()
    attempts = [sign_in(conn, EMAIL, "wrong", CLIENT, verify) for _ in range(4)]
    assert [(a.email, a.wait, a.refused) for a in attempts] == [
        (None, 0, False),
        (None, 0, False),
        (None, 0, False),
        (None, 1, False),
    ]
    for _ in range(6):  # a block that outlasts a slow test machine: 64 s
        record_failure(conn, EMAIL, CLIENT)
    attempt = sign_in(conn, EMAIL, RIGHT, CLIENT, verify)
    assert attempt.refused and attempt.email is None and 0 < attempt.wait <= 64
    assert verify.calls == 4  # the right password was not even looked at
    assert failures(conn, "email") == [10]  # and a refusal is not a failure


def test_a_success_clears_the_email_not_the_client(conn):
    verify = Verifier()
    for n in range(CLIENT_FREE_ACCOUNTS - 1):
        sign_in(conn, f"guess{n}@odavl.com", "wrong", CLIENT, verify)
    for _ in range(3):
        sign_in(conn, EMAIL, "wrong", CLIENT, verify)
    assert sign_in(conn, EMAIL.upper(), RIGHT, CLIENT, verify).email == EMAIL
    assert sorted(failures(conn, "email")) == [1] * (CLIENT_FREE_ACCOUNTS - 1)  # not EMAIL's
    assert failures(conn, "client") == [CLIENT_FREE_ACCOUNTS]
    assert sign_in(conn, "another@odavl.com", "wrong", CLIENT, verify).wait == 1


def test_one_client_guessing_many_emails_stays_slowed(conn):
    verify = Verifier()
    for n in range(20):
        sign_in(conn, f"guess{n}@odavl.com", "wrong", CLIENT, verify)
    assert verify.calls == CLIENT_FREE_ACCOUNTS + 1  # blocked from its eleventh account on
    attempt = sign_in(conn, EMAIL, RIGHT, CLIENT, verify)
    assert attempt.refused and verify.calls == CLIENT_FREE_ACCOUNTS + 1
    assert sign_in(conn, EMAIL, RIGHT, ELSEWHERE, verify).email == EMAIL  # another client


def test_one_accounts_failures_never_block_its_clients_other_accounts(conn):
    """An address stands for everyone behind it (an office, a carrier): guessing one account
    from it blocks that account, not the others."""
    verify = Verifier()
    for _ in range(30):
        record_failure(conn, "erin@odavl.com", CLIENT)
    assert sign_in(conn, "erin@odavl.com", RIGHT, CLIENT, verify).refused
    assert failures(conn, "client") == [1]
    assert sign_in(conn, EMAIL, RIGHT, CLIENT, verify).email == EMAIL


def test_an_unknown_client_is_one_client(conn):
    for n in range(CLIENT_FREE_ACCOUNTS + 1):
        record_failure(conn, f"guess{n}@odavl.com", None)
    assert throttle_wait(conn, "y@odavl.com", None) > 0
    assert throttle_wait(conn, "y@odavl.com", "") > 0
    assert throttle_wait(conn, "y@odavl.com", CLIENT) == 0


def test_a_browser_that_signed_in_keeps_its_own_allowance(conn):
    """OWASP's device cookies: an attacker elsewhere blocks the account for browsers new to
    it, not for one it signed in with; that browser's own failures block only itself."""
    verify = Verifier()
    device = sign_in(conn, EMAIL, RIGHT, CLIENT, verify).device
    assert device and is_trusted_device(conn, device, EMAIL.upper())
    for n in range(10):  # blocked for minutes, and the address too (many accounts)
        record_failure(conn, EMAIL, ELSEWHERE)
        record_failure(conn, f"guess{n}@odavl.com", CLIENT)
    assert sign_in(conn, EMAIL, RIGHT, "192.0.2.1", verify).refused  # a new browser waits
    assert sign_in(conn, EMAIL, RIGHT, "192.0.2.1", verify, device="forged").refused
    again = sign_in(conn, EMAIL, RIGHT, CLIENT, verify, device=device)
    assert again.email == EMAIL and again.device == device  # trusted, from a blocked address
    for _ in range(3):
        assert sign_in(conn, EMAIL, "wrong", CLIENT, verify, device=device).wait == 0
    fourth = sign_in(conn, EMAIL, "wrong", CLIENT, verify, device=device)
    assert fourth.wait == 1 and failures(conn, "device") == [4]
    assert sign_in(conn, EMAIL, RIGHT, CLIENT, verify, device=device).refused


def test_a_device_is_trusted_only_for_its_own_user_and_not_after_90_days(conn):
    verify = Verifier()
    device = sign_in(conn, EMAIL, RIGHT, CLIENT, verify).device
    assert not is_trusted_device(conn, device, "bob@odavl.com")
    other = sign_in(conn, "bob@odavl.com", RIGHT, CLIENT, verify, device=device)
    assert other.email == "bob@odavl.com" and other.device != device  # a device of his own
    conn.execute(
        "UPDATE sign_in_devices SET last_signed_in_at = last_signed_in_at - %s "
        "WHERE token_sha256 = encode(sha256(convert_to(%s, 'UTF8')), 'hex')",
        (DEVICE_LIFETIME, device),
    )
    conn.commit()
    assert not is_trusted_device(conn, device, EMAIL)
    renewed = sign_in(conn, EMAIL, RIGHT, CLIENT, verify, device=device)
    assert renewed.device != device and is_trusted_device(conn, renewed.device, EMAIL)
    stored = conn.execute("SELECT token_sha256 FROM sign_in_devices").fetchall()
    assert renewed.device not in str(stored)  # only its hash
    assert device not in str(stored) and len(stored) == 2  # the stale one deleted


@given(device=st.one_of(st.none(), ANY_TEXT))
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_text_as_a_device_is_just_untrusted(conn, device):
    assert not is_trusted_device(conn, device, EMAIL)


def test_the_throttle_holds_in_another_process(conn, settings):
    for _ in range(5):
        record_failure(conn, EMAIL, CLIENT)
    conn.close()
    with connect(settings) as another:
        assert 0 < throttle_wait(another, " Alice@ODAVL.com ", "198.51.100.1") <= 2


def test_concurrent_failures_are_all_counted(conn, settings):
    start, errors = threading.Barrier(2), []

    def guess() -> None:
        try:
            with connect(settings) as own:
                start.wait()
                for _ in range(25):
                    record_failure(own, EMAIL, CLIENT)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=guess) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert failures(conn, "email") == failures(conn, "pair") == [50]
    assert failures(conn, "client") == [1]


HEX_KEY = re.compile(r"[0-9a-f]{64}")
HOSTILE = [
    "a" * 10_000 + "@odavl.com",
    "alice@odavl.com\0",
    "\ud800@odavl.com",
    "al\udfffice@odavl.com",
    "ÄLİCE@ödavl.com",
    "🦄\u202e@odavl.com",
    "\0",
    " ",
]


def assert_only_hex_keys(conn) -> None:
    """The table's only text is its keys and kinds: nothing typed is kept in clear."""
    for key, kind, _ in rows(conn):
        assert HEX_KEY.fullmatch(key) and kind in ("email", "client", "pair")


@pytest.mark.parametrize("email", HOSTILE)
def test_a_hostile_email_or_password_is_just_wrong(conn, email):
    assert sign_in(conn, email, email, email) == Attempt(None, 0, False)  # the real hash
    assert_only_hex_keys(conn)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(email=ANY_TEXT, password=ANY_TEXT, client=st.one_of(st.none(), ANY_TEXT))
def test_any_text_is_counted_never_stored_and_never_raises(conn, email, password, client):
    conn.execute("DELETE FROM sign_in_throttle")
    conn.commit()
    verify = Verifier()
    attempt = sign_in(conn, email, password, client, verify)
    assert attempt.email is None and not attempt.refused and verify.calls == 1
    assert failures(conn, "email") == failures(conn, "client") == failures(conn, "pair") == [1]
    assert_only_hex_keys(conn)
