"""Records sent to the HTTP API (CONTRACT.md section 9), taken in by exactly the landing zone's
rules and code.

A request is ingested as a file of its own: its records, in order, are the lines of a ledger
file (`ingested_files`, path `api/<source>/<day>/<request>.ndjson`), validated, deduplicated,
quarantined and counted by `ingest.writer` as a landed file's are, in one transaction with the
request kept whole (`api_requests`). A billed number then traces to the request and the
record's position as it traces to a file and line, and a record sent again, by the API or in a
landed file, is a duplicate. Each record's outcome is read back from where its line went.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from odavl_pipeline import clock
from odavl_pipeline.api.keys import KeyHolder
from odavl_pipeline.domain.enums import MemberRole
from odavl_pipeline.ingest.landing import LandedFile
from odavl_pipeline.ingest.sources import SPECS, source_limits
from odavl_pipeline.ingest.staging import Line, PreparedFile, References, validated_batches
from odavl_pipeline.ingest.writer import ingest_file

# CONTRACT.md section 9's OWNER, ADMIN or MEMBER: the member role of the model (and of DESIGN.md)
# is DEVELOPER. A VIEWER may read quota only.
WRITER_ROLES = ("OWNER", "ADMIN", MemberRole.DEVELOPER.value)
STATUSES = ("accepted", "duplicate", "pending", "rejected")


@dataclass(frozen=True)
class RecordResult:
    index: int
    key: str | None  # the record's event_id or request_id as sent, when it is a string
    status: str
    reason: str | None = None
    detail: str | None = None


@dataclass
class RequestOutcome:
    """What became of every record of a request, in order, and the ledger file holding them."""

    file_id: int
    path: str
    results: list[RecordResult] = field(default_factory=list)

    @property
    def request_id(self) -> str:
        """The request's id, as the drill-down shows it: its ledger file's name."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".ndjson")

    def counts(self) -> dict[str, int]:
        return {status: sum(r.status == status for r in self.results) for status in STATUSES}


# The organizations of these slugs that the key's user may write for, with their projects: index
# lookups per slug, whatever the number of organizations the user belongs to. `OFFSET 0` keeps
# each lookup a subquery of its own, so that the plan stays one lookup per slug even when the
# statistics are stale or the plan is the generic one of a prepared statement (a join planned
# otherwise can compare every slug with every membership: 40 ms for a batch, not 2).
WRITABLE_ORGS = """
    SELECT o.slug, o.id, p.slug, p.id
    FROM unnest(%(slugs)s::text[]) AS named(slug)
    CROSS JOIN LATERAL (SELECT id, slug FROM organizations WHERE slug = named.slug OFFSET 0) AS o
    JOIN LATERAL (SELECT FROM organization_members
                  WHERE organization_id = o.id AND user_id = %(user_id)s
                    AND role::text = ANY(%(roles)s) OFFSET 0) AS m ON true
    LEFT JOIN projects AS p ON p.organization_id = o.id
"""


def take_records(
    conn: psycopg.Connection,
    holder: KeyHolder,
    source: str,
    records: list[Any],
    body: bytes,
    content_type: str,
    texts: list[bytes] | None = None,
) -> RequestOutcome:
    """Ingest `records` (parsed JSON values) of `source` sent by `holder` in one request of
    `body`: committed when this returns. Each record is the line `texts` gives for it, its text
    as sent (so a number keeps its exact spelling, as in a landed line), or else its value
    written as JSON. A record of an organization the key's user may not write for is
    `unknown_org`, as one that does not exist."""
    spec = SPECS[source]
    now = clock.now()
    path = f"api/{source}/{now:%Y-%m-%d}/{uuid.uuid4().hex}.ndjson"
    with conn.transaction():
        reserved = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('ingested_files', 'id'))"
        ).fetchone()
        assert reserved is not None  # nextval returns exactly one row
        file_id = reserved[0]
        refs = _writable_references(conn, holder.user_id, records)
        lines = []
        if texts is None:
            texts = [
                json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
                for record in records
            ]
        for index, data in enumerate(texts):
            lines.append(Line(file_id, index + 1, data, len(data)))
        prepared = PreparedFile(
            LandedFile(source, now.date(), path, path, len(body), 0),
            hashlib.sha256(body).hexdigest(),
            file_id,
            refs,
            len(body),
            0,
        )
        ingest_file(conn, prepared, validated_batches(spec, refs, lines, source_limits(source)))
        conn.execute(
            "INSERT INTO api_requests (file_id, key_id, key_prefix, content_type, records, body) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (file_id, holder.key_id, holder.prefix, content_type, len(records), body),
        )
        outcome = RequestOutcome(file_id, path)
        outcome.results = _results(conn, source, file_id, records)
    return outcome


def _writable_references(conn: psycopg.Connection, user_id: int, records: list[Any]) -> References:
    """The organizations the records name that the user may write for, and their projects: the
    only ones validation looks up (a record's `org` as sent; any other is `unknown_org`). A
    slug PostgreSQL cannot hold (a NUL) names no organization."""
    slugs = {
        org
        for record in records
        if isinstance(record, dict)
        and isinstance(org := record.get("org"), str)
        and "\x00" not in org
    }
    orgs: dict[str, int] = {}
    projects: dict[tuple[int, str], int] = {}
    if slugs:
        for slug, org_id, project, project_id in conn.execute(
            WRITABLE_ORGS, {"slugs": list(slugs), "user_id": user_id, "roles": list(WRITER_ROLES)}
        ):
            orgs[slug] = org_id
            if project is not None:
                projects[(org_id, project)] = project_id
    return References(orgs, projects)


def _results(
    conn: psycopg.Connection, source: str, file_id: int, records: list[Any]
) -> list[RecordResult]:
    """Each record's outcome from where its line went: a row of the table (accepted, or pending
    for an attestation whose chain waits), a quarantine entry (rejected), else a duplicate."""
    spec = SPECS[source]
    pending = "chain_status = 'pending'" if source == "fix_attestations" else "false"
    stored: dict[int, bool] = dict(
        conn.execute(
            f"SELECT line_no, {pending} FROM {spec.table} WHERE file_id = %s", (file_id,)
        ).fetchall()
    )
    rejected: dict[int, tuple[str, str | None]] = {}
    whole: tuple[str, str | None] | None = None  # (reason, detail)
    for line_no, more, reason, detail in conn.execute(
        "SELECT line_no, more_line_nos, reason, detail FROM quarantine WHERE file_id = %s",
        (file_id,),
    ):
        if line_no is None:  # the request as a whole (its lines could not be read)
            whole = (reason, detail)
        for number in (line_no, *(more or ())):
            rejected[number] = (reason, detail)
    results = []
    for index, record in enumerate(records):
        line_no = index + 1
        key = record.get(spec.key_column) if isinstance(record, dict) else None
        key = key if isinstance(key, str) else None
        if line_no in stored:
            results.append(RecordResult(index, key, "pending" if stored[line_no] else "accepted"))
        elif (refusal := rejected.get(line_no, whole)) is not None:
            results.append(RecordResult(index, key, "rejected", *refusal))
        else:
            results.append(RecordResult(index, key, "duplicate"))
    return results
