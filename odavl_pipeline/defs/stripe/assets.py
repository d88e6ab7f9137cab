"""Stripe assets; without STRIPE_API_KEY each logs why and materializes nothing."""

from collections.abc import Iterator

import dagster as dg
from stripe import StripeClient

from odavl_pipeline.defs.resources import DatabaseResource, MartsResource, StripeResource
from odavl_pipeline.stripe_billing.client import StripeNotConfigured
from odavl_pipeline.stripe_billing.sync import initial_sync
from odavl_pipeline.stripe_billing.usage_reports import read_billing_periods, report_usage


def _client_or_skip(
    context: dg.AssetExecutionContext, stripe: StripeResource
) -> StripeClient | None:
    """The Stripe client, or None after saying why the asset skips (no STRIPE_API_KEY)."""
    try:
        return stripe.client()
    except StripeNotConfigured as error:
        context.log.warning(f"skipped: {error}")
        return None


@dg.asset(group_name="stripe", kinds={"stripe", "postgres"}, output_required=False)
def stripe_subscriptions(
    context: dg.AssetExecutionContext, database: DatabaseResource, stripe: StripeResource
) -> Iterator[dg.MaterializeResult]:
    """Stripe customers and subscriptions (status, tier, current period) synchronized into Postgres."""
    client = _client_or_skip(context, stripe)
    if client is None:
        return
    with database.connect() as conn:
        report = initial_sync(conn, client)
    for note in report.notes:
        context.log.info(note)
    yield dg.MaterializeResult(
        metadata={
            "customers": report.customers,
            "customers_linked": report.customers_linked,
            "subscriptions": report.subscriptions,
            "subscriptions_applied": report.subscriptions_applied,
        }
    )


@dg.asset(
    deps=[dg.AssetKey("billing_periods"), stripe_subscriptions],
    group_name="stripe",
    kinds={"stripe", "postgres"},
    output_required=False,
)
def stripe_usage_reports(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    marts: MartsResource,
    stripe: StripeResource,
) -> Iterator[dg.MaterializeResult]:
    """Billing periods' usage sent to Stripe meter events as it grows (the increments since the
    last report, hourly), with a true-up when a period closes; our ledger of every increment."""
    client = _client_or_skip(context, stripe)
    if client is None:
        return
    periods = read_billing_periods(marts.settings().marts_path)
    with database.connect() as conn:
        summary = report_usage(conn, client, periods)
    for discrepancy in summary.discrepancies:
        context.log.warning(f"discrepancy, not billed again: {discrepancy}")
    for credit in summary.credits_due:
        context.log.warning(f"credit due, nothing negative sent: {credit}")
    if summary.failed or summary.not_attempted:
        failures = "; ".join(f"{identifier}: {reason}" for identifier, reason in summary.failed)
        raise dg.Failure(
            description=f"{len(summary.failed)} meter events failed ({failures}); "
            f"{summary.not_attempted} left for the next run, which sends them",
            metadata=summary.as_dict(),
        )
    yield dg.MaterializeResult(metadata=summary.as_dict())


stripe_assets = [stripe_subscriptions, stripe_usage_reports]
