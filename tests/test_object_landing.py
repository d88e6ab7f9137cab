"""The landing zone on object storage (ODAVL_LANDING_URL) behaves as the folder does.

Against moto's S3 server on loopback, through s3fs: the scan, the ledger's identity of a file
(path, SHA-256), in-progress names, misplaced files, streaming of .ndjson and .ndjson.gz, the
sensor's changes, `doctor`, `rejects` and a whole run through Dagster.
"""

import json
import os
from datetime import date

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline.db.server import connect
from odavl_pipeline.generate import GenerateOptions, generate_landing
from odavl_pipeline.ingest.changes import changes_since
from odavl_pipeline.ingest.landing import scan_landing
from odavl_pipeline.ingest.zones import LocalZone, ObjectZone, landing_zone
from odavl_pipeline.settings import Settings

from .commands import cli
from .hostile import HostileLanding, hostile_landings
from .s3_server import put, upload
from .state import fingerprint, sibling_database

pytestmark = pytest.mark.s3

DAY = "2026-11-03"


def _storable_in_a_bucket(landing: HostileLanding) -> HostileLanding:
    """Its entries a bucket can hold: keys are UTF-8 text, and there are no links. (S3 takes
    control characters in a key too; moto's server refuses them, so they are left out here.)"""
    return HostileLanding(
        [p for p in landing.entries if p.kind != "outside_link" and _printable(p.path)]
    )


def _printable(path: tuple[bytes, ...]) -> bool:
    try:
        return b"/".join(path).decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


def _scanned(where) -> tuple[list, list]:
    scan = scan_landing(where)
    return (
        [(f.source, f.day, f.relative_path, f.size) for f in scan.files],
        [(m.source, m.relative_path, m.problem, m.size) for m in scan.misplaced],
    )


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(landing=hostile_landings().map(_storable_in_a_bucket))
def test_a_bucket_and_a_folder_holding_the_same_entries_scan_alike(
    landing, landing_url, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("landing")
    url = f"{landing_url}/{folder.name}"  # a prefix of its own for each example
    for planted in landing.entries:
        path = os.path.join(os.fsencode(folder), *planted.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(planted.data())
        put(url + "/" + b"/".join(planted.path).decode(), planted.data())

    assert _scanned(url) == _scanned(folder)
    assert [f.relative_path for f in scan_landing(url).files] == sorted(
        (f.relative_path for f in scan_landing(url).files),
        key=lambda relative: tuple(part.encode() for part in relative.split("/")),
    )  # name order, level by level, as in a folder


def test_the_zone_is_chosen_by_its_address(tmp_path):
    assert landing_zone(tmp_path) == LocalZone(tmp_path)
    assert landing_zone(str(tmp_path)) == LocalZone(tmp_path)
    assert landing_zone("s3://bucket/prefix/") == ObjectZone("s3://bucket/prefix")
    settings = Settings.from_env({"ODAVL_HOME": str(tmp_path), "ODAVL_LANDING_URL": "s3://b/p/"})
    assert settings.landing == "s3://b/p"
    for wrong in ("bucket/prefix", "s3://", "://bucket", "s3:///"):
        with pytest.raises(ValueError, match="ODAVL_LANDING_URL must be a URL"):
            Settings.from_env({"ODAVL_HOME": str(tmp_path), "ODAVL_LANDING_URL": wrong})


@given(value=st.text(max_size=60) | st.from_regex(r"[a-z0-9]{1,8}://[^\x00]{0,40}", fullmatch=True))
def test_any_landing_url_is_taken_as_a_url_or_refused_with_a_clear_reason(value):
    environment = {"ODAVL_HOME": "odavl-home", "ODAVL_LANDING_URL": value}
    try:
        url = Settings.from_env(environment).landing_url
    except ValueError as refused:
        assert "ODAVL_LANDING_URL must be a URL such as s3://bucket/prefix" in str(refused)
        return
    if not value:
        assert url is None  # unset: the folder
        return
    scheme, _, rest = url.partition("://")
    assert scheme.isidentifier() and rest.strip("/") and not url.endswith("/")
    assert landing_zone(url) == ObjectZone(url)


def test_in_progress_names_and_folder_markers_wait_and_gzip_streams(landing_url, landing):
    landing.write("usage_events", DAY, "a.ndjson", [{"event_id": "x"}])
    landing.write("usage_events", DAY, "b.ndjson.gz", [{"event_id": "y"}], gz=True)
    upload(landing.root, landing_url)
    put(f"{landing_url}/usage_events/{DAY}/.c.ndjson", b"{}\n")  # still being written
    put(f"{landing_url}/usage_events/{DAY}/d.ndjson.tmp", b"{}\n")
    put(f"{landing_url}/.staging/usage_events/{DAY}/e.ndjson", b"{}\n")
    put(f"{landing_url}/usage_events/{DAY}/", b"")  # a console's folder marker
    put(f"{landing_url}/usage_events/notes.txt", b"")

    scan = scan_landing(landing_url)

    assert [f.relative_path for f in scan.files] == [
        f"usage_events/{DAY}/a.ndjson",
        f"usage_events/{DAY}/b.ndjson.gz",
    ]
    assert [(m.relative_path, m.problem[:18]) for m in scan.misplaced] == [
        ("usage_events/notes.txt", "not in a day folde")
    ]
    zone = landing_zone(landing_url)
    with zone.open(scan.files[1].location) as handle:
        assert zone.status(handle) == (scan.files[1].size, scan.files[1].mtime_ns)
        assert handle.read()[:2] == b"\x1f\x8b"


@pytest.mark.slow
def test_a_run_from_a_bucket_ends_as_a_run_from_a_folder(
    settings, landing_url, database_url, server_url, tmp_path
):
    from odavl_pipeline.db.seed import seed_chain_heads

    folder = tmp_path / "generated"
    options = GenerateOptions(
        end_day=date(2026, 11, 20),
        days=3,
        organizations=2,
        usage_per_day=40,
        errors_per_day=6,
        attestations_per_day=3,
        audits_per_day=1,
        duplicate_share=0.05,
        conflict_share=0.02,
        malformed_share=0.03,
        gzip_share=0.5,
        chain_heads=seed_chain_heads(),
    )
    reference = settings.home / "reference.json"
    generate_landing(folder, options, reference_path=reference)
    (folder / "usage_events" / "2026-11-20" / "notes.csv").write_text("not a landing file\n")
    (folder / "usage_events" / "2026-11-20" / "late.ndjson.tmp").write_text("{}\n")
    cli("seed", "--reference", str(reference), env={"ODAVL_LANDING_DIR": str(folder)})
    upload(folder, landing_url)  # with the demo's files, which the seed placed beside

    from_bucket = json.loads(cli("run", "--json").stdout)
    with connect(settings) as conn:
        bucket_state = fingerprint(conn)
    with sibling_database(settings, database_url, server_url, "folder") as other:
        env = {
            "ODAVL_DATABASE_URL": other.database_url.get_secret_value(),
            "ODAVL_LANDING_DIR": str(folder),
            "ODAVL_LANDING_URL": None,
        }
        cli("seed", "--reference", str(reference), env=env)
        from_folder = json.loads(cli("run", "--json", env=env).stdout)
        with connect(other) as conn:
            folder_state = fingerprint(conn)

    assert from_bucket == from_folder
    assert bucket_state == folder_state
    assert sum(counts["accepted"] for counts in from_bucket.values()) > 300
    assert any(path.endswith(".gz") for _, path, *_ in bucket_state["ingested_files"])

    rejects = json.loads(cli("rejects", "--reason", "misplaced_file", "--json").stdout)
    assert [reject["file"] for reject in rejects] == ["usage_events/2026-11-20/notes.csv"]
    doctor = cli("doctor", check=False).stdout
    assert f"landing: {landing_url}" in doctor and "1 misplaced" in doctor

    again = json.loads(cli("run", "--json").stdout)  # nothing new: every file known
    assert all(counts["lines"] == 0 for counts in again.values()), again

    looked = changes_since(landing_url, None)
    assert set(looked.partitions) == set(from_bucket)
    assert changes_since(landing_url, looked.cursor).partitions == {}  # nothing new since
    rewritten = next(
        f for f in scan_landing(landing_url, ("usage_events",)).files if f.day == date(2026, 11, 19)
    )
    # the producer writes it again, a line longer (in the same second, S3's clock is no finer)
    with landing_zone(landing_url).open(rewritten.location) as handle:
        put(f"s3://{rewritten.location}", handle.read() + b'{"broken": \n')
    assert changes_since(landing_url, looked.cursor).partitions == {"usage_events": {"2026-11-19"}}
    with connect(settings) as conn:
        lines, rejected = conn.execute(
            "SELECT lines, rejected FROM ingested_files WHERE path = %s",
            (rewritten.relative_path,),
        ).fetchone()
    third = json.loads(cli("run", "--json").stdout)["usage_events"]
    # ingested again: what it held before is there already, the new line is rejected
    assert (third["files"], third["lines"], third["accepted"], third["rejected"]) == (
        1,
        lines + 1,
        0,
        rejected + 1,
    )


def test_doctor_names_a_missing_bucket_and_an_empty_prefix_is_a_zone_with_nothing_yet(
    settings, landing_url
):
    from odavl_pipeline.doctor import OK, PROBLEM, check_landing

    empty = settings.replace(landing_url=landing_url + "-nothing-here")
    assert (check_landing(empty).status, check_landing(empty).summary[-22:]) == (
        OK,
        "nothing has landed yet",
    )
    missing = settings.replace(landing_url="s3://odavl-no-such-bucket/landing")
    finding = check_landing(missing)
    assert finding.status == PROBLEM and "bucket that does not exist" in finding.summary
    assert "ODAVL_LANDING_URL" in finding.fix
