"""Settings from the environment, in one typed object (CONTRACT.md section 1)."""

import ipaddress
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

BILLING_GRACE_MINUTES = 60  # the default of ODAVL_BILLING_GRACE_MINUTES
API_RATE_PER_SECOND = 200  # the default of ODAVL_API_RATE_PER_SECOND
MOST_API_RATE_PER_SECOND = 1_000_000
LONGEST_SESSION_HOURS = 24 * 30  # a month; longer sign-ins outlive people's access reviews


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
    # signs quota alerts (ODAVL_ALERT_WEBHOOK_SECRET); without it they are recorded, not sent
    alert_webhook_secret: str | None = None
    staff_emails: frozenset[str] = frozenset()  # ODAVL's analysts (ODAVL_STAFF_EMAILS), lowercase
    session_lifetime: timedelta = timedelta(hours=12)  # a dashboard sign-in (ODAVL_SESSION_HOURS)
    landing_url: str | None = None  # object storage instead of the folder (ODAVL_LANDING_URL)
    # the reverse proxies whose X-Forwarded-For the dashboards believe (ODAVL_TRUSTED_PROXIES)
    trusted_proxies: tuple[str, ...] = ()
    # requests per second one API key may make (ODAVL_API_RATE_PER_SECOND)
    api_rate_per_second: int = API_RATE_PER_SECOND

    @property
    def landing(self) -> str | Path:
        """Where the landing zone is: ODAVL_LANDING_URL when set, else the folder."""
        return self.landing_url or self.landing_dir

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
            landing_url=_url(env.get("ODAVL_LANDING_URL")),
            marts_path=_path(env.get("ODAVL_MARTS_PATH"), home / "marts.duckdb"),
            dagster_home=_path(env.get("DAGSTER_HOME"), home / "dagster"),
            billing_grace=_duration(
                env, "ODAVL_BILLING_GRACE_MINUTES", "minutes", default=BILLING_GRACE_MINUTES
            ),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            alert_webhook_url=env.get("ODAVL_ALERT_WEBHOOK_URL") or None,
            alert_webhook_secret=env.get("ODAVL_ALERT_WEBHOOK_SECRET") or None,
            staff_emails=frozenset(
                email.strip().lower()
                for email in env.get("ODAVL_STAFF_EMAILS", "").split(",")
                if email.strip()
            ),
            session_lifetime=_duration(
                env,
                "ODAVL_SESSION_HOURS",
                "hours",
                default=12,
                longest=LONGEST_SESSION_HOURS,
                zero_allowed=False,
            ),
            trusted_proxies=_networks(env.get("ODAVL_TRUSTED_PROXIES")),
            api_rate_per_second=_rate(env.get("ODAVL_API_RATE_PER_SECOND")),
        )


def _path(value: str | None, default: Path) -> Path:
    return Path(value).expanduser().resolve() if value else default


def _url(value: str | None) -> str | None:
    """An object-storage URL (`s3://bucket/prefix`), without a trailing slash."""
    if not value:
        return None
    scheme, separator, rest = value.partition("://")
    if not separator or not scheme.isidentifier() or not rest.strip("/"):
        raise ValueError(f"ODAVL_LANDING_URL must be a URL such as s3://bucket/prefix: {value!r}")
    return value.rstrip("/")


def _networks(value: str | None) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`), normalized."""
    try:
        return tuple(
            str(ipaddress.ip_network(item.strip(), strict=False))
            for item in (value or "").split(",")
            if item.strip()
        )
    except ValueError:
        raise ValueError(
            f"ODAVL_TRUSTED_PROXIES must be IP addresses or networks, comma-separated: {value!r}"
        ) from None


def _rate(value: str | None) -> int:
    """Requests per second, a whole number from 1 to MOST_API_RATE_PER_SECOND."""
    if not value:
        return API_RATE_PER_SECOND
    digits = value.strip()
    if (
        not (digits.isascii() and digits.isdigit())
        or not 1 <= int(digits) <= MOST_API_RATE_PER_SECOND
    ):
        raise ValueError(
            "ODAVL_API_RATE_PER_SECOND must be a whole number of requests per second from 1 to "
            f"{MOST_API_RATE_PER_SECOND:,}: {value!r}"
        )
    return int(digits)


def _duration(
    env, name: str, unit: str, default: float, longest: float = 10**6, zero_allowed: bool = True
) -> timedelta:
    """A number of `unit` (minutes, hours) from `name`, between 0 and `longest`."""
    value = env.get(name)
    try:
        amount = float(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, not {value!r}") from None
    if not (0 <= amount <= longest) or (amount == 0 and not zero_allowed):
        lowest = "0" if zero_allowed else "more than 0"
        raise ValueError(f"{name} must be from {lowest} to {longest:g} {unit}: {value}")
    return timedelta(**{unit: amount})
