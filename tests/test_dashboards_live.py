"""Signing in with the console's passwords, and dashboards that keep answering (and follow)
while the pipeline rebuilds the marts."""

import threading

import pytest

from streamlit.testing.v1 import AppTest

from odavl_pipeline.db.seed import hash_password, verify_password
from odavl_pipeline.marts.build import refresh_marts

from .dashboards_fixtures import ALICE, APP, PASSWORD, add_people, environment, main_module_kept
from .marts_helpers import add_many, anchor_subscription, at
from .records import ORG



@pytest.fixture(autouse=True)
def app_test_leaves_main_alone():
    with main_module_kept():
        yield

def test_verify_password_accepts_only_the_password_it_was_made_from():
    hashed = hash_password("s3cret")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret ", hashed) and not verify_password("", hashed)
    for broken in (None, "", "pbkdf2_sha256$x$00$00", "md5$1$00$00", hashed.replace("$", "", 1)):
        assert not verify_password("s3cret", broken)


def signed_out_app(settings, monkeypatch) -> AppTest:
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)
    return AppTest.from_file(str(APP), default_timeout=30).run()


def sign_in(app: AppTest, email: str, password: str) -> AppTest:
    app.text_input(key="sign_in_email").input(email)
    app.text_input(key="sign_in_password").input(password)
    return app.button[0].click().run()


def test_sign_in_with_the_console_password_and_sign_out(settings, conn, monkeypatch):
    add_people(conn)
    anchor_subscription(conn, ORG, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    add_many(conn, ORG, "a", 12, "2026-11-03T10:00:00Z", "2026-11-03T10:01:00Z")
    refresh_marts(settings, as_of=at("2026-11-04T00:00:00Z"))
    app = signed_out_app(settings, monkeypatch)
    assert app.title[0].value == "ODAVL dashboards" and not app.metric
    assert [e.value for e in sign_in(app, ALICE.email, "wrong").error] == ["Wrong email or password."]
    assert [e.value for e in sign_in(app, "nobody@odavl.com", PASSWORD).error] == [
        "Wrong email or password."]
    sign_in(app, "Alice@ODAVL.com", PASSWORD)
    assert not app.exception and app.title[0].value == "ODAVL Test Org"
    assert "12 of 500 used (2.4 %)" in [p.proto.text for p in app.get("progress")]
    app.sidebar.button[0].click().run()  # Sign out
    assert app.title[0].value == "ODAVL dashboards" and not app.metric


def test_the_dashboards_keep_answering_while_the_marts_are_rebuilt(settings, conn, monkeypatch):
    add_people(conn)
    anchor_subscription(conn, ORG, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    add_many(conn, ORG, "first", 10, "2026-11-03T10:00:00Z", "2026-11-03T10:01:00Z")
    refresh_marts(settings, as_of=at("2026-11-04T00:00:00Z"))
    app = sign_in(signed_out_app(settings, monkeypatch), ALICE.email, PASSWORD)
    assert "10 of 500 used (2.0 %)" in [p.proto.text for p in app.get("progress")]

    builds, failures = 4, []

    def rebuild() -> None:
        try:
            for n in range(builds):
                add_many(conn, ORG, f"more{n}-", 5, "2026-11-03T11:00:00Z", "2026-11-03T11:01:00Z")
                refresh_marts(settings, as_of=at("2026-11-04T00:00:00Z"))
        except Exception as error:  # reported below, in the test's thread
            failures.append(error)

    builder = threading.Thread(target=rebuild)
    builder.start()
    renders = 0
    while builder.is_alive() or renders == 0:
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        assert app.title[0].value == "ODAVL Test Org"
        renders += 1
    builder.join(timeout=120)
    assert not failures and not builder.is_alive()
    app.run()
    assert "30 of 500 used (6.0 %)" in [p.proto.text for p in app.get("progress")]
    assert renders >= 2
