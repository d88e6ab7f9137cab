"""Every PostgreSQL advisory lock of the pipeline, one function each.

A lock's key is `hashtext` of its name, so every process of a deployment meets on the same lock
whatever its version: a name, once deployed, never changes (tests/test_locks.py holds each to its
text). All but the Stripe usage report's end with the transaction that takes them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

Executor = psycopg.Connection | psycopg.Cursor  # either runs a statement


def source_lock(source: str) -> str:
    """The name of the lock of one source's writes (docs/ingestion.md, "Parallel ingestion")."""
    return f"odavl:ingest:{source}"


def share_source(cur: Executor, source: str) -> None:
    """Writers of a source share its lock until they commit, so they run at once; a billing cut
    takes it alone (`take_source`), waiting for the writes in progress."""
    cur.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", (source_lock(source),))


def take_source(conn: Executor, source: str) -> None:
    """The source's lock alone: it waits for the writes in progress to commit, and writes that
    start meanwhile wait for this transaction (the marts' usage cut, a correction's commit)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (source_lock(source),))


def lock_file(cur: Executor, source: str, path: str) -> None:
    """One writer at a time per landed path: a second run reaching the same file waits, then
    finds it ingested."""
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (source_lock(source), path)
    )


def lock_attestation_chains(cur: Executor) -> None:
    """One settling of the attestation chains at a time."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('odavl:attestation-chains'))")


def lock_corrections(conn: Executor, org_id: int) -> None:
    """One new correction draft of an organization at a time: its overlap check holds."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('odavl:corrections'), %s)", (org_id,))


def lock_stripe_sync(conn: Executor) -> None:
    """Stripe writes one at a time (never held across a Stripe call: callers fetch first, then
    write)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('odavl:stripe:sync'))")


@contextmanager
def stripe_usage_report_lock(conn: psycopg.Connection) -> Iterator[None]:
    """One usage report to Stripe at a time: a session-level lock, held across the step
    commits."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(hashtext('odavl:stripe:usage-report'))")
    try:
        yield
    finally:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(hashtext('odavl:stripe:usage-report'))")


def lock_api_key_creation(conn: Executor) -> None:
    """One API key created at a time: two at once cannot both take a free prefix."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('odavl/api_keys'))")


def lock_alert_endpoints(conn: Executor, org_id: int) -> None:
    """One change to an organization's alert endpoints at a time: the count and the duplicate
    check hold until commit."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('odavl/alert_endpoints'), %s::int)", (org_id,)
    )
