"""The console's password hashes, and dashboards that keep answering (and follow) while the
pipeline rebuilds the marts. Signing in with a password is tests/test_dashboard_sessions.py's
(over HTTP) and tests/test_dashboards_browser.py's (in Chromium)."""

import threading

import pytest

from odavl_pipeline.db.passwords import hash_password, verify_password
from odavl_pipeline.marts.build import refresh_marts

from .dashboards_fixtures import ALICE, add_people, environment, signed_in_app
from .marts_helpers import add_many, anchor_subscription, at
from .records import ORG

pytestmark = pytest.mark.usefixtures("app_test_leaves_main_alone")


def test_verify_password_accepts_only_the_password_it_was_made_from():
    hashed = hash_password("s3cret")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret ", hashed) and not verify_password("", hashed)
    for broken in (None, "", "pbkdf2_sha256$x$00$00", "md5$1$00$00", hashed.replace("$", "", 1)):
        assert not verify_password("s3cret", broken)


@pytest.mark.slow
@pytest.mark.clock("2026-11-04T00:00:00Z")  # the build's instant: its usage is the recent past
def test_the_dashboards_keep_answering_while_the_marts_are_rebuilt(settings, conn, monkeypatch):
    add_people(conn)
    anchor_subscription(conn, ORG, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    add_many(conn, ORG, "first", 10, "2026-11-03T10:00:00Z", "2026-11-03T10:01:00Z")
    refresh_marts(settings, as_of=at("2026-11-04T00:00:00Z"))
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)
    app = signed_in_app(ALICE)
    assert "10 of 500 used (2.0 %)" in [m.value for m in app.markdown]

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
    assert "30 of 500 used (6.0 %)" in [m.value for m in app.markdown]
    assert renders >= 2
