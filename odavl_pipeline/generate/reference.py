"""The reference data: organizations, their projects and subscriptions."""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from typing import Any

from odavl_pipeline.generate.options import GenerateOptions
from odavl_pipeline.generate.randomness import seeded_random
from odavl_pipeline.generate.vocabulary import (
    COMPANY_NAMES,
    NAME_PREFIXES,
    NAME_SUFFIXES,
    PROJECTS,
    TIER_MAX_PROJECTS,
)

TIERS = ("FREE", "PRO", "ENTERPRISE")


def synthetic_reference(options: GenerateOptions) -> dict[str, Any]:
    """The organizations, projects and subscriptions the generated data refers to."""
    rng = seeded_random(options.seed, "reference")
    organizations = _demo_organizations(options.end_day, rng)
    names = _company_names(options.organizations, rng)
    tiers = _tiers(options.organizations, rng)
    slugs = {org["slug"] for org in organizations}
    for name, tier in zip(names, tiers, strict=True):
        slug = _unique_slug(name, slugs)
        organizations.append(_organization(slug, name, tier, options.end_day, rng))
    return {"organizations": organizations}


def _demo_organizations(end_day: dt.date, rng: random.Random) -> list[dict[str, Any]]:
    """The two organizations of the demo seeds, always present."""
    return [
        {
            "slug": "odavl-test-org",
            "name": "ODAVL Test Org",
            "tier": "PRO",
            "projects": [
                _project_entry("odavl-test-org", "web-app", "Web App", "typescript"),
                _project_entry("odavl-test-org", "api-backend", "API Backend", "typescript"),
            ],
            "subscription": {
                "current_period_start": _period_start(end_day, 1, rng),
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
                "current_period_start": _period_start(end_day, 15, rng),
                "status": "ACTIVE",
            },
        },
    ]


def _company_names(count: int, rng: random.Random) -> list[str]:
    """`count` distinct names: real-sounding ones, then prefix-suffix pairs, then numbered."""
    names = rng.sample(COMPANY_NAMES, min(count, len(COMPANY_NAMES)))
    taken = set(names)
    pairs = {f"{prefix} {suffix}" for prefix in NAME_PREFIXES for suffix in NAME_SUFFIXES}
    while len(names) < count and not pairs <= taken:
        name = f"{rng.choice(NAME_PREFIXES)} {rng.choice(NAME_SUFFIXES)}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    distinct = len(names)
    names += [
        f"{names[index % distinct]} {2 + index // distinct}" for index in range(count - distinct)
    ]
    return names


def _tiers(count: int, rng: random.Random) -> list[str]:
    """Each tier at least once (when there is room), the rest drawn, in random order."""
    tiers = list(TIERS[:count])
    tiers += rng.choices(TIERS, weights=(4, 4, 2), k=count - len(tiers))
    rng.shuffle(tiers)
    return tiers


def _unique_slug(name: str, taken: set[str]) -> str:
    """The name's slug, numbered if another organization has it already; added to `taken`."""
    base = _slugify(name) or "org"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def _organization(
    slug: str, name: str, tier: str, end_day: dt.date, rng: random.Random
) -> dict[str, Any]:
    """One generated organization with a few of the usual projects."""
    chosen = rng.sample(PROJECTS, rng.randint(1, TIER_MAX_PROJECTS[tier]))
    subscription = {  # drawn for every tier, so the draws that follow stay the same
        "current_period_start": _period_start(end_day, rng.randint(1, 28), rng),
        "status": "ACTIVE",
    }
    return {
        "slug": slug,
        "name": name,
        "tier": tier,
        "projects": [
            _project_entry(slug, project_slug, project_name, language)
            for project_slug, project_name, language, _host_prefix in chosen
        ],
        # FREE has no subscription: calendar months and FREE's limits
        **({} if tier == "FREE" else {"subscription": subscription}),
    }


def _slugify(name: str) -> str:
    """A lower-case ASCII slug of the name: "Müller & Söhne" -> "muller-sohne"."""
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
    """A project as the reference data lists it."""
    return {
        "slug": slug,
        "name": name,
        "language": language,
        "repository": f"https://github.com/{org_slug}/{slug}",
    }
