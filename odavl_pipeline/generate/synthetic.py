"""Realistic, deterministic synthetic landing files for the four sources (CONTRACT.md 2-4).

All randomness comes from `random.Random` streams seeded with strings derived from
`GenerateOptions.seed`, so the same options give byte-identical files. Records are
streamed to disk one hour of one day at a time; what stays in memory is the reference
data, one attestation chain head per project and the small backlog of late and
duplicated lines waiting for a later file.

Besides clean records the generator writes, on purpose and counted in the summary:
exact duplicates (in the same file or a later one), conflicting duplicates (same key,
different content, always after the original), malformed lines named after the
quarantine reason they should get, late records (in a later day folder than their
timestamp), rare attestation chain forks and a few blank lines.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gzip
import heapq
import itertools
import os
import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from odavl_pipeline.domain.attestations import GENESIS_HASH, attestation_hash
from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.domain.signatures import error_signature

PRODUCERS = {
    "usage_events": "billing",
    "error_events": "insight",
    "fix_attestations": "autopilot",
    "audit_results": "guardian",
}
MALFORMED_KINDS = (
    "invalid_json",
    "schema_violation",
    "unknown_org",
    "unknown_project",
    "future_timestamp",
    "signature_mismatch",
    "hash_mismatch",
)

_NAMESPACE = "odavl-synthetic/v1"
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_dumps = orjson.dumps


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, kw_only=True)
class GenerateOptions:
    """What to generate. Shares are per generated record (a probability each)."""

    seed: int = 7
    days: int = 30
    end_day: dt.date
    organizations: int = 5
    usage_per_day: int = 200
    errors_per_day: int = 40
    attestations_per_day: int = 5
    audits_per_day: int = 2
    duplicate_share: float = 0.02
    conflict_share: float = 0.002
    malformed_share: float = 0.005
    late_share: float = 0.02
    gzip_share: float = 0.2
    files_per_day: int = 2
    # No timestamp after this instant (except the deliberate year-2099 ones). Leave it
    # None for full days up to the end of `end_day`; a CLI generating up to "today"
    # should pass the current time so fresh data is not rejected as future.
    not_after: dt.datetime | None = None
    # (org, project, hash) of attestation chains that already exist (the demo seeds):
    # their generated attestations continue those chains instead of forking them.
    chain_heads: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.files_per_day < 1:
            raise ValueError("files_per_day must be at least 1")
        for name in (
            "organizations",
            "usage_per_day",
            "errors_per_day",
            "attestations_per_day",
            "audits_per_day",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in (
            "duplicate_share",
            "conflict_share",
            "malformed_share",
            "late_share",
            "gzip_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.duplicate_share + self.conflict_share + self.malformed_share * 1.1 > 1.0:
            raise ValueError("duplicate_share + conflict_share + malformed_share must stay below 1")
        if self.not_after is not None and self.not_after.utcoffset() is None:
            raise ValueError("not_after must be timezone-aware")

    @property
    def first_day(self) -> dt.date:
        return self.end_day - dt.timedelta(days=self.days - 1)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class SourceSummary:
    """What was written for one source, and what ingesting all of it should give."""

    source: str
    files: int
    gzip_files: int
    lines: int  # non-blank lines written
    blank_lines: int
    records: int  # distinct valid records: ingestion accepts exactly these
    duplicates: int  # exact copies of a record: `duplicate`
    conflicts: int  # same key, different content: `conflicting_duplicate`
    malformed: int  # bad lines, rejected with the reasons in malformed_kinds
    malformed_kinds: Mapping[str, int] = field(default_factory=dict)
    forks: int = 0  # deliberate second child of a chain link: `chain_fork`
    late: int = 0  # records in a later day folder than their own timestamp

    @property
    def expected_rejected(self) -> int:
        return self.conflicts + self.malformed + self.forks

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "gzip_files": self.gzip_files,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "records": self.records,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "malformed": self.malformed,
            "malformed_kinds": dict(self.malformed_kinds),
            "forks": self.forks,
            "late": self.late,
        }


@dataclass(frozen=True)
class GenerateSummary:
    out: Path
    first_day: dt.date
    end_day: dt.date
    organizations: int
    projects: int
    sources: Mapping[str, SourceSummary]

    @property
    def files(self) -> int:
        return sum(s.files for s in self.sources.values())

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "first_day": self.first_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "organizations": self.organizations,
            "projects": self.projects,
            "sources": {name: s.to_dict() for name, s in self.sources.items()},
        }


# --------------------------------------------------------------------------- vocabulary

_COMPANY_NAMES = (
    "Northwind Traders",
    "Bluefin Analytics",
    "Cedar & Pine Labs",
    "Helios Payments",
    "Kestrel Robotics",
    "Lumen Health",
    "Marlowe Insurance",
    "Nimbus Retail",
    "Orbital Freight",
    "Pioneer Biotech",
    "Quartz Media",
    "Riverbend Software",
    "Summit Ledger",
    "Tidewater Energy",
    "Vantage Mobility",
    "Willow Education",
    "Zephyr Travel",
    "Ironclad Security",
    "Brightpath Learning",
    "Copperleaf Finance",
    "Driftwood Games",
    "Evergreen Foods",
    "Foxglove Pharma",
    "Granite Cloud",
    "Harbor Logistics",
    "Juniper Fintech",
    "Meridian Telecom",
    "Société Nordique",
    "Aurora Ticketing",
    "Blackbird Studios",
    "Clearwater Utilities",
    "Delta Freightworks",
    "Elmstreet Realty",
    "Fjordline Shipping",
    "Goldcrest Bank",
    "Hummingbird Kitchens",
    "Indigo Apparel",
    "Jasper Automotive",
    "Kinetic Sports",
    "Lighthouse Legal",
    "Müller & Söhne Maschinenbau",
    "Nova Scotia Seafoods",
    "Oakridge Clinics",
    "Parcelpoint",
    "Redwood Capital",
    "Saffron Hospitality",
    "Trailhead Outdoor",
)
_NAME_PREFIXES = (
    "Aster",
    "Beacon",
    "Cobalt",
    "Dune",
    "Ember",
    "Falcon",
    "Glacier",
    "Horizon",
    "Ivory",
    "Jade",
    "Keystone",
    "Lattice",
    "Mosaic",
    "Nimble",
    "Onyx",
    "Prism",
)
_NAME_SUFFIXES = (
    "Dynamics",
    "Systems",
    "Labs",
    "Networks",
    "Partners",
    "Works",
    "Digital",
    "Holdings",
    "Solutions",
    "Collective",
    "Group",
    "Technologies",
)
_DOMAIN_TLDS = (".com", ".com", ".io", ".dev", ".co")

# slug, name, language, audit host prefix
_PROJECTS = (
    ("web-app", "Web App", "typescript", "app"),
    ("api-gateway", "API Gateway", "typescript", "api"),
    ("checkout-service", "Checkout Service", "typescript", "checkout"),
    ("admin-dashboard", "Admin Dashboard", "typescript", "admin"),
    ("marketing-site", "Marketing Site", "javascript", "www"),
    ("mobile-app", "Mobile App", "typescript", "m"),
    ("design-system", "Design System", "typescript", "storybook"),
    ("billing-service", "Billing Service", "python", "billing"),
    ("data-platform", "Data Platform", "python", "data"),
    ("ml-pipeline", "ML Pipeline", "python", "ml"),
    ("customer-portal", "Customer Portal", "typescript", "portal"),
    ("notification-worker", "Notification Worker", "javascript", "notify"),
    ("search-api", "Search API", "python", "search"),
    ("docs-site", "Docs Site", "javascript", "docs"),
    ("auth-service", "Auth Service", "typescript", "auth"),
)
_TIER_WEIGHT = {"FREE": 0.25, "PRO": 1.0, "ENTERPRISE": 2.4}
_TIER_MAX_PROJECTS = {"FREE": 3, "PRO": 4, "ENTERPRISE": 4}

_FIRST_NAMES = (
    "maria",
    "james",
    "aisha",
    "chen",
    "lucas",
    "sofia",
    "noah",
    "emma",
    "ravi",
    "yuki",
    "olivia",
    "mateo",
    "fatima",
    "liam",
    "ingrid",
    "kwame",
    "zoe",
    "omar",
    "hannah",
    "diego",
    "priya",
    "tomas",
    "elena",
    "samuel",
)
_LAST_NAMES = (
    "garcia",
    "smith",
    "khan",
    "wang",
    "silva",
    "rossi",
    "mueller",
    "dubois",
    "patel",
    "tanaka",
    "johnson",
    "lopez",
    "nguyen",
    "andersen",
    "okafor",
    "kim",
    "novak",
    "haddad",
    "fischer",
    "moreau",
)

# Working hours in UTC carry most of the traffic.
_HOUR_PROFILE = (
    0.25,
    0.2,
    0.18,
    0.18,
    0.2,
    0.3,
    0.5,
    0.8,
    1.2,
    1.6,
    1.8,
    1.8,
    1.6,
    1.7,
    1.8,
    1.8,
    1.6,
    1.3,
    1.0,
    0.8,
    0.6,
    0.5,
    0.4,
    0.3,
)
_HOUR_SHARE = tuple(w / sum(_HOUR_PROFILE) for w in _HOUR_PROFILE)
# (weekday factor, weekend factor): averages to 1 over a week.
_WEEK_USAGE = (1.26, 0.35)
_WEEK_ERRORS = (1.2, 0.5)
_WEEK_CI = (1.3, 0.25)

_OFFSETS = (("+02:00", 120), ("-05:00", -300), ("+05:30", 330), ("+00:00", 0))
_OFFSET_SHARE = 0.08

_EVENT_TYPES = ("api_call", "insight_analysis", "autopilot_job", "guardian_test_run")
_EVENT_TYPE_CUM = (0.72, 0.87, 0.93, float("inf"))  # weights .72 .15 .06 .07
_API_ENDPOINTS = (
    "/api/analyze",
    "/api/fix",
    "/api/audit",
    "/api/projects",
    "/api/signatures",
    "/api/usage",
    "/api/attestations",
    "/api/projects/{id}/errors",
)
_API_ENDPOINT_CUM = (0.22, 0.32, 0.42, 0.62, 0.78, 0.86, 0.92, float("inf"))
_HTTP_STATUS = (
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    200,
    201,
    204,
    400,
    401,
    404,
    429,
    500,
    200,
)
_CLIENTS = ("cli", "vscode", "ci", "web")

# --- Insight error catalogue: (severity, template, code, suggestion). Fixed slots are
# filled once per error site; {n}, {m}, {d}, {e}, {uuid} and {hex} vary per occurrence and are
# masked by the signature's normalisation.
_ERRORS_TS = {
    "typescript": (
        (
            "HIGH",
            "Property '{prop}' does not exist on type '{type}'.",
            "TS2339",
            "Narrow the type or add '{prop}' to the '{type}' interface.",
        ),
        (
            "HIGH",
            "Argument of type '{t1}' is not assignable to parameter of type '{t2}'.",
            "TS2345",
            "Convert the argument or widen the parameter type.",
        ),
        (
            "MEDIUM",
            "Object is possibly 'undefined'.",
            "TS2532",
            "Add a null check or use optional chaining.",
        ),
        ("HIGH", "Cannot find name '{ident}'.", "TS2304", "Import or declare '{ident}'."),
        ("MEDIUM", "Type '{t1}' is not assignable to type '{t2}'.", "TS2322", None),
        (
            "HIGH",
            "Expected {d} arguments, but got {e}.",
            "TS2554",
            "Check the call against the function signature.",
        ),
        (
            "MEDIUM",
            "Cannot find module '{module}' or its corresponding type declarations.",
            "TS2307",
            "Install the package or add a declaration file.",
        ),
        (
            "LOW",
            "'{ident}' is declared but its value is never read.",
            "TS6133",
            "Remove the unused declaration.",
        ),
    ),
    "eslint": (
        (
            "LOW",
            "Missing return type on function.",
            "@typescript-eslint/explicit-function-return-type",
            "Add an explicit return type.",
        ),
        ("LOW", "'{ident}' is assigned a value but never used.", "no-unused-vars", None),
        (
            "MEDIUM",
            "Unexpected any. Specify a different type.",
            "@typescript-eslint/no-explicit-any",
            "Use 'unknown' and narrow it.",
        ),
        ("LOW", "Unexpected console statement.", "no-console", "Use the structured logger."),
        (
            "MEDIUM",
            "React Hook useEffect has a missing dependency: '{ident}'. Either include it "
            "or remove the dependency array.",
            "react-hooks/exhaustive-deps",
            None,
        ),
        (
            "INFO",
            "Prefer using an optional chain expression instead, as it's more concise and "
            "easier to read.",
            "@typescript-eslint/prefer-optional-chain",
            None,
        ),
        ("LOW", "This line has a length of {n}. Maximum allowed is 120.", "max-len", None),
    ),
    "security": (
        (
            "CRITICAL",
            "Hardcoded API key detected",
            "SEC001",
            "Move the key to an environment variable or a secret manager.",
        ),
        (
            "CRITICAL",
            "Possible AWS secret access key in string literal at offset {hex}",
            "SEC002",
            "Rotate the key and load it from the environment.",
        ),
        (
            "HIGH",
            "Potential SQL injection: query built from user input '{ident}'",
            "SEC010",
            "Use parameterised queries.",
        ),
        ("HIGH", "Use of eval() with dynamic input", "SEC014", "Avoid eval; parse the data."),
        (
            "MEDIUM",
            "Insecure randomness: Math.random() used to generate '{ident}'",
            "SEC021",
            "Use crypto.getRandomValues().",
        ),
        (
            "HIGH",
            "Dependency {pkg} has known vulnerability CVE-{cve}",
            "SEC030",
            "Upgrade {pkg} to a patched release.",
        ),
    ),
    "performance": (
        (
            "MEDIUM",
            "Synchronous file read blocking event loop",
            "PERF001",
            "Use fs.promises.readFile.",
        ),
        ("MEDIUM", "Function '{ident}' took {n}ms (threshold {m}ms)", "PERF010", None),
        (
            "LOW",
            "Bundle chunk '{chunk}' is {n} KB, over the {m} KB budget",
            "PERF020",
            "Split the chunk with dynamic imports.",
        ),
        (
            "MEDIUM",
            "N+1 query detected: {n} queries issued by '{ident}' for request {uuid}",
            "PERF030",
            "Batch the lookups.",
        ),
        (
            "LOW",
            "Component '{comp}' re-rendered {n} times in {m} ms",
            "PERF040",
            "Memoise the props.",
        ),
        (
            "HIGH",
            "Possible memory leak: {n} '{event}' listeners registered on window",
            "PERF050",
            "Remove the listener in the cleanup function.",
        ),
    ),
    "circular": (
        (
            "HIGH",
            "Circular dependency detected: {cycle}",
            None,
            "Extract the shared code into its own module.",
        ),
    ),
    "runtime": (
        ("HIGH", "TypeError: Cannot read properties of undefined (reading '{prop}')", None, None),
        (
            "HIGH",
            "Unhandled promise rejection: request {uuid} failed with status 50{d}",
            None,
            "Await the promise and handle the error.",
        ),
        (
            "CRITICAL",
            "Error: connect ECONNREFUSED 10.0.{d}.{m}:5432",
            None,
            "Check the database host and its health check.",
        ),
        ("MEDIUM", "Worker {n} exceeded its heap limit at address {hex}", None, None),
    ),
}
_ERRORS_PY = {
    "mypy": (
        (
            "HIGH",
            'Item "None" of "Optional[{pytype}]" has no attribute "{attr}"',
            "union-attr",
            "Check for None before the access.",
        ),
        (
            "MEDIUM",
            'Incompatible return value type (got "{pyt1}", expected "{pyt2}")',
            "return-value",
            None,
        ),
        ("HIGH", 'Module "{pymod}" has no attribute "{ident}"', "attr-defined", None),
        (
            "LOW",
            "Function is missing a type annotation for one or more arguments",
            "no-untyped-def",
            "Annotate every argument.",
        ),
    ),
    "ruff": (
        ("LOW", "`{pymod}` imported but unused", "F401", "Remove the import."),
        ("LOW", "Line too long ({n} > 88)", "E501", None),
        (
            "MEDIUM",
            "Do not use mutable data structures for argument defaults",
            "B006",
            "Default to None and create the object inside the function.",
        ),
        ("LOW", "Local variable `{ident}` is assigned to but never used", "F841", None),
    ),
    "security": (
        (
            "HIGH",
            "Possible SQL injection vector through string-based query construction",
            "B608",
            "Use bound parameters.",
        ),
        ("HIGH", "subprocess call with shell=True identified, security issue", "B602", None),
        (
            "MEDIUM",
            "Use of assert detected. The enclosed code will be removed when compiling "
            "to optimised byte code.",
            "B101",
            None,
        ),
        (
            "CRITICAL",
            "Hardcoded password string: '{ident}'",
            "B105",
            "Load the secret from the environment.",
        ),
    ),
    "performance": (
        (
            "MEDIUM",
            "Query in a loop: {n} queries issued by '{ident}' for request {uuid}",
            "PERF030",
            "Prefetch the related rows.",
        ),
        ("LOW", "Function '{ident}' took {n}ms (threshold {m}ms)", "PERF010", None),
    ),
    "circular": (
        (
            "HIGH",
            "Circular dependency detected: {cycle}",
            None,
            "Move the shared names into a lower-level module.",
        ),
    ),
}
_DETECTORS_TS = (
    ("typescript", 0.3),
    ("eslint", 0.28),
    ("security", 0.08),
    ("performance", 0.14),
    ("circular", 0.06),
    ("runtime", 0.14),
)
_DETECTORS_JS = (
    ("eslint", 0.5),
    ("security", 0.1),
    ("performance", 0.17),
    ("circular", 0.07),
    ("runtime", 0.16),
)
_DETECTORS_PY = (
    ("mypy", 0.35),
    ("ruff", 0.3),
    ("security", 0.12),
    ("performance", 0.13),
    ("circular", 0.1),
)
_SLOTS = {
    "prop": (
        "data",
        "items",
        "userId",
        "total",
        "metadata",
        "createdAt",
        "status",
        "payload",
        "token",
        "config",
        "length",
        "id",
    ),
    "type": (
        "Response",
        "User",
        "Order",
        "Invoice",
        "Session",
        "ApiError",
        "Project",
        "AuditResult",
        "CartItem",
    ),
    "t1": (
        "string",
        "number",
        "undefined",
        "string | undefined",
        "number | null",
        "Date",
        "Record<string, unknown>",
        "Promise<void>",
        "User[]",
    ),
    "t2": ("string", "number", "boolean", "Date", "User", "readonly string[]", "never"),
    "ident": (
        "handleSubmit",
        "fetchOrders",
        "userCache",
        "retryCount",
        "formatCurrency",
        "parseConfig",
        "isLoading",
        "setFilters",
        "apiClient",
        "logger",
        "sessionToken",
        "loadInvoices",
        "resolveTenant",
        "buildQuery",
    ),
    "module": (
        "@/lib/analytics",
        "lodash-es/debounce",
        "./legacy/payments",
        "@odavl/sdk",
        "date-fns/locale",
        "@/components/ui/dialog",
    ),
    "comp": (
        "UserList",
        "CheckoutForm",
        "InvoiceTable",
        "NavBar",
        "SearchResults",
        "DashboardChart",
        "PricingCard",
    ),
    "event": ("resize", "message", "storage", "visibilitychange", "scroll"),
    "pkg": (
        "lodash@4.17.15",
        "axios@0.21.1",
        "jsonwebtoken@8.5.1",
        "minimist@1.2.5",
        "node-fetch@2.6.0",
        "semver@5.7.1",
        "follow-redirects@1.14.7",
    ),
    "cve": (
        "2020-8203",
        "2021-3749",
        "2022-23529",
        "2021-44906",
        "2022-0235",
        "2022-25883",
        "2023-26159",
    ),
    "chunk": ("vendor", "charts", "editor", "main", "admin"),
    "pytype": ("User", "Invoice", "Decimal", "Project", "datetime"),
    "attr": ("id", "email", "amount", "items", "tzinfo", "slug"),
    "pyt1": ("str | None", "int", "list[str]", "dict[str, Any]"),
    "pyt2": ("str", "float", "tuple[str, ...]", "Mapping[str, int]"),
    "pymod": (
        "app.models.billing",
        "app.services.search",
        "app.core.settings",
        "app.tasks.emails",
        "app.utils.money",
    ),
}
_DYNAMIC = ("n", "m", "d", "e", "uuid", "hex")
_TS_DIRS = {
    "api": ("client", "orders", "invoices", "auth", "projects"),
    "components": (
        "UserList",
        "CheckoutForm",
        "InvoiceTable",
        "NavBar",
        "SearchResults",
        "DashboardChart",
        "PricingCard",
        "Modal",
    ),
    "hooks": ("useAuth", "useOrders", "useDebounce", "useFeatureFlag"),
    "services": ("billingService", "emailService", "searchService", "cacheService"),
    "utils": ("format", "dates", "money", "validation"),
    "pages": ("index", "checkout", "settings", "dashboard"),
    "store": ("cartSlice", "userSlice", "rootReducer"),
    "middleware": ("logger", "rateLimit", "auth"),
    "models": ("user", "order", "invoice", "project"),
    "config": ("api", "env", "featureFlags"),
}
_PY_DIRS = {
    "api": ("routes", "deps", "schemas"),
    "services": ("billing", "search", "ingest", "notifications"),
    "models": ("user", "invoice", "project", "event"),
    "core": ("settings", "db", "security"),
    "tasks": ("emails", "reports", "cleanup"),
    "utils": ("money", "dates", "text"),
}
# The demo signatures of DESIGN.md, for odavl-test-org/web-app.
_DEMO_SITES = (
    (
        "typescript",
        "HIGH",
        "Property 'data' does not exist on type 'Response'",
        "src/api/client.ts",
        42,
    ),
    ("security", "CRITICAL", "Hardcoded API key detected", "src/config/api.ts", 8),
    (
        "performance",
        "MEDIUM",
        "Synchronous file read blocking event loop",
        "src/middleware/logger.ts",
        23,
    ),
    ("eslint", "LOW", "Missing return type on function", "src/utils/format.ts", 15),
    ("circular", "HIGH", "Circular dependency detected: A → B → C → A", "src/models/user.ts", 1),
)
_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")

# --- Autopilot
_RECIPES = (
    "remove-unused-imports",
    "add-explicit-return-types",
    "fix-null-checks",
    "replace-any-with-unknown",
    "extract-hardcoded-secrets",
    "convert-sync-fs-to-async",
    "break-circular-import",
    "add-missing-await",
    "sort-imports",
    "upgrade-vulnerable-dependency",
    "memoize-expensive-selector",
    "add-alt-text",
)
_FIX_ERRORS = (
    "Type check failed after applying 'fix-null-checks' — changes reverted",
    "Tests failed: 3 of 212 (snapshot mismatch in UserList.test.tsx)",
    "Merge conflict in src/api/client.ts",
    "Timed out after 300 s waiting for the build",
    "Risk score above the project threshold; no changes applied",
)
_PARTIAL_ERRORS = (
    "2 of 5 fixes skipped: risk score above threshold",
    "Skipped generated files under src/__generated__",
    "1 recipe could not be applied cleanly; the rest were kept",
)

# --- Guardian: suite -> (severity, message, recommendation, element, documentation)
_AUDIT_ISSUES = {
    "accessibility": (
        (
            "HIGH",
            "Image elements do not have [alt] attributes",
            "Add descriptive alt text to every informative image.",
            "img.hero-banner",
            "https://dequeuniversity.com/rules/axe/4.9/image-alt",
        ),
        (
            "MEDIUM",
            "Background and foreground colors do not have a sufficient contrast ratio",
            "Raise the contrast ratio to at least 4.5:1 for body text.",
            "p.subtitle",
            "https://dequeuniversity.com/rules/axe/4.9/color-contrast",
        ),
        (
            "HIGH",
            "Form elements do not have associated labels",
            "Associate a <label> with each input or add aria-label.",
            "input#email",
            "https://dequeuniversity.com/rules/axe/4.9/label",
        ),
        (
            "LOW",
            "Heading elements are not in a sequentially-descending order",
            "Do not skip heading levels.",
            "h4.card-title",
            None,
        ),
        (
            "CRITICAL",
            "Buttons do not have an accessible name",
            "Give icon-only buttons an aria-label.",
            "button.icon-close",
            "https://dequeuniversity.com/rules/axe/4.9/button-name",
        ),
    ),
    "performance": (
        (
            "HIGH",
            "Largest Contentful Paint is {s} s",
            "Preload the hero image and serve it in a modern format.",
            None,
            "https://web.dev/articles/lcp",
        ),
        (
            "MEDIUM",
            "Reduce unused JavaScript: {kib} KiB could be saved",
            "Split the bundle and lazy-load routes.",
            None,
            "https://developer.chrome.com/docs/lighthouse/performance/unused-javascript",
        ),
        (
            "MEDIUM",
            "Serve images in next-gen formats",
            "Use WebP or AVIF.",
            "img.product-thumb",
            None,
        ),
        (
            "LOW",
            "Cumulative Layout Shift is 0.{cls}",
            "Reserve space for images and embeds.",
            None,
            "https://web.dev/articles/cls",
        ),
        ("HIGH", "Total Blocking Time is {ms} ms", "Break up long tasks.", None, None),
    ),
    "security": (
        (
            "HIGH",
            "Missing Content-Security-Policy header",
            "Define a restrictive CSP.",
            None,
            "https://developer.mozilla.org/en-US/docs/Web/HTTP/CSP",
        ),
        (
            "MEDIUM",
            "Missing Strict-Transport-Security header",
            "Send HSTS with a max-age of at least one year.",
            None,
            None,
        ),
        (
            "CRITICAL",
            "Mixed content: the page loads scripts over HTTP",
            "Serve every subresource over HTTPS.",
            "script[src^='http:']",
            None,
        ),
        (
            "LOW",
            "Cookie 'session_id' has no SameSite attribute",
            "Set SameSite=Lax or Strict.",
            None,
            None,
        ),
        (
            "HIGH",
            "Vulnerable JavaScript library detected: jquery@2.1.4",
            "Upgrade to a supported release.",
            None,
            None,
        ),
    ),
    "seo": (
        (
            "MEDIUM",
            "Document does not have a meta description",
            "Add a unique meta description of 150–160 characters.",
            None,
            "https://developer.chrome.com/docs/lighthouse/seo/meta-description",
        ),
        (
            "LOW",
            "Links do not have descriptive text",
            "Replace 'click here' with meaningful link text.",
            "a.read-more",
            None,
        ),
        (
            "HIGH",
            "Page is blocked from indexing",
            "Remove the noindex directive in production.",
            "meta[name='robots']",
            None,
        ),
    ),
    "best_practices": (
        ("LOW", "Browser errors were logged to the console", "Fix the logged errors.", None, None),
        (
            "MEDIUM",
            "Uses deprecated APIs",
            "Replace unload handlers and document.write.",
            None,
            None,
        ),
        (
            "INFO",
            "Page lacks the HTML doctype, triggering quirks mode",
            "Add <!DOCTYPE html>.",
            None,
            None,
        ),
    ),
}
_SUITES = tuple(_AUDIT_ISSUES)
_ALL_AUDIT_ISSUES = tuple(
    (suite, issue) for suite, issues in _AUDIT_ISSUES.items() for issue in issues
)
_AUDIT_PATHS = (
    "/",
    "/",
    "/pricing",
    "/login",
    "/signup",
    "/dashboard",
    "/settings/billing",
    "/docs/getting-started",
    "/blog/release-notes",
    "/products/42",
    "/checkout",
)
_DEVICES = ("desktop", "desktop", "mobile", "mobile", "tablet")
_ENVIRONMENTS = ("production", "production", "staging", "staging", "development")


# --------------------------------------------------------------------------- reference data


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _period_start(end_day: dt.date, anchor: int, rng: random.Random) -> str:
    """The start of the monthly period that contains end_day, anchored on day `anchor`."""
    year, month = end_day.year, end_day.month
    if anchor > end_day.day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return (
        f"{dt.date(year, month, anchor).isoformat()}T"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
    )


def _project_entry(org_slug: str, slug: str, name: str, language: str) -> dict[str, str]:
    return {
        "slug": slug,
        "name": name,
        "language": language,
        "repository": f"https://github.com/{org_slug}/{slug}",
    }


def synthetic_reference(options: GenerateOptions) -> dict[str, Any]:
    """The organizations, projects and subscriptions the generated data refers to."""
    rng = random.Random(f"{_NAMESPACE}/{options.seed}/reference")
    orgs: list[dict[str, Any]] = [
        {
            "slug": "odavl-test-org",
            "name": "ODAVL Test Org",
            "tier": "PRO",
            "projects": [
                _project_entry("odavl-test-org", "web-app", "Web App", "typescript"),
                _project_entry("odavl-test-org", "api-backend", "API Backend", "typescript"),
            ],
            "subscription": {
                "current_period_start": _period_start(options.end_day, 1, rng),
                "status": "ACTIVE",
            },
        },
        {
            "slug": "enterprise-corp",
            "name": "Enterprise Corp",
            "tier": "ENTERPRISE",
            "projects": [
                _project_entry("enterprise-corp", "mobile-app", "Mobile App", "typescript")
            ],
            "subscription": {
                "current_period_start": _period_start(options.end_day, 15, rng),
                "status": "ACTIVE",
            },
        },
    ]
    count = options.organizations
    names = rng.sample(_COMPANY_NAMES, min(count, len(_COMPANY_NAMES)))
    taken = set(names)
    pairs = {f"{prefix} {suffix}" for prefix in _NAME_PREFIXES for suffix in _NAME_SUFFIXES}
    while len(names) < count and not pairs <= taken:
        name = f"{rng.choice(_NAME_PREFIXES)} {rng.choice(_NAME_SUFFIXES)}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    names += [
        f"{names[i % len(names)]} {2 + i // len(names)}"  # more than there are names
        for i in range(count - len(names))
    ]
    tiers = ["FREE", "PRO", "ENTERPRISE"][:count]
    tiers += rng.choices(("FREE", "PRO", "ENTERPRISE"), weights=(4, 4, 2), k=count - len(tiers))
    rng.shuffle(tiers)
    slugs = {o["slug"] for o in orgs}
    for name, tier in zip(names, tiers):
        base = _slugify(name) or "org"
        slug, n = base, 2
        while slug in slugs:
            slug, n = f"{base}-{n}", n + 1
        slugs.add(slug)
        chosen = rng.sample(_PROJECTS, rng.randint(1, _TIER_MAX_PROJECTS[tier]))
        subscription = {  # drawn for every tier, so the draws that follow stay the same
            "current_period_start": _period_start(options.end_day, rng.randint(1, 28), rng),
            "status": "ACTIVE",
        }
        orgs.append(
            {
                "slug": slug,
                "name": name,
                "tier": tier,
                "projects": [_project_entry(slug, p[0], p[1], p[2]) for p in chosen],
                # FREE has no subscription: calendar months and FREE's limits
                **({} if tier == "FREE" else {"subscription": subscription}),
            }
        )
    return {"organizations": orgs}


# --------------------------------------------------------------------------- the world


def _cumulative(weights: Iterator[float] | tuple[float, ...]) -> tuple[tuple[float, ...], float]:
    """Cumulative weights for bisect, the last one infinite so rounding never overflows."""
    cum = list(itertools.accumulate(weights))
    total = cum[-1]
    cum[-1] = float("inf")
    return tuple(cum), total


def _stochastic_round(rng: random.Random, x: float) -> int:
    whole = int(x)
    return whole + (1 if rng.random() < x - whole else 0)


def _uuid4(getrandbits: Callable[[int], int]) -> str:
    """A version-4 UUID string from the seeded stream (same bits as uuid.UUID(version=4))."""
    n = getrandbits(128)
    n = (n & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = "%032x" % n
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class _Site:
    """One place in the code that produces one error signature."""

    detector: str
    severity: str
    template: str
    dynamic: tuple[str, ...]
    file: str
    line: int
    code: str | None
    suggestion: str | None
    weight: float
    active: tuple[tuple[int, int], ...]  # half-open ranges of day indices


@dataclass
class _Project:
    org: str
    slug: str
    language: str
    weight: float
    users: tuple[str, ...]
    hosts: dict[str, str]
    sites: list[_Site]


@dataclass
class _Org:
    slug: str
    tier: str
    weight: float
    users: tuple[str, ...]
    projects: tuple[str, ...]


def _domain(slug: str, rng: random.Random) -> str:
    return slug.replace("-", "") + rng.choice(_DOMAIN_TLDS)


def _users(domain: str, rng: random.Random, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    count = rng.randint(3, 12)
    users = list(extra)
    while len(users) < count + len(extra):
        email = f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}@{domain}"
        if email not in users:
            users.append(email)
    return tuple(users)


def _code_files(language: str, rng: random.Random, count: int) -> list[str]:
    files: list[str] = []
    dirs = _PY_DIRS if language == "python" else _TS_DIRS
    while len(files) < count:
        folder = rng.choice(tuple(dirs))
        name = rng.choice(dirs[folder])
        if language == "python":
            path = f"app/{folder}/{name}.py"
        else:
            ext = ".tsx" if folder in ("components", "pages") else ".ts"
            if language == "javascript":
                ext = ".jsx" if ext == ".tsx" else ".js"
            path = f"src/{folder}/{name}{ext}"
        if path not in files:
            files.append(path)
        if len(files) >= sum(len(v) for v in dirs.values()):
            break
    return files


def _activity(rng: random.Random, days: int) -> tuple[tuple[int, int], ...]:
    """When an error site fires: always, from some day on, until it is fixed, or it regresses."""
    r = rng.random()
    if days < 3 or r < 0.6:
        return ((0, days),)
    a = rng.randrange(1, days)
    if r < 0.75:
        return ((a, days),)
    if r < 0.9:
        return ((0, a),)
    b = rng.randrange(a, days)
    return ((0, a), (b + 1, days)) if b + 1 < days else ((0, a),)


def _sites(org: str, slug: str, language: str, options: GenerateOptions) -> list[_Site]:
    rng = random.Random(f"{_NAMESPACE}/{options.seed}/sites/{org}/{slug}")
    catalogue, detectors = (
        (_ERRORS_PY, _DETECTORS_PY)
        if language == "python"
        else (_ERRORS_TS, _DETECTORS_JS if language == "javascript" else _DETECTORS_TS)
    )
    names = tuple(d for d, _ in detectors)
    weights = tuple(w for _, w in detectors)
    files = _code_files(language, rng, rng.randint(12, 30))
    sites: list[_Site] = []
    if (org, slug) == ("odavl-test-org", "web-app"):
        for detector, severity, message, file, line in _DEMO_SITES:
            sites.append(
                _Site(
                    detector,
                    severity,
                    message,
                    (),
                    file,
                    line,
                    None,
                    None,
                    0.0,
                    ((0, options.days),),
                )
            )
    seen: set[tuple[str, str, str]] = set()
    target = rng.randint(20, 60)
    attempts = 0
    while len(sites) < target and attempts < target * 10:
        attempts += 1
        detector = rng.choices(names, weights)[0]
        severity, template, code, suggestion = rng.choice(catalogue[detector])
        file = rng.choice(files)
        slots = {name: rng.choice(values) for name, values in _SLOTS.items()}
        if detector == "circular":
            a, b, c = rng.sample(files, 3) if len(files) >= 3 else (file, file, file)
            file = a
            slots["cycle"] = " → ".join((a, b, c, a)) if rng.random() < 0.5 else f"{a} → {b} → {a}"
        fixed = template.format(**slots, **{d: "{" + d + "}" for d in _DYNAMIC})
        if (detector, file, fixed) in seen:
            continue
        seen.add((detector, file, fixed))
        dynamic = tuple(d for d in _DYNAMIC if "{" + d + "}" in fixed)
        sugg = suggestion.format(**slots) if suggestion and rng.random() < 0.8 else None
        sites.append(
            _Site(
                detector,
                severity,
                fixed,
                dynamic,
                file,
                rng.randint(1, 400),
                code,
                sugg,
                0.0,
                _activity(rng, options.days),
            )
        )
    # Zipf-like popularity: a few noisy signatures, a long tail of rare ones. The demo
    # signatures, when present, take ranks 6 to 10: frequent, but not the top five.
    demo = len(_DEMO_SITES) if (org, slug) == ("odavl-test-org", "web-app") else 0
    order = list(range(demo, len(sites)))
    rng.shuffle(order)
    order[demo:demo] = range(demo)
    for rank, index in enumerate(order, start=1):
        sites[index].weight = 1.0 / rank**1.1
    return sites


class _World:
    """Reference data plus everything derived from it that the generators need."""

    def __init__(self, options: GenerateOptions, reference: dict[str, Any]) -> None:
        rng = random.Random(f"{_NAMESPACE}/{options.seed}/world")
        self.orgs: list[_Org] = []
        self.projects: list[_Project] = []
        for entry in reference["organizations"]:
            slug = entry["slug"]
            if slug == "odavl-test-org":
                domain, users = "odavl.studio", _users("odavl.com", rng, ("alice@odavl.com",))
            elif slug == "enterprise-corp":
                domain, users = (
                    "enterprise-corp.com",
                    _users("enterprise-corp.com", rng, ("bob@odavl.com",)),
                )
            else:
                domain = _domain(slug, rng)
                users = _users(domain, rng)
            weight = _TIER_WEIGHT[entry["tier"]] * rng.uniform(0.7, 1.3)
            self.orgs.append(
                _Org(
                    slug, entry["tier"], weight, users, tuple(p["slug"] for p in entry["projects"])
                )
            )
            for p in entry["projects"]:
                prefix = next((x[3] for x in _PROJECTS if x[0] == p["slug"]), p["slug"])
                if (slug, p["slug"]) == ("odavl-test-org", "web-app"):
                    prod = "https://demo-web-app.odavl.studio"
                else:
                    prod = f"https://{prefix}.{domain}"
                hosts = {
                    "production": prod,
                    "staging": prod.replace("https://", "https://staging-", 1),
                    "development": f"http://localhost:{rng.choice((3000, 5173, 8000, 8080))}",
                }
                self.projects.append(
                    _Project(
                        slug,
                        p["slug"],
                        p["language"],
                        rng.uniform(0.5, 1.5),
                        users,
                        hosts,
                        _sites(slug, p["slug"], p["language"], options),
                    )
                )
        for items in (self.orgs, self.projects):
            total = sum(x.weight for x in items)
            for x in items:  # the mean weight is 1, so the per-day options are means
                x.weight = x.weight * len(items) / total if total else 1.0
        self.known_orgs = {o.slug for o in self.orgs}


# --------------------------------------------------------------------------- time


class _Clock:
    """Timestamps of one UTC day: `t` is milliseconds since midnight UTC."""

    def __init__(self, day: dt.date, index: int, options: GenerateOptions) -> None:
        self.day = day
        self.index = index
        self.prefix = day.isoformat() + "T"
        self.midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        self.weekend = day.weekday() >= 5
        limit = _DAY_MS
        if options.not_after is not None:
            limit = int((options.not_after - self.midnight).total_seconds() * 1000)
            limit = max(0, min(_DAY_MS, limit + 1))
        self.limit = limit  # events only in [0, limit)

    def week_factor(self, factors: tuple[float, float]) -> float:
        return factors[1] if self.weekend else factors[0]

    def hours(self) -> Iterator[tuple[int, float, int]]:
        """(hour start in ms, share of the day's events, span in ms) within the limit."""
        for hour in range(24):
            start = hour * _HOUR_MS
            span = min(_HOUR_MS, self.limit - start)
            if span <= 0:
                return
            yield start, _HOUR_SHARE[hour] * span / _HOUR_MS, span

    def stamp(self, t: int, rng: random.Random, millis: bool) -> str:
        if rng.random() < _OFFSET_SHARE:
            suffix, minutes = _OFFSETS[rng.randrange(len(_OFFSETS))]
            local = self.midnight + dt.timedelta(milliseconds=t, minutes=minutes)
            text = local.strftime("%Y-%m-%dT%H:%M:%S")
            return f"{text}.{t % 1000:03d}{suffix}" if millis else text + suffix
        s, ms = divmod(t, 1000)
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        if millis:
            return f"{self.prefix}{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"
        return f"{self.prefix}{h:02d}:{m:02d}:{s:02d}Z"


def _future(stamp: str) -> str:
    """The same wall-clock time in 2099: in the future whatever the day."""
    return "2099" + stamp[4:].replace("-02-29T", "-02-28T", 1)


def _without_offset(stamp: str) -> str:
    if stamp.endswith("Z"):
        return stamp[:-1]
    return stamp[:-6]


def _fresh_org(rng: random.Random, known: set[str]) -> str:
    while True:
        slug = (
            f"{rng.choice(('ghost', 'legacy', 'trial', 'deleted', 'sandbox'))}-"
            f"{rng.choice(('labs', 'corp', 'studio', 'tenant'))}-{rng.getrandbits(16):04x}"
        )
        if slug not in known:
            return slug


def _fresh_project(rng: random.Random, project: str) -> str:
    prefix = rng.choice(("retired", "prototype", "old", "poc"))
    return f"{prefix}-{project}-{rng.getrandbits(12):03x}"


def _invalid_json(rec: dict[str, Any], rng: random.Random) -> bytes:
    text = _dumps(rec).decode()
    style = rng.randrange(4)
    if style == 0:  # cut off mid-write
        return text[: rng.randrange(1, len(text) - 1)].encode()
    if style == 1:  # a Python repr instead of JSON
        return repr(rec).encode()
    if style == 2:  # two records glued together
        return (text + text).encode()
    return (text[:-1] + ",}").encode()  # trailing comma


# --------------------------------------------------------------------------- the sources


class _Source:
    """Records of one source: the day's stream plus its conflicting and malformed variants."""

    name: str
    key: str
    time_field: str
    millis: bool = True
    malformed_weights: tuple[tuple[str, float], ...]

    def __init__(self, world: _World, options: GenerateOptions) -> None:
        self.world = world
        self.options = options
        kinds = self.malformed_weights
        self._kind_names = tuple(k for k, _ in kinds)
        self._kind_cum, self._kind_total = _cumulative(w for _, w in kinds)

    def records(self, clock: _Clock, rng: random.Random) -> Iterator[tuple[int, dict, str | None]]:
        raise NotImplementedError

    def conflict(self, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        raise NotImplementedError

    def schema_violation(self, rec: dict[str, Any], rng: random.Random) -> None:
        raise NotImplementedError

    def finish(self, rec: dict[str, Any]) -> None:
        """Hook for attestations to recompute the hash of a mutated copy."""

    def malformed(self, rec: dict[str, Any], rng: random.Random) -> tuple[str, bytes]:
        kind = self._kind_names[bisect.bisect(self._kind_cum, rng.random() * self._kind_total)]
        bad = dict(rec)
        bad[self.key] = _uuid4(rng.getrandbits)
        if kind == "invalid_json":
            self.finish(bad)
            return kind, _invalid_json(bad, rng)
        if kind == "schema_violation":
            self.schema_violation(bad, rng)
            return kind, _dumps(bad)
        if kind == "unknown_org":
            bad["org"] = _fresh_org(rng, self.world.known_orgs)
        elif kind == "unknown_project":
            bad["project"] = _fresh_project(rng, bad["project"])
        elif kind == "future_timestamp":
            bad[self.time_field] = _future(bad[self.time_field])
        else:
            self.wrong(bad, rng)
            return kind, _dumps(bad)
        self.finish(bad)
        return kind, _dumps(bad)

    def wrong(self, rec: dict[str, Any], rng: random.Random) -> None:
        raise NotImplementedError


def _mutate(rec: dict[str, Any], rng: random.Random, options: tuple[tuple[str, Any], ...]) -> None:
    """Apply one schema violation: delete a required field or give it a bad value."""
    field_name, value = options[rng.randrange(len(options))]
    if value is _DELETE:
        rec.pop(field_name, None)
    elif callable(value):
        rec[field_name] = value(rec)
    else:
        rec[field_name] = value


_DELETE = object()


class _Usage(_Source):
    name = "usage_events"
    key = "event_id"
    time_field = "occurred_at"
    malformed_weights = (
        ("invalid_json", 0.25),
        ("schema_violation", 0.4),
        ("unknown_org", 0.2),
        ("future_timestamp", 0.15),
    )
    _violations = (
        ("event_id", _DELETE),
        ("org", _DELETE),
        ("event_type", _DELETE),
        ("occurred_at", _DELETE),
        ("event_id", ""),
        ("event_id", "e" * 201),
        ("event_type", "insight_scan"),
        ("event_type", "API_CALL"),
        ("quantity", 0),
        ("quantity", -3),
        ("quantity", "1"),
        ("quantity", 2.5),
        ("quantity", 1_000_001),
        ("org", 42),
        ("occurred_at", lambda r: _without_offset(r["occurred_at"])),
        ("occurred_at", "yesterday"),
    )

    def schema_violation(self, rec: dict[str, Any], rng: random.Random) -> None:
        _mutate(rec, rng, self._violations)

    def conflict(self, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        other = dict(rec)
        other["quantity"] = rec.get("quantity", 1) + rng.randint(1, 9)
        return other

    def records(self, clock: _Clock, rng: random.Random) -> Iterator[tuple[int, dict, str | None]]:
        # The hot loop of a large backfill: int(rand() * n) instead of randrange, and
        # the common `Z` timestamp formatted inline.
        o = self.options
        orgs = [
            (org.slug, org.users, len(org.users), org.projects, len(org.projects))
            for org in self.world.orgs
        ]
        rand, getrandbits = rng.random, rng.getrandbits
        week = clock.week_factor(_WEEK_USAGE)
        daily = [
            o.usage_per_day * org.weight * week * rng.uniform(0.85, 1.15) for org in self.world.orgs
        ]
        stamp, prefix = clock.stamp, clock.prefix
        types, type_cum = _EVENT_TYPES, _EVENT_TYPE_CUM
        endpoints, endpoint_cum = _API_ENDPOINTS, _API_ENDPOINT_CUM
        statuses, n_statuses = _HTTP_STATUS, len(_HTTP_STATUS)
        bisect_right = bisect.bisect
        for start, share, span in clock.hours():
            events: list[tuple[int, int]] = []
            for index, mean in enumerate(daily):
                for _ in range(_stochastic_round(rng, mean * share)):
                    events.append((start + int(rand() * span), index))
            events.sort()
            for t, index in events:
                slug, users, n_users, projects, n_projects = orgs[index]
                et = types[bisect_right(type_cum, rand())]
                if rand() < _OFFSET_SHARE:
                    occurred = stamp(t, rng, True)
                else:
                    s, ms = divmod(t, 1000)
                    h, s = divmod(s, 3600)
                    m, s = divmod(s, 60)
                    occurred = f"{prefix}{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"
                rec: dict[str, Any] = {
                    "event_id": _uuid4(getrandbits),
                    "org": slug,
                    "event_type": et,
                    "occurred_at": occurred,
                }
                r = rand()
                if r < 0.8:
                    rec["quantity"] = 1 if r < 0.74 or et == "api_call" else 2 + int(rand() * 9)
                if rand() < 0.9:
                    rec["user"] = users[int(rand() * n_users)]
                if et == "api_call":
                    if rand() < 0.4:
                        rec["project"] = projects[int(rand() * n_projects)]
                    rec["endpoint"] = endpoints[bisect_right(endpoint_cum, rand())]
                    rec["request_id"] = "req_%024x" % getrandbits(96)
                    rec["duration_ms"] = 12 + int(rand() ** 3 * 2400)
                    rec["status"] = statuses[int(rand() * n_statuses)]
                else:
                    if rand() < 0.85:
                        rec["project"] = projects[int(rand() * n_projects)]
                    if et == "insight_analysis":
                        files = 5 + int(rand() ** 2 * 1500)
                        rec["files_analyzed"] = files
                        rec["lines_analyzed"] = files * (40 + int(rand() * 360))
                        rec["duration_ms"] = 800 + files * (15 + int(rand() * 45))
                    elif et == "autopilot_job":
                        rec["files_modified"] = int(rand() * 14)
                        rec["duration_ms"] = 4_000 + int(rand() * 236_000)
                        rec["status"] = 200 if rand() < 0.92 else 500
                    else:
                        rec["tests_run"] = 3 + int(rand() * 177)
                        rec["duration_ms"] = 9_000 + int(rand() * 411_000)
                    if rand() < 0.5:
                        rec["metadata"] = {
                            "client": _CLIENTS[int(rand() * 4)],
                            "client_version": f"2.{int(rand() * 9)}.{int(rand() * 20)}",
                        }
                yield t, rec, None


class _Errors(_Source):
    name = "error_events"
    key = "event_id"
    time_field = "occurred_at"
    malformed_weights = (
        ("invalid_json", 0.2),
        ("schema_violation", 0.35),
        ("unknown_org", 0.1),
        ("unknown_project", 0.1),
        ("future_timestamp", 0.1),
        ("signature_mismatch", 0.15),
    )
    _violations = (
        ("event_id", _DELETE),
        ("project", _DELETE),
        ("detector", _DELETE),
        ("message", _DELETE),
        ("file", _DELETE),
        ("line", _DELETE),
        ("occurred_at", _DELETE),
        ("message", ""),
        ("severity", "SEVERE"),
        ("severity", "high"),
        ("line", -1),
        ("line", "42"),
        ("column", -5),
        ("detector", "d" * 65),
        ("occurred_at", lambda r: _without_offset(r["occurred_at"])),
    )

    def schema_violation(self, rec: dict[str, Any], rng: random.Random) -> None:
        _mutate(rec, rng, self._violations)
        if (
            "signature" in rec
            and all(k in rec for k in ("detector", "file", "message"))
            and isinstance(rec["detector"], str)
        ):
            rec["signature"] = error_signature(rec["detector"], rec["file"], rec["message"])

    def wrong(self, rec: dict[str, Any], rng: random.Random) -> None:
        # A producer that hashed the absolute path on its build machine.
        rec["signature"] = error_signature(
            rec["detector"], "/home/runner/work/" + rec["file"], rec["message"]
        )

    def conflict(self, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        other = dict(rec)
        other["line"] = rec["line"] + rng.randint(1, 30)
        return other

    def records(self, clock: _Clock, rng: random.Random) -> Iterator[tuple[int, dict, str | None]]:
        o = self.options
        rand, getrandbits, randrange = rng.random, rng.getrandbits, rng.randrange
        week = clock.week_factor(_WEEK_ERRORS)
        plans = []
        for p in self.world.projects:
            active = [s for s in p.sites if any(a <= clock.index < b for a, b in s.active)]
            if not active:
                active = p.sites[:1]
            cum, total = _cumulative(s.weight for s in active)
            plans.append(
                (p, active, cum, total, o.errors_per_day * p.weight * week * rng.uniform(0.8, 1.2))
            )
        for start, share, span in clock.hours():
            events: list[tuple[int, int]] = []
            for index, plan in enumerate(plans):
                for _ in range(_stochastic_round(rng, plan[4] * share)):
                    events.append((start + int(rand() * span), index))
            events.sort()
            for t, index in events:
                p, active, cum, total, _ = plans[index]
                site = active[bisect.bisect(cum, rand() * total)]
                message = site.template
                if site.dynamic:
                    values = {}
                    small = randrange(0, 5)
                    for d in site.dynamic:
                        if d == "n":
                            values[d] = str(randrange(121, 4000))
                        elif d == "m":
                            values[d] = str(randrange(1, 250))
                        elif d == "d":
                            values[d] = str(small)
                        elif d == "e":
                            values[d] = str(small + 1 if small == 0 or rand() < 0.5 else small - 1)
                        elif d == "uuid":
                            values[d] = _uuid4(getrandbits)
                        else:
                            values[d] = "0x%08x" % getrandbits(32)
                    message = message.format(**values)
                if rand() < 0.03:  # sloppy white space, same signature
                    message = message.replace(" ", "  ", 1) + " "
                severity = site.severity
                r = rand()
                if r < 0.05:
                    severity = _SEVERITIES[max(0, _SEVERITIES.index(severity) - 1)]
                elif r < 0.1:
                    severity = _SEVERITIES[min(4, _SEVERITIES.index(severity) + 1)]
                line = site.line if rand() < 0.8 else max(1, site.line + randrange(-12, 25))
                rec: dict[str, Any] = {
                    "event_id": _uuid4(getrandbits),
                    "org": p.org,
                    "project": p.slug,
                    "detector": site.detector,
                    "severity": severity,
                    "message": message,
                    "file": site.file,
                    "line": line,
                }
                if rand() < 0.7:
                    rec["column"] = randrange(1, 80)
                if site.code:
                    rec["code"] = site.code
                if site.suggestion and rand() < 0.6:
                    rec["suggestion"] = site.suggestion
                rec["occurred_at"] = clock.stamp(t, rng, True)
                if rand() < 0.5:
                    rec["signature"] = error_signature(site.detector, site.file, message)
                yield t, rec, None


class _Attestations(_Source):
    name = "fix_attestations"
    key = "request_id"
    time_field = "created_at"
    millis = False
    malformed_weights = (
        ("invalid_json", 0.2),
        ("schema_violation", 0.35),
        ("unknown_org", 0.1),
        ("unknown_project", 0.1),
        ("future_timestamp", 0.1),
        ("hash_mismatch", 0.15),
    )
    _violations = (
        ("request_id", _DELETE),
        ("project", _DELETE),
        ("files_changed", _DELETE),
        ("risk_score", _DELETE),
        ("recipes", _DELETE),
        ("created_at", _DELETE),
        ("prev_hash", _DELETE),
        ("hash", _DELETE),
        ("status", "DONE"),
        ("risk_score", 101),
        ("risk_score", -1),
        ("files_changed", -2),
        ("lines_added", "12"),
        ("recipes", "fix-null-checks"),
        ("recipes", [1, 2]),
        ("prev_hash", "abc123"),
        ("hash", "not-a-hash"),
        ("created_at", lambda r: _without_offset(r["created_at"])),
    )

    def __init__(self, world: _World, options: GenerateOptions) -> None:
        super().__init__(world, options)
        existing = {(org, project): head for org, project, head in options.chain_heads}
        self.heads = {
            (p.org, p.slug): existing.get((p.org, p.slug), GENESIS_HASH) for p in world.projects
        }

    def finish(self, rec: dict[str, Any]) -> None:
        rec["hash"] = attestation_hash(rec)

    def malformed(self, rec: dict[str, Any], rng: random.Random) -> tuple[str, bytes]:
        # A malformed attestation must never look like a child of a real link (no fork
        # and no dangling pending record): give it a parent nobody has.
        rec = dict(rec, prev_hash="%064x" % rng.getrandbits(256))
        return super().malformed(rec, rng)

    def schema_violation(self, rec: dict[str, Any], rng: random.Random) -> None:
        _mutate(rec, rng, self._violations)
        if "hash" in rec and rec["hash"] != "not-a-hash":
            rec["hash"] = attestation_hash(rec)

    def wrong(self, rec: dict[str, Any], rng: random.Random) -> None:
        # Hashed before the risk score was final.
        rec["hash"] = attestation_hash(dict(rec, risk_score=(rec["risk_score"] + 7) % 101))

    def conflict(self, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        other = dict(rec)
        other["risk_score"] = (rec["risk_score"] + rng.randint(1, 40)) % 101
        other["hash"] = attestation_hash(other)
        return other

    def _record(self, p: _Project, clock: _Clock, t: int, rng: random.Random) -> dict[str, Any]:
        rand, randrange = rng.random, rng.randrange
        r = rand()
        status = "SUCCESS" if r < 0.72 else "PARTIAL" if r < 0.9 else "FAILED"
        if status == "FAILED":
            files = lines_added = lines_removed = 0
            recipes = rng.sample(_RECIPES, randrange(0, 3))
        else:
            files = randrange(1, 15)
            lines_added = files * randrange(1, 40)
            lines_removed = files * randrange(0, 30)
            recipes = rng.sample(_RECIPES, randrange(1, 4))
        risk = min(100, int(rand() ** 2 * 70) + files * 2)
        rec: dict[str, Any] = {
            "request_id": _uuid4(rng.getrandbits),
            "org": p.org,
            "project": p.slug,
            "status": status,
            "files_changed": files,
            "lines_added": lines_added,
            "lines_removed": lines_removed,
            "risk_score": risk,
            "recipes": recipes,
        }
        if status == "FAILED":
            rec["error"] = _FIX_ERRORS[randrange(len(_FIX_ERRORS))]
        elif status == "PARTIAL" and rand() < 0.7:
            rec["error"] = _PARTIAL_ERRORS[randrange(len(_PARTIAL_ERRORS))]
        if status != "FAILED" and rand() < 0.9:
            s = t // 1000
            rec["undo_snapshot"] = (
                f".odavl/undo/{clock.day:%Y%m%d}T{s // 3600:02d}"
                f"{s // 60 % 60:02d}{s % 60:02d}Z-"
                f"{rng.getrandbits(32):08x}.json"
            )
        rec["created_at"] = clock.stamp(t, rng, False)
        return rec

    def records(self, clock: _Clock, rng: random.Random) -> Iterator[tuple[int, dict, str | None]]:
        o = self.options
        week = clock.week_factor(_WEEK_CI)
        projects = self.world.projects
        daily = [o.attestations_per_day * p.weight * week * rng.uniform(0.7, 1.3) for p in projects]
        fork_share = o.conflict_share
        for start, share, span in clock.hours():
            events: list[tuple[int, int]] = []
            for index, mean in enumerate(daily):
                for _ in range(_stochastic_round(rng, mean * share)):
                    # whole seconds: created_at has no fraction, so order = time order
                    events.append((start + int(rng.random() * span) // 1000 * 1000, index))
            events.sort()
            for t, index in events:
                p = projects[index]
                head_key = (p.org, p.slug)
                rec = self._record(p, clock, t, rng)
                rec["prev_hash"] = self.heads[head_key]
                rec["hash"] = attestation_hash(rec)
                self.heads[head_key] = rec["hash"]
                fork_t = t + 1000 * rng.randint(1, 59)
                if fork_share and rng.random() < fork_share and fork_t < clock.limit:
                    # A deliberate fork: a second child of the same parent, created later,
                    # written after the original in the same file. The original wins.
                    fork = self._record(p, clock, fork_t, rng)
                    fork["prev_hash"] = rec["prev_hash"]
                    fork["hash"] = attestation_hash(fork)
                    yield t, rec, "pinned"
                    yield fork_t, fork, "fork"
                else:
                    yield t, rec, None


class _Audits(_Source):
    name = "audit_results"
    key = "request_id"
    time_field = "occurred_at"
    millis = False
    malformed_weights = (
        ("invalid_json", 0.2),
        ("schema_violation", 0.45),
        ("unknown_org", 0.1),
        ("unknown_project", 0.1),
        ("future_timestamp", 0.15),
    )
    _violations = (
        ("request_id", _DELETE),
        ("project", _DELETE),
        ("url", _DELETE),
        ("duration_ms", _DELETE),
        ("occurred_at", _DELETE),
        ("url", "ftp://files.example.com/report"),
        ("url", lambda r: r["url"].split("://", 1)[1]),
        ("environment", "qa"),
        ("device", "smartwatch"),
        ("score_performance", 101),
        ("score_seo", -4),
        ("duration_ms", -1),
        ("status", "OK"),
        ("issues", "none"),
        (
            "issues",
            lambda r: [
                {
                    "suite": "usability",
                    "severity": "LOW",
                    "message": "Tap targets are too small",
                    "recommendation": "Make tap targets at least 48 px.",
                }
            ],
        ),
        (
            "issues",
            lambda r: [{"suite": "seo", "severity": "LOW", "recommendation": "Add a title."}],
        ),
        ("occurred_at", lambda r: _without_offset(r["occurred_at"])),
    )

    def schema_violation(self, rec: dict[str, Any], rng: random.Random) -> None:
        _mutate(rec, rng, self._violations)

    def conflict(self, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        other = dict(rec)
        other["duration_ms"] = rec["duration_ms"] + rng.randint(100, 5000)
        return other

    def _issues(self, rng: random.Random, count: int) -> list[dict[str, str]]:
        issues = []
        for suite, found in rng.sample(_ALL_AUDIT_ISSUES, count):
            severity, message, recommendation, element, doc = found
            if "{" in message:
                message = message.format(
                    s=f"{rng.randint(25, 80) / 10:.1f}",
                    kib=rng.randint(40, 900),
                    cls=rng.randint(11, 45),
                    ms=rng.randint(300, 2500),
                )
            issue = {
                "suite": suite,
                "severity": severity,
                "message": message,
                "recommendation": recommendation,
            }
            if element:
                issue["element"] = element
            if doc:
                issue["documentation"] = doc
            issues.append(issue)
        return issues

    def records(self, clock: _Clock, rng: random.Random) -> Iterator[tuple[int, dict, str | None]]:
        o = self.options
        week = clock.week_factor(_WEEK_CI)
        projects = self.world.projects
        daily = [o.audits_per_day * p.weight * week * rng.uniform(0.7, 1.3) for p in projects]
        rand, randrange = rng.random, rng.randrange
        for start, share, span in clock.hours():
            events: list[tuple[int, int]] = []
            for index, mean in enumerate(daily):
                for _ in range(_stochastic_round(rng, mean * share)):
                    events.append((start + int(rand() * span) // 1000 * 1000, index))
            events.sort()
            for t, index in events:
                p = projects[index]
                environment = _ENVIRONMENTS[randrange(len(_ENVIRONMENTS))]
                device = _DEVICES[randrange(len(_DEVICES))]
                r = rand()
                status = "SUCCESS" if r < 0.8 else "PARTIAL" if r < 0.95 else "FAILED"
                issues = self._issues(rng, 0 if status == "FAILED" else randrange(0, 9))
                rec: dict[str, Any] = {
                    "request_id": _uuid4(rng.getrandbits),
                    "org": p.org,
                    "project": p.slug,
                    "url": p.hosts[environment] + _AUDIT_PATHS[randrange(len(_AUDIT_PATHS))],
                    "environment": environment,
                    "device": device,
                    "status": status,
                }
                if status != "FAILED":
                    base = 92 if environment == "production" else 84
                    penalty = {s: 0 for s in _SUITES}
                    for issue in issues:
                        penalty[issue["suite"]] += {
                            "CRITICAL": 15,
                            "HIGH": 9,
                            "MEDIUM": 5,
                            "LOW": 2,
                            "INFO": 0,
                        }[issue["severity"]]
                    mobile = 14 if device == "mobile" else 6 if device == "tablet" else 0

                    def score(suite: str, extra: int = 0) -> int:
                        return max(0, min(100, base + randrange(-8, 9) - penalty[suite] - extra))

                    rec["score_accessibility"] = score("accessibility")
                    rec["score_performance"] = score("performance", mobile)
                    rec["score_security"] = score("security")
                    rec["score_seo"] = score("seo")
                    if rand() < 0.85:
                        rec["lighthouse_performance"] = score("performance", mobile + 3)
                        rec["lighthouse_accessibility"] = score("accessibility")
                        rec["lighthouse_best_practices"] = score("best_practices")
                        rec["lighthouse_seo"] = score("seo")
                rec["duration_ms"] = (
                    randrange(2_000, 15_000) if status == "FAILED" else randrange(8_000, 120_000)
                )
                rec["occurred_at"] = clock.stamp(t, rng, False)
                rec["issues"] = issues
                yield t, rec, None


_SOURCE_CLASSES: dict[str, type[_Source]] = {
    "usage_events": _Usage,
    "error_events": _Errors,
    "fix_attestations": _Attestations,
    "audit_results": _Audits,
}


# --------------------------------------------------------------------------- writing


class _Writer:
    """One landing file, written under `<name>.tmp` and renamed when complete."""

    __slots__ = ("final", "tmp", "raw", "stream", "gz", "buf", "lines", "blanks", "heap")

    def __init__(self, final: Path, gz: bool) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp")
        self.gz = gz
        self.raw = open(self.tmp, "wb")
        self.stream = (
            gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0, filename="", compresslevel=6)
            if gz
            else self.raw
        )
        self.buf: list[bytes] = []
        self.lines = 0
        self.blanks = 0
        self.heap: list[tuple[int, int, bytes]] = []  # (t, sequence, line) waiting their turn

    def write(self, line: bytes) -> None:
        self.buf.append(line)
        if len(self.buf) >= 2048:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.stream.write(b"\n".join(self.buf) + b"\n")
            blanks = self.buf.count(b"")
            self.blanks += blanks
            self.lines += len(self.buf) - blanks
            self.buf.clear()

    def drain_until(self, t: int) -> None:
        heap = self.heap
        while heap and heap[0][0] <= t:
            self.write(heapq.heappop(heap)[2])

    def close(self) -> None:
        while self.heap:
            self.write(heapq.heappop(self.heap)[2])
        self.flush()
        if self.gz:
            self.stream.close()
        self.raw.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        try:
            if self.gz:
                self.stream.close()
            self.raw.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _write_source(
    out: Path,
    source: _Source,
    options: GenerateOptions,
    days: list[dt.date],
    progress: Callable[[str], None] | None,
) -> SourceSummary:
    name = source.name
    files_per_day = options.files_per_day
    last = len(days) - 1
    seq = itertools.count()
    carry: dict[int, list[tuple[int, int, int, bytes]]] = {}  # day index -> (file, t, seq, line)
    dup_p = options.duplicate_share
    conf_p = dup_p + options.conflict_share
    mal_p = conf_p + options.malformed_share
    blank_p = mal_p + options.malformed_share / 10
    late_p = options.late_share
    dumps = _dumps
    n_files = n_gzip = n_records = n_dups = n_conf = n_mal = n_forks = n_late = 0
    n_lines = n_blank = 0
    kinds: dict[str, int] = {}

    def window(f: int) -> tuple[int, int]:
        return f * _DAY_MS // files_per_day, (f + 1) * _DAY_MS // files_per_day

    for di, day in enumerate(days):
        rng = random.Random(f"{_NAMESPACE}/{options.seed}/{name}/{day.isoformat()}")
        rand, randrange = rng.random, rng.randrange
        clock = _Clock(day, di, options)
        folder = out / name / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        writers: list[_Writer] = []

        def place(dj: int, fj: int, t: int, line: bytes) -> None:
            if dj == di:
                heapq.heappush(writers[fj].heap, (t, next(seq), line))
            else:
                carry.setdefault(dj, []).append((fj, t, next(seq), line))

        def later_slot(dj: int, fj: int) -> tuple[int, int, int] | None:
            """A file strictly after (day dj, file fj), at a random time in it."""
            if dj < last and (fj == files_per_day - 1 or rand() < 0.6):
                dk = min(dj + (1 if rand() < 0.7 else randrange(2, 5)), last)
                fk = randrange(files_per_day)
            elif fj < files_per_day - 1:
                dk, fk = dj, randrange(fj + 1, files_per_day)
            else:
                return None
            lo, hi = window(fk)
            return dk, fk, lo + randrange(hi - lo)

        try:
            for f in range(files_per_day):
                gz = rand() < options.gzip_share
                stem = f"{PRODUCERS[name]}-{day:%Y%m%d}-s{options.seed}-{f:03d}.ndjson"
                writers.append(_Writer(folder / (stem + (".gz" if gz else "")), gz))
            for fj, t, s, line in carry.pop(di, ()):
                heapq.heappush(writers[fj].heap, (t, s, line))

            for t, rec, kind in source.records(clock, rng):
                fi = t * files_per_day // _DAY_MS
                w = writers[fi]
                if w.heap and w.heap[0][0] <= t:
                    w.drain_until(t)
                line = dumps(rec)
                if kind is not None:  # part of a deliberate fork: no late, no extras
                    w.write(line)
                    if kind == "fork":
                        n_forks += 1
                    else:
                        n_records += 1
                    continue
                n_records += 1
                extra = rand()
                if di < last and rand() < late_p and not (conf_p > extra >= dup_p):
                    n_late += 1
                    dj = min(di + (1 if rand() < 0.7 else randrange(2, 8)), last)
                    fj = randrange(files_per_day)
                    lo, hi = window(fj)
                    place(dj, fj, lo + randrange(hi - lo), line)
                    here = (dj, fj)
                else:
                    w.write(line)
                    here = (di, fi)
                if extra >= blank_p:
                    continue
                if extra < dup_p:
                    n_dups += 1
                    slot = later_slot(*here) if rand() < 0.5 else None
                    if slot is None:  # in the same file, a little later
                        lo, hi = window(here[1])
                        later = min(hi - 1, max(t, lo) + randrange(1, 900_000))
                        place(here[0], here[1], later, line)
                    else:
                        place(slot[0], slot[1], slot[2], line)
                elif extra < conf_p:
                    n_conf += 1
                    other = dumps(source.conflict(rec, rng))
                    slot = later_slot(*here) if rand() < 0.5 else None
                    if slot is None:
                        place(di, fi, t + randrange(1, 900_000), other)
                    else:
                        place(slot[0], slot[1], slot[2], other)
                elif extra < mal_p:
                    n_mal += 1
                    bad_kind, bad = source.malformed(rec, rng)
                    kinds[bad_kind] = kinds.get(bad_kind, 0) + 1
                    w.write(bad)
                else:
                    w.write(b"")
            day_lines = 0
            for w in writers:
                w.close()
                n_files += 1
                n_gzip += w.gz
                n_lines += w.lines
                n_blank += w.blanks
                day_lines += w.lines
        except BaseException:
            for w in writers:
                w.abort()
            raise
        if progress:
            progress(f"{name} {day.isoformat()}: {day_lines:,} lines in {len(writers)} files")

    summary = SourceSummary(
        source=name,
        files=n_files,
        gzip_files=n_gzip,
        lines=n_lines,
        blank_lines=n_blank,
        records=n_records,
        duplicates=n_dups,
        conflicts=n_conf,
        malformed=n_mal,
        malformed_kinds={k: kinds[k] for k in MALFORMED_KINDS if k in kinds},
        forks=n_forks,
        late=n_late,
    )
    if progress:
        progress(
            f"{name}: {n_files} files, {n_lines:,} lines ({n_records:,} records, "
            f"{n_dups:,} duplicates, {n_conf:,} conflicts, {n_mal:,} malformed, "
            f"{n_late:,} late{f', {n_forks} forks' if n_forks else ''})"
        )
    return summary


def generate_landing(
    out: Path,
    options: GenerateOptions,
    progress: Callable[[str], None] | None = None,
    reference_path: Path | None = None,
) -> GenerateSummary:
    """Write `out/<source>/<YYYY-MM-DD>/*.ndjson[.gz]`, and the organizations and projects they
    use to `reference_path` (default `out/reference.json`; a landing zone's root would report it
    as a misplaced file, so the CLI writes it beside the landing zone).

    Existing files with the same names are replaced; other files are left alone.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference_path = Path(reference_path or out / "reference.json")
    reference_path.parent.mkdir(parents=True, exist_ok=True)
    reference = synthetic_reference(options)
    tmp = reference_path.with_name(f".{reference_path.name}.tmp")
    tmp.write_bytes(orjson.dumps(reference, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, reference_path)
    world = _World(options, reference)
    if progress:
        progress(f"reference.json: {len(world.orgs)} organizations, {len(world.projects)} projects")
    days = [options.first_day + dt.timedelta(days=i) for i in range(options.days)]
    sources = {}
    for name in SOURCES:
        sources[name] = _write_source(
            out, _SOURCE_CLASSES[name](world, options), options, days, progress
        )
    return GenerateSummary(
        out=out,
        first_day=days[0],
        end_day=days[-1],
        organizations=len(world.orgs),
        projects=len(world.projects),
        sources=sources,
    )
