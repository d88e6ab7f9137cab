"""The tables of the marts file: the contract's marts, the dashboards' marts, and bookkeeping.

Tables whose name begins with `_` are the builder's bookkeeping, not for readers.
"""

SCHEMA_VERSION = 6  # a published file of another version is rebuilt in full

MART_TABLES = {  # each mart readers query: its table's columns (DDL)
    # CONTRACT.md section 6
    "usage_daily": """(
        org VARCHAR NOT NULL, day DATE NOT NULL, metric VARCHAR NOT NULL,
        quantity BIGINT NOT NULL, events BIGINT NOT NULL)""",
    "quota_status": """(
        org VARCHAR NOT NULL, tier VARCHAR NOT NULL, period_start TIMESTAMPTZ NOT NULL,
        period_end TIMESTAMPTZ NOT NULL, metric VARCHAR NOT NULL, used BIGINT NOT NULL,
        quota BIGINT NOT NULL, pct_used DOUBLE, status VARCHAR NOT NULL, projected BIGINT NOT NULL,
        projected_exhaustion DATE, as_of TIMESTAMPTZ NOT NULL)""",
    "billing_periods": """(
        org VARCHAR NOT NULL, period_start TIMESTAMPTZ NOT NULL, period_end TIMESTAMPTZ NOT NULL,
        metric VARCHAR NOT NULL, used BIGINT NOT NULL, quota BIGINT NOT NULL,
        overage BIGINT NOT NULL, closed BOOLEAN NOT NULL)""",
    "billing_adjustments": """(
        org VARCHAR NOT NULL, period_start TIMESTAMPTZ NOT NULL, metric VARCHAR NOT NULL,
        kind VARCHAR NOT NULL, quantity BIGINT NOT NULL, events BIGINT NOT NULL,
        from_period_start TIMESTAMPTZ, batch BIGINT)""",
    # the dashboards' marts (README, "Marts")
    "organizations": """(
        org VARCHAR NOT NULL, name VARCHAR NOT NULL, tier VARCHAR NOT NULL, status VARCHAR NOT NULL,
        has_subscription BOOLEAN NOT NULL, org_id INTEGER NOT NULL)""",  # id in the usage facts
    "projects": """(org VARCHAR NOT NULL, project VARCHAR NOT NULL, name VARCHAR NOT NULL,
        status VARCHAR NOT NULL, project_id INTEGER NOT NULL)""",  # id in the usage facts
    "memberships": """(org VARCHAR NOT NULL, email VARCHAR NOT NULL, name VARCHAR,
        role VARCHAR NOT NULL)""",
    "error_trends": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, day DATE NOT NULL, detector VARCHAR NOT NULL,
        severity VARCHAR NOT NULL, events BIGINT NOT NULL, signatures BIGINT NOT NULL)""",
    # one row per signature and UTC day it occurred on: distinct signatures over any range
    "error_signature_days": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, day DATE NOT NULL, hash VARCHAR NOT NULL,
        events BIGINT NOT NULL)""",
    "error_signatures": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, hash VARCHAR NOT NULL, detector VARCHAR NOT NULL,
        severity VARCHAR NOT NULL, message VARCHAR NOT NULL, file VARCHAR NOT NULL, line INTEGER,
        count BIGINT NOT NULL, first_seen TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL,
        status VARCHAR NOT NULL, resolved_at TIMESTAMPTZ)""",
    # chain_status: verified fixes count as fixes; pending ones wait for their chain's parent
    "fix_outcomes": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, day DATE NOT NULL, status VARCHAR NOT NULL,
        chain_status VARCHAR NOT NULL, fixes BIGINT NOT NULL, files_changed BIGINT NOT NULL,
        lines_added BIGINT NOT NULL, lines_removed BIGINT NOT NULL, avg_risk DOUBLE NOT NULL,
        max_risk INTEGER NOT NULL)""",
    # every pending attestation and the parent it waits for: parent_received is false when no
    # accepted attestation of the project has the hash prev_hash (the missing link), true when
    # the parent is there but pending itself
    "pending_attestations": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, request_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL, hash VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL, parent_received BOOLEAN NOT NULL)""",
    "attestation_chains": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, verified BIGINT NOT NULL,
        pending BIGINT NOT NULL, rejected BIGINT NOT NULL, head_hash VARCHAR,
        head_created_at TIMESTAMPTZ)""",
    "audit_scores": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, day DATE NOT NULL, url VARCHAR NOT NULL,
        device VARCHAR NOT NULL, environment VARCHAR NOT NULL, audits BIGINT NOT NULL,
        score_accessibility DOUBLE, score_performance DOUBLE, score_security DOUBLE,
        score_seo DOUBLE, lighthouse_performance DOUBLE, lighthouse_accessibility DOUBLE,
        lighthouse_best_practices DOUBLE, lighthouse_seo DOUBLE, issues BIGINT NOT NULL)""",
    "audit_issues": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, day DATE NOT NULL, suite VARCHAR NOT NULL,
        severity VARCHAR NOT NULL, issues BIGINT NOT NULL)""",
    "latest_audit_issues": """(
        org VARCHAR NOT NULL, project VARCHAR NOT NULL, url VARCHAR NOT NULL, device VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL, suite VARCHAR NOT NULL, severity VARCHAR NOT NULL,
        message VARCHAR NOT NULL, recommendation VARCHAR NOT NULL, element VARCHAR,
        documentation VARCHAR)""",
    "quarantine_summary": """(
        source VARCHAR NOT NULL, reason VARCHAR NOT NULL, org VARCHAR, records BIGINT NOT NULL)""",
    # provenance: the ledger file of each usage fact (see usage_facts in the README); for the
    # records of an HTTP API request, the request (its id, its key's prefix, when received)
    "landing_files": """(
        file_id BIGINT NOT NULL, source VARCHAR NOT NULL, path VARCHAR NOT NULL,
        ingested_at TIMESTAMPTZ NOT NULL, request VARCHAR, key_prefix VARCHAR,
        received_at TIMESTAMPTZ)""",
}

BOOKKEEPING = {
    # usage_cut: the build holds exactly the usage stamped before it (NULL: a build "as of" an
    # instant, which holds the usage as it was when read)
    "_meta": """(
        schema_version INTEGER NOT NULL, built_at TIMESTAMPTZ NOT NULL, build_id VARCHAR NOT NULL,
        usage_cut TIMESTAMPTZ)""",
    # the Parquet files of usage facts in force, one glob per UTC day
    "_fact_files": "(day DATE NOT NULL, path VARCHAR NOT NULL)",
    # adjustments (late usage, corrections of closed periods: their `kind` and `batch`) per day
    # of occurrence, so a day's rebuild replaces exactly its share
    "_late_usage": """(org_id INTEGER NOT NULL, day DATE NOT NULL, metric VARCHAR NOT NULL,
        occurred_period_start TIMESTAMPTZ NOT NULL, period_start TIMESTAMPTZ NOT NULL,
        quantity BIGINT NOT NULL, events BIGINT NOT NULL, kind VARCHAR NOT NULL, batch BIGINT)""",
    # each organization's first usage and plan history (a fingerprint), as last built
    "_billing_orgs": "(org_id INTEGER NOT NULL, first_at TIMESTAMPTZ, plan VARCHAR NOT NULL)",
}


def create_all(con) -> None:
    for name, columns in {**MART_TABLES, **BOOKKEEPING}.items():
        con.execute(f"CREATE TABLE {name} {columns}")
