"""Autopilot fix attestations: canonical JSON hashing of a hash-chained record."""

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(record: dict[str, Any]) -> str:
    """Keys sorted, no insignificant white space, non-ASCII unescaped."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attestation_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its `hash` field, in canonical JSON."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
