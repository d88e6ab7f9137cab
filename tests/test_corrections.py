"""Usage corrections (CONTRACT.md section 8) through the command line and the marts: a closed
period never changes, its difference is booked into the open period, every version is kept,
and the marts after commits and reverts equal a build from scratch."""

import json
from datetime import date

import pytest

from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.orchestration import instance

from .commands import cli
from .marts_helpers import every_mart, rows
from .records import ORG, usage

pytestmark = pytest.mark.clock("2026-12-05T12:00:00Z")  # November closes at the first build

NOVEMBER = ("2026-11-01", "2026-12-01")


def _land(landing, conn, day: str, name: str, records: list[dict]) -> None:
    landing.write("usage_events", day, name, records)
    ingest_days(conn, landing.root, "usage_events", [date.fromisoformat(day)])


def _analyses(settings) -> dict[str, tuple]:
    """ORG's analyses per period start: (used, closed)."""
    return {
        start.date().isoformat(): (used, closed)
        for start, used, closed in rows(
            settings,
            "SELECT period_start, used, closed FROM billing_periods "
            "WHERE org = ? AND metric = 'analyses' ORDER BY period_start",
            [ORG],
        )
    }


def _ndjson(path, records: list[dict]):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _create(*args: str) -> int:
    created = cli("corrections", "create", "--org", ORG, *args)
    return int(created.stdout.strip().splitlines()[-1])


def test_a_correction_of_a_closed_period_is_booked_into_the_open_one_and_reverts(
    settings, landing, conn, tmp_path
):
    november = [usage(f"n{i}", occurred_at="2026-11-03T10:00:00Z") for i in range(10)]
    _land(landing, conn, "2026-11-03", "november.ndjson", november)
    _land(
        landing,
        conn,
        "2026-12-02",
        "december.ndjson",
        [usage(f"d{i}", occurred_at="2026-12-02T10:00:00Z") for i in range(5)],
    )
    refresh_marts(settings)
    assert _analyses(settings) == {"2026-11-01": (10, True), "2026-12-01": (5, False)}

    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "counted twice")
    records = _ndjson(
        tmp_path / "fix.ndjson",
        [
            usage("n0", occurred_at="2026-11-03T10:00:00Z", quantity=5),  # amended: +4
            usage("n100", occurred_at="2026-11-20T08:00:00Z", quantity=2),  # added: +2
        ],
    )
    cli("corrections", "add", str(batch), str(records))
    cli("corrections", "void", str(batch), "--ids", str(_ids(tmp_path, ["n1", "nope"])))
    preview = json.loads(cli("corrections", "preview", str(batch), "--json").stdout)
    assert preview["events"] == {"added": 1, "amended": 1, "voided": 1}
    assert preview["rejected"] == []
    changes = {(c["period_start"][:10], c["metric"]): c for c in preview["changes"]}
    assert changes["2026-11-01", "analyses"] | {} == {
        **changes["2026-11-01", "analyses"],
        "closed": True,
        "used_before": 10,
        "used_after": 15,
        "booked_in": "2026-12-01T00:00:00+00:00",
    }
    assert changes["2026-12-01", "analyses"]["used_before"] == 5
    assert changes["2026-12-01", "analyses"]["used_after"] == 10
    assert _analyses(settings)["2026-12-01"] == (5, False)  # a preview changes nothing

    committed = cli("corrections", "commit", str(batch))
    assert "SUCCESS" in committed.stdout, committed.stdout
    assert _analyses(settings) == {"2026-11-01": (10, True), "2026-12-01": (10, False)}
    assert rows(
        settings,
        "SELECT kind, quantity, events, from_period_start::DATE::VARCHAR, batch "
        "FROM billing_adjustments WHERE org = ? AND metric = 'analyses'",
        [ORG],
    ) == [("correction", 5, 0, "2026-11-01", batch)]  # +1 added, -1 voided
    quota = json.loads(cli("quota", "--org", ORG, "--json").stdout)
    assert [row["used"] for row in quota if row["metric"] == "analyses"] == [10]
    [run] = instance(settings).get_runs(
        __import__("dagster").RunsFilter(tags={"odavl/correction": str(batch)})
    )
    assert run.status.value == "SUCCESS" and run.job_name == "rebuild_marts"

    again = cli("corrections", "commit", str(batch))  # once: the second only rebuilds
    assert "committed already" in again.stdout
    assert _analyses(settings)["2026-12-01"] == (10, False)

    # every version is kept: a landed copy of any of them is a duplicate, another a conflict
    _land(
        landing,
        conn,
        "2026-11-03",
        "replayed.ndjson",
        [
            usage("n0", occurred_at="2026-11-03T10:00:00Z"),  # the landed version
            usage("n0", occurred_at="2026-11-03T10:00:00Z", quantity=5),  # the corrected one
            usage("n100", occurred_at="2026-11-20T08:00:00Z", quantity=2),  # the added one
            usage("n0", occurred_at="2026-11-03T10:00:00Z", quantity=7),  # neither
        ],
    )
    assert conn.execute(
        "SELECT reason, lines FROM quarantine WHERE source = 'usage_events'"
    ).fetchall() == [("conflicting_duplicate", 1)]
    refresh_marts(settings)
    assert _analyses(settings)["2026-12-01"] == (10, False)  # nothing counted twice

    # an open period's own usage changes at commit
    december = _create("--start", "2026-12-01", "--end", "2027-01-01", "--reason", "test run")
    cli(
        "corrections",
        "void",
        str(december),
        "--where",
        "event_type = insight_analysis AND quantity <= 1",
    )
    cli("corrections", "commit", str(december))
    assert _analyses(settings) == {"2026-11-01": (10, True), "2026-12-01": (5, False)}

    refused = cli("corrections", "revert", str(batch), "--reason", "wrong", check=False)
    assert refused.returncode == 0  # no later batch changed its events
    assert _analyses(settings) == {"2026-11-01": (10, True), "2026-12-01": (0, False)}
    shown = json.loads(cli("corrections", "show", str(batch), "--json").stdout)
    assert shown["state"] == "reverted" and shown["revert_reason"] == "wrong"
    assert shown["events"] == {"added": 1, "amended": 1, "voided": 1}

    assert_as_from_scratch(settings)


def assert_as_from_scratch(settings) -> None:
    """The marts equal a build from scratch over the current versions, as of the same instant."""
    incremental = every_mart(settings.marts_path)
    [(as_of,)] = rows(settings, "SELECT DISTINCT as_of FROM quota_status")
    refresh_marts(settings, full=True, as_of=as_of)
    assert every_mart(settings.marts_path) == incremental


def _ids(tmp_path, ids: list[str]):
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


def test_two_commits_of_one_batch_at_once_apply_it_once(settings, landing, conn, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from odavl_pipeline.billing import corrections
    from odavl_pipeline.db.server import connect

    _land(
        landing,
        conn,
        "2026-11-03",
        "november.ndjson",
        [usage(f"n{i}", occurred_at="2026-11-03T10:00:00Z") for i in range(4)],
    )
    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "twice")
    cli("corrections", "void", str(batch), "--where", "quantity >= 1")

    def commit(_):
        with connect(settings) as own:
            return corrections.commit(own, settings.marts_path, batch)

    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(commit, range(4)))
    assert sorted(applied) == [False, False, False, True]
    assert conn.execute(
        "SELECT sign, count(*) FROM usage_corrections WHERE batch_id = %s GROUP BY sign",
        (batch,),
    ).fetchall() == [(-1, 4)]


def test_refusals_are_one_line_and_exit_1(settings, tmp_path):
    bad_window = cli(
        "corrections",
        "create",
        "--org",
        ORG,
        "--start",
        "2026-12-01",
        "--end",
        "2026-11-01",
        "--reason",
        "x",
        check=False,
    )
    assert bad_window.returncode == 1 and bad_window.stderr.startswith("error: the window is empty")
    unknown = cli("corrections", "show", "999", check=False)
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "error: no correction batch 999: `corrections list` shows them\n",
    )
    batch = _create("--start", "2026-11-01", "--end", "2026-12-01", "--reason", "x")
    overlapping = cli(
        "corrections",
        "create",
        "--org",
        ORG,
        "--start",
        "2026-11-15",
        "--end",
        "2027-01-01",
        "--reason",
        "y",
        check=False,
    )
    assert overlapping.returncode == 1 and f"draft {batch} of {ORG} overlaps" in overlapping.stderr
    where = cli("corrections", "void", str(batch), "--where", "colour = red", check=False)
    assert where.returncode == 1 and "unknown field 'colour'" in where.stderr
    cli("corrections", "discard", str(batch))
    again = cli("corrections", "commit", str(batch), check=False)
    assert again.returncode == 1 and f"batch {batch} is discarded" in again.stderr
