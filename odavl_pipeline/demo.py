"""`demo`: migrate, generate a month for a handful of organizations, seed, run; end to end, then
how to open what it built."""

from odavl_pipeline import workflow
from odavl_pipeline.output.data import (
    DEMO_USER,
    demo_ending,
    generated_line,
    quotas_and_alerts,
)
from odavl_pipeline.settings import Settings

VERBOSE = ("DEBUG", "INFO")  # log levels that show each step's progress


def run_demo(settings: Settings, *, organizations: int, days: int, log_level: str) -> int:
    """The demo's steps, `generate`'s other choices at their defaults; `run`'s exit code. A
    `log_level` in VERBOSE shows the generator's progress too."""
    from odavl_pipeline.alerts.recorded import recorded_alerts
    from odavl_pipeline.billing.unsubscribed import unsubscribed_organizations
    from odavl_pipeline.db.seed import seed_chain_heads
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.generate import GenerateOptions

    workflow.upgrade(settings)
    options = GenerateOptions(
        days=days,
        end_day=workflow.yesterday(),
        organizations=organizations,
        chain_heads=seed_chain_heads(),
    )
    summary, reference = workflow.generate(settings, options, quiet=log_level not in VERBOSE)
    print(generated_line(summary))  # one line: the demo loads the reference data itself
    shown = workflow.seed(settings, [reference])
    status = workflow.run(settings, log_level=log_level)
    with connect(settings) as conn:
        print(quotas_and_alerts(unsubscribed_organizations(conn), recorded_alerts(conn)))
    print(
        demo_ending(
            password_shown=any(s.startswith(f"password for {DEMO_USER}: ") for s in shown),
            key_shown=any(s.startswith("API key ") and f" for {DEMO_USER}: " in s for s in shown),
        )
    )
    return status
