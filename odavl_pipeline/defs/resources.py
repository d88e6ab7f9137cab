"""The Dagster resources, one per system the pipeline works with: the operational database, the
marts, the landing zone, Stripe and the alert webhook.

`pipeline_resources` configures them from the settings' variables (CONTRACT.md section 1): a
variable set in the environment as `dg.EnvVar`, which the UI shows by name (a secret's value
never appears there), else the default the settings resolve (the paths under ODAVL_HOME). Each
resource turns back into `Settings` through `Settings.from_env` on its own variables, so that
one set of rules reads them; `settings_of` merges several, for the functions that take the
settings whole.
"""

from typing import ClassVar, TypeVar

import dagster as dg
import psycopg
import stripe
from pydantic import Field

from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import BILLING_GRACE_MINUTES, Settings, variables_set
from odavl_pipeline.stripe_billing.client import stripe_client


class PipelineResource(dg.ConfigurableResource):
    """A resource configured by settings' variables: VARIABLES names each field's. Its secrets
    are left out of its repr."""

    VARIABLES: ClassVar[dict[str, str]]

    def variables(self) -> dict[str, str]:
        """This resource's variables and their values, the unset ones left out."""
        return {
            name: value for field, name in self.VARIABLES.items() if (value := getattr(self, field))
        }

    def settings(self) -> Settings:
        """The settings of this resource's variables (the others at their defaults)."""
        return settings_of(self)


class DatabaseResource(PipelineResource):
    """The operational PostgreSQL: ODAVL_DATABASE_URL's, else the embedded server under
    ODAVL_HOME."""

    VARIABLES = {"home": "ODAVL_HOME", "url": "ODAVL_DATABASE_URL"}

    home: str = Field(
        description="ODAVL_HOME: the state folder; the embedded server's data is under it."
    )
    url: str | None = Field(
        default=None,
        repr=False,
        description="ODAVL_DATABASE_URL (a secret: it holds the password); unset means the "
        "embedded server.",
    )

    def connect(self) -> psycopg.Connection:
        return connect(self.settings())


class MartsResource(PipelineResource):
    """The DuckDB marts file, and how long a billing period takes usage after its end."""

    VARIABLES = {"path": "ODAVL_MARTS_PATH", "billing_grace_minutes": "ODAVL_BILLING_GRACE_MINUTES"}

    path: str = Field(description="ODAVL_MARTS_PATH: the DuckDB marts file.")
    billing_grace_minutes: str = Field(
        description="ODAVL_BILLING_GRACE_MINUTES: how many minutes after its end a billing "
        "period still takes usage before it closes."
    )


class LandingZoneResource(PipelineResource):
    """Where the ODAVL products land their files: a folder, or object storage."""

    VARIABLES = {"dir": "ODAVL_LANDING_DIR", "url": "ODAVL_LANDING_URL"}

    dir: str = Field(description="ODAVL_LANDING_DIR: the landing zone's folder.")
    url: str | None = Field(
        default=None,
        description="ODAVL_LANDING_URL: the landing zone on object storage (s3://bucket/prefix), "
        "used instead of the folder when set.",
    )


class StripeResource(PipelineResource):
    """Stripe's API; without STRIPE_API_KEY the Stripe assets skip and say so."""

    VARIABLES = {
        "api_key": "STRIPE_API_KEY",
        "api_base": "STRIPE_API_BASE",
        "webhook_secret": "STRIPE_WEBHOOK_SECRET",
    }

    api_key: str | None = Field(default=None, repr=False, description="STRIPE_API_KEY (a secret).")
    api_base: str | None = Field(
        default=None, description="STRIPE_API_BASE: another server than Stripe's API."
    )
    webhook_secret: str | None = Field(
        default=None,
        repr=False,
        description="STRIPE_WEBHOOK_SECRET (a secret): the endpoint's secrets.",
    )

    def client(self) -> stripe.StripeClient:
        """The Stripe client; StripeNotConfigured without STRIPE_API_KEY."""
        return stripe_client(self.settings())


class AlertsResource(PipelineResource):
    """The webhook failed runs and quota alerts are posted to, and the secret signing the quota
    alerts."""

    VARIABLES = {
        "webhook_url": "ODAVL_ALERT_WEBHOOK_URL",
        "webhook_secret": "ODAVL_ALERT_WEBHOOK_SECRET",
    }

    webhook_url: str | None = Field(
        default=None,
        repr=False,
        description="ODAVL_ALERT_WEBHOOK_URL (a secret: it often holds a token); unset, failed "
        "runs go to the log only.",
    )
    webhook_secret: str | None = Field(
        default=None,
        repr=False,
        description="ODAVL_ALERT_WEBHOOK_SECRET (a secret): signs quota alerts; unset, they "
        "are recorded, not sent.",
    )


Resource = TypeVar("Resource", bound=PipelineResource)


def settings_of(*resources: PipelineResource) -> Settings:
    """The settings of the variables of `resources` together (the others at their defaults)."""
    variables: dict[str, str] = {}
    for resource in resources:
        variables |= resource.variables()
    return Settings.from_env(variables)


def pipeline_resources() -> dict[str, PipelineResource]:
    """The resources, by the names the assets, checks, sensors and schedules take them by,
    configured from this process's environment."""
    settings = Settings.from_env()
    given = variables_set()

    def configured(kind: type[Resource], **defaults: str) -> Resource:
        return kind(
            **{
                field: dg.EnvVar(name) if name in given else defaults.get(field)
                for field, name in kind.VARIABLES.items()
            }
        )

    return {
        "database": configured(DatabaseResource, home=str(settings.home)),
        "marts": configured(
            MartsResource,
            path=str(settings.marts_path),
            billing_grace_minutes=str(BILLING_GRACE_MINUTES),
        ),
        "landing_zone": configured(LandingZoneResource, dir=str(settings.landing_dir)),
        "stripe": configured(StripeResource),
        "alerts": configured(AlertsResource),
    }
