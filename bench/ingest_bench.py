#!/usr/bin/env python
"""Ingestion benchmark: the pipeline against a raw COPY and against a per-row ORM insert.

One run sets up its own PostgreSQL database, generates about a million synthetic usage
events into a landing folder, then measures on the same server:

  (a) copy      raw `COPY … FROM STDIN` of the same valid, distinct rows into a table
                like `usage_events` (rows prepared in memory beforehand, untimed);
  (b) pipeline  `ingest_days` over every landed day, end to end, in a child process
                whose peak RSS is measured;
  (c) orm       plain SQLAlchemy ORM, one INSERT per row (`add` + `flush`), on a sample.

It prints rows, seconds and rows/s for each, the ratios (b)/(a) and (b)/(c) and the
ingest peak RSS, each against its target. It only prints; it asserts nothing.

    python bench/ingest_bench.py [--events N] [--sample N] [--home DIR] [--keep] [--json]

With ODAVL_DATABASE_URL set it uses that server (database `odavl_bench`, dropped and
recreated); otherwise it starts an embedded PostgreSQL under its state folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from common import Environment, log, run_child, server_facts, set_up, tear_down, throttled
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from odavl_pipeline import clock
from odavl_pipeline.db.models import UsageEvent
from odavl_pipeline.db.seed import SEEDS_DIR, load_reference, read_reference
from odavl_pipeline.domain.enums import UsageEventType
from odavl_pipeline.domain.records import Rejected
from odavl_pipeline.generate import GenerateOptions, generate_landing, synthetic_reference
from odavl_pipeline.ingest.landing import landed_days, read_lines, scan_landing
from odavl_pipeline.ingest.sources import SPECS

SOURCE = "usage_events"
BENCH_DB = "odavl_bench"
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "wal_level",
    "max_wal_size",
)  # what matters most for write throughput
COLUMNS = (
    "organization_id",
    "event_id",
    "event_type",
    "occurred_at",
    "quantity",
    "project_id",
    "user_email",
    "payload",
    "file_id",
    "line_no",
)
COPY_CHUNK_BYTES = 4 * 1024 * 1024

TARGET_VS_COPY = 0.5  # (b)/(a) rows/s, at least
TARGET_VS_ORM = 20.0  # (b)/(c) rows/s, at least
TARGET_RSS_MIB = 1024.0  # ingest peak RSS, below


@dataclass
class Figure:
    """One measurement: rows written in so many seconds."""

    rows: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rate, 1),
            **self.extra,
        }


# --- setup ----------------------------------------------------------------------------


def load_seeds(env: Environment, generated_reference: Path) -> None:
    """The demo reference data and the generator's organizations and projects."""
    engine = create_engine(env.url)
    try:
        with engine.begin() as conn:
            load_reference(conn, read_reference(SEEDS_DIR / "reference.json"))
            load_reference(conn, read_reference(generated_reference))
    finally:
        engine.dispose()


def checkpoint(env: Environment) -> None:
    """Flush dirty buffers between measurements so one does not pay for another's writes."""
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# --- generation -----------------------------------------------------------------------


def generate(
    landing: Path, events: int, organizations: int, days: int, seed: int
) -> tuple[dict[str, Any], float]:
    """About `events` usage events over `days` days, no other sources; (summary, seconds)."""
    end_day = clock.today() - timedelta(days=1)
    probe = GenerateOptions(seed=seed, days=days, end_day=end_day, organizations=organizations)
    total_orgs = len(synthetic_reference(probe)["organizations"])
    options = GenerateOptions(
        seed=seed,
        days=days,
        end_day=end_day,
        organizations=organizations,
        usage_per_day=max(1, round(events / (total_orgs * days))),
        errors_per_day=0,
        attestations_per_day=0,
        audits_per_day=0,
    )
    log(
        f"generating ~{events:,} usage events: {total_orgs} organizations x {days} days, "
        f"{options.usage_per_day:,} events per organization per day"
    )
    started = time.perf_counter()
    summary = generate_landing(landing, options, progress=throttled())
    seconds = time.perf_counter() - started
    usage = summary.sources[SOURCE].to_dict()
    log(f"generated {usage['lines']:,} lines in {usage['files']} files in {seconds:.1f} s")
    return usage, seconds


# --- (b) the pipeline, in a child process ---------------------------------------------


def run_pipeline(env: Environment, landing: Path) -> Figure:
    """`ingest_days` over every landed day in a child process; its wall clock and peak RSS."""
    days = landed_days(landing, (SOURCE,))
    log(f"(b) pipeline: ingest_days over {len(days)} days in a child process")
    run = run_child(
        __file__,
        "--child-ingest",
        {
            "dsn": env.dsn,
            "landing": str(landing),
            "days": [d.isoformat() for d in days],
            "result": str(env.home / "pipeline-result.json"),
        },
        env.home / "pipeline-result.json",
    )
    report = run.result
    counts = report["counts"]
    return Figure(
        counts["accepted"],
        report["seconds"],
        {
            "lines": counts["lines"],
            "lines_per_s": round(counts["lines"] / report["seconds"], 1),
            "files": counts["files"],
            "duplicate": counts["duplicate"],
            "rejected": counts["rejected"],
            "retried": report["retried"],
            "process_seconds": round(run.process_seconds, 3),
            "peak_rss_mib": run.peak_rss_mib,
        },
    )


def child_ingest(spec_json: str) -> None:
    """The child side of (b): run the pipeline exactly as the ingest asset does."""
    from odavl_pipeline.ingest.run import ingest_days

    spec = json.loads(spec_json)
    days = [date.fromisoformat(d) for d in spec["days"]]
    with psycopg.connect(spec["dsn"]) as conn:
        report = ingest_days(
            conn, Path(spec["landing"]), SOURCE, days, run_id="bench", progress=throttled()
        )
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "seconds": report.seconds,
                "counts": report.counts.as_dict(),
                "retried": report.retried.lines,
            }
        )
    )


# --- preparing the rows for (a) and (c), untimed ----------------------------------------


@dataclass
class Prepared:
    """The valid, distinct records of the landing files, as COPY text and as a sample."""

    chunks: list[bytes]
    rows: int
    sample: list[dict[str, Any]]


def prepare_rows(env: Environment, landing: Path, sample_size: int) -> Prepared:
    """Parse every landing line once; keep what the pipeline accepts (first of each key).

    Validity is judged by the pipeline's own validator and reference data, so the rows
    are the ones ingestion accepts; duplicates and conflicts keep the first occurrence.
    """
    with psycopg.connect(env.dsn) as conn:
        orgs = dict(conn.execute("SELECT slug, id FROM organizations").fetchall())
        projects = {
            (org, slug): pid
            for org, slug, pid in conn.execute(
                "SELECT organization_id, slug, id FROM projects"
            ).fetchall()
        }
        file_id = conn.execute("SELECT min(id) FROM ingested_files").fetchone()[0]
    if file_id is None:
        with psycopg.connect(env.dsn) as conn:  # no ledger yet: one dummy row for the baseline
            file_id = conn.execute(
                "INSERT INTO ingested_files (source, path, day, sha256, size_bytes, lines, "
                "accepted, duplicate, pending, rejected) VALUES ('usage_events', "
                "'bench/baseline.ndjson', current_date, repeat('0', 64), 0, 0, 0, 0, 0, 0) "
                "RETURNING id"
            ).fetchone()[0]
    now = clock.now()
    seen: set[tuple[int, str]] = set()
    chunks: list[bytes] = []
    buffer: list[str] = []
    size = rows = 0
    sample: list[dict[str, Any]] = []
    validate_usage = SPECS[SOURCE].validate
    for landed in scan_landing(landing, (SOURCE,)).files:
        with open(landed.location, "rb") as handle:
            gzipped = landed.relative_path.endswith(".gz")
            for line_no, raw, _ in read_lines(handle, gzipped, landed.size):
                try:
                    obj = orjson.loads(raw)
                    record = validate_usage(obj, now) if type(obj) is dict else None
                except (orjson.JSONDecodeError, Rejected):
                    continue
                org_id = orgs.get(record.org) if record else None
                if org_id is None or (org_id, record.event_id) in seen:
                    continue
                project_id = None
                if record.project is not None:
                    project_id = projects.get((org_id, record.project))
                    if project_id is None:
                        continue
                seen.add((org_id, record.event_id))
                text = raw.decode("utf-8")
                row = (
                    org_id,
                    record.event_id,
                    record.event_type,
                    record.occurred_at,
                    record.quantity,
                    project_id,
                    record.user,
                    text,
                    file_id,
                    line_no,
                )
                line = "\t".join(_copy_text(value) for value in row) + "\n"
                buffer.append(line)
                size += len(line)
                rows += 1
                if size >= COPY_CHUNK_BYTES:
                    chunks.append("".join(buffer).encode())
                    buffer, size = [], 0
                if len(sample) < sample_size:
                    sample.append(
                        dict(
                            zip(COLUMNS, row[:7], strict=False),
                            payload=obj,
                            file_id=file_id,
                            line_no=line_no,
                        )
                    )
    if buffer:
        chunks.append("".join(buffer).encode())
    return Prepared(chunks, rows, sample)


def _copy_text(value: Any) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


# --- (a) raw COPY -----------------------------------------------------------------------


def create_like_usage_events(env: Environment, table: str) -> None:
    """A table identical to `usage_events`: columns, defaults, keys, indexes and foreign keys.

    `LIKE … INCLUDING ALL` leaves foreign keys out; they are copied one by one so that
    every baseline checks the same references the pipeline's table does.
    """
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE usage_events INCLUDING ALL)").format(
                sql.Identifier(table)
            )
        )
        foreign_keys = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'usage_events'::regclass AND contype = 'f'"
        ).fetchall()
        for (definition,) in foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD ").format(sql.Identifier(table)) + sql.SQL(definition)
            )


def run_copy(env: Environment, prepared: Prepared) -> Figure:
    """Stream the prepared bytes with one `COPY … FROM STDIN` into `bench_copy`; time it."""
    create_like_usage_events(env, "bench_copy")
    checkpoint(env)
    size = sum(len(chunk) for chunk in prepared.chunks)
    log(f"(a) copy: {prepared.rows:,} rows, {size / 2**20:,.0f} MiB of COPY text")
    with psycopg.connect(env.dsn) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with (
            conn.transaction(),
            cur.copy(f"COPY bench_copy ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for chunk in prepared.chunks:
                copy.write(chunk)
        seconds = time.perf_counter() - started
        count = cur.execute("SELECT count(*) FROM bench_copy").fetchone()[0]
    return Figure(count, seconds, {"mib": round(size / 2**20, 1)})


# --- (c) ORM, one row per statement -----------------------------------------------------


def run_orm(env: Environment, sample: list[dict[str, Any]]) -> Figure:
    """`session.add(row); session.flush()` per record, one commit at the end; time it."""
    with psycopg.connect(env.dsn, autocommit=True) as conn:  # (b) is done with the table
        conn.execute("TRUNCATE usage_events")
    checkpoint(env)
    log(f"(c) orm: {len(sample):,} rows, one INSERT per row")
    engine = create_engine(env.url)
    try:
        with Session(engine) as session:
            session.connection()  # connect before the clock starts
            started = time.perf_counter()
            for values in sample:
                session.add(
                    UsageEvent(**{**values, "event_type": UsageEventType(values["event_type"])})
                )
                session.flush()
            session.commit()
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return Figure(len(sample), seconds)


# --- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summarize(copy: Figure, pipeline: Figure, orm: Figure) -> dict[str, Any]:
    """The ratios and the memory figure, each with its target and verdict."""
    vs_copy = pipeline.rate / copy.rate if copy.rate else 0.0
    vs_orm = pipeline.rate / orm.rate if orm.rate else 0.0
    rss = pipeline.extra["peak_rss_mib"]
    return {
        "pipeline_vs_copy": {
            "value": round(vs_copy, 3),
            "target": f">= {TARGET_VS_COPY}",
            "verdict": verdict(vs_copy >= TARGET_VS_COPY),
        },
        "pipeline_vs_orm": {
            "value": round(vs_orm, 1),
            "target": f">= {TARGET_VS_ORM:g}",
            "verdict": verdict(vs_orm >= TARGET_VS_ORM),
        },
        "peak_rss_mib": {
            "value": rss,
            "target": f"< {TARGET_RSS_MIB:g}",
            "verdict": verdict(rss < TARGET_RSS_MIB),
        },
    }


def print_report(result: dict[str, Any]) -> None:
    gen, (a, b, c) = result["generate"], (result[k] for k in ("copy", "pipeline", "orm"))
    checks = result["checks"]
    server = result["server"]
    print(
        f"\nIngestion benchmark: {gen['lines']:,} usage lines in {gen['files']} files "
        f"({gen['records']:,} records, {gen['duplicates']:,} duplicates, "
        f"{gen['conflicts']:,} conflicts, {gen['malformed']:,} malformed), "
        f"generated in {result['generate_seconds']:.1f} s"
    )
    print(
        f"PostgreSQL {server['server_version']}: shared_buffers={server['shared_buffers']} "
        f"fsync={server['fsync']} synchronous_commit={server['synchronous_commit']} "
        f"wal_level={server['wal_level']} max_wal_size={server['max_wal_size']}\n"
    )
    print(f"  {'':34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for label, fig in (
        ("(a) raw COPY", a),
        ("(b) pipeline (ingest_days)", b),
        ("(c) ORM, one INSERT per row", c),
    ):
        print(f"  {label:34}{fig['rows']:>12,}{fig['seconds']:>10.2f}{fig['rows_per_s']:>12,.0f}")
    print(
        f"\n  (b) read {b['lines']:,} lines at {b['lines_per_s']:,.0f} lines/s: "
        f"{b['rows']:,} accepted, {b['duplicate']:,} duplicate, {b['rejected']:,} rejected; "
        f"child process {b['process_seconds']:.2f} s with interpreter start"
    )
    if a["rows"] != b["rows"]:
        print(f"  note: (a) copied {a['rows']:,} rows but (b) accepted {b['rows']:,}")
    print()
    for label, key in (
        ("(b)/(a) rows/s", "pipeline_vs_copy"),
        ("(b)/(c) rows/s", "pipeline_vs_orm"),
        ("ingest peak RSS, MiB", "peak_rss_mib"),
    ):
        check = checks[key]
        print(f"  {label:24}{check['value']:>10}   target {check['target']:<8} {check['verdict']}")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="usage events to generate (default 1,000,000)"
    )
    parser.add_argument(
        "--sample", type=int, default=5_000, help="records inserted through the ORM (default 5,000)"
    )
    parser.add_argument(
        "--organizations",
        type=int,
        default=20,
        help="generated organizations, besides the two demo ones (default 20)",
    )
    parser.add_argument("--days", type=int, default=30, help="landed days (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--home", help="state folder (default: a fresh temporary folder)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the server, database and files in place"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object instead of the report",
    )
    parser.add_argument("--child-ingest", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_ingest:
        child_ingest(args.child_ingest)
        return 0
    env = set_up(args.home, BENCH_DB)
    try:
        landing = env.home / "landing"
        generated, generate_seconds = generate(
            landing, args.events, args.organizations, args.days, args.seed
        )
        load_seeds(env, landing / "reference.json")
        checkpoint(env)
        pipeline = run_pipeline(env, landing)
        log(f"(b) done: {pipeline.rows:,} rows in {pipeline.seconds:.1f} s")
        log("preparing the rows for (a) and (c) (untimed)")
        prepared = prepare_rows(env, landing, args.sample)
        copy = run_copy(env, prepared)
        log(f"(a) done: {copy.rows:,} rows in {copy.seconds:.1f} s")
        sample = prepared.sample
        del prepared
        orm = run_orm(env, sample)
        log(f"(c) done: {orm.rows:,} rows in {orm.seconds:.1f} s")
        result = {
            "events": args.events,
            "generate": generated,
            "generate_seconds": round(generate_seconds, 3),
            "server": server_facts(env, SERVER_SETTINGS),
            "copy": copy.as_dict(),
            "pipeline": pipeline.as_dict(),
            "orm": orm.as_dict(),
        }
        result["checks"] = summarize(copy, pipeline, orm)
    finally:
        tear_down(env, args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
