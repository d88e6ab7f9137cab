"""`odavl-pipeline users set-password`: an operator sets or resets a dashboard user's password."""

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.db.sign_in import (
    LONGEST_PASSWORD,
    SHORTEST_PASSWORD,
    check_password,
    password_problem,
    record_failure,
    throttle_wait,
)

EMAIL = "alice@odavl.com"  # in the seeds every test database holds


def set_password(email: str, typed: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", "users", "set-password", email],
        input=typed,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )


def test_a_password_read_from_standard_input_is_the_one_that_signs_in(settings, conn):
    for _ in range(5):  # a user locked out by failures
        record_failure(conn, EMAIL, "198.51.100.7")
    assert throttle_wait(conn, EMAIL, "203.0.113.9") > 0

    done = set_password("Alice@ODAVL.com", "correct horse battery staple\n")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"password set for {EMAIL}; only its hash is stored"
    assert "correct horse" not in done.stdout + done.stderr
    assert check_password(conn, EMAIL, "correct horse battery staple") == EMAIL
    assert check_password(conn, EMAIL, "correct horse battery staple\n") is None
    assert throttle_wait(conn, EMAIL, "203.0.113.9") == 0  # the reset lets the user in at once
    stored = conn.execute("SELECT hashed_password FROM users WHERE email = %s", (EMAIL,)).fetchone()
    assert "correct horse" not in stored[0]


def test_a_short_password_or_an_unknown_user_changes_nothing(settings, conn):
    before = conn.execute("SELECT hashed_password FROM users ORDER BY id").fetchall()
    short = set_password(EMAIL, "short\n")
    unknown = set_password("nobody@example.com", "a long enough password\n")
    assert (short.returncode, unknown.returncode) == (1, 1)
    assert f"at least {SHORTEST_PASSWORD} characters" in short.stderr
    assert "no user has the email 'nobody@example.com'" in unknown.stderr
    assert conn.execute("SELECT hashed_password FROM users ORDER BY id").fetchall() == before


@given(st.text(max_size=LONGEST_PASSWORD + 50))
def test_only_text_of_12_to_1024_characters_can_be_a_password(password):
    problem = password_problem(password)
    acceptable = SHORTEST_PASSWORD <= len(password) <= LONGEST_PASSWORD and all(
        not 0xD800 <= ord(character) <= 0xDFFF for character in password
    )
    assert (problem is None) == acceptable
