"""Billing usage events (`usage_events`): API calls, analyses, fix jobs and test runs."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable

from odavl_pipeline.generate.randomness import uuid4
from odavl_pipeline.generate.source import (
    DELETE,
    Generated,
    Record,
    Source,
    without_offset,
)
from odavl_pipeline.generate.vocabulary import (
    API_ENDPOINT_CUMULATIVE,
    API_ENDPOINTS,
    CLIENTS,
    EVENT_TYPE_CUMULATIVE,
    EVENT_TYPES,
    HTTP_STATUSES,
    UTC_OFFSET_SHARE,
    WEEK_FACTORS_USAGE,
)
from odavl_pipeline.generate.world import Clock, Org


class UsageEvents(Source):
    """Usage events of the organizations, in proportion to their weights."""

    name = "usage_events"
    key = "event_id"
    time_field = "occurred_at"
    malformed_weights = (
        ("invalid_json", 0.25),
        ("schema_violation", 0.4),
        ("unknown_org", 0.2),
        ("future_timestamp", 0.15),
    )
    violations = (
        ("event_id", DELETE),
        ("org", DELETE),
        ("event_type", DELETE),
        ("occurred_at", DELETE),
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
        ("occurred_at", without_offset("occurred_at")),
        ("occurred_at", "yesterday"),
    )

    def conflict(self, rec: Record, rng: random.Random) -> Record:
        other = dict(rec)
        other["quantity"] = rec.get("quantity", 1) + rng.randint(1, 9)
        return other

    def records(self, clock: Clock, rng: random.Random) -> Generated:
        orgs = self.world.orgs
        week = clock.week_factor(WEEK_FACTORS_USAGE)
        per_day = self.options.usage_per_day
        daily = [per_day * org.weight * week * rng.uniform(0.85, 1.15) for org in orgs]
        for t, index in clock.events(rng, daily):
            yield t, self._record(orgs[index], clock, t, rng), None

    def _record(self, org: Org, clock: Clock, t: int, rng: random.Random) -> Record:
        """One usage event of the organization."""
        # The hot loop of a large backfill: int(rand() * n) instead of randrange.
        rand = rng.random
        event_type = EVENT_TYPES[bisect.bisect(EVENT_TYPE_CUMULATIVE, rand())]
        # Only events past this first roll may get an offset, and `stamp` rolls again:
        # usage events carry one far less often than the other sources.
        if rand() < UTC_OFFSET_SHARE:
            occurred_at = clock.stamp(t, rng, self.millis)
        else:
            occurred_at = clock.utc(t, self.millis)
        rec: Record = {
            "event_id": uuid4(rng.getrandbits),
            "org": org.slug,
            "event_type": event_type,
            "occurred_at": occurred_at,
        }
        roll = rand()
        if roll < 0.8:
            bulk = roll >= 0.74 and event_type != "api_call"
            rec["quantity"] = 2 + int(rand() * 9) if bulk else 1
        if rand() < 0.9:
            rec["user"] = org.users[int(rand() * len(org.users))]
        if event_type == "api_call":
            _add_api_call(rec, org, rand, rng.getrandbits)
        else:
            _add_job(rec, org, rand)
        return rec


def _add_api_call(
    rec: Record, org: Org, rand: Callable[[], float], getrandbits: Callable[[int], int]
) -> None:
    """The fields of an `api_call`."""
    if rand() < 0.4:
        rec["project"] = org.projects[int(rand() * len(org.projects))]
    rec["endpoint"] = API_ENDPOINTS[bisect.bisect(API_ENDPOINT_CUMULATIVE, rand())]
    rec["request_id"] = f"req_{getrandbits(96):024x}"
    rec["duration_ms"] = 12 + int(rand() ** 3 * 2400)
    rec["status"] = HTTP_STATUSES[int(rand() * len(HTTP_STATUSES))]


def _add_job(rec: Record, org: Org, rand: Callable[[], float]) -> None:
    """The fields of an analysis, a fix job or a test run."""
    if rand() < 0.85:
        rec["project"] = org.projects[int(rand() * len(org.projects))]
    if rec["event_type"] == "insight_analysis":
        files = 5 + int(rand() ** 2 * 1500)
        rec["files_analyzed"] = files
        rec["lines_analyzed"] = files * (40 + int(rand() * 360))
        rec["duration_ms"] = 800 + files * (15 + int(rand() * 45))
    elif rec["event_type"] == "autopilot_job":
        rec["files_modified"] = int(rand() * 14)
        rec["duration_ms"] = 4_000 + int(rand() * 236_000)
        rec["status"] = 200 if rand() < 0.92 else 500
    else:
        rec["tests_run"] = 3 + int(rand() * 177)
        rec["duration_ms"] = 9_000 + int(rand() * 411_000)
    if rand() < 0.5:
        rec["metadata"] = {
            "client": CLIENTS[int(rand() * len(CLIENTS))],
            "client_version": f"2.{int(rand() * 9)}.{int(rand() * 20)}",
        }
