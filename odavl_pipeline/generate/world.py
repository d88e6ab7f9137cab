"""The simulated world: organizations with their people, projects with their hosts and
error sites, and the clock that places a day's events in time."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from odavl_pipeline.generate.options import GenerateOptions
from odavl_pipeline.generate.randomness import seeded_random, stochastic_round
from odavl_pipeline.generate.sites import Site, project_sites
from odavl_pipeline.generate.vocabulary import (
    DEMO_PROJECT,
    DOMAIN_TLDS,
    FIRST_NAMES,
    HOUR_SHARE,
    LAST_NAMES,
    PROJECTS,
    TIER_WEIGHT,
    UTC_OFFSET_SHARE,
    UTC_OFFSETS,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DEMO_PRODUCTION_HOST = "https://demo-web-app.odavl.studio"
DEVELOPMENT_PORTS = (3000, 5173, 8000, 8080)


@dataclass
class Project:
    """One project and what its events are made of; `weight` scales its daily volume."""

    org: str
    slug: str
    weight: float
    hosts: dict[str, str]  # environment -> base URL
    sites: list[Site]


@dataclass
class Org:
    """One organization; `weight` scales its daily usage."""

    slug: str
    weight: float
    users: tuple[str, ...]
    projects: tuple[str, ...]


class World:
    """Reference data plus everything derived from it that the generators need."""

    def __init__(self, options: GenerateOptions, reference: dict[str, Any]) -> None:
        rng = seeded_random(options.seed, "world")
        self.orgs: list[Org] = []
        self.projects: list[Project] = []
        for entry in reference["organizations"]:
            self._add_organization(entry, options, rng)
        _normalise_weights(self.orgs)
        _normalise_weights(self.projects)
        self.known_orgs = {org.slug for org in self.orgs}

    def _add_organization(
        self, entry: dict[str, Any], options: GenerateOptions, rng: random.Random
    ) -> None:
        """Add one organization of the reference data and its projects."""
        slug = entry["slug"]
        domain, users = _org_people(slug, rng)
        weight = TIER_WEIGHT[entry["tier"]] * rng.uniform(0.7, 1.3)
        project_slugs = tuple(project["slug"] for project in entry["projects"])
        self.orgs.append(Org(slug, weight, users, project_slugs))
        for project in entry["projects"]:
            hosts = _project_hosts(slug, project["slug"], domain, rng)
            self.projects.append(
                Project(
                    org=slug,
                    slug=project["slug"],
                    weight=rng.uniform(0.5, 1.5),
                    hosts=hosts,
                    sites=project_sites(
                        slug, project["slug"], project["language"], options.seed, options.days
                    ),
                )
            )


def _normalise_weights(items: list[Org] | list[Project]) -> None:
    """Scale the weights to a mean of 1, so the per-day options are means."""
    total = sum(item.weight for item in items)
    for item in items:
        item.weight = item.weight * len(items) / total if total else 1.0


def _org_people(slug: str, rng: random.Random) -> tuple[str, tuple[str, ...]]:
    """An organization's web domain and the e-mail addresses of its people."""
    if slug == "odavl-test-org":
        return "odavl.studio", _users("odavl.com", rng, ("alice@odavl.com",))
    if slug == "enterprise-corp":
        return "enterprise-corp.com", _users("enterprise-corp.com", rng, ("bob@odavl.com",))
    domain = slug.replace("-", "") + rng.choice(DOMAIN_TLDS)
    return domain, _users(domain, rng)


def _users(domain: str, rng: random.Random, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`extra` plus 3 to 12 distinct addresses at `domain`."""
    count = rng.randint(3, 12)
    users = list(extra)
    while len(users) < count + len(extra):
        email = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}@{domain}"
        if email not in users:
            users.append(email)
    return tuple(users)


def _project_hosts(org: str, project: str, domain: str, rng: random.Random) -> dict[str, str]:
    """The base URL of each environment a project's audits visit."""
    prefix = next((entry[3] for entry in PROJECTS if entry[0] == project), project)
    if (org, project) == DEMO_PROJECT:
        production = DEMO_PRODUCTION_HOST
    else:
        production = f"https://{prefix}.{domain}"
    return {
        "production": production,
        "staging": production.replace("https://", "https://staging-", 1),
        "development": f"http://localhost:{rng.choice(DEVELOPMENT_PORTS)}",
    }


class Clock:
    """Timestamps of one UTC day: `t` is milliseconds since midnight UTC."""

    def __init__(self, day: dt.date, index: int, options: GenerateOptions) -> None:
        self.day = day
        self.index = index  # of the day among the generated days
        self.prefix = day.isoformat() + "T"
        self.midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        self.weekend = day.weekday() >= 5
        limit = DAY_MS
        if options.not_after is not None:
            limit = int((options.not_after - self.midnight).total_seconds() * 1000)
            limit = max(0, min(DAY_MS, limit + 1))
        self.limit = limit  # events only in [0, limit)

    def week_factor(self, factors: tuple[float, float]) -> float:
        """The weekday or the weekend factor, whichever this day is."""
        return factors[1] if self.weekend else factors[0]

    def hours(self) -> Iterator[tuple[int, float, int]]:
        """(hour start in ms, share of the day's events, span in ms) within the limit."""
        for hour in range(24):
            start = hour * HOUR_MS
            span = min(HOUR_MS, self.limit - start)
            if span <= 0:
                return
            yield start, HOUR_SHARE[hour] * span / HOUR_MS, span

    def events(
        self, rng: random.Random, daily_means: list[float], whole_seconds: bool = False
    ) -> Iterator[tuple[int, int]]:
        """(t, index into daily_means) of each of the day's events, in time order."""
        for start, share, span in self.hours():
            yield from _hour_events(rng, daily_means, start, share, span, whole_seconds)

    def stamp(self, t: int, rng: random.Random, millis: bool) -> str:
        """An RFC 3339 timestamp of `t`, now and then with a UTC offset instead of `Z`."""
        if rng.random() < UTC_OFFSET_SHARE:
            suffix, minutes = UTC_OFFSETS[rng.randrange(len(UTC_OFFSETS))]
            local = self.midnight + dt.timedelta(milliseconds=t, minutes=minutes)
            text = local.strftime("%Y-%m-%dT%H:%M:%S")
            return f"{text}.{t % 1000:03d}{suffix}" if millis else text + suffix
        return self.utc(t, millis)

    def utc(self, t: int, millis: bool) -> str:
        """The `Z` timestamp of `t`."""
        seconds, ms = divmod(t, 1000)
        hours, seconds = divmod(seconds, 3600)
        minutes, seconds = divmod(seconds, 60)
        if millis:
            return f"{self.prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"
        return f"{self.prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def _hour_events(
    rng: random.Random,
    daily_means: list[float],
    start: int,
    share: float,
    span: int,
    whole_seconds: bool,
) -> list[tuple[int, int]]:
    """One hour's events, sorted: each mean's share of them, at random times in the span."""
    rand = rng.random
    events: list[tuple[int, int]] = []
    for index, mean in enumerate(daily_means):
        for _ in range(stochastic_round(rng, mean * share)):
            offset = int(rand() * span)
            if whole_seconds:  # timestamps without a fraction: order = time order
                offset = offset // 1000 * 1000
            events.append((start + offset, index))
    events.sort()
    return events
