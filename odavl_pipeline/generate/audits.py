"""Guardian audit results (`audit_results`): scores and issues of a page in one environment."""

from __future__ import annotations

import random
from typing import Any

from odavl_pipeline.generate.randomness import uuid4
from odavl_pipeline.generate.source import DELETE, Generated, Record, Source, without_offset
from odavl_pipeline.generate.vocabulary import (
    ALL_AUDIT_ISSUES,
    AUDIT_PATHS,
    AUDIT_SEVERITY_PENALTY,
    AUDIT_SUITES,
    DEVICES,
    ENVIRONMENTS,
    WEEK_FACTORS_CI,
)
from odavl_pipeline.generate.world import Clock, Project

_UNKNOWN_SUITE_ISSUE = {
    "suite": "usability",
    "severity": "LOW",
    "message": "Tap targets are too small",
    "recommendation": "Make tap targets at least 48 px.",
}
_ISSUE_WITHOUT_MESSAGE = {"suite": "seo", "severity": "LOW", "recommendation": "Add a title."}


class AuditResults(Source):
    """Audits of the projects' pages in production, staging and development."""

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
    violations = (
        ("request_id", DELETE),
        ("project", DELETE),
        ("url", DELETE),
        ("duration_ms", DELETE),
        ("occurred_at", DELETE),
        ("url", "ftp://files.example.com/report"),
        ("url", lambda rec: rec["url"].split("://", 1)[1]),
        ("environment", "qa"),
        ("device", "smartwatch"),
        ("score_performance", 101),
        ("score_seo", -4),
        ("duration_ms", -1),
        ("status", "OK"),
        ("issues", "none"),
        ("issues", lambda rec: [dict(_UNKNOWN_SUITE_ISSUE)]),
        ("issues", lambda rec: [dict(_ISSUE_WITHOUT_MESSAGE)]),
        ("occurred_at", without_offset("occurred_at")),
    )

    def conflict(self, rec: Record, rng: random.Random) -> Record:
        other = dict(rec)
        other["duration_ms"] = rec["duration_ms"] + rng.randint(100, 5000)
        return other

    def records(self, clock: Clock, rng: random.Random) -> Generated:
        week = clock.week_factor(WEEK_FACTORS_CI)
        projects = self.world.projects
        per_day = self.options.audits_per_day
        daily = [per_day * project.weight * week * rng.uniform(0.7, 1.3) for project in projects]
        for t, index in clock.events(rng, daily, whole_seconds=True):
            yield t, self._record(projects[index], clock, t, rng), None

    def _record(self, project: Project, clock: Clock, t: int, rng: random.Random) -> Record:
        """One audit of a random page of the project in a random environment."""
        randrange = rng.randrange
        environment = ENVIRONMENTS[randrange(len(ENVIRONMENTS))]
        device = DEVICES[randrange(len(DEVICES))]
        roll = rng.random()
        status = "SUCCESS" if roll < 0.8 else "PARTIAL" if roll < 0.95 else "FAILED"
        issues = _issues(rng, 0 if status == "FAILED" else randrange(0, 9))
        rec: Record = {
            "request_id": uuid4(rng.getrandbits),
            "org": project.org,
            "project": project.slug,
            "url": project.hosts[environment] + AUDIT_PATHS[randrange(len(AUDIT_PATHS))],
            "environment": environment,
            "device": device,
            "status": status,
        }
        if status == "FAILED":
            rec["duration_ms"] = randrange(2_000, 15_000)
        else:
            rec.update(_scores(environment, device, issues, rng))
            rec["duration_ms"] = randrange(8_000, 120_000)
        rec["occurred_at"] = clock.stamp(t, rng, self.millis)
        rec["issues"] = issues
        return rec


def _issues(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """`count` distinct issues of any suites."""
    return [_issue(suite, found, rng) for suite, found in rng.sample(ALL_AUDIT_ISSUES, count)]


def _issue(
    suite: str, found: tuple[str, str, str, str | None, str | None], rng: random.Random
) -> dict[str, Any]:
    """One issue of the catalogue, its numbers drawn."""
    severity, message, recommendation, element, documentation = found
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
    if documentation:
        issue["documentation"] = documentation
    return issue


def _scores(
    environment: str, device: str, issues: list[dict[str, Any]], rng: random.Random
) -> dict[str, int]:
    """The suites' scores, lower for each issue found and for small screens."""
    base = 92 if environment == "production" else 84
    penalty = dict.fromkeys(AUDIT_SUITES, 0)
    for issue in issues:
        penalty[issue["suite"]] += AUDIT_SEVERITY_PENALTY[issue["severity"]]
    small_screen = 14 if device == "mobile" else 6 if device == "tablet" else 0

    def score(suite: str, extra: int = 0) -> int:
        return max(0, min(100, base + rng.randrange(-8, 9) - penalty[suite] - extra))

    scores = {
        "score_accessibility": score("accessibility"),
        "score_performance": score("performance", small_screen),
        "score_security": score("security"),
        "score_seo": score("seo"),
    }
    if rng.random() < 0.85:
        scores["lighthouse_performance"] = score("performance", small_screen + 3)
        scores["lighthouse_accessibility"] = score("accessibility")
        scores["lighthouse_best_practices"] = score("best_practices")
        scores["lighthouse_seo"] = score("seo")
    return scores
