"""Resources shared by every domain: where the pipeline's state lives."""

import dataclasses
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field

from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import Settings


class OdavlResource(dg.ConfigurableResource):
    """The operational database and the landing zone; empty fields fall back to ODAVL_*."""

    database_url: str | None = Field(
        default=None,
        description="Operational Postgres URL; unset means ODAVL_DATABASE_URL "
        "or the embedded server under ODAVL_HOME.",
    )
    landing_dir: str | None = Field(
        default=None, description="Landing zone folder; unset means ODAVL_LANDING_DIR."
    )
    landing_url: str | None = Field(
        default=None,
        description="Landing zone on object storage (s3://bucket/prefix); unset means "
        "ODAVL_LANDING_URL. When set, it is used instead of the folder.",
    )

    def settings(self) -> Settings:
        settings = Settings.from_env()
        if self.database_url:
            settings = dataclasses.replace(settings, database_url=self.database_url)
        if self.landing_dir:
            settings = dataclasses.replace(settings, landing_dir=Path(self.landing_dir))
        if self.landing_url:
            settings = dataclasses.replace(settings, landing_url=self.landing_url.rstrip("/"))
        return settings

    def connect(self) -> psycopg.Connection:
        return connect(self.settings())
