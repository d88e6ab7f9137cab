"""Reference data from a seeds file, loaded idempotently: a second load changes nothing.

Secrets are never stored in clear: a new user's password and a new API key are
generated, returned once for printing, and stored only as hashes.
"""

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import URL, Connection, create_engine, select
from sqlalchemy.dialects.postgresql import insert

from odavl_pipeline import clock
from odavl_pipeline.api.keys import PREFIX_LENGTH, hash_key, new_key
from odavl_pipeline.billing.plans import period_containing
from odavl_pipeline.db.models import (
    ApiKey,
    Organization,
    OrganizationMember,
    Project,
    Subscription,
    User,
)
from odavl_pipeline.db.passwords import hash_password

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # shown once, never stored


def load_reference(conn: Connection, reference: dict, now: datetime | None = None) -> SeedReport:
    """Insert what is missing of `reference` (users, organizations, projects, members,
    subscriptions, API keys); existing rows are left as they are."""
    now = now or clock.now()
    report = SeedReport()
    _load_users(conn, reference.get("users", []), report)
    users = dict(conn.execute(select(User.email, User.id)).all())
    for org in reference.get("organizations", []):
        _load_organization(conn, org, users, now, report)
    _load_api_keys(conn, reference.get("api_keys", []), users, report)
    return report


def _load_users(conn: Connection, users: list[dict], report: SeedReport) -> None:
    """Each new user, with a generated password reported once."""
    known = set(conn.execute(select(User.email)).scalars())
    for user in users:
        if user["email"] in known:
            continue
        password = secrets.token_urlsafe(12)
        inserted = _insert(
            conn,
            User,
            ["email"],
            email=user["email"],
            name=user.get("name"),
            hashed_password=hash_password(password),
        )
        _count(report, "users", inserted)
        if inserted:
            report.secrets.append(f"password for {user['email']}: {password}")


def _load_organization(
    conn: Connection, org: dict, users: dict[str, int], now: datetime, report: SeedReport
) -> None:
    """An organization with its projects, members (`users`: id by email) and subscription."""
    _count(
        report,
        "organizations",
        _insert(conn, Organization, ["slug"], slug=org["slug"], name=org["name"], tier=org["tier"]),
    )
    org_id = conn.execute(
        select(Organization.id).where(Organization.slug == org["slug"])
    ).scalar_one()
    for project in org.get("projects", []):
        _count(report, "projects", _insert_project(conn, org_id, project))
    for member in org.get("members", []):
        _count(
            report,
            "organization_members",
            _insert(
                conn,
                OrganizationMember,
                ["organization_id", "user_id"],
                organization_id=org_id,
                user_id=users[member["email"]],
                role=member["role"],
            ),
        )
    if "subscription" in org:
        _count(
            report, "subscriptions", _insert_subscription(conn, org_id, org["subscription"], now)
        )


def _insert_project(conn: Connection, org_id: int, project: dict) -> bool:
    return _insert(
        conn,
        Project,
        ["organization_id", "slug"],
        organization_id=org_id,
        slug=project["slug"],
        name=project.get("name", project["slug"]),
        repository=project.get("repository"),
        branch=project.get("branch"),
        language=project.get("language"),
    )


def _load_api_keys(
    conn: Connection, keys: list[dict], users: dict[str, int], report: SeedReport
) -> None:
    """Each new API key (by user and name), generated and reported once, stored as a hash."""
    for key in keys:
        user_id = users[key["email"]]
        exists = conn.execute(
            select(ApiKey.id).where(ApiKey.user_id == user_id, ApiKey.name == key["name"])
        ).first()
        if exists:
            continue
        secret = new_key()
        _insert(
            conn,
            ApiKey,
            ["key_hash"],
            user_id=user_id,
            name=key["name"],
            key_hash=hash_key(secret),
            key_prefix=secret[:PREFIX_LENGTH],
            scopes=key.get("scopes", []),
        )
        _count(report, "api_keys", True)
        report.secrets.append(f"API key {key['name']!r} for {key['email']}: {secret}")


def copy_seed_landing(landing_dir: Path, seeds_dir: Path = SEEDS_DIR) -> int:
    """Place the demo landing files in the landing zone (once; same bytes, same path)."""
    copied = 0
    for source in sorted((seeds_dir / "landing").rglob("*.ndjson")):
        target = landing_dir / source.relative_to(seeds_dir / "landing")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, temporary)
            temporary.rename(target)
            copied += 1
    return copied


def seed_chain_heads(seeds_dir: Path = SEEDS_DIR) -> tuple[tuple[str, str, str], ...]:
    """(org, project, hash) of the last attestation of each demo chain in the seeds."""
    heads: dict[tuple[str, str], str] = {}
    for path in sorted((seeds_dir / "landing" / "fix_attestations").rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                heads[(record["org"], record["project"])] = record["hash"]
    return tuple((org, project, head) for (org, project), head in sorted(heads.items()))


def read_reference(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_reference_files(url: URL, paths: list[Path]) -> Iterator[tuple[Path, SeedReport]]:
    """Load each reference file in a transaction of its own; each file's report as it is
    committed."""
    engine = create_engine(url)
    for path in paths:
        with engine.begin() as conn:
            report = load_reference(conn, read_reference(path))
        yield path, report


def _insert(conn: Connection, model, keys: list[str], **values) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when a row was created."""
    statement = (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(model.id)
    )
    return conn.execute(statement).first() is not None


def _insert_subscription(conn: Connection, org_id: int, spec: dict, now: datetime) -> bool:
    anchor = datetime.fromisoformat(spec.get("period_anchor") or spec["current_period_start"])
    start, end = period_containing(anchor, now)
    return _insert(
        conn,
        Subscription,
        ["organization_id"],
        organization_id=org_id,
        status=spec.get("status", "ACTIVE"),
        stripe_price_id=spec.get("stripe_price_id"),
        analyses_limit=spec.get("analyses_limit"),
        fixes_limit=spec.get("fixes_limit"),
        audits_limit=spec.get("audits_limit"),
        projects_limit=spec.get("projects_limit"),
        current_period_start=start,
        current_period_end=end,
    )


def _count(report: SeedReport, table: str, inserted: bool) -> None:
    report.created[table] = report.created.get(table, 0) + int(inserted)
