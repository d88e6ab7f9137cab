"""Files nobody planned for: a file that raises, misplaced files, links, odd names, pipes.

Whatever the landing zone holds, a run goes on with every other file, and every file is
accounted for in the ledger: ingested, failed (retried by the next run) or misplaced.
"""

import json
import os
from datetime import date

import dagster as dg
import psycopg
import pytest

from odavl_pipeline.cli import main
from odavl_pipeline.db.server import libpq_url
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.ingest.file_rejects import is_infrastructure_failure
from odavl_pipeline.ingest.landing import parse_day, scan_landing
from odavl_pipeline.ingest.run import ingest_days

from .commands import cli
from .records import usage

DAY = "2026-11-03"
POISON = "ALTER TABLE usage_events ADD CONSTRAINT no_poison CHECK (event_id <> 'poison')"


def ingest(conn, settings, source="usage_events", day=DAY):
    return ingest_days(conn, settings.landing_dir, source, [date.fromisoformat(day)])


def ledger(conn):
    return conn.execute(
        "SELECT f.source::text, f.path, f.status::text, f.lines, f.accepted, f.rejected, q.reason "
        "FROM ingested_files f LEFT JOIN quarantine q ON q.file_id = f.id AND q.line_no IS NULL "
        "ORDER BY f.path"
    ).fetchall()


def poison_usage(conn):
    """A rule of the database that one record breaks: a real error raised by PostgreSQL."""
    conn.execute(POISON)
    conn.commit()


# --- one file can never stop a run ---------------------------------------------------------


def test_a_file_that_raises_is_rolled_back_recorded_and_retried_while_the_others_land(
    conn, settings, landing
):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("poison"), usage("u2")])
    landing.write("usage_events", DAY, "b.ndjson", [usage("u3"), usage("u4")])
    poison_usage(conn)

    report = ingest(conn, settings)

    assert [path for path, _ in report.failed] == [f"usage_events/{DAY}/a.ndjson"]
    assert "CheckViolation" in report.failed[0][1] and "no_poison" in report.failed[0][1]
    assert (
        report.counts.files,
        report.counts.lines,
        report.counts.accepted,
        report.counts.rejected,
    ) == (2, 3, 2, 1)
    events = conn.execute("SELECT event_id FROM usage_events ORDER BY 1").fetchall()
    assert events == [("u3",), ("u4",)]  # nothing of the failed file, all of the other
    [failed] = conn.execute(
        "SELECT q.reason, q.detail, f.status::text, f.error FROM quarantine q "
        "JOIN ingested_files f ON f.id = q.file_id"
    ).fetchall()
    assert failed[0] == "ingest_error" and failed[2] == "failed" and failed[1] == failed[3]

    again = ingest(conn, settings)  # still failing: recorded once, with the latest error
    assert len(again.failed) == 1 and again.skipped_files == 1
    assert conn.execute(
        "SELECT count(*) FROM ingested_files WHERE status = 'failed'"
    ).fetchone() == (1,)

    conn.execute("ALTER TABLE usage_events DROP CONSTRAINT no_poison")
    conn.commit()
    fixed = ingest(conn, settings)  # the next run tries it again, and it goes through
    assert not fixed.failed and (fixed.counts.files, fixed.counts.accepted) == (1, 3)
    assert ledger(conn) == [
        ("usage_events", f"usage_events/{DAY}/a.ndjson", "ingested", 3, 3, 0, None),
        ("usage_events", f"usage_events/{DAY}/b.ndjson", "ingested", 2, 2, 0, None),
    ]
    assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


@pytest.mark.slow
def test_the_run_succeeds_shows_the_failed_file_and_its_check_is_red(
    settings, landing, conn, capsys
):
    landing.write("usage_events", DAY, "a.ndjson", [usage("poison")])
    landing.write("usage_events", DAY, "b.ndjson", [usage("u1")])
    poison_usage(conn)

    printed = cli("run", "--log-level", "ERROR").stdout

    assert "1 file(s) failed and will be tried again by the next run" in printed
    assert f"usage_events/{DAY}/a.ndjson: CheckViolation" in printed
    assert main(["rejects", "--reason", "ingest_error", "--json"]) == 0
    [reject] = json.loads(capsys.readouterr().out)
    assert (reject["file"], reject["line"], reject["reason"]) == (
        f"usage_events/{DAY}/a.ndjson",
        None,
        "ingest_error",
    )

    usage_asset = [a for a in ingest_assets if a.key == dg.AssetKey(["usage_events"])]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, [DAY])
    result = dg.materialize(
        usage_asset, partition_key=DAY, instance=instance, resources=pipeline_resources()
    )
    assert result.success  # the run goes on; the check says what is wrong
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_failed_files"
    ]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert f"usage_events/{DAY}/a.ndjson" in evaluation.description


def test_infrastructure_failures_stop_the_run_and_file_errors_do_not(database_url):
    with psycopg.connect(libpq_url(database_url)) as conn:
        with pytest.raises(psycopg.Error) as out_of_range:
            conn.execute("SELECT 3000000000::int4")
        conn.rollback()
        assert not is_infrastructure_failure(out_of_range.value, conn)
        assert not is_infrastructure_failure(ValueError("a bug of ours, in one file"), conn)
        assert not is_infrastructure_failure(PermissionError(13, "Permission denied"), conn)
        assert is_infrastructure_failure(OSError(28, "No space left on device"), conn)
        with pytest.raises(psycopg.OperationalError) as terminated:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert is_infrastructure_failure(terminated.value, conn)


# --- every file is accounted for -----------------------------------------------------------


def write(root, relative: str | bytes, data: bytes = b'{"a":1}\n'):
    path = os.path.join(os.fsencode(root), os.fsencode(relative))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


MISPLACED = {
    "usage_events/2026-13-45/a.ndjson": "not in a day folder",
    "usage_events/notes/b.ndjson": "not in a day folder",
    "usage_events/1969-12-31/c.ndjson": "not in a day folder",
    "usage_events/9999-01-01/d.ndjson": "not in a day folder",
    "usage_events/e.ndjson": "not in a day folder",
    f"usage_events/{DAY}/sub/f.ndjson": "in a folder inside a day folder",
    f"usage_events/{DAY}/g.csv": "not a .ndjson or .ndjson.gz file",
    "h.ndjson": "not in a source folder",
    "usage-events/2026-11-03/i.ndjson": "not in a source folder",
}


def test_every_misplaced_file_is_reported_once_and_in_progress_names_wait(conn, settings, landing):
    landing.write("usage_events", DAY, "ok.ndjson", [usage("u1")])
    for relative in MISPLACED:
        write(settings.landing_dir, relative)
    for waiting in (
        f"usage_events/{DAY}/.j.ndjson",
        f"usage_events/{DAY}/k.ndjson.tmp",
        ".l.ndjson",
        "usage_events/2026-13-45/.m",
    ):
        write(settings.landing_dir, waiting)

    report = ingest(conn, settings)

    assert report.counts.accepted == 1
    found = {path: reason for _, path, _, _, _, _, reason in ledger(conn) if reason}
    assert found == {path: "misplaced_file" for path in MISPLACED}
    details = dict(
        conn.execute(
            "SELECT f.path, q.detail FROM quarantine q JOIN ingested_files f ON f.id = q.file_id"
        ).fetchall()
    )
    for path, problem in MISPLACED.items():
        assert details[path] == f"{path}: {details[path].split(': ', 1)[1]}"
        assert problem in details[path]
    sources = dict(conn.execute("SELECT path, source::text FROM ingested_files").fetchall())
    assert sources["h.ndjson"] is None and sources["usage_events/e.ndjson"] == "usage_events"

    assert sum(c.files for c in ingest(conn, settings).misplaced.values()) == 0  # reported once
    write(settings.landing_dir, "h.ndjson", b'{"a":1}\n{"b":2}\n')  # another content: again
    assert ingest(conn, settings).misplaced[None].files == 1


def test_a_link_leading_outside_the_root_is_not_followed(conn, settings, landing, tmp_path):
    secret = tmp_path / "outside" / "secret.ndjson"
    secret.parent.mkdir()
    secret.write_text('{"password": "hunter2"}\n')
    folder = settings.landing_dir / "usage_events" / DAY
    folder.mkdir(parents=True)
    (folder / "leak.ndjson").symlink_to(secret)
    (folder / "folder.ndjson").symlink_to(tmp_path / "outside", target_is_directory=True)
    (folder / "dangling.ndjson").symlink_to(tmp_path / "nothing-here")
    landing.write("usage_events", DAY, "real.ndjson", [usage("u1"), usage("u2")])
    (folder / "inside.ndjson").symlink_to(folder / "real.ndjson")  # read as the file it names

    report = ingest(conn, settings)

    assert report.counts.accepted == 2 and report.counts.duplicate == 2
    rows = {
        path.rsplit("/", 1)[1]: (status, reason) for _, path, status, *_, reason in ledger(conn)
    }
    assert rows == {
        "dangling.ndjson": ("misplaced", "misplaced_file"),
        "folder.ndjson": ("misplaced", "misplaced_file"),
        "inside.ndjson": ("ingested", None),
        "leak.ndjson": ("misplaced", "misplaced_file"),
        "real.ndjson": ("ingested", None),
    }
    stored = conn.execute(
        "SELECT string_agg(coalesce(raw, '') || detail, ' ') FROM quarantine"
    ).fetchone()[0]
    assert "hunter2" not in stored and "leads outside the landing root" in stored


def test_a_name_that_is_not_utf8_is_ingested_under_an_escaped_name(conn, settings, landing, capsys):
    write(
        settings.landing_dir,
        f"usage_events/{DAY}/caf\xe9-".encode() + b"\xff.ndjson",
        json.dumps(usage("u1")).encode() + b"\n",
    )
    write(settings.landing_dir, b"notes-\xfe.txt")

    report = ingest(conn, settings)

    assert (report.counts.files, report.counts.accepted) == (1, 1)
    paths = [path for _, path, *_ in ledger(conn)]
    assert paths == ["notes-\\xfe.txt", f"usage_events/{DAY}/café-\\xff.ndjson"]
    assert ingest(conn, settings).skipped_files == 1  # the escaped name is its identity
    assert main(["rejects"]) == 0
    assert "notes-\\xfe.txt" in capsys.readouterr().out


def test_a_pipe_or_a_folder_named_like_a_landing_file_never_blocks_the_run(conn, settings, landing):
    folder = settings.landing_dir / "usage_events" / DAY
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.ndjson")
    (folder / "folder.ndjson").mkdir()
    (folder / "folder.ndjson" / "x.ndjson").write_text("{}\n")
    landing.write("usage_events", DAY, "ok.ndjson", [usage("u1")])

    report = ingest(conn, settings)

    assert report.counts.accepted == 1
    reasons = {path.rsplit("/", 1)[1]: reason for _, path, *_, reason in ledger(conn)}
    assert reasons == {
        "pipe.ndjson": "misplaced_file",
        "x.ndjson": "misplaced_file",
        "ok.ndjson": None,
    }


def test_day_folders_are_real_days_from_1970_to_tomorrow():
    today = date(2026, 11, 28)
    assert parse_day("1970-01-01", today) == date(1970, 1, 1)
    assert parse_day("2026-11-29", today) == date(2026, 11, 29)
    for name in (
        "1969-12-31",
        "2026-11-30",
        "2026-13-45",
        "2026-02-30",
        "2026-W01-1",
        "20261103",
        "２０２６-11-03",
        "notes",
        "",
    ):
        assert parse_day(name, today) is None, name


def test_the_scan_of_a_missing_or_empty_landing_zone_finds_nothing(tmp_path):
    assert scan_landing(tmp_path / "nowhere").files == []
    assert scan_landing(tmp_path).misplaced == []
