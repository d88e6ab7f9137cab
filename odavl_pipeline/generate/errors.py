"""Insight error events (`error_events`): each project's active error sites firing."""

from __future__ import annotations

import bisect
import random
from typing import NamedTuple

from odavl_pipeline.domain.signatures import error_signature
from odavl_pipeline.generate.randomness import cumulative, uuid4
from odavl_pipeline.generate.sites import Site
from odavl_pipeline.generate.source import (
    DELETE,
    Generated,
    Record,
    Source,
    apply_violation,
    without_offset,
)
from odavl_pipeline.generate.vocabulary import SEVERITIES, WEEK_FACTORS_ERRORS
from odavl_pipeline.generate.world import Clock, Project


class _ProjectDay(NamedTuple):
    """One project's sites active on one day, and how many events it has on average."""

    project: Project
    sites: list[Site]
    cumulative: tuple[float, ...]  # of the sites' weights
    total: float
    mean: float


class ErrorEvents(Source):
    """Error events of the projects, each from one of its sites active that day."""

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
    violations = (
        ("event_id", DELETE),
        ("project", DELETE),
        ("detector", DELETE),
        ("message", DELETE),
        ("file", DELETE),
        ("line", DELETE),
        ("occurred_at", DELETE),
        ("message", ""),
        ("severity", "SEVERE"),
        ("severity", "high"),
        ("line", -1),
        ("line", "42"),
        ("column", -5),
        ("detector", "d" * 65),
        ("occurred_at", without_offset("occurred_at")),
    )

    def schema_violation(self, rec: Record, rng: random.Random) -> None:
        apply_violation(rec, rng, self.violations)
        if (
            "signature" in rec
            and all(name in rec for name in ("detector", "file", "message"))
            and isinstance(rec["detector"], str)
        ):
            rec["signature"] = error_signature(rec["detector"], rec["file"], rec["message"])

    def mismatch(self, rec: Record, rng: random.Random) -> None:
        # A producer that hashed the absolute path on its build machine.
        rec["signature"] = error_signature(
            rec["detector"], "/home/runner/work/" + rec["file"], rec["message"]
        )

    def conflict(self, rec: Record, rng: random.Random) -> Record:
        other = dict(rec)
        other["line"] = rec["line"] + rng.randint(1, 30)
        return other

    def records(self, clock: Clock, rng: random.Random) -> Generated:
        project_days = self._project_days(clock, rng)
        daily = [project_day.mean for project_day in project_days]
        for t, index in clock.events(rng, daily):
            yield t, self._record(project_days[index], clock, t, rng), None

    def _project_days(self, clock: Clock, rng: random.Random) -> list[_ProjectDay]:
        """Each project's active sites and mean event count for the clock's day."""
        week = clock.week_factor(WEEK_FACTORS_ERRORS)
        project_days = []
        for project in self.world.projects:
            sites = [site for site in project.sites if site.active_on(clock.index)]
            sites = sites or project.sites[:1]
            weights, total = cumulative(site.weight for site in sites)
            mean = self.options.errors_per_day * project.weight * week * rng.uniform(0.8, 1.2)
            project_days.append(_ProjectDay(project, sites, weights, total, mean))
        return project_days

    def _record(self, today: _ProjectDay, clock: Clock, t: int, rng: random.Random) -> Record:
        """One occurrence of one of the project's sites, picked by weight."""
        rand, randrange = rng.random, rng.randrange
        site = today.sites[bisect.bisect(today.cumulative, rand() * today.total)]
        message = _message(site, rng)
        if rand() < 0.03:  # sloppy white space, same signature
            message = message.replace(" ", "  ", 1) + " "
        severity = _nudged_severity(site.severity, rand())
        line = site.line if rand() < 0.8 else max(1, site.line + randrange(-12, 25))
        rec: Record = {
            "event_id": uuid4(rng.getrandbits),
            "org": today.project.org,
            "project": today.project.slug,
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
        rec["occurred_at"] = clock.stamp(t, rng, self.millis)
        if rand() < 0.5:
            rec["signature"] = error_signature(site.detector, site.file, message)
        return rec


def _message(site: Site, rng: random.Random) -> str:
    """The site's message with its dynamic slots filled for one occurrence."""
    if not site.dynamic:
        return site.template
    small = rng.randrange(0, 5)
    values = {slot: _dynamic_value(slot, small, rng) for slot in site.dynamic}
    return site.template.format(**values)


def _dynamic_value(slot: str, small: int, rng: random.Random) -> str:
    """A value for one dynamic slot; `d` and `e` are small numbers that differ by one."""
    if slot == "n":
        return str(rng.randrange(121, 4000))
    if slot == "m":
        return str(rng.randrange(1, 250))
    if slot == "d":
        return str(small)
    if slot == "e":
        return str(small + 1 if small == 0 or rng.random() < 0.5 else small - 1)
    if slot == "uuid":
        return uuid4(rng.getrandbits)
    return f"0x{rng.getrandbits(32):08x}"


def _nudged_severity(severity: str, roll: float) -> str:
    """One in ten events reports the site's severity one step up or down."""
    rank = SEVERITIES.index(severity)
    if roll < 0.05:
        return SEVERITIES[max(0, rank - 1)]
    if roll < 0.1:
        return SEVERITIES[min(len(SEVERITIES) - 1, rank + 1)]
    return severity
