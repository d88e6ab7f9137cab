"""The synthetic landing generator: deterministic, contract-shaped, and honestly counted.

The checks re-read the files with an independent validator of CONTRACT.md section 3, so
the generator's own bookkeeping (the summary) is compared with what is really on disk.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from odavl_pipeline.domain.attestations import GENESIS_HASH, attestation_hash
from odavl_pipeline.domain.signatures import error_signature
from odavl_pipeline.generate import (
    MALFORMED_KINDS,
    SOURCES,
    GenerateOptions,
    generate_landing,
    synthetic_reference,
)

END_DAY = dt.date(2026, 11, 3)  # a Tuesday
OPTIONS = GenerateOptions(
    seed=11,
    days=6,
    end_day=END_DAY,
    organizations=3,
    usage_per_day=60,
    errors_per_day=25,
    attestations_per_day=15,
    audits_per_day=3,
    duplicate_share=0.05,
    conflict_share=0.02,
    malformed_share=0.05,
    late_share=0.08,
    gzip_share=0.4,
    files_per_day=3,
)
END_INSTANT = dt.datetime.combine(END_DAY + dt.timedelta(days=1), dt.time(), dt.UTC)
FIRST_INSTANT = dt.datetime.combine(OPTIONS.first_day, dt.time(), dt.UTC)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("landing")
    messages: list[str] = []
    summary = generate_landing(out, OPTIONS, messages.append)
    return out, summary, messages


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def data_files(root: Path, source: str) -> list[Path]:
    return sorted((root / source).glob("*/*.ndjson*"))


def file_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if not data:
        return []
    assert data.endswith(b"\n"), path
    return data[:-1].split(b"\n")


# ------------------------------------------------------------------ an independent validator

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
SEVERITIES = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"}
RUN_STATUSES = {"SUCCESS", "PARTIAL", "FAILED"}
SUITES = {"accessibility", "performance", "security", "seo", "best_practices"}
SCORES = (
    "score_accessibility",
    "score_performance",
    "score_security",
    "score_seo",
    "lighthouse_performance",
    "lighthouse_accessibility",
    "lighthouse_best_practices",
    "lighthouse_seo",
)


class Bad(Exception):
    """A line that ingestion must reject; args[0] is the quarantine reason."""


def _str(rec: dict, name: str, lo: int = 1, hi: int = 10_000, required: bool = True) -> None:
    if name not in rec:
        if required:
            raise Bad("schema_violation", name)
        return
    value = rec[name]
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        raise Bad("schema_violation", name)


def _int(rec: dict, name: str, lo: int = 0, hi: int | None = None, required: bool = True) -> None:
    if name not in rec:
        if required:
            raise Bad("schema_violation", name)
        return
    value = rec[name]
    if type(value) is not int or value < lo or (hi is not None and value > hi):
        raise Bad("schema_violation", name)


def _enum(rec: dict, name: str, allowed: set[str]) -> None:
    if rec.get(name) not in allowed:
        raise Bad("schema_violation", name)


def _time(rec: dict, name: str) -> dt.datetime:
    value = rec.get(name)
    if not isinstance(value, str) or not _TS.match(value):
        raise Bad("schema_violation", name)
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise Bad("schema_violation", name) from None


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def validate(source: str, rec: Any, projects: dict[str, set[str]]) -> tuple[tuple, dt.datetime]:
    """Return ((scope, key), instant) or raise Bad(reason)."""
    if not isinstance(rec, dict):
        raise Bad("schema_violation", "record")
    _str(rec, "org", hi=200)
    if source == "usage_events":
        _str(rec, "event_id", hi=200)
        _enum(
            rec,
            "event_type",
            {"insight_analysis", "autopilot_job", "guardian_test_run", "api_call"},
        )
        instant = _time(rec, "occurred_at")
        _int(rec, "quantity", 1, 1_000_000, required=False)
        _str(rec, "user", required=False)
        _str(rec, "project", required=False)
        for name in (
            "duration_ms",
            "files_analyzed",
            "lines_analyzed",
            "files_modified",
            "tests_run",
            "status",
        ):
            _int(rec, name, required=False)
        if "metadata" in rec and not isinstance(rec["metadata"], dict):
            raise Bad("schema_violation", "metadata")
        key_name, project_required = "event_id", False
    elif source == "error_events":
        _str(rec, "event_id", hi=200)
        _str(rec, "project", hi=200)
        _str(rec, "detector", hi=64)
        _enum(rec, "severity", SEVERITIES)
        _str(rec, "message")
        _str(rec, "file")
        _int(rec, "line")
        _int(rec, "column", required=False)
        _str(rec, "code", required=False)
        _str(rec, "suggestion", required=False)
        instant = _time(rec, "occurred_at")
        if "signature" in rec and not (
            isinstance(rec["signature"], str) and _HEX64.match(rec["signature"])
        ):
            raise Bad("schema_violation", "signature")
        key_name, project_required = "event_id", True
    elif source == "fix_attestations":
        _str(rec, "request_id", hi=200)
        _str(rec, "project", hi=200)
        _enum(rec, "status", RUN_STATUSES)
        for name in ("files_changed", "lines_added", "lines_removed"):
            _int(rec, name)
        _int(rec, "risk_score", 0, 100)
        recipes = rec.get("recipes")
        if not isinstance(recipes, list) or not all(isinstance(r, str) for r in recipes):
            raise Bad("schema_violation", "recipes")
        _str(rec, "error", required=False)
        _str(rec, "undo_snapshot", required=False)
        instant = _time(rec, "created_at")
        for name in ("prev_hash", "hash"):
            if not isinstance(rec.get(name), str) or not _HEX64.match(rec[name]):
                raise Bad("schema_violation", name)
        assert not _has_float(rec), rec
        key_name, project_required = "request_id", True
    else:
        _str(rec, "request_id", hi=200)
        _str(rec, "project", hi=200)
        url = rec.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Bad("schema_violation", "url")
        _enum(rec, "environment", {"development", "staging", "production"})
        _enum(rec, "device", {"desktop", "mobile", "tablet"})
        for name in SCORES:
            _int(rec, name, 0, 100, required=False)
        _enum(rec, "status", RUN_STATUSES)
        _int(rec, "duration_ms")
        instant = _time(rec, "occurred_at")
        issues = rec.get("issues", [])
        if not isinstance(issues, list):
            raise Bad("schema_violation", "issues")
        for issue in issues:
            if not isinstance(issue, dict):
                raise Bad("schema_violation", "issues")
            _enum(issue, "suite", SUITES)
            _enum(issue, "severity", SEVERITIES)
            _str(issue, "message")
            _str(issue, "recommendation")
            _str(issue, "element", required=False)
            _str(issue, "documentation", required=False)
        key_name, project_required = "request_id", True

    if rec["org"] not in projects:
        raise Bad("unknown_org")
    if (project_required or "project" in rec) and rec["project"] not in projects[rec["org"]]:
        raise Bad("unknown_project")
    if instant > END_INSTANT:
        raise Bad("future_timestamp")
    if (
        source == "error_events"
        and "signature" in rec
        and rec["signature"] != error_signature(rec["detector"], rec["file"], rec["message"])
    ):
        raise Bad("signature_mismatch")
    if source == "fix_attestations" and rec["hash"] != attestation_hash(rec):
        raise Bad("hash_mismatch")
    scope = rec["org"] if source == "usage_events" else (rec["org"], rec["project"])
    return (scope, rec[key_name]), instant


def analyse(root: Path, source: str) -> dict[str, Any]:
    """Classify every line of a source the way CONTRACT.md section 4 does."""
    reference = json.loads((root / "reference.json").read_text())
    projects = {o["slug"]: {p["slug"] for p in o["projects"]} for o in reference["organizations"]}
    seen: dict[tuple, Any] = {}
    result: dict[str, Any] = {
        "files": 0,
        "gzip_files": 0,
        "lines": 0,
        "blank_lines": 0,
        "records": [],
        "duplicates": 0,
        "conflicts": 0,
        "malformed": Counter(),
        "late": 0,
        "first_days": {},
    }
    for path in data_files(root, source):
        result["files"] += 1
        result["gzip_files"] += path.name.endswith(".gz")
        folder_day = dt.date.fromisoformat(path.parent.name)
        for raw in file_lines(path):
            if not raw.strip():
                result["blank_lines"] += 1
                continue
            result["lines"] += 1
            try:
                rec = json.loads(raw)
            except ValueError:
                result["malformed"]["invalid_json"] += 1
                continue
            try:
                key, instant = validate(source, rec, projects)
            except Bad as bad:
                result["malformed"][bad.args[0]] += 1
                continue
            if key in seen:
                if seen[key] == rec:
                    result["duplicates"] += 1
                else:
                    result["conflicts"] += 1
                continue
            seen[key] = rec
            utc_day = instant.astimezone(dt.UTC).date()
            assert FIRST_INSTANT <= instant < END_INSTANT, (path, rec)
            assert folder_day >= utc_day, (path, rec)  # never lands before it happened
            result["late"] += folder_day > utc_day
            result["records"].append(rec)
    return result


@pytest.fixture(scope="module")
def analysed(landing):
    out, _, _ = landing
    return {source: analyse(out, source) for source in SOURCES}


# --------------------------------------------------------------------------- tests


def test_same_options_give_identical_bytes_and_other_seed_differs(landing, tmp_path):
    out, summary, _ = landing
    again = generate_landing(tmp_path / "again", OPTIONS)
    assert tree_digest(tmp_path / "again") == tree_digest(out)
    assert again == replace(summary, out=tmp_path / "again")
    generate_landing(tmp_path / "other", replace(OPTIONS, seed=12))
    assert tree_digest(tmp_path / "other") != tree_digest(out)


def test_layout_names_gzip_and_no_leftover_tmp(landing):
    out, summary, _ = landing
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    days = {(OPTIONS.first_day + dt.timedelta(days=i)).isoformat() for i in range(OPTIONS.days)}
    gz = 0
    for source in SOURCES:
        assert {p.name for p in (out / source).iterdir()} == days
        files = data_files(out, source)
        assert len(files) == OPTIONS.days * OPTIONS.files_per_day
        for path in files:
            match = re.fullmatch(r"[a-z]+-(\d{8})-s11-\d{3}\.ndjson(\.gz)?", path.name)
            assert match and match[1] == path.parent.name.replace("-", "")
            if path.name.endswith(".gz"):
                gz += 1
                head = path.read_bytes()[:10]
                assert head[:3] == b"\x1f\x8b\x08" and head[3] & 0x08 == 0  # no file name
                assert head[4:8] == b"\0\0\0\0"  # mtime 0
                gzip.decompress(path.read_bytes()).decode("utf-8")
            else:
                path.read_bytes().decode("utf-8")
    assert 0 < gz < len(SOURCES) * OPTIONS.days * OPTIONS.files_per_day


def test_summary_counts_match_the_files(landing, analysed):
    _, summary, _ = landing
    for source in SOURCES:
        s, a = summary.sources[source], analysed[source]
        assert s.files == a["files"], source
        assert s.gzip_files == a["gzip_files"], source
        assert s.lines == a["lines"], source
        assert s.blank_lines == a["blank_lines"], source
        assert s.duplicates == a["duplicates"] > 0, source
        assert s.conflicts == a["conflicts"], source
        assert s.malformed == sum(a["malformed"].values()) > 0, source
        assert dict(s.malformed_kinds) == dict(a["malformed"]), source
        assert s.late == a["late"], source
        assert s.records + s.forks == len(a["records"]), source
        assert s.lines == s.records + s.duplicates + s.conflicts + s.malformed + s.forks
        assert s.expected_rejected == s.conflicts + s.malformed + s.forks
    every_kind = set().union(*(s.malformed_kinds for s in summary.sources.values()))
    assert every_kind == set(MALFORMED_KINDS)
    assert summary.sources["usage_events"].conflicts > 0
    assert summary.sources["usage_events"].late > 0
    assert summary.sources["fix_attestations"].late > 0


def test_reference_lists_every_org_and_project_used(landing, analysed):
    out, summary, _ = landing
    reference = json.loads((out / "reference.json").read_text("utf-8"))
    assert reference == synthetic_reference(OPTIONS)
    orgs = {o["slug"]: o for o in reference["organizations"]}
    assert len(orgs) == OPTIONS.organizations + 2 == summary.organizations
    assert {p["slug"] for p in orgs["odavl-test-org"]["projects"]} == {"web-app", "api-backend"}
    assert [p["slug"] for p in orgs["enterprise-corp"]["projects"]] == ["mobile-app"]
    assert orgs["odavl-test-org"]["tier"] == "PRO"
    assert orgs["enterprise-corp"]["tier"] == "ENTERPRISE"
    for org in orgs.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", org["slug"])
        assert org["tier"] in {"FREE", "PRO", "ENTERPRISE"}
        assert 1 <= len(org["projects"]) <= 4
        assert ("subscription" in org) == (org["tier"] != "FREE")  # FREE: no subscription
        if "subscription" in org:
            assert org["subscription"]["status"] == "ACTIVE"
            start = dt.datetime.fromisoformat(org["subscription"]["current_period_start"])
            assert start.tzinfo and END_INSTANT - dt.timedelta(days=32) < start < END_INSTANT
        for project in org["projects"]:
            assert set(project) == {"slug", "name", "language", "repository"}
    used = set()
    for source in SOURCES:
        for rec in analysed[source]["records"]:
            assert rec["org"] in orgs
            if "project" in rec:
                assert rec["project"] in {p["slug"] for p in orgs[rec["org"]]["projects"]}
                used.add((rec["org"], rec["project"]))
    assert len(used) == summary.projects  # every project has data


def test_attestation_chains_link_from_genesis(analysed, landing):
    _, summary, _ = landing
    children: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for rec in analysed["fix_attestations"]["records"]:
        assert rec["hash"] == attestation_hash(rec)
        children[(rec["org"], rec["project"])][rec["prev_hash"]].append(rec)
    forks = 0
    for project, by_parent in children.items():
        losers = set()
        for siblings in by_parent.values():
            if len(siblings) > 1:
                assert len(siblings) == 2
                forks += 1
                first, second = sorted(
                    siblings, key=lambda r: dt.datetime.fromisoformat(r["created_at"])
                )
                assert first["created_at"] != second["created_at"]
                losers.add(second["hash"])
                assert second["hash"] not in by_parent  # nobody builds on a fork
        reached, frontier = set(), [GENESIS_HASH]
        while frontier:
            for child in by_parent.get(frontier.pop(), []):
                reached.add(child["hash"])
                frontier.append(child["hash"])
        everything = {r["hash"] for kids in by_parent.values() for r in kids}
        assert reached == everything, project
        assert len(everything - losers) >= 1
    assert forks == summary.sources["fix_attestations"].forks > 0


def test_attestations_arrive_out_of_order_sometimes(landing):
    out, _, _ = landing
    position: dict[str, int] = {}
    records = []
    for path in data_files(out, "fix_attestations"):
        for raw in file_lines(path):
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("hash"), str):
                position.setdefault(rec["hash"], len(position))
                records.append(rec)
    early = [
        r
        for r in records
        if r.get("prev_hash") in position and position[r["prev_hash"]] > position[r["hash"]]
    ]
    assert early, "late_share should make some child arrive before its parent"


def test_error_signatures(analysed):
    records = analysed["error_events"]["records"]
    with_signature = [r for r in records if "signature" in r]
    for rec in with_signature:
        assert rec["signature"] == error_signature(rec["detector"], rec["file"], rec["message"])
    assert 0.35 < len(with_signature) / len(records) < 0.65
    groups = Counter(
        (r["org"], r["project"], error_signature(r["detector"], r["file"], r["message"]))
        for r in records
    )
    assert len(groups) < len(records) / 3  # occurrences group into a moderate number
    assert max(groups.values()) >= 10
    distinct_messages = {r["message"] for r in records}
    assert len(distinct_messages) > len(groups)  # variable parts are really variable
    detectors = Counter(r["detector"] for r in records)
    assert {"eslint", "security", "performance", "circular"} <= set(detectors)
    web_app = {
        r["message"] for r in records if (r["org"], r["project"]) == ("odavl-test-org", "web-app")
    }
    assert "Hardcoded API key detected" in web_app
    ids = Counter((r["org"], r["project"], r["event_id"]) for r in records)
    assert max(ids.values()) == 1


def test_usage_looks_like_real_traffic(analysed):
    records = analysed["usage_events"]["records"]
    types = Counter(r["event_type"] for r in records)
    assert types.most_common(1)[0][0] == "api_call"
    assert set(types) == {"api_call", "insight_analysis", "autopilot_job", "guardian_test_run"}
    quantities = Counter(r.get("quantity", 1) for r in records)
    assert quantities[1] / len(records) > 0.9
    assert any("quantity" not in r for r in records)
    assert sum("user" in r for r in records) / len(records) > 0.8
    assert all("@" in r["user"] for r in records if "user" in r)
    assert 0.2 < sum("project" in r for r in records) / len(records) < 0.9
    instants = [dt.datetime.fromisoformat(r["occurred_at"]).astimezone(dt.UTC) for r in records]
    working = sum(9 <= t.hour < 17 for t in instants)
    night = sum(t.hour < 6 for t in instants)
    assert working > 3 * night
    per_day = Counter(t.date() for t in instants)
    weekend = [n for day, n in per_day.items() if day.weekday() >= 5]
    weekday = [n for day, n in per_day.items() if day.weekday() < 5]
    assert weekend and weekday and max(weekend) * 2 < min(weekday)
    stamps = [r["occurred_at"] for r in records]
    zulu = sum(s.endswith("Z") for s in stamps)
    assert 0.8 < zulu / len(stamps) < 1
    assert any(s.endswith("+02:00") for s in stamps) and any(s.endswith("-05:00") for s in stamps)
    ids = Counter((r["org"], r["event_id"]) for r in records)
    assert max(ids.values()) == 1


def test_audits_are_plausible(analysed):
    records = analysed["audit_results"]["records"]
    assert {r["device"] for r in records} == {"desktop", "mobile", "tablet"}
    assert {r["environment"] for r in records} == {"development", "staging", "production"}
    assert any(r["issues"] for r in records) and any(not r["issues"] for r in records)
    assert any("element" in i for r in records for i in r["issues"])
    assert {i["suite"] for r in records for i in r["issues"]} == SUITES
    for r in records:
        keys = [(i["suite"], i["message"]) for i in r["issues"]]
        assert len(keys) == len(set(keys))  # no issue reported twice in one audit
        if r["environment"] == "development":
            assert r["url"].startswith("http://localhost:")
        else:
            assert r["url"].startswith("https://")
    demo = {
        r["url"]
        for r in records
        if (r["org"], r["project"], r["environment"]) == ("odavl-test-org", "web-app", "production")
    }
    assert demo and all(u.startswith("https://demo-web-app.odavl.studio/") for u in demo)


def test_not_after_caps_every_timestamp(tmp_path):
    cap = dt.datetime(2026, 11, 3, 10, 30, tzinfo=dt.UTC)
    options = replace(OPTIONS, days=2, malformed_share=0.0, not_after=cap)
    summary = generate_landing(tmp_path, options)
    latest = None
    for source in SOURCES:
        field = "created_at" if source == "fix_attestations" else "occurred_at"
        for path in data_files(tmp_path, source):
            for raw in file_lines(path):
                if raw.strip():
                    instant = dt.datetime.fromisoformat(json.loads(raw)[field])
                    assert instant <= cap
                    latest = max(latest or instant, instant)
        assert summary.sources[source].malformed == 0
    assert latest > cap - dt.timedelta(hours=2)


def test_clean_options_write_only_clean_distinct_records(tmp_path):
    options = replace(
        OPTIONS,
        days=2,
        duplicate_share=0.0,
        conflict_share=0.0,
        malformed_share=0.0,
        late_share=0.0,
    )
    summary = generate_landing(tmp_path, options)
    for source in SOURCES:
        s = summary.sources[source]
        a = analyse(tmp_path, source)
        assert s.lines == s.records == len(a["records"]) > 0
        assert a["duplicates"] == a["conflicts"] == a["late"] == s.forks == s.blank_lines == 0
        assert not a["malformed"]


def test_progress_reports_each_source_and_day(landing):
    _, _, messages = landing
    for source in SOURCES:
        assert any(m.startswith(f"{source} {END_DAY.isoformat()}:") for m in messages)
    assert len(messages) >= len(SOURCES) * OPTIONS.days


@pytest.mark.parametrize(
    "change",
    [
        {"days": 0},
        {"files_per_day": 0},
        {"late_share": 1.5},
        {"not_after": dt.datetime(2026, 11, 3)},
    ],
)
def test_options_are_validated(change):
    with pytest.raises(ValueError):
        replace(OPTIONS, **change)


def test_output_does_not_depend_on_string_hashing(tmp_path):
    import subprocess
    import sys

    script = (
        "import datetime as dt, sys; from pathlib import Path; "
        "from odavl_pipeline.generate import GenerateOptions, generate_landing; "
        "generate_landing(Path(sys.argv[1]), GenerateOptions(seed=3, days=2, "
        "end_day=dt.date(2026, 3, 1), organizations=2, usage_per_day=30, errors_per_day=10, "
        "malformed_share=0.05, duplicate_share=0.05, late_share=0.1))"
    )
    digests = set()
    for hash_seed in ("0", "4242"):
        out = tmp_path / hash_seed
        env = {"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}
        subprocess.run(
            [sys.executable, "-c", script, str(out)],
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        digests.add(tree_digest(out))
    assert len(digests) == 1


def test_a_thousand_organizations_have_distinct_names_and_slugs():
    reference = synthetic_reference(replace(OPTIONS, organizations=1000))
    organizations = reference["organizations"]
    assert len(organizations) == 1002  # besides the two demo ones
    assert len({org["slug"] for org in organizations}) == 1002
    assert len({org["name"] for org in organizations}) == 1002
    assert synthetic_reference(replace(OPTIONS, organizations=1000)) == reference  # same seed
