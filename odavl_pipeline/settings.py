"""Settings from the environment, in one typed object (CONTRACT.md section 1)."""

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    landing_dir: Path
    marts_path: Path
    dagster_home: Path
    billing_grace: timedelta  # how long after its end a billing period still takes usage
    stripe_api_key: str | None
    stripe_api_base: str | None
    stripe_webhook_secret: str | None
    alert_webhook_url: str | None = None  # run failures are posted there (ODAVL_ALERT_WEBHOOK_URL)

    @property
    def embedded_pgdata(self) -> Path:
        """Data folder of the embedded PostgreSQL server (used when no URL is set)."""
        return self.home / "postgres"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env.get("ODAVL_HOME") or ".odavl").expanduser().resolve()
        return cls(
            home=home,
            database_url=env.get("ODAVL_DATABASE_URL") or None,
            landing_dir=_path(env.get("ODAVL_LANDING_DIR"), home / "landing"),
            marts_path=_path(env.get("ODAVL_MARTS_PATH"), home / "marts.duckdb"),
            dagster_home=_path(env.get("DAGSTER_HOME"), home / "dagster"),
            billing_grace=_minutes(env.get("ODAVL_BILLING_GRACE_MINUTES"), default=60),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            alert_webhook_url=env.get("ODAVL_ALERT_WEBHOOK_URL") or None,
        )


def _path(value: str | None, default: Path) -> Path:
    return Path(value).expanduser().resolve() if value else default


def _minutes(value: str | None, default: int) -> timedelta:
    try:
        minutes = float(value) if value else default
    except ValueError:
        raise ValueError(f"ODAVL_BILLING_GRACE_MINUTES must be a number of minutes, not {value!r}") from None
    if minutes < 0:
        raise ValueError(f"ODAVL_BILLING_GRACE_MINUTES must not be negative: {value}")
    return timedelta(minutes=minutes)
