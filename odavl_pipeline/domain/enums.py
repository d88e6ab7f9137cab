"""The values the pipeline's records and rows take, as plain Python enums (CONTRACT.md section 3
and the console's schema).

The database's enum types are built from these (`db/models.py`, `pg_enum`: each type's values
are its enum's, in its order), the domain's validation sets too (`domain/records.py`), so a
value added here reaches both; tests/test_vocabulary.py ties the rest. Plain Python: no layer
of the pipeline is imported here.
"""

import enum


def values(kind: type[enum.Enum]) -> tuple[str, ...]:
    """The values of an enum, in its order."""
    return tuple(member.value for member in kind)


class Tier(enum.Enum):
    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class OrgStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DELETED = "DELETED"


class MemberRole(enum.Enum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    DEVELOPER = "DEVELOPER"
    VIEWER = "VIEWER"


class ProjectStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


class SubscriptionStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    CANCELED = "CANCELED"
    TRIALING = "TRIALING"


class Severity(enum.Enum):
    """Declared from least to most severe, so PostgreSQL's GREATEST() picks the worst."""

    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class SignatureStatus(enum.Enum):
    OPEN = "open"
    RESOLVED = "resolved"
    REGRESSED = "regressed"


class RunStatus(enum.Enum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class ChainStatus(enum.Enum):
    VERIFIED = "verified"
    PENDING = "pending"


class UsageEventType(enum.Enum):
    INSIGHT_ANALYSIS = "insight_analysis"
    AUTOPILOT_JOB = "autopilot_job"
    GUARDIAN_TEST_RUN = "guardian_test_run"
    API_CALL = "api_call"


class Environment(enum.Enum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class Device(enum.Enum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"


class AuditSuite(enum.Enum):
    ACCESSIBILITY = "accessibility"
    PERFORMANCE = "performance"
    SECURITY = "security"
    SEO = "seo"
    BEST_PRACTICES = "best_practices"


class Source(enum.Enum):
    USAGE_EVENTS = "usage_events"
    ERROR_EVENTS = "error_events"
    FIX_ATTESTATIONS = "fix_attestations"
    AUDIT_RESULTS = "audit_results"
