"""Valid landing records for tests, built per the contract; override any field."""

from odavl_pipeline.domain.attestations import GENESIS_HASH, attestation_hash
from odavl_pipeline.domain.signatures import error_signature

ORG = "odavl-test-org"
OTHER_ORG = "enterprise-corp"
PROJECT = "web-app"


def usage(event_id: str, **fields) -> dict:
    return {
        "event_id": event_id,
        "org": ORG,
        "event_type": "insight_analysis",
        "occurred_at": "2026-11-03T14:05:00Z",
        "quantity": 1,
        **fields,
    }


def error(event_id: str, **fields) -> dict:
    record = {
        "event_id": event_id,
        "org": ORG,
        "project": PROJECT,
        "detector": "typescript",
        "severity": "HIGH",
        "message": "Property 'data' does not exist on type 'Response'",
        "file": "src/api/client.ts",
        "line": 42,
        "column": 7,
        "occurred_at": "2026-11-03T14:05:00Z",
        **fields,
    }
    return record


def with_signature(record: dict) -> dict:
    return {
        **record,
        "signature": error_signature(record["detector"], record["file"], record["message"]),
    }


def attestation(request_id: str, prev_hash: str = GENESIS_HASH, **fields) -> dict:
    record = {
        "request_id": request_id,
        "org": ORG,
        "project": PROJECT,
        "status": "SUCCESS",
        "files_changed": 1,
        "lines_added": 3,
        "lines_removed": 1,
        "risk_score": 20,
        "recipes": ["ts-add-type-guard"],
        "created_at": "2026-11-03T14:05:00Z",
        "prev_hash": prev_hash,
        **fields,
    }
    return {**record, "hash": attestation_hash(record)}


def chain(prefix: str, length: int, **fields) -> list[dict]:
    """A valid chain from genesis; created_at one minute apart."""
    records, prev = [], GENESIS_HASH
    for index in range(length):
        record = attestation(
            f"{prefix}-{index}", prev, created_at=f"2026-11-03T14:{index:02d}:00Z", **fields
        )
        records.append(record)
        prev = record["hash"]
    return records


def audit(request_id: str, **fields) -> dict:
    return {
        "request_id": request_id,
        "org": ORG,
        "project": PROJECT,
        "url": "https://demo-web-app.odavl.studio",
        "environment": "production",
        "device": "desktop",
        "score_accessibility": 87,
        "status": "SUCCESS",
        "duration_ms": 48210,
        "occurred_at": "2026-11-03T14:05:00Z",
        "issues": [
            {
                "suite": "accessibility",
                "severity": "HIGH",
                "message": "Images without alt text",
                "recommendation": "Add alt text",
            },
            {
                "suite": "seo",
                "severity": "low",
                "message": "Missing meta description",
                "recommendation": "Add one",
                "element": "head",
            },
        ],
        **fields,
    }
