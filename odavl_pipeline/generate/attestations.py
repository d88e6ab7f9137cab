"""Autopilot fix attestations (`fix_attestations`): one hash chain per project."""

from __future__ import annotations

import random

from odavl_pipeline.domain.attestations import GENESIS_HASH, attestation_hash
from odavl_pipeline.generate.options import GenerateOptions
from odavl_pipeline.generate.randomness import uuid4
from odavl_pipeline.generate.source import (
    DELETE,
    Generated,
    Record,
    Source,
    apply_violation,
    without_offset,
)
from odavl_pipeline.generate.vocabulary import (
    FIX_ERRORS,
    PARTIAL_ERRORS,
    RECIPES,
    WEEK_FACTORS_CI,
)
from odavl_pipeline.generate.world import Clock, Project, World


class FixAttestations(Source):
    """Attestations that extend each project's chain, now and then with a deliberate fork."""

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
    violations = (
        ("request_id", DELETE),
        ("project", DELETE),
        ("files_changed", DELETE),
        ("risk_score", DELETE),
        ("recipes", DELETE),
        ("created_at", DELETE),
        ("prev_hash", DELETE),
        ("hash", DELETE),
        ("status", "DONE"),
        ("risk_score", 101),
        ("risk_score", -1),
        ("files_changed", -2),
        ("lines_added", "12"),
        ("recipes", "fix-null-checks"),
        ("recipes", [1, 2]),
        ("prev_hash", "abc123"),
        ("hash", "not-a-hash"),
        ("created_at", without_offset("created_at")),
    )

    def __init__(self, world: World, options: GenerateOptions) -> None:
        super().__init__(world, options)
        existing = {(org, project): head for org, project, head in options.chain_heads}
        self.heads = {  # (org, project) -> hash of the chain's last link
            (project.org, project.slug): existing.get((project.org, project.slug), GENESIS_HASH)
            for project in world.projects
        }

    def finish(self, rec: Record) -> None:
        rec["hash"] = attestation_hash(rec)

    def malformed(self, rec: Record, rng: random.Random) -> tuple[str, bytes]:
        # A malformed attestation must never look like a child of a real link (no fork
        # and no dangling pending record): give it a parent nobody has.
        rec = dict(rec, prev_hash=f"{rng.getrandbits(256):064x}")
        return super().malformed(rec, rng)

    def schema_violation(self, rec: Record, rng: random.Random) -> None:
        apply_violation(rec, rng, self.violations)
        if "hash" in rec and rec["hash"] != "not-a-hash":
            rec["hash"] = attestation_hash(rec)

    def mismatch(self, rec: Record, rng: random.Random) -> None:
        # Hashed before the risk score was final.
        rec["hash"] = attestation_hash(dict(rec, risk_score=(rec["risk_score"] + 7) % 101))

    def conflict(self, rec: Record, rng: random.Random) -> Record:
        other = dict(rec)
        other["risk_score"] = (rec["risk_score"] + rng.randint(1, 40)) % 101
        other["hash"] = attestation_hash(other)
        return other

    def records(self, clock: Clock, rng: random.Random) -> Generated:
        week = clock.week_factor(WEEK_FACTORS_CI)
        projects = self.world.projects
        per_day = self.options.attestations_per_day
        daily = [per_day * project.weight * week * rng.uniform(0.7, 1.3) for project in projects]
        # whole seconds: created_at has no fraction, so order = time order
        for t, index in clock.events(rng, daily, whole_seconds=True):
            yield from self._link(projects[index], clock, t, rng)

    def _link(self, project: Project, clock: Clock, t: int, rng: random.Random) -> Generated:
        """The project's next link, and now and then a fork of it."""
        head_key = (project.org, project.slug)
        rec = self._record(project, clock, t, rng)
        rec["prev_hash"] = self.heads[head_key]
        rec["hash"] = attestation_hash(rec)
        self.heads[head_key] = rec["hash"]
        fork_share = self.options.conflict_share
        fork_t = t + 1000 * rng.randint(1, 59)
        if fork_share and rng.random() < fork_share and fork_t < clock.limit:
            # A deliberate fork: a second child of the same parent, created later, written
            # after the original in the same file. The original wins.
            fork = self._record(project, clock, fork_t, rng)
            fork["prev_hash"] = rec["prev_hash"]
            fork["hash"] = attestation_hash(fork)
            yield t, rec, "pinned"
            yield fork_t, fork, "fork"
        else:
            yield t, rec, None

    def _record(self, project: Project, clock: Clock, t: int, rng: random.Random) -> Record:
        """An attestation without its chain fields."""
        rand, randrange = rng.random, rng.randrange
        roll = rand()
        status = "SUCCESS" if roll < 0.72 else "PARTIAL" if roll < 0.9 else "FAILED"
        if status == "FAILED":
            files = lines_added = lines_removed = 0
            recipes = rng.sample(RECIPES, randrange(0, 3))
        else:
            files = randrange(1, 15)
            lines_added = files * randrange(1, 40)
            lines_removed = files * randrange(0, 30)
            recipes = rng.sample(RECIPES, randrange(1, 4))
        risk_score = min(100, int(rand() ** 2 * 70) + files * 2)
        rec: Record = {
            "request_id": uuid4(rng.getrandbits),
            "org": project.org,
            "project": project.slug,
            "status": status,
            "files_changed": files,
            "lines_added": lines_added,
            "lines_removed": lines_removed,
            "risk_score": risk_score,
            "recipes": recipes,
        }
        if status == "FAILED":
            rec["error"] = FIX_ERRORS[randrange(len(FIX_ERRORS))]
        elif status == "PARTIAL" and rand() < 0.7:
            rec["error"] = PARTIAL_ERRORS[randrange(len(PARTIAL_ERRORS))]
        if status != "FAILED" and rand() < 0.9:
            rec["undo_snapshot"] = _undo_snapshot(clock, t, rng)
        rec["created_at"] = clock.stamp(t, rng, self.millis)
        return rec


def _undo_snapshot(clock: Clock, t: int, rng: random.Random) -> str:
    """The path of the snapshot that undoes the fix."""
    seconds = t // 1000
    return (
        f".odavl/undo/{clock.day:%Y%m%d}T{seconds // 3600:02d}"
        f"{seconds // 60 % 60:02d}{seconds % 60:02d}Z-"
        f"{rng.getrandbits(32):08x}.json"
    )
