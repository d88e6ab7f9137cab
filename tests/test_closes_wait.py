"""A billing period closes only on complete data (docs/operations.md, "Faults tested").

No period closes while a usage file landed for a day that can hold its usage is failed, unread
or changed: the close waits, and the run's output names the files; once they are ingested the
period closes with them, and the billing equals that of one clean run.
"""

import json
import re
from datetime import date

import pytest

from odavl_pipeline import clock, doctor
from odavl_pipeline.billing.closing import HeldFile, files_holding_closes
from odavl_pipeline.ingest.file_rejects import record_failed_file
from odavl_pipeline.ingest.landing import scan_landing
from odavl_pipeline.ingest.run import ingest_days

from .commands import cli
from .marts_helpers import every_mart
from .records import ORG, usage
from .state import sibling_database

pytestmark = pytest.mark.clock("2026-12-05T12:00:00Z")  # November closed, by the clock

EARLY, LATE = "2026-11-03", "2026-11-25"


def _land_november(landing) -> None:
    """700 analyses of ORG in November, in two files of two days."""
    for day, first in ((EARLY, 0), (LATE, 300)):
        count = 300 if day == EARLY else 400
        landing.write(
            "usage_events",
            day,
            f"usage-{day}.ndjson",
            [usage(f"n{first + i}", occurred_at=f"{day}T10:00:00Z") for i in range(count)],
        )


def _november(marts_path) -> list[tuple]:
    """ORG's November analyses: (used, closed)."""
    return [
        (row[4], row[7])
        for row in every_mart(marts_path)["billing_periods"]
        if row[0] == ORG and row[3] == "analyses" and row[1].month == 11
    ]


@pytest.mark.slow
def test_a_period_waits_for_its_unread_files_then_closes_as_a_clean_run(
    settings, landing, database_url, server_url, tmp_path
):
    _land_november(landing)
    first = cli("run", "--end", "2026-11-10")  # a run over the early days: LATE is unread
    assert re.search(
        rf"wait to close until these usage files are ingested.*\n\s+usage_events/{LATE}/"
        rf"usage-{LATE}.ndjson \(unread\)",
        first.stderr,
    ), first.stderr[-3000:]
    assert _november(settings.marts_path) == [(300, False)]  # open: it waits
    waits = doctor.check_closes(settings, clock.now())
    assert waits.status == "warning" and f"usage-{LATE}.ndjson (unread)" in waits.summary

    second = cli("run")
    assert "wait to close" not in second.stderr
    billing = every_mart(settings.marts_path)["billing_periods"]
    assert _november(settings.marts_path) == [(700, True)]  # closed with every file
    assert doctor.check_closes(settings, clock.now()).status == "ok"

    with sibling_database(settings, database_url, server_url, "clean") as clean:
        env = {
            "ODAVL_DATABASE_URL": clean.database_url.get_secret_value(),
            "ODAVL_HOME": str(tmp_path / "clean"),
        }
        cli("run", env=env)
        assert billing == every_mart(tmp_path / "clean" / "marts.duckdb")["billing_periods"]

    # November's usage landing now is late: December bills it, and `run` and `quota` say so
    landing.write(
        "usage_events",
        "2026-11-28",
        "late.ndjson",
        [usage(f"l{i}", occurred_at="2026-11-28T10:00:00Z") for i in range(40)],
    )
    third = cli("run")
    assert (
        f"    {ORG} analyses: 40 of the period from 2026-11-01 into the open period from "
        "2026-12-01" in third.stderr
    ), third.stderr[-3000:]
    assert _november(settings.marts_path) == [(700, True)]  # the invoice never changes
    [analyses] = [
        row
        for row in json.loads(cli("quota", "--org", ORG, "--json").stdout)
        if row["metric"] == "analyses"
    ]
    assert analyses["period_start"].startswith("2026-12-01") and analyses["used"] == 40


def test_the_files_that_hold_closes_are_those_not_ingested_as_they_are(settings, landing, conn):
    _land_november(landing)
    assert files_holding_closes(conn, landing.root) == [
        HeldFile(f"usage_events/{day}/usage-{day}.ndjson", date.fromisoformat(day), "unread")
        for day in (EARLY, LATE)
    ]
    early, late = scan_landing(landing.root, ("usage_events",)).files
    ingest_days(conn, landing.root, "usage_events", [early.day])
    record_failed_file(conn, late, "", RuntimeError("a bug"), None)  # LATE failed
    assert files_holding_closes(conn, landing.root) == [
        HeldFile(late.relative_path, late.day, "failed")
    ]
    path = landing.root / early.relative_path  # the producer rewrites EARLY, a line longer
    path.write_bytes(path.read_bytes() + json.dumps(usage("n999")).encode() + b"\n")
    assert [(held.path, held.why) for held in files_holding_closes(conn, landing.root)] == [
        (early.relative_path, "changed"),
        (late.relative_path, "failed"),
    ]
