"""The Stripe assets and their check in Dagster, and the `odavl-pipeline stripe` commands."""

import dagster as dg
import pytest

from odavl_pipeline import clock
from odavl_pipeline.cli import main
from odavl_pipeline.defs.jobs import stripe_job
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.defs.stripe.assets import stripe_assets
from odavl_pipeline.defs.stripe.checks import stripe_checks
from odavl_pipeline.stripe_billing.client import stripe_client

from .stripe_emulator import BILLED, create_plans, sample_billing_periods, write_billing_periods

pytestmark = pytest.mark.stripe

USAGE_REPORTS = dg.AssetKey("stripe_usage_reports")
OPEN = 1  # the sample's open period with usage: reported as an increment


def materialize(instance: dg.DagsterInstance, selection=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*stripe_assets, *stripe_checks],
        instance=instance,
        selection=selection,
        resources=pipeline_resources(),
    )


def skip_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if "STRIPE_API_KEY is not set" in entry.user_message
    ]


def test_the_job_orders_sync_before_reports_after_the_billing_periods():
    defs = dg.Definitions(
        assets=stripe_assets,
        asset_checks=stripe_checks,
        jobs=[stripe_job],
        resources=pipeline_resources(),
    )
    graph = defs.resolve_asset_graph()
    assert graph.get(USAGE_REPORTS).parent_keys == {
        dg.AssetKey("billing_periods"),
        dg.AssetKey("stripe_subscriptions"),
    }
    assert all(graph.get(asset.key).group_name == "stripe" for asset in stripe_assets)
    assert defs.resolve_job_def("stripe").asset_layer.executable_asset_keys == {
        dg.AssetKey("stripe_subscriptions"),
        USAGE_REPORTS,
    }


def test_without_stripe_api_key_the_assets_skip_and_the_run_succeeds(settings, monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    instance = dg.DagsterInstance.ephemeral()

    whole = materialize(instance)  # the reports skip with the sync they follow
    reports_alone = materialize(instance, selection=[USAGE_REPORTS])

    for result in (whole, reports_alone):
        assert result.success
        assert result.get_asset_materialization_events() == []
        assert result.get_asset_check_evaluations() == []
        assert len(skip_messages(instance, result.run_id)) == 1


def test_the_assets_sync_report_and_reconcile_against_the_emulator(
    stripe_settings, stripe_emulator
):
    client = stripe_client(stripe_settings)
    plans = create_plans(client)
    for slug, plan in (("odavl-test-org", plans.enterprise), ("enterprise-corp", plans.pro)):
        customer = client.v1.customers.create({"metadata": {"org_slug": slug}})
        client.v1.subscriptions.create({"customer": customer.id, "items": [{"plan": plan}]})
    rows = sample_billing_periods(clock.now())
    write_billing_periods(stripe_settings.marts_path, rows)
    instance = dg.DagsterInstance.ephemeral()

    result = materialize(instance)

    assert result.success
    synced = result.asset_materializations_for_node("stripe_subscriptions")[0].metadata
    assert (synced["customers_linked"].value, synced["subscriptions_applied"].value) == (2, 2)
    reported = result.asset_materializations_for_node("stripe_usage_reports")[0].metadata
    assert (reported["sent"].value, reported["settled"].value) == (BILLED + OPEN, BILLED)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert len(stripe_emulator.meter_events.stored) == BILLED + OPEN

    rows[0] = (*rows[0][:4], rows[0][4] + 1, *rows[0][5:])  # usage of a reported period changed
    write_billing_periods(stripe_settings.marts_path, rows)
    result = materialize(instance)
    assert result.success  # a discrepancy is never billed again; the check surfaces it
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["violations"].value == 1
    assert len(stripe_emulator.meter_events.stored) == BILLED + OPEN


def test_the_stripe_commands_say_what_is_missing(settings, monkeypatch, capsys):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    for action in ("sync", "listen", "report"):
        assert main(["stripe", action]) == 1
        assert "STRIPE_API_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_odavl")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    assert main(["stripe", "listen"]) == 1
    assert "STRIPE_WEBHOOK_SECRET is not set" in capsys.readouterr().err
    assert main(["stripe", "report"]) == 1
    assert "run `odavl-pipeline run` first" in capsys.readouterr().err


def test_the_stripe_commands_sync_and_report(stripe_settings, stripe_emulator, capsys):
    client = stripe_client(stripe_settings)
    customer = client.v1.customers.create({"metadata": {"org_slug": "enterprise-corp"}})
    client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": create_plans(client).pro}]}
    )
    assert main(["stripe", "sync"]) == 0
    assert (
        "customers: 1 (1 linked to an organization); subscriptions: 1 (1 applied)"
        in capsys.readouterr().out
    )
    write_billing_periods(stripe_settings.marts_path, sample_billing_periods(clock.now()))
    assert main(["stripe", "report"]) == 0
    assert capsys.readouterr().out.startswith("sent 3, already reported 0, without customer 6,")
