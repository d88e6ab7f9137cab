"""Dashboard sessions: the token behind the sign-in cookie, in PostgreSQL (expiry, sign-out, a
new password, any text as a token), and the sign-in routes of a running dashboards server,
over plain HTTP: the cookie's attributes, the return to a shared link, the throttle, requests
from another site, and a cookie that no longer counts once signed out."""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dashlib.session_routes import LARGEST_FORM, return_path
from odavl_pipeline.db.dashboard_sessions import (
    COOKIE,
    end_session,
    end_sessions_of,
    session_email,
    start_session,
    token_hash,
)
from odavl_pipeline.db.server import connect
from odavl_pipeline.db.sign_in import DEVICE_COOKIE, record_failure, set_password, wait_message
from odavl_pipeline.settings import Settings

from .dashboard_server import Reply, call, running_dashboards
from .dashboards_fixtures import (
    ALICE,
    DEV,
    MAYA,
    PASSWORD,
    add_people,
    demo_marts,
)

HOUR = timedelta(hours=1)
GUESSER = "127.0.0.10"  # loopback addresses: each test is a client of its own
SESSION_HOURS = 5
CLIENT_FREE_ACCOUNTS = 10


# --- the sessions, in PostgreSQL --------------------------------------------------------------


def test_a_session_counts_until_it_is_ended_and_stores_only_the_hash(conn):
    add_people(conn)
    token = start_session(conn, ALICE.email, HOUR)
    assert session_email(conn, token) == ALICE.email
    stored = conn.execute("SELECT token_sha256 FROM dashboard_sessions").fetchall()
    assert stored == [(token_hash(token),)] and token not in str(stored)
    other = start_session(conn, ALICE.email, HOUR)
    end_session(conn, token)
    assert session_email(conn, token) is None
    assert session_email(conn, other) == ALICE.email  # another browser stays signed in


def test_an_expired_session_does_not_count_and_is_forgotten_at_the_next_sign_in(conn):
    add_people(conn)
    expired = start_session(conn, ALICE.email, timedelta(0))
    assert session_email(conn, expired) is None
    start_session(conn, MAYA.email, HOUR)
    assert conn.execute(
        "SELECT count(*) FROM dashboard_sessions WHERE token_sha256 = %s", (token_hash(expired),)
    ).fetchone() == (0,)


def test_a_new_password_or_a_removed_user_ends_every_session_of_that_user(conn):
    add_people(conn)
    alices = [start_session(conn, ALICE.email, HOUR) for _ in range(3)]
    mayas = start_session(conn, MAYA.email, HOUR)
    assert set_password(conn, "ALICE@odavl.com", "a brand new password") == ALICE.email
    assert [session_email(conn, token) for token in alices] == [None] * 3
    assert session_email(conn, mayas) == MAYA.email
    conn.execute(
        "DELETE FROM organization_members WHERE user_id IN (SELECT id FROM users WHERE email = %s)",
        (MAYA.email,),
    )
    conn.execute("DELETE FROM users WHERE email = %s", (MAYA.email,))
    conn.commit()
    assert session_email(conn, mayas) is None
    assert end_sessions_of(conn, "nobody@odavl.com") == 0


def test_a_session_is_only_started_for_a_user(conn):
    with pytest.raises(LookupError, match="no user"):
        start_session(conn, "nobody@odavl.com", HOUR)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.one_of(
        st.none(),
        st.text(max_size=300),
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
            min_size=43,
            max_size=43,
        ),
    )
)
def test_any_text_as_a_token_is_no_session_and_never_raises(conn, token):
    assert session_email(conn, token) is None
    end_session(conn, token)  # signing out with any cookie is harmless


@pytest.mark.parametrize("hours", ["0", "-1", "721", "nan", "inf", "1e308", "twelve"])
def test_a_session_lifetime_outside_a_month_is_refused_with_the_variable_named(hours):
    with pytest.raises(ValueError, match="ODAVL_SESSION_HOURS must be"):
        Settings.from_env({"ODAVL_SESSION_HOURS": hours})


@pytest.mark.parametrize("proxies", ["proxy.internal", "10.0.0.300", "10.0.0.0/33", "*"])
def test_trusted_proxies_that_are_not_addresses_are_refused_with_the_variable_named(proxies):
    with pytest.raises(ValueError, match="ODAVL_TRUSTED_PROXIES must be IP addresses"):
        Settings.from_env({"ODAVL_TRUSTED_PROXIES": proxies})


def test_trusted_proxies_are_addresses_or_networks():
    assert Settings.from_env({}).trusted_proxies == ()
    named = Settings.from_env({"ODAVL_TRUSTED_PROXIES": " 10.0.0.5, 10.1.0.0/16 ,, ::1"})
    assert named.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")


@given(st.floats(min_value=0, max_value=720, exclude_min=True))
def test_any_lifetime_up_to_a_month_is_taken_as_hours(hours):
    lifetime = Settings.from_env({"ODAVL_SESSION_HOURS": repr(hours)}).session_lifetime
    assert lifetime == timedelta(hours=hours)
    assert Settings.from_env({}).session_lifetime == timedelta(hours=12)


# --- where signing in returns to -----------------------------------------------------------


@pytest.mark.parametrize(
    "link, expected",
    [
        (
            "/insight?org=odavl-test-org&from=2026-10-27",
            "/insight?org=odavl-test-org&from=2026-10-27",
        ),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("insight", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/auth/sign-in?next=/x", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_signing_in_returns_only_to_a_page_of_this_server(link, expected):
    assert return_path(link) == expected


@given(st.text(max_size=200))
def test_any_link_becomes_a_path_of_this_server(link):
    """However a browser reads it: no scheme, no host, no character a browser strips or turns
    into a slash (which could make `//host`)."""
    path = return_path(link)
    assert path.startswith("/") and not path.startswith("//")
    assert not any(ord(char) < 0x21 or char in "\\\x7f" for char in path)
    assert not urlsplit(path).scheme and not urlsplit(path).netloc
    assert path == "/" or path == link


# --- the routes of a running server -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(server_url, template_url, tmp_path_factory) -> tuple[Settings, Path]:
    """The demo marts and their database, with the clock where they were built."""
    root = tmp_path_factory.mktemp("sessions")
    with demo_marts(server_url, template_url.database, root) as settings:
        yield settings, root


@pytest.fixture(scope="module")
def dashboards(demo) -> str:
    """The dashboards on the demo marts, behind no proxy."""
    settings, root = demo
    with running_dashboards(
        settings, root / "server.log", {"ODAVL_SESSION_HOURS": str(SESSION_HOURS)}
    ) as base:
        yield base


def sign_in(
    base: str, email: str, password: str, link: str = "/", source: str = "127.0.0.2"
) -> tuple[str, object]:
    """Post the form from the loopback address `source` (a test's own client, so that one
    test's failures do not slow another's; 127.0.0.1 is the forwarding test's)."""
    reply = call(
        base,
        "POST",
        "/auth/sign-in",
        {"email": email, "password": password, "next": link},
        source=source,
    )
    return reply, reply.cookie(COOKIE)


class Browser:
    """A client at its own loopback address that keeps the cookies it is given and sends back
    those whose path the request's path starts with, as a browser does."""

    def __init__(self, base: str, address: str):
        self.base, self.address, self.cookies = base, address, {}

    def sign_in(self, email: str, password: str) -> Reply:
        path = "/auth/sign-in"
        sent = "; ".join(
            f"{name}={value}"
            for name, (value, cookie_path) in self.cookies.items()
            if path.startswith(cookie_path)
        )
        reply = call(
            self.base,
            "POST",
            path,
            {"email": email, "password": password, "next": "/"},
            cookie=sent or None,
            source=self.address,
        )
        for name, morsel in reply.cookies().items():
            if morsel.value and morsel["max-age"] != "0":
                self.cookies[name] = (morsel.value, morsel["path"] or "/")
            else:
                self.cookies.pop(name, None)
        return reply


def test_a_page_without_a_session_goes_to_the_sign_in_form_and_back(dashboards):
    reply = call(dashboards, "GET", "/billing?org=odavl-test-org&from=2026-10-27")
    assert reply.status == 303
    link = parse_qs(urlsplit(reply.location).query)["next"][0]
    assert urlsplit(reply.location).path == "/auth/sign-in"
    assert link == "/billing?org=odavl-test-org&from=2026-10-27"
    form = call(dashboards, "GET", reply.location)
    assert (
        form.status == 200
        and 'name="next" value="/billing?org=odavl-test-org&amp;from=' in form.body
    )
    assert form.headers["cache-control"] == "no-store" and form.headers["x-frame-options"] == "DENY"
    signed_in, cookie = sign_in(dashboards, MAYA.email, PASSWORD, link)
    assert signed_in.status == 303 and signed_in.location == link
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == SESSION_HOURS * 3600
    assert len(cookie.value) == 43 and cookie.value not in link
    device = signed_in.cookie(DEVICE_COOKIE)  # this browser's own allowance at the throttle
    assert device["httponly"] and device["samesite"].lower() == "strict"
    assert device["path"] == "/auth/sign-in" and int(device["max-age"]) == 90 * 24 * 3600
    assert len(device.value) == 43 and device.value != cookie.value
    page = call(dashboards, "GET", link, cookie=f"{COOKIE}={cookie.value}")
    assert page.status == 200 and "<noscript>" in page.body  # Streamlit's page, no redirect


def test_a_wrong_password_says_so_then_the_throttle_says_how_long_to_wait(dashboards):
    wrong = [sign_in(dashboards, ALICE.email, "not the password", source=GUESSER) for _ in range(3)]
    assert [(reply.status, cookie) for reply, cookie in wrong] == [(401, None)] * 3
    assert all("Wrong email or password." in reply.body for reply, _ in wrong)
    fourth, _ = sign_in(dashboards, ALICE.email, "not the password", source=GUESSER)
    assert "Wrong email or password." in fourth.body and wait_message(1) in fourth.body
    refused, cookie = sign_in(dashboards, ALICE.email, PASSWORD, source="127.0.0.11")
    assert refused.status == 429 and cookie is None
    assert re.search(
        r"Too many failed sign-ins for this account or this connection: "
        r"try again in \d+ s\.",
        refused.body,
    )
    assert 'value="alice@odavl.com"' in refused.body and PASSWORD not in refused.body


def test_a_form_from_another_site_or_too_large_is_refused(dashboards):
    form = {"email": MAYA.email, "password": PASSWORD, "next": "/"}
    foreign = call(
        dashboards, "POST", "/auth/sign-in", form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status == 400 and foreign.cookie(COOKIE) is None
    huge = call(
        dashboards, "POST", "/auth/sign-in", b"email=a&password=" + b"x" * (LARGEST_FORM + 1)
    )
    assert huge.status == 400 and huge.cookie(COOKIE) is None
    unescaped, _ = sign_in(dashboards, "<script>alert(1)</script>", "x", source="127.0.0.12")
    assert "<script>alert" not in unescaped.body and "&lt;script&gt;" in unescaped.body


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(dashboards):
    _, cookie = sign_in(dashboards, MAYA.email, PASSWORD)
    sent = f"{COOKIE}={cookie.value}"
    assert call(dashboards, "GET", "/insight", cookie=sent).status == 200
    foreign = call(
        dashboards,
        "POST",
        "/auth/sign-out",
        {},
        cookie=sent,
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status == 400 and call(dashboards, "GET", "/insight", cookie=sent).status == 200
    out = call(dashboards, "POST", "/auth/sign-out", {}, cookie=sent)
    assert out.status == 303 and out.location == "/auth/sign-in?signed_out=1"
    assert out.cookie(COOKIE).value == "" and int(out.cookie(COOKIE)["max-age"]) == 0
    assert call(dashboards, "GET", "/insight", cookie=sent).status == 303  # a copy: no longer
    assert "You are signed out." in call(dashboards, "GET", out.location).body


def test_a_forged_or_foreign_cookie_is_no_session(dashboards):
    for value in ("x" * 43, "", "a" * 500, token_hash("anything")):
        assert call(dashboards, "GET", "/", cookie=f"{COOKIE}={value}").status == 303


# --- the throttle against the three attacks ----------------------------------------------


def test_a_forwarded_address_from_a_proxy_nobody_named_is_not_believed(dashboards):
    """A new X-Forwarded-For per guess, from 127.0.0.1: still one client, slowed like one."""
    replies = [
        call(
            dashboards,
            "POST",
            "/auth/sign-in",
            {"email": f"sprayed{n}@odavl.com", "password": "a guess", "next": "/"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        for n in range(16)
    ]
    statuses = [reply.status for reply in replies]
    assert statuses[:CLIENT_FREE_ACCOUNTS] == [401] * CLIENT_FREE_ACCOUNTS
    assert 429 in statuses[CLIENT_FREE_ACCOUNTS:]


def test_an_attacker_elsewhere_cannot_lock_a_user_out_of_a_browser_she_signed_in_with(
    dashboards, demo
):
    dev = Browser(dashboards, "127.0.0.21")
    assert dev.sign_in(DEV.email, PASSWORD).status == 303
    attacker = "127.0.0.22"
    guesses = [sign_in(dashboards, DEV.email, "a guess", source=attacker)[0] for _ in range(4)]
    assert [reply.status for reply in guesses] == [401] * 4
    with connect(demo[0]) as conn:  # a patient attacker: blocked for minutes by now
        for _ in range(8):
            record_failure(conn, DEV.email, "203.0.113.50")
    assert sign_in(dashboards, DEV.email, "a guess", source=attacker)[0].status == 429
    signed_in = dev.sign_in(DEV.email, PASSWORD)
    assert signed_in.status == 303 and signed_in.cookie(COOKIE).value
    assert sign_in(dashboards, DEV.email, PASSWORD, source="127.0.0.23")[0].status == 429


def test_one_clients_failures_do_not_block_other_users_behind_its_address(dashboards):
    office = "127.0.0.24"
    for guess in ("erin@odavl.com", "vera@odavl.com", "nobody@odavl.com", "erin@odavl.com"):
        assert sign_in(dashboards, guess, "a guess", source=office)[0].status == 401
    reply, cookie = sign_in(dashboards, MAYA.email, PASSWORD, source=office)
    assert reply.status == 303 and cookie.value


@pytest.fixture(scope="module")
def behind_proxy(demo) -> str:
    """The same dashboards behind a reverse proxy named by the operator, on loopback."""
    settings, root = demo
    with running_dashboards(
        settings, root / "proxied.log", {"ODAVL_TRUSTED_PROXIES": "127.0.0.1"}
    ) as base:
        yield base


def test_behind_a_named_proxy_the_forwarded_address_is_the_client(behind_proxy, demo):
    def through_proxy(email: str, password: str, address: str) -> Reply:
        return call(
            behind_proxy,
            "POST",
            "/auth/sign-in",
            {"email": email, "password": password, "next": "/"},
            headers={"X-Forwarded-For": address, "X-Forwarded-Proto": "https"},
        )

    sprayer = "198.51.100.50"
    guesses = [through_proxy(f"proxied{n}@odavl.com", "a guess", sprayer) for n in range(4)]
    assert [reply.status for reply in guesses] == [401] * 4
    with connect(demo[0]) as conn:  # the same address's many other accounts: blocked a while
        for n in range(4, CLIENT_FREE_ACCOUNTS + 6):
            record_failure(conn, f"proxied{n}@odavl.com", sprayer)
    assert through_proxy(MAYA.email, PASSWORD, sprayer).status == 429
    other = through_proxy(MAYA.email, PASSWORD, "198.51.100.51")  # someone else behind it
    assert other.status == 303 and other.cookie(COOKIE)["secure"]  # TLS ends at the proxy
