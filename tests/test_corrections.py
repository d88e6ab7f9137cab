"""Usage corrections (CONTRACT.md section 8) through the command line and the marts: a closed
period never changes, its difference is booked into the open period, every version is kept,
and the marts after commits and reverts equal a build from scratch."""

import json
from datetime import date

import pytest

from odavl_pipeline.db.server import connect
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


@pytest.mark.stripe
def test_a_correction_below_what_stripe_was_sent_sends_nothing_negative_and_records_a_credit(
    stripe_settings, stripe_emulator, landing, conn, tmp_path
):
    from odavl_pipeline.stripe_billing.client import stripe_client

    customer = stripe_client(stripe_settings).v1.customers.create({"name": ORG}).id
    conn.execute(
        "UPDATE organizations SET stripe_customer_id = %s WHERE slug = %s", (customer, ORG)
    )
    conn.commit()
    december = [usage(f"d{i}", occurred_at="2026-12-02T10:00:00Z") for i in range(5)]
    _land(landing, conn, "2026-12-02", "december.ndjson", december)
    refresh_marts(stripe_settings)
    assert "sent 1," in cli("stripe", "report").stdout  # the 5 analyses so far
    sent = stripe_emulator.meter_events.requests

    batch = _create("--start", "2026-12-01", "--end", "2027-01-01", "--reason", "a test run")
    cli("corrections", "void", str(batch), "--ids", str(_ids(tmp_path, ["d0", "d1", "d2"])))
    cli("corrections", "commit", str(batch))
    second = cli("stripe", "report")
    assert (
        f"credit due, nothing negative sent: {ORG} analyses 2026-12-01: reported 5, billed 2: "
        "a credit of 3 is due" in second.stdout
    ), second.stdout
    assert stripe_emulator.meter_events.requests == sent
    assert conn.execute("SELECT reported, used, credit FROM stripe_credits_due").fetchall() == [
        (5, 2, 3)
    ]


def test_the_billing_and_staff_pages_show_batches_versions_and_credits(
    settings, landing, conn, tmp_path, monkeypatch
):
    from odavl_pipeline.billing import corrections

    from .dashboards_fixtures import (
        ALICE,
        STAFF,
        add_people,
        environment,
        main_module_kept,
        no_exceptions,
        signed_in_app,
        texts,
    )

    november = [usage(f"n{i}", occurred_at="2026-11-03T10:00:00Z") for i in range(3)]
    _land(landing, conn, "2026-11-03", "november.ndjson", november)
    refresh_marts(settings)
    add_people(conn)
    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "counted twice")
    fix = _ndjson(
        tmp_path / "fix.ndjson", [usage("n0", occurred_at="2026-11-03T10:00:00Z", quantity=5)]
    )
    cli("corrections", "add", str(batch), str(fix))
    with connect(settings) as own:
        corrections.commit(own, settings.marts_path, batch)
        own.execute(
            "INSERT INTO stripe_credits_due (organization_id, metric, period_start, period_end, "
            "reported, used, credit) SELECT id, 'analyses', '2026-12-01', '2027-01-01', 9, 7, 2 "
            "FROM organizations WHERE slug = %s",
            (ORG,),
        )
        own.commit()
    refresh_marts(settings)
    for key, value in environment(settings).items():
        monkeypatch.setenv(key, value)

    with main_module_kept():
        at = no_exceptions(signed_in_app(ALICE).switch_page("views/billing.py").run())
        shown = texts(at)
        assert "counted twice" in shown and "Credits due" in [s.value for s in at.subheader]
        assert "correction" in shown.lower()
        at.selectbox(key="drill_period").set_value(NOVEMBER[0]).run()  # the oldest
        at.selectbox(key="drill_day").set_value("2026-11-03").run()
        versions = no_exceptions(at).selectbox(key="drill_event")
        assert versions.options == ["n0"] and versions.value is None  # the corrected one
        versions.set_value("n0").run()
        link = dict(no_exceptions(at).query_params)
        assert link["event"] == "n0" and link["day"] == "2026-11-03"
        reopened = signed_in_app(ALICE, link).switch_page("views/billing.py").run()
        for page in (at, no_exceptions(reopened)):
            assert page.selectbox(key="drill_event").value == "n0"
            [table] = [t.value for t in page.dataframe if "version" in t.value.columns]
            assert list(table["version"]) == ["landed", "retracted", "made"]
            assert list(table["quantity"]) == [1, -1, 5]
            assert list(table["reason"].fillna("")) == ["", "counted twice", "counted twice"]

        staff = no_exceptions(signed_in_app(STAFF).switch_page("views/staff.py").run())
        assert "Usage corrections" in [s.value for s in staff.subheader]
        assert "counted twice" in texts(staff)


@pytest.mark.slow
def test_a_commit_or_revert_killed_at_any_moment_then_run_again_applies_once(
    settings, landing, conn, tmp_path
):
    """Killed while its transaction writes, then while the marts are rebuilt: the batch is
    applied whole or not at all, and the command run again finishes it once."""
    events = 5_000
    _land(
        landing,
        conn,
        "2026-11-03",
        "november.ndjson",
        [usage(f"n{i}", occurred_at="2026-11-03T10:00:00Z") for i in range(events)],
    )
    refresh_marts(settings)
    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "twice")
    fix = [usage(f"n{i}", occurred_at="2026-11-03T10:00:00Z", quantity=2) for i in range(events)]
    cli("corrections", "add", str(batch), str(_ndjson(tmp_path / "fix.ndjson", fix)))

    def entries() -> list[tuple]:
        return conn.execute(
            "SELECT reverting, sign, count(*) FROM usage_corrections WHERE batch_id = %s "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            (batch,),
        ).fetchall()

    applied = [(False, -1, events), (False, 1, events)]
    killed_when(conn, "holding the usage lock", "commit", str(batch))
    assert entries() == []  # its transaction rolled back whole
    killed_when(conn, "committed", "commit", str(batch))
    assert entries() == applied  # whole, and the marts not rebuilt yet
    cli("corrections", "commit", str(batch))  # again: applies nothing, rebuilds the marts
    assert entries() == applied
    assert _analyses(settings)["2026-12-01"] == (events, False)  # the difference, booked in

    killed_when(conn, "holding the usage lock", "revert", str(batch), "--reason", "undo")
    assert entries() == applied
    cli("corrections", "revert", str(batch), "--reason", "undo")
    assert entries() == [*applied, (True, -1, events), (True, 1, events)]
    assert _analyses(settings) == {"2026-11-01": (events, True), "2026-12-01": (0, False)}
    assert_as_from_scratch(settings)


def killed_when(conn, moment: str, *args: str) -> None:
    """`corrections ARGS`, SIGKILLed once it holds the usage writers' lock in its transaction, or
    once its batch's state changed (committed or reverted): while the marts are rebuilt."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from odavl_pipeline.db.locks import source_lock

    process = subprocess.Popen(
        [sys.executable, "-m", "odavl_pipeline.cli", "corrections", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    batch = int(args[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if moment == "holding the usage lock":
            reached = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND mode = 'ExclusiveLock' AND objid::int = hashtext(%s)",
                (source_lock("usage_events"),),
            ).fetchone()[0]
        else:
            reached = conn.execute(
                "SELECT state NOT IN ('draft', 'committed') OR (state = 'committed' AND %s) "
                "FROM correction_batches WHERE id = %s",
                (args[0] == "commit", batch),
            ).fetchone()[0]
        conn.commit()
        if reached:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    assert process.wait() == -signal.SIGKILL, f"{args} ended before it was {moment}"


def test_add_refuses_each_line_a_batch_may_not_carry_and_a_second_add_replaces_the_file(
    settings, landing, conn
):
    from odavl_pipeline.billing import corrections

    _land(
        landing,
        conn,
        "2026-10-30",
        "october.ndjson",
        [usage("o1", occurred_at="2026-10-30T10:00:00Z")],
    )
    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "test")
    inside = "2026-11-03T10:00:00Z"
    lines = [
        json.dumps(usage("a1", occurred_at=inside)),
        "",
        "{not json",
        json.dumps(usage("a2", occurred_at="2026-12-02T10:00:00Z")),  # outside the window
        json.dumps({**usage("a3", occurred_at=inside), "org": "enterprise-corp"}),
        json.dumps(usage("a1", occurred_at=inside, quantity=3)),  # a1 again
        json.dumps(usage("o1", occurred_at=inside)),  # moves an October event into November
        json.dumps({**usage("a4", occurred_at=inside), "project": "no-such-project"}),
        json.dumps(usage("a5", occurred_at=inside)),
    ]
    with connect(settings) as own:
        added = corrections.add(own, batch, "fix.ndjson", [line.encode() for line in lines])
        assert added == corrections.Added(2, 6)
        assert [
            (r["line"], r["reason"])
            for r in corrections.preview(own, settings.marts_path, batch)["rejected"]
        ] == [
            (3, "invalid_json"),
            (4, "schema_violation"),
            (5, "schema_violation"),
            (6, "conflicting_duplicate"),
            (7, "schema_violation"),
            (8, "unknown_project"),
        ]
        with pytest.raises(corrections.CorrectionRefused, match="6 rejected record"):
            corrections.commit(own, settings.marts_path, batch)
        assert corrections.add(own, batch, "fix.ndjson", [lines[0].encode()]) == corrections.Added(
            1, 0
        )
        assert corrections.preview(own, settings.marts_path, batch)["events"] == {
            "added": 1,
            "amended": 0,
            "voided": 0,
        }
        assert corrections.add(own, batch, "more.ndjson", [lines[0].encode()]) == corrections.Added(
            0, 1
        )


@pytest.mark.parametrize("few_keys", [10_000, 0], ids=["looked-up-by-key", "one-pass"])
def test_a_batch_reads_its_events_by_key_or_in_one_pass_with_the_same_result(
    settings, landing, conn, monkeypatch, few_keys
):
    """Up to FEW_KEYS events a batch touches are looked up one by one, more in one pass over the
    organization's events: both give the same refusals, entries and changes."""
    from odavl_pipeline.billing import corrections

    monkeypatch.setattr(corrections, "FEW_KEYS", few_keys)
    inside = "2026-11-03T10:00:00Z"
    _land(
        landing,
        conn,
        "2026-10-30",
        "october.ndjson",
        [usage("o1", occurred_at="2026-10-30T10:00:00Z")],
    )
    _land(
        landing,
        conn,
        "2026-11-03",
        "november.ndjson",
        [
            usage("a1", occurred_at=inside),
            usage("b1", occurred_at=inside),
            usage("c1", occurred_at=inside),
        ],
    )
    refresh_marts(settings)
    batch = _create("--start", NOVEMBER[0], "--end", NOVEMBER[1], "--reason", "test")
    lines = [
        usage("a1", occurred_at=inside, quantity=4),  # amended
        usage("c1", occurred_at=inside),  # as it is: nothing to do
        usage("n1", occurred_at=inside, quantity=2),  # added
        usage("o1", occurred_at=inside),  # an October event: refused
    ]
    with connect(settings) as own:
        added = corrections.add(own, batch, "fix.ndjson", [json.dumps(r).encode() for r in lines])
        assert added == corrections.Added(3, 1)
        assert corrections.void_ids(own, batch, ["b1"]) == []
        corrections.add(own, batch, "fix.ndjson", [json.dumps(r).encode() for r in lines[:3]])
        preview = corrections.preview(own, settings.marts_path, batch)
        assert preview["events"] == {"added": 1, "amended": 1, "voided": 1}
        assert [
            (c["period_start"][:10], c["used_before"], c["used_after"], c["booked_in"])
            for c in preview["changes"]
            if c["metric"] == "analyses"
        ] == [  # a1 1 -> 4, b1 voided, n1 added: +4 to the closed November, booked in December
            ("2026-11-01", 3, 7, "2026-12-01T00:00:00+00:00"),
            ("2026-12-01", 0, 4, None),
        ]
        assert corrections.commit(own, settings.marts_path, batch)
    refresh_marts(settings)
    assert rows(
        settings, "SELECT quantity FROM usage_daily WHERE org = ? AND day = '2026-11-03'", [ORG]
    ) == [(7,)]
    assert _analyses(settings) == {
        "2026-10-01": (1, True),
        "2026-11-01": (3, True),
        "2026-12-01": (4, False),
    }
