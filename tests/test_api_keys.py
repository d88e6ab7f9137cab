"""API keys (CONTRACT.md sections 5 and 7): `keys create / list / revoke` as users run them,
only a hash and a prefix stored, and what a key is worth at each instant of its life."""

import hashlib
import json
import string
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.api import keys
from odavl_pipeline.db.server import connect

from .commands import cli

pytestmark = pytest.mark.clock("2027-01-31T23:30:00Z")  # a key of one day ends in February

ALICE = "alice@odavl.com"


def _create(*args: str) -> tuple[str, str]:
    """`keys create`: its standard output and the key, alone on the last line."""
    out = cli("keys", "create", *args).stdout
    return out, out.strip().splitlines()[-1]


def test_a_key_is_created_shown_once_listed_without_its_secret_and_revoked_at_once(settings):
    out, key = _create(ALICE.upper(), "--name", "CI uploads", "--scopes", "quota:read,usage:write")
    prefix = key[: keys.PREFIX_LENGTH]
    assert f"API key {prefix} 'CI uploads' for {ALICE} (usage:write, quota:read)" in out
    with connect(settings) as conn:
        stored = conn.execute(
            "SELECT key_hash, key_prefix, scopes FROM api_keys WHERE name = 'CI uploads'"
        ).fetchall()
        assert stored == [
            (hashlib.sha256(key.encode()).hexdigest(), prefix, ["usage:write", "quota:read"])
        ]
        holder = keys.holder(conn, key)
        assert holder.prefix == prefix and holder.scopes == {"usage:write", "quota:read"}
        assert keys.holder(conn, key[:-1]) is None and keys.holder(conn, prefix) is None

    listed = json.loads(cli("keys", "list", "--json", "--email", ALICE).stdout)
    mine = [row for row in listed if row["prefix"] == prefix]
    assert mine[0]["created_at"].startswith("2027-01-31T23:30:0")  # the clock runs on
    mine[0]["created_at"] = "2027-01-31T23:30:00+00:00"
    assert mine == [
        {
            "prefix": prefix,
            "name": "CI uploads",
            "email": ALICE,
            "scopes": ["usage:write", "quota:read"],
            "created_at": "2027-01-31T23:30:00+00:00",
            "expires_at": None,
            "revoked_at": None,
            "last_used_at": None,
            "state": "active",
        }
    ]
    table = cli("keys", "list").stdout
    assert prefix in table and key not in table and key not in json.dumps(listed)

    revoked = cli("keys", "revoke", prefix)
    assert f"API key {prefix} 'CI uploads' of {ALICE} revoked at" in revoked.stdout
    with connect(settings) as conn:
        assert keys.holder(conn, key) is None
    again = cli("keys", "revoke", prefix, check=False)
    assert again.returncode == 1
    assert again.stderr.startswith(f"error: the API key {prefix!r} was revoked at 2027-01-31T23:")
    [row] = [r for r in json.loads(cli("keys", "list", "--json").stdout) if r["prefix"] == prefix]
    assert row["state"] == "revoked"


def test_a_key_that_expires_ends_across_midnight_and_the_month(settings, clock_at):
    _, key = _create(ALICE, "--name", "one day", "--scopes", "quota:read", "--expires-days", "1")
    with connect(settings) as conn:
        [row] = keys.listing(conn, prefix=key[: keys.PREFIX_LENGTH])
        assert row["expires_at"] - row["created_at"] == timedelta(days=1)
        assert row["expires_at"].date() == date(2027, 2, 1)
        assert keys.holder(conn, key) is not None
    clock_at((row["expires_at"] - timedelta(seconds=5)).isoformat())  # its last seconds
    with connect(settings) as conn:
        assert keys.holder(conn, key) is not None
    clock_at(row["expires_at"].isoformat())
    with connect(settings) as conn:
        assert keys.holder(conn, key) is None
        assert keys.listing(conn, prefix=key[: keys.PREFIX_LENGTH])[0]["state"] == "expired"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nobody@example.com", "--name", "x", "--scopes", "quota:read"], "no user has the email"),
        ([ALICE, "--name", "x", "--scopes", "quota:write"], "unknown scope(s) 'quota:write'"),
        ([ALICE, "--name", "x", "--scopes", " , "], "--scopes names no scope"),
        ([ALICE, "--name", "  ", "--scopes", "quota:read"], "--name must be 1 to 200"),
        ([ALICE, "--name", "x" * 201, "--scopes", "quota:read"], "--name must be 1 to 200"),
        ([ALICE, "--name", "x", "--scopes", "quota:read", "--expires-days", "0"], "1 to 3650"),
    ],
)
def test_create_refuses_with_one_line_and_stores_nothing(settings, args, says):
    with connect(settings) as conn:
        before = conn.execute("SELECT count(*) FROM api_keys").fetchone()
    refused = cli("keys", "create", *args, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and says in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with connect(settings) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == before


def test_revoke_refuses_an_unknown_or_shared_prefix_and_an_unreachable_database_is_one_line(
    settings,
):
    unknown = cli("keys", "revoke", "ffffffff", check=False)
    assert unknown.returncode == 1 and "no API key has the prefix 'ffffffff'" in unknown.stderr
    with connect(settings) as conn:  # two keys of the time before prefixes were unique
        for secret in ("odavl_aa-one", "odavl_aa-two"):
            conn.execute(
                "INSERT INTO api_keys (user_id, name, key_hash, key_prefix, scopes) "
                "SELECT id, %s, %s, 'odavl_aa', '{}' FROM users WHERE email = %s",
                (secret, keys.hash_key(secret), ALICE),
            )
    shared = cli("keys", "revoke", "odavl_aa", check=False)
    assert shared.returncode == 1 and "2 API keys share the prefix 'odavl_aa'" in shared.stderr
    down = cli(
        "keys", "list", check=False, env={"ODAVL_DATABASE_URL": "postgresql://u@127.0.0.1:9/x"}
    )
    assert down.returncode == 1 and down.stderr.startswith("error: cannot reach the database")
    assert len(down.stderr.strip().splitlines()) == 1


@given(st.text(alphabet=string.ascii_lowercase + ":, \t_-" + "é\x00", max_size=60))
def test_any_scopes_text_is_known_scopes_in_order_or_refused_with_the_list(text):
    try:
        scopes = keys.parse_scopes(text)
    except keys.KeyRefused as refused:
        assert ", ".join(keys.SCOPES) in str(refused)
        return
    assert scopes and scopes == [scope for scope in keys.SCOPES if scope in scopes]
    assert set(scopes) == {part.strip() for part in text.split(",") if part.strip()}


def test_new_keys_differ_and_begin_with_a_hex_prefix():
    made = {keys.new_key() for _ in range(1000)}
    assert len(made) == 1000
    for key in made:
        prefix, secret = key.split("_", 1)
        assert len(prefix) == keys.PREFIX_LENGTH and set(prefix) <= set(string.hexdigits)
        assert len(secret) == 43
