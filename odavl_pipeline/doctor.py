"""`odavl-pipeline doctor`: each check says what it found and what to do about a problem.

Plain functions over the settings; the CLI prints them and exits 1 when one found a problem.
Secrets are never printed: URLs with their password hidden, Stripe keys not at all.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from odavl_pipeline import clock
from odavl_pipeline.marts.freshness import BILLING_MARTS, is_stale
from odavl_pipeline.settings import Settings, SettingsError, secret_value

OK, WARNING, PROBLEM, SKIPPED = "ok", "warning", "problem", "skipped"
CONNECT_TIMEOUT_SECONDS = 5
# Each of the daemon's loops records a heartbeat every 30 s: four intervals without one, and the
# daemon is taken for stopped.
DAEMON_HEARTBEAT_TOLERANCE = timedelta(seconds=120)
FAILED_RUNS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok, warning, problem, skipped
    summary: str
    fix: str = ""  # what to do, for a warning or a problem

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def run_checks(
    environ: Mapping[str, str] | None = None, now: datetime | None = None
) -> list[Finding]:
    """Every check, in order; the ones that need the database are skipped when it is unreachable."""
    now = now or clock.now()
    config = check_configuration(environ)
    if config.status == PROBLEM:
        return [
            config,
            *(
                Finding(name, SKIPPED, "needs a valid configuration")
                for name in (
                    "database",
                    "migrations",
                    "dagster",
                    "runs",
                    "closes",
                    "landing",
                    "marts",
                    "stripe",
                    "stripe events",
                    "api",
                )
            ),
        ]
    settings = Settings.from_env(environ)
    findings = [config, database := check_database(settings)]
    if database.status == OK:
        findings += [
            check_migrations(settings),
            check_dagster(settings, now),
            check_runs(settings, now),
            check_closes(settings, now),
        ]
    else:
        findings += [
            Finding(name, SKIPPED, "needs the database")
            for name in ("migrations", "dagster", "runs", "closes")
        ]
    findings += [check_landing(settings), check_marts(settings, now), check_stripe(settings)]
    if database.status == OK:
        findings += [check_stripe_events(settings), check_api(settings, now)]
    else:
        findings += [
            Finding(name, SKIPPED, "needs the database") for name in ("stripe events", "api")
        ]
    return findings


def has_problem(findings: list[Finding]) -> bool:
    return any(finding.status == PROBLEM for finding in findings)


# --- configuration -------------------------------------------------------------------------


def check_configuration(environ: Mapping[str, str] | None = None) -> Finding:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        settings = Settings.from_env(environ)
    except SettingsError as error:
        return Finding(
            "configuration",
            PROBLEM,
            str(error),
            "correct the variable, or unset it for its default",
        )
    where = "the embedded server under " + str(settings.embedded_pgdata)
    if settings.database_url:
        try:
            url = make_url(settings.database_url.get_secret_value())
        except ArgumentError:
            return Finding(
                "configuration",
                PROBLEM,
                "ODAVL_DATABASE_URL is not a URL",
                "set it to a SQLAlchemy URL: postgresql+psycopg://USER:PASSWORD@HOST:5432/odavl",
            )
        if url.get_backend_name() != "postgresql":
            return Finding(
                "configuration",
                PROBLEM,
                f"ODAVL_DATABASE_URL is a {url.get_backend_name()} URL, not PostgreSQL",
                "set it to postgresql+psycopg://USER:PASSWORD@HOST:5432/odavl",
            )
        where = url.render_as_string(hide_password=True)
    webhook = secret_value(settings.alert_webhook_url)
    if webhook and not webhook.startswith(("http://", "https://")):
        return Finding(
            "configuration",
            PROBLEM,
            "ODAVL_ALERT_WEBHOOK_URL is not an http(s) URL",
            "set it to the webhook's https:// address, or unset it",
        )
    alerts = (
        "run failures go to the log and the alert webhook"
        if webhook
        else "run failures go to the log only (ODAVL_ALERT_WEBHOOK_URL unset)"
    )
    return Finding(
        "configuration",
        OK,
        f"database: {where}; landing: {settings.landing}; marts: {settings.marts_path}; "
        f"DAGSTER_HOME: {settings.dagster_home}; {alerts}",
    )


# --- the database --------------------------------------------------------------------------


def check_database(settings: Settings) -> Finding:
    import psycopg

    from odavl_pipeline.db.server import libpq_url, server_url

    url_text = secret_value(settings.database_url)
    shown = (url_text and _hidden(url_text)) or "the embedded server"
    try:
        url = server_url(settings)  # starts the embedded server when no URL is set
        with psycopg.connect(libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            assert row is not None  # SHOW returns one row
            version = row[0]
    except Exception as error:  # noqa: BLE001 - any failure to connect is the finding
        fix = (
            "check that the server is running and reachable, and that ODAVL_DATABASE_URL "
            "names the right host, port, database, user and password"
            if settings.database_url
            else f"see the server's log under {settings.embedded_pgdata}; `odavl-pipeline db stop` "
            f"then any command restarts it"
        )
        return Finding("database", PROBLEM, f"cannot connect to {shown}: {_first_line(error)}", fix)
    return Finding("database", OK, f"PostgreSQL {version} at {shown}, database {url.database}")


def check_migrations(settings: Settings) -> Finding:
    from odavl_pipeline.db.migrate import revisions
    from odavl_pipeline.db.server import server_url

    found = revisions(server_url(settings))
    current, head = found.current, found.head
    if current == head:
        return Finding("migrations", OK, f"at the newest revision ({head})")
    if current is None:
        return Finding(
            "migrations",
            PROBLEM,
            "the database is not migrated (no revision)",
            "run `odavl-pipeline db upgrade`",
        )
    if not found.known:
        return Finding(
            "migrations",
            PROBLEM,
            f"the database is at revision {current}, which this code does not know",
            "run the release that migrated it, or restore the database",
        )
    return Finding(
        "migrations",
        PROBLEM,
        f"the database is at revision {current}, not {head}",
        "run `odavl-pipeline db upgrade`",
    )


def check_dagster(settings: Settings, now: datetime) -> Finding:
    """The instance the CLI, the UI and the daemon share: Postgres storage, daemon heartbeats."""
    import yaml

    from odavl_pipeline import orchestration

    config = settings.dagster_home / "dagster.yaml"
    if config.exists():
        loaded = yaml.safe_load(config.read_text()) or {}
        if "postgres" not in (loaded.get("storage") or {}):
            return Finding(
                "dagster",
                PROBLEM,
                f"{config} does not keep the instance in PostgreSQL: "
                "runs from the CLI, the schedule and the UI would not share one history",
                "remove it (odavl-pipeline writes its own on first use), or give it "
                "`storage: postgres:` as deploy/docker/dagster.yaml does",
            )
    try:
        instance = orchestration.instance(settings)
        runs = instance.get_runs_count()
        heartbeats = instance.get_daemon_heartbeats()
    except Exception as error:  # noqa: BLE001
        return Finding(
            "dagster",
            PROBLEM,
            f"the Dagster instance does not load: {_first_line(error)}",
            f"check {config} and that the `dagster` database exists on the server",
        )
    latest = max((beat.timestamp for beat in heartbeats.values()), default=None)
    summary = f"instance {settings.dagster_home}, {runs:,} runs recorded"
    age = None if latest is None else now - _dagster_time(latest)
    if age is None or age > DAEMON_HEARTBEAT_TOLERANCE:
        last = "none recorded" if age is None else f"the last {_age(age)} ago"
        return Finding(
            "dagster",
            WARNING,
            f"{summary}; no dagster-daemon heartbeat in the last "
            f"{_age(DAEMON_HEARTBEAT_TOLERANCE)} ({last}): the schedules "
            "(daily_billing), sensors and queued runs are not running",
            "start `odavl-pipeline ui` (webserver and daemon), or the daemon service",
        )
    return Finding("dagster", OK, f"{summary}; daemon alive (last heartbeat {_age(age)} ago)")


def _dagster_time(timestamp: float) -> datetime:
    """A time Dagster recorded (on the system clock, which tests do not move) on the one clock."""
    return datetime.fromtimestamp(timestamp, UTC) + clock.offset()


def check_runs(settings: Settings, now: datetime) -> Finding:
    """Runs stuck (in progress, their process gone: they hold places in the run queue) and runs
    failed in the last FAILED_RUNS_WINDOW."""
    import dagster as dg

    from odavl_pipeline import orchestration

    instance = orchestration.instance(settings)
    in_progress = instance.get_runs(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    )
    stuck = [run for run in in_progress if _process_gone(instance, run)]
    failed = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            updated_after=now - clock.offset() - FAILED_RUNS_WINDOW,  # on Dagster's clock
        )
    )
    if stuck:
        return Finding(
            "runs",
            PROBLEM,
            f"{len(stuck)} run(s) stuck, their process gone: "
            + "; ".join(f"{run.run_id} ({run.job_name}, {run.status.value})" for run in stuck[:5]),
            "the daemon's run monitoring marks them failed within a minute: start "
            "`odavl-pipeline ui` or the daemon service; or, in the UI, terminate each run",
        )
    summary = f"{len(in_progress)} in progress, none stuck"
    if failed:
        shown = "; ".join(
            f"{record.dagster_run.run_id} ({record.dagster_run.job_name}, "
            f"{_dagster_time(record.update_timestamp.timestamp()):%Y-%m-%d %H:%M} UTC)"
            for record in failed[:5]
        )
        return Finding(
            "runs",
            WARNING,
            f"{summary}; {len(failed)} run(s) failed in the last {_hours(FAILED_RUNS_WINDOW)}: "
            f"{shown}",
            "see why in the UI (`odavl-pipeline ui`, Runs); the next `odavl-pipeline run` "
            "or scheduled run tries again",
        )
    return Finding("runs", OK, f"{summary}; none failed in the last {_hours(FAILED_RUNS_WINDOW)}")


def _process_gone(instance, run) -> bool:
    """Whether the run's process is gone, as run monitoring asks the run launcher."""
    from dagster._core.launcher import WorkerStatus

    launcher = instance.run_launcher
    if not launcher.supports_check_run_worker_health:
        return False
    return launcher.check_run_worker_health(run).status == WorkerStatus.FAILED


def check_closes(settings: Settings, now: datetime) -> Finding:
    """Billing periods past their end and grace that the marts still hold open, and the usage
    files that keep them from closing (landed, not ingested as they are: billing.closing)."""
    import duckdb
    import psycopg

    from odavl_pipeline.billing.closing import files_holding_closes
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.zones import ZoneUnavailable
    from odavl_pipeline.marts.store import MartsNotBuilt, open_marts

    waiting = 0
    try:
        with open_marts(settings.marts_path) as marts:
            row = marts.execute(
                "SELECT count(DISTINCT (org, period_start)) FROM billing_periods "
                "WHERE NOT closed AND period_end <= ?",
                [now - settings.billing_grace],
            ).fetchone()
            assert row is not None  # count(*) returns one row
            waiting = row[0]
    except (duckdb.Error, MartsNotBuilt):  # no marts, or unreadable: the marts check says so
        pass
    try:
        with connect(settings) as conn:
            held = files_holding_closes(conn, settings.landing)
    except psycopg.ProgrammingError:  # a schema before the ledger: the migrations say so
        return Finding("closes", SKIPPED, "needs the database at the newest revision")
    except ZoneUnavailable as error:
        return Finding("closes", SKIPPED, str(error))
    shown = ", ".join(map(str, held[:5])) + (f" and {len(held) - 5:,} more" if held[5:] else "")
    if waiting and held:
        return Finding(
            "closes",
            WARNING,
            f"{waiting} billing period(s) past their end wait to close until these usage "
            f"file(s) are ingested as they are: {shown}",
            "run `odavl-pipeline run` (it reads new, changed and failed files); a file that "
            "keeps failing says why in `odavl-pipeline rejects --reason ingest_error`",
        )
    if waiting:
        return Finding(
            "closes",
            WARNING,
            f"{waiting} billing period(s) past their end and grace not closed yet",
            "the next build closes them: `odavl-pipeline run`, or the daily schedule",
        )
    return Finding(
        "closes",
        OK,
        "no billing period waits to close"
        + (f"; usage file(s) not ingested yet: {shown}" if held else ""),
    )


# --- files ---------------------------------------------------------------------------------


def check_landing(settings: Settings) -> Finding:
    from odavl_pipeline.ingest.landing import scan_landing
    from odavl_pipeline.ingest.zones import landing_zone

    root = landing_zone(settings.landing)
    problem = root.problem()
    if problem and settings.landing_url:
        return Finding(
            "landing",
            PROBLEM,
            f"the landing zone {root} {problem}",
            "check ODAVL_LANDING_URL (s3://bucket/prefix), the credentials and endpoint in the "
            "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL) and that "
            "the products write <source>/<YYYY-MM-DD>/<name>.ndjson under it",
        )
    if problem:
        return Finding(
            "landing",
            PROBLEM,
            f"the landing zone {root} {problem}",
            f"create it (`mkdir -p {root}`) and give this user read access, or set "
            f"ODAVL_LANDING_DIR to where the products write <source>/<YYYY-MM-DD>/<name>.ndjson",
        )
    scan = scan_landing(root)
    days = scan.days()
    summary = (
        f"{len(scan.files):,} files over {len(days)} days ({days[0]} .. {days[-1]})"
        if days
        else "nothing has landed yet"
    )
    if scan.misplaced:
        shown = "; ".join(
            f"{stray.relative_path} ({stray.problem})" for stray in scan.misplaced[:5]
        )
        more = f" and {len(scan.misplaced) - 5:,} more" if len(scan.misplaced) > 5 else ""
        return Finding(
            "landing",
            WARNING,
            f"{root}: {summary}; {len(scan.misplaced):,} misplaced "
            f"file(s) the pipeline does not read: {shown}{more}",
            "move each to <source>/<YYYY-MM-DD>/<name>.ndjson[.gz] (a real day from "
            "1970-01-01 to tomorrow, no links leading out of the landing zone), or "
            "remove it; `odavl-pipeline rejects --reason misplaced_file` lists those "
            "already reported",
        )
    return Finding("landing", OK, f"{root}: {summary}")


def check_marts(settings: Settings, now: datetime) -> Finding:
    import duckdb

    from odavl_pipeline.marts.schema import SCHEMA_VERSION
    from odavl_pipeline.marts.store import open_marts

    path = settings.marts_path
    rebuild = "run `odavl-pipeline run` to build them now"
    if not path.exists():
        return Finding("marts", PROBLEM, f"no marts at {path}", rebuild)
    try:
        with open_marts(path) as marts:
            tables = {
                name
                for (name,) in marts.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                ).fetchall()
            }
            meta = (
                marts.execute("SELECT schema_version, built_at FROM _meta").fetchone()
                if "_meta" in tables
                else None
            )
    except duckdb.Error as error:
        return Finding(
            "marts",
            PROBLEM,
            f"{path} cannot be read: {_first_line(error)}",
            "move it aside and run `odavl-pipeline run --full-marts` to rebuild it",
        )
    missing = [name for name in BILLING_MARTS if name not in tables]
    if meta is None or missing:
        return Finding(
            "marts",
            PROBLEM,
            f"{path} is not a marts file of this pipeline"
            + (f" (missing {', '.join(missing)})" if missing else ""),
            "move it aside and run `odavl-pipeline run --full-marts`",
        )
    version, built_at = meta
    built_at = built_at.astimezone(UTC)
    age = now - built_at
    summary = f"{path}, built {built_at:%Y-%m-%d %H:%M} UTC ({_hours(age)} ago)"
    if is_stale(built_at, now):
        return Finding(
            "marts",
            PROBLEM,
            f"stale: {summary}, not since the daily build was due",
            "the schedule daily_billing (00:15 UTC) has not rebuilt them: check that the "
            "daemon runs and look for failed runs in the UI; " + rebuild,
        )
    if version != SCHEMA_VERSION:
        return Finding(
            "marts",
            WARNING,
            f"{summary}, schema version {version} (this code: {SCHEMA_VERSION})",
            "the next build rebuilds them in full",
        )
    return Finding("marts", OK, summary)


# --- Stripe --------------------------------------------------------------------------------


def check_stripe(settings: Settings) -> Finding:
    key, base, secret = (
        secret_value(settings.stripe_api_key),
        settings.stripe_api_base,
        secret_value(settings.stripe_webhook_secret),
    )
    if not (key or base or secret):
        return Finding("stripe", OK, "not configured: the Stripe steps are skipped")
    if not key:
        given = " and ".join(
            name
            for name, value in (("STRIPE_API_BASE", base), ("STRIPE_WEBHOOK_SECRET", secret))
            if value
        )
        return Finding(
            "stripe",
            PROBLEM,
            f"half configured: {given} set, STRIPE_API_KEY not",
            "set STRIPE_API_KEY (a secret key, sk_… or rk_…), or unset " + given,
        )
    if not key.startswith(("sk_", "rk_")):
        return Finding(
            "stripe",
            PROBLEM,
            "STRIPE_API_KEY is not a secret or restricted key",
            "use a key from the Stripe dashboard that begins with sk_ or rk_ "
            "(a publishable key, pk_, cannot read subscriptions)",
        )
    if not secret:
        return Finding(
            "stripe",
            PROBLEM,
            "half configured: STRIPE_API_KEY set, "
            "STRIPE_WEBHOOK_SECRET not, so webhooks cannot be verified",
            "set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…)",
        )
    if not all(part.strip().startswith("whsec_") for part in secret.split(",")):
        return Finding(
            "stripe",
            PROBLEM,
            "STRIPE_WEBHOOK_SECRET is not a list of signing secrets",
            "set it to the endpoint's signing secret(s), whsec_…, comma-separated",
        )
    return _stripe_reachable(settings)


def _stripe_reachable(settings: Settings) -> Finding:
    import stripe

    from odavl_pipeline.stripe_billing.client import stripe_client

    where = settings.stripe_api_base or "Stripe's API"
    try:
        stripe_client(settings).v1.customers.list({"limit": 1})
    except stripe.AuthenticationError:
        return Finding(
            "stripe",
            PROBLEM,
            f"{where} refused STRIPE_API_KEY",
            "use a live or test secret key from the Stripe dashboard",
        )
    except stripe.PermissionError:
        return Finding(
            "stripe",
            PROBLEM,
            "STRIPE_API_KEY may not list customers",
            "give the restricted key read access to customers and subscriptions",
        )
    except stripe.StripeError as error:
        return Finding(
            "stripe",
            PROBLEM,
            f"{where} cannot be reached: {type(error).__name__}",
            "check the network, and STRIPE_API_BASE if it is set",
        )
    return Finding("stripe", OK, f"key accepted by {where}; webhook secret set")


# --- Stripe's webhook inbox ----------------------------------------------------------------

STRIPE_EVENTS_OVERDUE = timedelta(minutes=15)


def check_stripe_events(settings: Settings) -> Finding:
    """Stripe events received but not processed: set aside with a reason, or still waiting."""
    import psycopg

    from odavl_pipeline.db.server import connect
    from odavl_pipeline.stripe_billing import inbox

    try:
        with connect(settings) as conn:
            found = inbox.summary(conn, STRIPE_EVENTS_OVERDUE)
            oldest = inbox.dead_letters(conn, limit=3)
    except psycopg.ProgrammingError:  # a schema before the inbox: the migrations say so
        return Finding("stripe events", SKIPPED, "needs the database at the newest revision")
    if found.dead:
        shown = "; ".join(f"{d.id} ({d.type}) {d.reason}: {d.detail}" for d in oldest)
        return Finding(
            "stripe events",
            PROBLEM,
            f"{found.dead:,} Stripe event(s) set aside, not processed; the oldest: {shown}",
            "fix what the reason says (the API key, the object at Stripe, the customer's "
            "org_slug), then `odavl-pipeline stripe retry` processes them again; the Staff page "
            "lists them all",
        )
    if found.overdue:
        return Finding(
            "stripe events",
            WARNING,
            f"{found.overdue:,} Stripe event(s) due for over "
            f"{_hours(STRIPE_EVENTS_OVERDUE)} and not processed"
            + (f" (last error: {found.last_error})" if found.last_error else ""),
            "start `odavl-pipeline stripe listen` (it processes the inbox), or see why Stripe or "
            "the database fails: events are retried for about three days",
        )
    if found.failing:
        return Finding(
            "stripe events",
            WARNING,
            f"{found.failing:,} Stripe event(s) failed and will be retried: {found.last_error}",
            "see the error: Stripe or the database failing; events are retried with backoff for "
            "about three days, then set aside",
        )
    waiting = f"{found.pending:,} waiting to be processed" if found.pending else "all processed"
    return Finding("stripe events", OK, f"Stripe events: {waiting}, none set aside")


# --- the HTTP API --------------------------------------------------------------------------

# the sensor api_records_to_marts requests a build within a minute of a request's arrival
API_RECORDS_OVERDUE = timedelta(minutes=10)


def check_api(settings: Settings, now: datetime) -> Finding:
    """The API keys, and records sent to the HTTP API that the published marts do not hold
    API_RECORDS_OVERDUE after they came (ingest/api_backlog.py)."""
    import psycopg

    from odavl_pipeline.api import keys
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.api_backlog import api_backlog, marts_cut

    cut = marts_cut(settings.marts_path)
    try:
        with connect(settings) as conn:
            states = Counter(row["state"] for row in keys.listing(conn))
            waiting = api_backlog(conn, cut, now)
            overdue = api_backlog(conn, cut, now - API_RECORDS_OVERDUE)
    except psycopg.ProgrammingError:  # a schema before the API: the migrations say so
        return Finding("api", SKIPPED, "needs the database at the newest revision")
    counts = ", ".join(f"{states[state]:,} {state}" for state in ("active", "expired", "revoked"))
    if overdue.requests and overdue.oldest is not None:  # requests have a time of arrival
        built = (
            f"the marts took usage in up to {cut.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if cut
            else "no marts to read"
        )
        return Finding(
            "api",
            WARNING,
            f"{overdue.requests:,} API request(s) ({overdue.records:,} record(s)) received from "
            f"{overdue.oldest.astimezone(UTC):%Y-%m-%d %H:%M} UTC on are not in the marts "
            f"{_hours(API_RECORDS_OVERDUE)} later ({built}); keys: {counts}",
            "the sensor api_records_to_marts requests a build within a minute of their arrival: "
            "check that the daemon runs (`odavl-pipeline ui`, or the daemon service), that the "
            "sensor is on (UI, Automation) and whether its rebuild_marts runs failed (UI, Runs); "
            "launching rebuild_marts from the UI builds them now",
        )
    waits = (
        f"{waiting.requests:,} API request(s) of the last {_hours(API_RECORDS_OVERDUE)} wait "
        "for the next marts build"
        if waiting.requests
        else "no API request waits for the marts"
    )
    return Finding("api", OK, f"{waits}; keys: {counts}")


# --- helpers -------------------------------------------------------------------------------


def _hidden(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _age(age: timedelta) -> str:
    """A duration as a person reads it: seconds up to two minutes, then `_hours`."""
    seconds = max(age.total_seconds(), 0)
    return f"{seconds:.0f} s" if seconds < 120 else _hours(age)


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{age.total_seconds() / 60:.0f} min"
