"""A fingerprint of everything ingestion writes, to compare two end states."""

from collections.abc import Iterator
from contextlib import contextmanager

TABLES = {
    "usage_events": "SELECT o.slug, u.event_id, u.quantity, u.occurred_at, f.path, u.line_no "
    "FROM usage_events u JOIN organizations o ON o.id = u.organization_id "
    "JOIN ingested_files f ON f.id = u.file_id",
    "error_events": "SELECT e.project_id, e.event_id, e.signature_hash, f.path, e.line_no "
    "FROM error_events e JOIN ingested_files f ON f.id = e.file_id",
    "error_signatures": "SELECT project_id, hash, count, severity, message, first_seen, last_seen, "
    "status FROM error_signatures",
    "fix_attestations": "SELECT a.project_id, a.request_id, a.hash, a.chain_status, f.path, a.line_no "
    "FROM fix_attestations a JOIN ingested_files f ON f.id = a.file_id",
    "audit_results": "SELECT a.project_id, a.request_id, a.total_issues, f.path, a.line_no "
    "FROM audit_results a JOIN ingested_files f ON f.id = a.file_id",
    "audit_issues": "SELECT a.request_id, i.position, i.suite, i.severity FROM audit_issues i "
    "JOIN audit_results a ON a.id = i.audit_id",
    # the time of ingestion a future timestamp is measured against differs from run to run
    "quarantine": "SELECT q.source, f.path, q.line_no, q.more_line_nos, q.reason, "
    "regexp_replace(q.detail, 'after ingestion \\(.*\\)$', 'after ingestion') "
    "FROM quarantine q JOIN ingested_files f ON f.id = q.file_id",
    "ingested_files": "SELECT source, path, sha256, lines, accepted, duplicate, pending, rejected "
    "FROM ingested_files",
}


def fingerprint(conn) -> dict[str, list[tuple]]:
    """Every table's rows, as sorted tuples of their meaningful columns (no surrogate ids)."""
    return {
        name: sorted(tuple(str(v) for v in row) for row in conn.execute(query).fetchall())
        for name, query in TABLES.items()
    }


@contextmanager
def sibling_database(settings, database_url, server_url, suffix: str) -> Iterator:
    """Settings for a second fresh database beside the test's own (cloned from the same
    template), dropped afterwards: to compare an end state with that of another way there."""
    from .conftest import TEMPLATE_DB, _admin

    name = f"{database_url.database}_{suffix}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    try:
        yield settings.replace(
            database_url=database_url.set(database=name).render_as_string(hide_password=False),
        )
    finally:
        with _admin(server_url) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
