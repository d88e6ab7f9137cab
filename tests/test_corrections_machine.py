"""Corrections against a model, with Hypothesis's state machine: landing lines, runs, create,
add, void, replace, commit, revert and discard, with the clock moving across period ends.

After every step the counted versions of the organization's events are the model's; after every
build its checks pass (of what it rebuilt, and of everything), the marts equal a build from
scratch over the current versions, every closed row is as it was recorded when it closed, and
the billed periods sum to the corrected truth.
"""

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from odavl_pipeline.billing import corrections
from odavl_pipeline.billing.corrections import CorrectionRefused
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.reconcile import Rebuilt
from odavl_pipeline.marts.store import facts_dir, open_marts

from .marts_helpers import every_mart, rows
from .records import ORG, usage

START = datetime(2026, 10, 20, 12, tzinfo=UTC)
IDS = [f"e{i}" for i in range(12)]  # few keys: lines collide, batches touch the same events
RESET = (
    "TRUNCATE usage_events, usage_corrections, correction_records, correction_rejects, "
    "correction_voids, correction_batches, billing_closes, billing_close_usage, mart_changes, "
    "ingested_files, quarantine, quota_alerts CASCADE"
)


@dataclass
class Event:
    occurred_at: datetime
    quantity: int
    live: bool = True


@dataclass
class Batch:
    id: int
    start: datetime
    end: datetime
    replace: bool
    state: str = "draft"
    records: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    voids: set[str] = field(default_factory=set)
    before: dict[str, Event | None] = field(default_factory=dict)  # what its commit changed
    order: int = 0  # of commit


class CorrectionsMachine(RuleBasedStateMachine):
    def __init__(self, settings, landing, clock_at):
        super().__init__()
        self.settings, self.landing, self.clock_at = settings, landing, clock_at
        self.events: dict[str, Event] = {}
        self.batches: dict[int, Batch] = {}
        self.closed: dict[tuple, tuple] = {}  # (start, metric) -> the row as it closed
        self.commits = 0
        self.files = 0

    @initialize()
    def fresh(self):
        self.now = self.clock_at(START)
        with connect(self.settings) as conn:
            conn.execute(RESET)
        self.settings.marts_path.unlink(missing_ok=True)
        shutil.rmtree(facts_dir(self.settings.marts_path), ignore_errors=True)
        shutil.rmtree(self.landing.root / "usage_events", ignore_errors=True)
        self.land([(event_id, index * 3, 1 + index % 5) for index, event_id in enumerate(IDS)])

    # --- landing and time ------------------------------------------------------------------

    @rule(
        lines=st.lists(
            st.tuples(st.sampled_from(IDS), st.integers(0, 40), st.integers(1, 9)),
            min_size=1,
            max_size=6,
        )
    )
    def land(self, lines):
        """Lines of the last 40 days landing today; a known key is a duplicate or a conflict."""
        day = self.now.date()
        records = []
        for event_id, days_ago, quantity in lines:
            occurred = datetime.combine(day - timedelta(days=days_ago), datetime.min.time(), UTC)
            records.append(usage(event_id, occurred_at=_text(occurred), quantity=quantity))
            self.events.setdefault(event_id, Event(occurred, quantity))
        self.files += 1
        self.landing.write("usage_events", day.isoformat(), f"f{self.files}.ndjson", records)
        with connect(self.settings) as conn:
            ingest_days(conn, self.landing.root, "usage_events", [day])

    @rule(days=st.integers(1, 25))
    def advance(self, days):
        self.now = self.clock_at(self.now + timedelta(days=days))

    @rule()
    def build(self):
        report = refresh_marts(self.settings)
        self.check_marts(report.rebuilt)

    # --- batches -----------------------------------------------------------------------------

    @rule(months_back=st.integers(0, 2), length=st.integers(1, 40), replace=st.booleans())
    def create(self, months_back, length, replace):
        month = (self.now.replace(day=1) - timedelta(days=31 * months_back)).replace(day=1)
        start = datetime.combine(month.date(), datetime.min.time(), UTC)
        end = start + timedelta(days=length)
        overlapping = any(
            b.state == "draft" and b.start < end and b.end > start for b in self.batches.values()
        )
        with connect(self.settings) as conn:
            try:
                batch_id = corrections.create(conn, ORG, start, end, "test", "machine", replace)
            except CorrectionRefused as refused:
                assert overlapping, refused
                return
        assert not overlapping
        self.batches[batch_id] = Batch(batch_id, start, end, replace)

    def drafts(self) -> list[Batch]:
        return [b for b in self.batches.values() if b.state == "draft"]

    @precondition(lambda self: self.drafts())
    @rule(data=st.data())
    def add(self, data):
        batch = data.draw(st.sampled_from(self.drafts()))
        in_window = [
            event_id
            for event_id, event in self.events.items()
            if batch.start <= event.occurred_at < batch.end and event_id not in batch.records
        ]
        fresh = [event_id for event_id in IDS if event_id not in self.events]
        keys = data.draw(
            st.lists(st.sampled_from(in_window + fresh or ["x"]), min_size=1, max_size=4)
        )
        span = int((min(batch.end, self.now) - batch.start).total_seconds() // 3600)
        if span < 1:  # the window is all in the future: nothing there to correct yet
            return
        records = {}
        for key in keys:
            if key == "x" or key in records:
                continue
            occurred = batch.start + timedelta(hours=data.draw(st.integers(0, span - 1)))
            records[key] = (occurred, data.draw(st.integers(1, 9)))
        lines = [
            json.dumps(usage(key, occurred_at=_text(at), quantity=quantity)).encode()
            for key, (at, quantity) in records.items()
        ]
        with connect(self.settings) as conn:
            self.files += 1
            added = corrections.add(conn, batch.id, f"add{self.files}.ndjson", lines)
        assert added == corrections.Added(len(records), 0)
        batch.records.update(records)

    @precondition(lambda self: self.drafts())
    @rule(data=st.data(), by_filter=st.booleans())
    def void(self, data, by_filter):
        batch = data.draw(st.sampled_from(self.drafts()))
        counted = {
            event_id
            for event_id, event in self.events.items()
            if event.live and batch.start <= event.occurred_at < batch.end
        }
        with connect(self.settings) as conn:
            if by_filter:
                limit = data.draw(st.integers(1, 9))
                corrections.void_where(conn, batch.id, f"quantity <= {limit}")
                chosen = {e for e in counted if self.events[e].quantity <= limit}
            else:
                chosen = set(data.draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=4)))
                missing = corrections.void_ids(conn, batch.id, chosen)
                assert set(missing) == chosen - counted - batch.voids
                chosen &= counted
        batch.voids |= chosen

    @precondition(lambda self: self.drafts())
    @rule(data=st.data())
    def discard(self, data):
        batch = data.draw(st.sampled_from(self.drafts()))
        with connect(self.settings) as conn:
            corrections.discard(conn, batch.id)
        batch.state = "discarded"

    @precondition(lambda self: self.drafts())
    @rule(data=st.data())
    def commit(self, data):
        batch = data.draw(st.sampled_from(self.drafts()))
        moved_out = [
            key
            for key in batch.records
            if key in self.events and not batch.start <= self.events[key].occurred_at < batch.end
        ]
        with connect(self.settings) as conn:
            try:
                assert corrections.commit(conn, self.settings.marts_path, batch.id)
            except CorrectionRefused as refused:
                assert moved_out, refused
                return
        assert not moved_out
        for key, (at, quantity) in batch.records.items():
            event = self.events.get(key)
            if event and event.live and (event.occurred_at, event.quantity) == (at, quantity):
                continue
            batch.before[key] = event
            self.events[key] = Event(at, quantity)
        voided = set(batch.voids)
        if batch.replace:
            voided |= {
                key
                for key, event in self.events.items()
                if batch.start <= event.occurred_at < batch.end
            }
        for key in voided - set(batch.records):
            event = self.events.get(key)
            if event and event.live:
                batch.before[key] = event
                self.events[key] = Event(event.occurred_at, event.quantity, live=False)
        self.commits += 1
        batch.state, batch.order = "committed", self.commits
        with connect(self.settings) as conn:  # a second commit applies nothing
            assert not corrections.commit(conn, self.settings.marts_path, batch.id)

    @precondition(lambda self: any(b.state == "committed" for b in self.batches.values()))
    @rule(data=st.data())
    def revert(self, data):
        committed = [b for b in self.batches.values() if b.state == "committed"]
        batch = data.draw(st.sampled_from(committed))
        blocked = any(
            later.order > batch.order and set(later.before) & set(batch.before)
            for later in committed
        )
        with connect(self.settings) as conn:
            try:
                assert corrections.revert(conn, batch.id, "undo", "machine")
            except CorrectionRefused as refused:
                assert blocked, refused
                return
        assert not blocked
        for key, event in batch.before.items():
            current = self.events[key]
            self.events[key] = (
                event if event else Event(current.occurred_at, current.quantity, live=False)
            )
        batch.state = "reverted"

    # --- what must hold ----------------------------------------------------------------------

    @invariant()
    def counted_versions_are_the_models(self):
        if not hasattr(self, "now"):
            return
        with connect(self.settings) as conn:
            current = {
                event_id: (occurred_at, quantity)
                for event_id, occurred_at, quantity in conn.execute(
                    "SELECT c.event_id, c.occurred_at, c.quantity FROM usage_current AS c "
                    "JOIN organizations AS o ON o.id = c.organization_id "
                    "WHERE o.slug = %s AND c.live",
                    (ORG,),
                ).fetchall()
            }
        assert current == {
            key: (event.occurred_at, event.quantity)
            for key, event in self.events.items()
            if event.live
        }

    def check_marts(self, rebuilt: Rebuilt | None):
        """The build's checks pass, of what it rebuilt and of everything; the two ways of
        computing a period's bill in Postgres agree; then the figures themselves."""
        with connect(self.settings) as conn, open_marts(self.settings.marts_path) as marts:
            for compare in (reconcile.usage_daily_totals, reconcile.billing_periods_usage):
                assert compare(marts, conn, rebuilt).passed and compare(marts, conn).passed
            periods = marts.execute(
                "SELECT DISTINCT org, period_start, period_end FROM billing_periods"
            ).fetchall()
            assert reconcile._billed_periods(conn, periods, None) == reconcile._billed(
                conn, periods, None
            )
        billed = rows(
            self.settings,
            "SELECT period_start, metric, used, quota, overage, closed FROM billing_periods "
            "WHERE org = ? ORDER BY ALL",
            [ORG],
        )
        for start, metric, *figures, closed in billed:
            if closed:  # a closed row never changes
                assert self.closed.setdefault((start, metric), tuple(figures)) == tuple(figures)
        truth = sum(event.quantity for event in self.events.values() if event.live)
        assert sum(used for _, metric, used, *_ in billed if metric == "analyses") == truth
        incremental = every_mart(self.settings.marts_path)
        [(as_of,)] = rows(self.settings, "SELECT DISTINCT as_of FROM quota_status")
        refresh_marts(self.settings, full=True, as_of=as_of)
        assert every_mart(self.settings.marts_path) == incremental


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.slow
def test_corrections_agree_with_the_model_and_a_build_from_scratch(settings, landing, clock_at):
    run_state_machine_as_test(
        lambda: CorrectionsMachine(settings, landing, clock_at),
        settings=hypothesis_settings(
            max_examples=6,
            stateful_step_count=22,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
