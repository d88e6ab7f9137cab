"""Settings from the environment, in one typed object (CONTRACT.md section 1).

`Settings.from_env()` is the one way to read them: pydantic-settings takes each field from its
variable, and a value the pipeline cannot use is refused with one line naming the variable and
what it accepts (`SettingsError`). Secrets are `SecretStr`: never in a repr, a log or the UI;
their users ask for `.get_secret_value()`.

Nothing else in the pipeline or the dashboards reads the environment (tests/test_settings.py
checks): the few other variables (the tests' clock, Dagster's own) and the environment handed to
child processes go through the functions at the end of this module.
"""

import functools
import ipaddress
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

BILLING_GRACE_MINUTES = 60  # the default of ODAVL_BILLING_GRACE_MINUTES
API_RATE_PER_SECOND = 200  # the default of ODAVL_API_RATE_PER_SECOND
MOST_API_RATE_PER_SECOND = 1_000_000
LONGEST_SESSION_HOURS = 24 * 30  # a month; longer sign-ins outlive people's access reviews
SESSION_HOURS = 12  # the default of ODAVL_SESSION_HOURS
LONGEST_GRACE_MINUTES = 10**6

EXECUTOR_VARIABLE = "ODAVL_EXECUTOR"
BROKER_VARIABLE = "ODAVL_CELERY_BROKER_URL"
BACKEND_VARIABLE = "ODAVL_CELERY_BACKEND_URL"
MULTIPROCESS: Final = "multiprocess"
CELERY: Final = "celery"
EXECUTORS = (MULTIPROCESS, CELERY)

# Variables that are not settings: a test's clock (odavl_pipeline/clock.py), and the prefixes
# of the variables a step process must share with the process that started it
CLOCK_OFFSET_VARIABLE = "ODAVL_CLOCK_OFFSET_SECONDS"
PIPELINE_PREFIXES = ("ODAVL_", "DAGSTER_", "STRIPE_")


class SettingsError(ValueError):
    """A variable set to a value the pipeline cannot use: one line naming it and what it takes."""


class Settings(BaseSettings):
    """The pipeline's configuration, each field from the variable its alias names."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,  # a variable set to "" is unset, its default applies
        validate_by_name=True,  # `replace` names fields
        extra="forbid",
    )

    home: Path = Field(
        default_factory=lambda: _resolved(".odavl"),
        validation_alias="ODAVL_HOME",
        description="state folder: embedded PostgreSQL, landing zone, marts, Dagster instance",
    )
    # operational PostgreSQL (a SQLAlchemy URL, with its password); unset: the embedded server
    database_url: SecretStr | None = Field(default=None, validation_alias="ODAVL_DATABASE_URL")
    landing_dir: Path = Field(
        default_factory=lambda data: data["home"] / "landing", validation_alias="ODAVL_LANDING_DIR"
    )
    # object storage instead of the folder (`s3://bucket/prefix`, no trailing slash)
    landing_url: str | None = Field(default=None, validation_alias="ODAVL_LANDING_URL")
    marts_path: Path = Field(
        default_factory=lambda data: data["home"] / "marts.duckdb",
        validation_alias="ODAVL_MARTS_PATH",
    )
    dagster_home: Path = Field(
        default_factory=lambda data: data["home"] / "dagster", validation_alias="DAGSTER_HOME"
    )
    # how long after its end a billing period still takes usage
    billing_grace: timedelta = Field(
        default=timedelta(minutes=BILLING_GRACE_MINUTES),
        validation_alias="ODAVL_BILLING_GRACE_MINUTES",
    )
    stripe_api_key: SecretStr | None = Field(default=None, validation_alias="STRIPE_API_KEY")
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # several, comma-separated, while one is rotated
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="STRIPE_WEBHOOK_SECRET"
    )
    # run failures and quota alerts are posted there; it often holds a token (Slack, Teams)
    alert_webhook_url: SecretStr | None = Field(
        default=None, validation_alias="ODAVL_ALERT_WEBHOOK_URL"
    )
    # signs quota alerts; without it they are recorded, not sent
    alert_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="ODAVL_ALERT_WEBHOOK_SECRET"
    )
    # ODAVL's analysts, lowercase
    staff_emails: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias="ODAVL_STAFF_EMAILS"
    )
    # how long a dashboard sign-in lasts
    session_lifetime: timedelta = Field(
        default=timedelta(hours=SESSION_HOURS), validation_alias="ODAVL_SESSION_HOURS"
    )
    # the reverse proxies whose X-Forwarded-For the dashboards believe, as networks
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="ODAVL_TRUSTED_PROXIES"
    )
    # requests per second one API key may make
    api_rate_per_second: int = Field(
        default=API_RATE_PER_SECOND, validation_alias="ODAVL_API_RATE_PER_SECOND"
    )
    # where a run's steps execute (defs/execution.py), and Celery's broker and result backend
    executor: Literal["multiprocess", "celery"] = Field(
        default=MULTIPROCESS, validation_alias=EXECUTOR_VARIABLE
    )
    celery_broker_url: SecretStr | None = Field(default=None, validation_alias=BROKER_VARIABLE)
    celery_backend_url: SecretStr | None = Field(default=None, validation_alias=BACKEND_VARIABLE)

    @property
    def landing(self) -> str | Path:
        """Where the landing zone is: ODAVL_LANDING_URL when set, else the folder."""
        return self.landing_url or self.landing_dir

    @property
    def embedded_pgdata(self) -> Path:
        """Data folder of the embedded PostgreSQL server (used when no URL is set)."""
        return self.home / "postgres"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings of `environ`, or of this process's environment when it is None (and of
        nothing else: `from_env({})` gives every default). SettingsError names a bad variable."""
        variables = os.environ if environ is None else environ
        given = tuple((name, variables[name]) for name in VARIABLES.values() if variables.get(name))
        # what else the defaults and `~` depend on: the working folder and the user's home
        return _loaded(cls, given, os.getcwd(), os.environ.get("HOME"))

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` (by field name), validated as the variables are."""
        given = InitSettingsSource(type(self), init_kwargs={**dict(self), **changes})
        try:
            return type(self)(_build_sources=((given,), {}))
        except ValidationError as error:
            raise SettingsError(_refusal(error)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment: no .env file, no secrets folder."""
        return init_settings, env_settings

    # Each validator takes a variable's text; other values (from `replace`) are left to the
    # field's type.

    @field_validator("home", "landing_dir", "marts_path", "dagster_home", mode="before")
    @classmethod
    def _path(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        try:
            return _resolved(value)
        except (ValueError, OSError, RuntimeError):  # RuntimeError: `~user` of no user
            raise SettingsError(f"{_variable(info.field_name)} must be a path: {value!r}") from None

    @field_validator("landing_url", mode="before")
    @classmethod
    def _object_storage_url(cls, value: object) -> object:
        """An object-storage URL (`s3://bucket/prefix`), without a trailing slash."""
        if not isinstance(value, str) or not value:
            return value or None
        scheme, separator, rest = value.partition("://")
        if not separator or not scheme.isidentifier() or not rest.strip("/"):
            raise SettingsError(
                f"ODAVL_LANDING_URL must be a URL such as s3://bucket/prefix: {value!r}"
            )
        return value.rstrip("/")

    @field_validator("billing_grace", mode="before")
    @classmethod
    def _grace(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return _duration(
            "ODAVL_BILLING_GRACE_MINUTES", value, "minutes", longest=LONGEST_GRACE_MINUTES
        )

    @field_validator("session_lifetime", mode="before")
    @classmethod
    def _session(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return _duration(
            "ODAVL_SESSION_HOURS", value, "hours", longest=LONGEST_SESSION_HOURS, zero_allowed=False
        )

    @field_validator("staff_emails", mode="before")
    @classmethod
    def _emails(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return frozenset(email.strip().lower() for email in value.split(",") if email.strip())

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """Comma-separated IP addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`),
        normalized."""
        if not isinstance(value, str):
            return value
        try:
            return tuple(
                str(ipaddress.ip_network(item.strip(), strict=False))
                for item in value.split(",")
                if item.strip()
            )
        except ValueError:
            raise SettingsError(
                f"ODAVL_TRUSTED_PROXIES must be IP addresses or networks, comma-separated: "
                f"{value!r}"
            ) from None

    @field_validator("api_rate_per_second", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        """Requests per second, a whole number from 1 to MOST_API_RATE_PER_SECOND."""
        if not isinstance(value, str):
            return value
        digits = value.strip()
        if (
            not (digits.isascii() and digits.isdigit())
            or len(digits) > len(str(MOST_API_RATE_PER_SECOND))
            or not 1 <= int(digits) <= MOST_API_RATE_PER_SECOND
        ):
            raise SettingsError(
                "ODAVL_API_RATE_PER_SECOND must be a whole number of requests per second from 1 "
                f"to {MOST_API_RATE_PER_SECOND:,}: {value!r}"
            )
        return int(digits)

    @field_validator("executor", mode="before")
    @classmethod
    def _executor(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        name = value.strip().lower()
        if name not in EXECUTORS:
            raise SettingsError(
                f"{EXECUTOR_VARIABLE} must be one of {', '.join(EXECUTORS)}, not {name!r}"
            )
        return name


SettingsType = TypeVar("SettingsType", bound=Settings)

# every setting's variable, by field name (CONTRACT.md section 1)
VARIABLES: dict[str, str] = {
    name: str(field.validation_alias) for name, field in Settings.model_fields.items()
}
SECRETS = frozenset(
    VARIABLES[name]
    for name, field in Settings.model_fields.items()
    if field.annotation == SecretStr | None
)


def _variable(field: str | None) -> str:
    """The variable of a setting (by its field's name, or already by its variable's)."""
    return VARIABLES.get(field or "", field or "a variable")


def secret_value(secret: SecretStr | None) -> str | None:
    """What a secret setting holds, for the one place that uses it (None when unset)."""
    return secret.get_secret_value() if secret is not None else None


def variables_set() -> frozenset[str]:
    """The settings' variables set (not empty) in this process's environment."""
    return frozenset(name for name in VARIABLES.values() if os.environ.get(name))


def clock_offset_text() -> str:
    """ODAVL_CLOCK_OFFSET_SECONDS as this process has it (a test's moved clock), else ""."""
    return os.environ.get(CLOCK_OFFSET_VARIABLE, "")


def dagster_variables(defaults: Mapping[str, str]) -> dict[str, str]:
    """Dagster's own variables (`defaults`' names) as this process has them, else the default."""
    return {name: os.environ.get(name, default) for name, default in defaults.items()}


def pipeline_environment() -> dict[str, str]:
    """This process's variables that configure the pipeline or Dagster (PIPELINE_PREFIXES)."""
    return {name: value for name, value in os.environ.items() if name.startswith(PIPELINE_PREFIXES)}


def process_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: this one's, with `variables` set."""
    return {**os.environ, **variables}


def export(variables: Mapping[str, str]) -> None:
    """Set `variables` in this process's environment, for Dagster here and every child."""
    os.environ.update(variables)


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source, over the variables given instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]):
        self.variables = variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self.variables.items() if value != ""}


@functools.lru_cache(maxsize=64)
def _loaded(
    cls: type[SettingsType], given: tuple[tuple[str, str], ...], cwd: str, home: str | None
) -> SettingsType:
    """The settings of the variables `given`, read once for each set of them and each working
    folder and home (the defaults and `~` resolve against them): pydantic-settings takes half a
    millisecond, and the dashboards ask on every request. Frozen, so shared."""
    try:
        return cls(_build_sources=((_Variables(cls, dict(given)),), {}))
    except ValidationError as error:
        raise SettingsError(_refusal(error)) from None


def _resolved(text: str) -> Path:
    return Path(text).expanduser().resolve()


def _duration(
    name: str, value: str, unit: str, longest: float, zero_allowed: bool = True
) -> timedelta:
    """A number of `unit` (minutes, hours) from `name`, between 0 and `longest`."""
    try:
        amount = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of {unit}, not {value!r}") from None
    if not (0 <= amount <= longest) or (amount == 0 and not zero_allowed):
        lowest = "0" if zero_allowed else "more than 0"
        raise SettingsError(f"{name} must be from {lowest} to {longest:g} {unit}: {value!r}")
    return timedelta(**{unit: amount})


def _refusal(error: ValidationError) -> str:
    """The one line of the first value refused: ours as raised, else pydantic's, never with
    the value (it may be a secret)."""
    first = error.errors(include_input=False)[0]
    raised = first.get("ctx", {}).get("error")
    if isinstance(raised, SettingsError):
        return str(raised)
    name = _variable(str(first["loc"][0]) if first["loc"] else None)
    return f"{name}: {' '.join(first['msg'].split())}"
