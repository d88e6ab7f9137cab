"""`odavl-pipeline stripe …`: subscriptions in, metered usage out. The work is
odavl_pipeline/stripe_billing's; what each action prints, output/services.py's."""

import argparse
import logging
from typing import TYPE_CHECKING

from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import PipelineError, database_work, require_free_port, require_migrated
from odavl_pipeline.output import services
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    import stripe


def add_commands(commands: Commands) -> None:
    stripe_actions = commands.add_parser(
        "stripe", help="Stripe: subscriptions in, metered usage out"
    ).add_subparsers(required=True, metavar="action")
    stripe_actions.add_parser(
        "sync", help="link customers and synchronize every subscription"
    ).set_defaults(handler=cmd_sync)
    listen = stripe_actions.add_parser(
        "listen", help="serve the webhook endpoint (POST /stripe/webhook, GET /healthz)"
    )
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=8421)
    listen.set_defaults(handler=cmd_listen)
    stripe_actions.add_parser(
        "report",
        help="report usage to Stripe meter events: increments of "
        "open periods, the true-up of closed ones",
    ).set_defaults(handler=cmd_report)
    retry = stripe_actions.add_parser(
        "retry", help="process again the Stripe events set aside (all, or these ids)"
    )
    retry.add_argument("event", nargs="*", help="event ids (evt_…); all when none")
    retry.set_defaults(handler=cmd_retry)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.stripe_billing.sync import initial_sync

    client = _stripe_client(settings)
    require_migrated(settings)
    services.print_synced(database_work(settings, lambda conn: initial_sync(conn, client)))


def cmd_listen(args: argparse.Namespace, settings: Settings) -> None:
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


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.marts.store import MartsNotBuilt
    from odavl_pipeline.stripe_billing.usage_reports import read_billing_periods, report_usage

    client = _stripe_client(settings)
    require_migrated(settings)
    try:
        periods = read_billing_periods(settings.marts_path)
    except MartsNotBuilt as error:
        raise PipelineError(str(error)) from None
    summary = database_work(settings, lambda conn: report_usage(conn, client, periods))
    services.print_reported(summary)
    return 0 if summary.ok else 1


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.stripe_billing.inbox import requeue

    require_migrated(settings)
    requeued = database_work(settings, lambda conn: requeue(conn, args.event or None))
    missing = sorted(set(args.event) - set(requeued))
    services.print_requeued(requeued, missing)
    return 1 if missing else 0


def _stripe_client(settings: Settings) -> "stripe.StripeClient":
    from odavl_pipeline.stripe_billing.client import StripeNotConfigured, stripe_client

    try:
        return stripe_client(settings)
    except StripeNotConfigured as error:
        raise PipelineError(str(error)) from None
