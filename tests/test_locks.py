"""The advisory locks keep the names a running deployment's processes meet on: each lock function
takes exactly the key `hashtext` gives its name (and its second key), in the mode it had."""

import psycopg
import pytest

from odavl_pipeline.db import locks

PATH = "usage_events/2026-01-31/part-0001.ndjson"

# (lock taken, the names (or a second int key) it is keyed by, the lock's mode)
TRANSACTION_LOCKS = [
    (lambda c: locks.share_source(c, "usage_events"), ("odavl:ingest:usage_events",), "ShareLock"),
    (
        lambda c: locks.take_source(c, "usage_events"),
        ("odavl:ingest:usage_events",),
        "ExclusiveLock",
    ),
    (
        lambda c: locks.lock_file(c, "usage_events", PATH),
        ("odavl:ingest:usage_events", PATH),
        "ExclusiveLock",
    ),
    (locks.lock_attestation_chains, ("odavl:attestation-chains",), "ExclusiveLock"),
    (lambda c: locks.lock_corrections(c, 7), ("odavl:corrections", 7), "ExclusiveLock"),
    (locks.lock_stripe_sync, ("odavl:stripe:sync",), "ExclusiveLock"),
    (locks.lock_api_key_creation, ("odavl/api_keys",), "ExclusiveLock"),
    (lambda c: locks.lock_alert_endpoints(c, 3), ("odavl/alert_endpoints", 3), "ExclusiveLock"),
]


def expected_key(conn: psycopg.Connection, names: tuple[str | int, ...]) -> tuple[int, ...]:
    """The advisory key of `names`: one name's hash as a bigint, or two 32-bit keys."""
    hashes = tuple(
        name
        if isinstance(name, int)
        else conn.execute("SELECT hashtext(%s)", (name,)).fetchone()[0]
        for name in names
    )
    return hashes if len(hashes) == 2 else (hashes[0],)


def held(conn: psycopg.Connection) -> set[tuple[tuple[int, ...], str]]:
    """This session's advisory locks, as (key, mode): a bigint key is split over classid and
    objid (objsubid 1), two int keys are classid and objid (objsubid 2)."""
    rows = conn.execute(
        "SELECT classid::bigint, objid::bigint, objsubid, mode FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
    ).fetchall()
    keys = set()
    for high, low, parts, mode in rows:
        if parts == 1:
            key = (high << 32) | low
            keys.add(((key - 2**64 if key >= 2**63 else key,), mode))
        else:
            keys.add((tuple(part - 2**32 if part >= 2**31 else part for part in (high, low)), mode))
    return keys


@pytest.mark.parametrize(
    ("take", "names", "mode"),
    TRANSACTION_LOCKS,
    ids=[
        "share_source",
        "take_source",
        "lock_file",
        "lock_attestation_chains",
        "lock_corrections",
        "lock_stripe_sync",
        "lock_api_key_creation",
        "lock_alert_endpoints",
    ],
)
def test_each_lock_is_keyed_by_its_name_until_the_transaction_ends(conn, take, names, mode):
    conn.autocommit = True
    with conn.transaction():
        take(conn)
        assert held(conn) == {(expected_key(conn, names), mode)}
    assert held(conn) == set()


def test_the_stripe_usage_report_lock_is_held_across_commits_until_the_report_ends(conn):
    conn.autocommit = True
    with locks.stripe_usage_report_lock(conn):
        with conn.transaction():
            pass  # a step of the report commits
        assert held(conn) == {(expected_key(conn, ("odavl:stripe:usage-report",)), "ExclusiveLock")}
    assert held(conn) == set()


def test_a_second_holder_waits_for_an_exclusive_lock(conn, settings):
    from odavl_pipeline.db.server import connect

    conn.autocommit = True
    with connect(settings) as other, conn.transaction():
        locks.share_source(conn, "usage_events")
        other.autocommit = True
        other.execute("SET lock_timeout = '50ms'")
        with other.transaction():
            locks.share_source(other, "usage_events")  # writers share the source
        with pytest.raises(psycopg.errors.LockNotAvailable), other.transaction():
            locks.take_source(other, "usage_events")  # a cut waits for the writers
