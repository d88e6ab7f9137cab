"""The settings (odavl_pipeline/settings.py, CONTRACT.md section 1): the one reader of the
environment; any text in any variable loads or is refused in one line naming the variable, a
secret never shown; the Dagster resources configured from the same variables, secrets by name."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from dagster_shared.serdes import serialize_value
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from odavl_pipeline.defs.resources import pipeline_resources, settings_of
from odavl_pipeline.settings import (
    SECRETS,
    VARIABLES,
    Settings,
    SettingsError,
    process_environment,
    secret_value,
)

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
# what reads the environment: only settings.py may
ENVIRONMENT_READ = re.compile(
    r"os\.environ|os\.getenv|environ\.get|from os import .*\b(environ|getenv)\b"
)
SECRET_VALUES = {
    "ODAVL_DATABASE_URL": "postgresql+psycopg://odavl:pw-DATABASE-9f1@db:5432/odavl",
    "STRIPE_API_KEY": "sk_test_KEY-5c7e",
    "STRIPE_WEBHOOK_SECRET": "whsec_WEBHOOK-0b2d,whsec_ROTATING-71aa",
    "ODAVL_ALERT_WEBHOOK_URL": "https://hooks.example/services/TOKEN-3e8a",
    "ODAVL_ALERT_WEBHOOK_SECRET": "ALERT-SECRET-44d0",
    "ODAVL_CELERY_BROKER_URL": "redis://:BROKER-PW-a81c@broker:6379/0",
    "ODAVL_CELERY_BACKEND_URL": "redis://:BACKEND-PW-6f02@broker:6379/1",
}


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_nothing_but_the_settings_reads_the_environment():
    settings_module = ROOT / "odavl_pipeline" / "settings.py"
    assert ENVIRONMENT_READ.search(settings_module.read_text())  # the pattern finds a read
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _python_files("odavl_pipeline", "dashboards")
        if path != settings_module
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ENVIRONMENT_READ.search(line)
    ]
    listed = "\n".join(found)
    assert found == [], f"read the environment through odavl_pipeline/settings.py:\n{listed}"


def test_every_variable_of_the_contract_is_a_setting():
    assert CONTRACT.exists(), f"CONTRACT.md is not at {CONTRACT}: section 1 lists the variables"
    section = CONTRACT.read_text().split("## 1.", 1)[1].split("\n## ", 1)[0]
    named = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z_]+)`", line.split(" | ")[0])
    }
    assert len(named) >= 15  # the table was read
    assert named - set(VARIABLES.values()) == set()


def test_every_variable_of_the_readme_is_a_setting():
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ")[0]
    named = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z_]+)`", line.split(" | ")[0])
    }
    assert named == set(VARIABLES.values())


def test_from_env_of_a_mapping_reads_that_mapping_only(monkeypatch, tmp_path):
    monkeypatch.setenv("ODAVL_HOME", str(tmp_path / "from-the-environment"))
    monkeypatch.setenv("ODAVL_SESSION_HOURS", "not a number")  # refused if it were read
    monkeypatch.chdir(tmp_path)
    defaults = Settings.from_env({})
    assert defaults.home == tmp_path / ".odavl"
    assert (defaults.landing_dir, defaults.marts_path, defaults.dagster_home) == (
        tmp_path / ".odavl" / "landing",
        tmp_path / ".odavl" / "marts.duckdb",
        tmp_path / ".odavl" / "dagster",
    )
    assert defaults.session_lifetime == timedelta(hours=12)
    assert defaults.executor == "multiprocess" and defaults.database_url is None
    with pytest.raises(SettingsError, match="^ODAVL_SESSION_HOURS must be a number of hours"):
        Settings.from_env()  # None: the process's environment


def test_empty_means_unset_and_unknown_variables_are_ignored(tmp_path):
    settings = Settings.from_env(
        {
            "ODAVL_HOME": str(tmp_path),
            "ODAVL_MARTS_PATH": "",
            "STRIPE_API_KEY": "",
            "ODAVL_SESSION_HOURS": "",
            "ODAVL_NO_SUCH_SETTING": "anything",
        }
    )
    assert settings.marts_path == tmp_path / "marts.duckdb"
    assert settings.stripe_api_key is None
    assert settings.session_lifetime == timedelta(hours=12)


def test_the_secrets_never_show_in_a_repr():
    settings = Settings.from_env(SECRET_VALUES)
    assert set(SECRET_VALUES) == SECRETS
    shown = repr(settings) + str(settings) + f"{settings}" + repr(settings.model_dump())
    for name, value in SECRET_VALUES.items():
        for part in value.split(","):
            assert part not in shown, name
        assert secret_value(getattr(settings, _field(name))) == value  # where it is used


def test_replace_gives_a_validated_copy(tmp_path):
    settings = Settings.from_env({"ODAVL_HOME": str(tmp_path)})
    moved = settings.replace(marts_path=tmp_path / "other.duckdb", database_url="postgresql://x")
    assert moved.marts_path == tmp_path / "other.duckdb" and moved.home == settings.home
    assert isinstance(moved.database_url, SecretStr)
    assert moved.database_url.get_secret_value() == "postgresql://x"
    assert settings.marts_path == tmp_path / "marts.duckdb"  # the original is unchanged
    assert moved.replace(landing_url="s3://bucket/landing/").landing == "s3://bucket/landing"
    with pytest.raises(SettingsError, match="^ODAVL_LANDING_URL must be a URL"):
        settings.replace(landing_url="no scheme")
    with pytest.raises(SettingsError, match="^ODAVL_BILLING_GRACE_MINUTES must be from 0"):
        settings.replace(billing_grace="-5")


@pytest.mark.parametrize(
    ("variable", "value", "refusal"),
    [
        ("ODAVL_BILLING_GRACE_MINUTES", "soon", "ODAVL_BILLING_GRACE_MINUTES must be a number"),
        ("ODAVL_BILLING_GRACE_MINUTES", "-1", "ODAVL_BILLING_GRACE_MINUTES must be from 0 to"),
        ("ODAVL_SESSION_HOURS", "0", "ODAVL_SESSION_HOURS must be from more than 0 to 720"),
        ("ODAVL_API_RATE_PER_SECOND", "9" * 5000, "ODAVL_API_RATE_PER_SECOND must be a whole"),
        ("ODAVL_LANDING_URL", "bucket/prefix", "ODAVL_LANDING_URL must be a URL such as s3://"),
        ("ODAVL_TRUSTED_PROXIES", "proxy.internal", "ODAVL_TRUSTED_PROXIES must be IP"),
        ("ODAVL_EXECUTOR", "threads", "ODAVL_EXECUTOR must be one of multiprocess, celery"),
        ("ODAVL_HOME", "a\x00b", "ODAVL_HOME must be a path"),
        ("DAGSTER_HOME", "~no-such-user-0", "DAGSTER_HOME must be a path"),
    ],
)
def test_a_value_the_pipeline_cannot_use_is_refused_naming_the_variable(variable, value, refusal):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value).startswith(refusal)
    assert len(str(refused.value).splitlines()) == 1


def _field(variable: str) -> str:
    [field] = [field for field, name in VARIABLES.items() if name == variable]
    return field


def _refused_or_loaded(variables: dict[str, str]) -> Settings | None:
    """The settings of `variables`, or None once the refusal is checked: one line that names
    one of them, the same without the secrets."""
    try:
        return Settings.from_env(variables)
    except SettingsError as refusal:
        line = str(refusal)
        assert len(line.splitlines()) == 1 and line.strip() == line, line
        assert any(re.match(rf"{name}\b", line) for name in variables), line
        # the secrets take any text, so they play no part in it: it cannot show them
        without_secrets = {name: text for name, text in variables.items() if name not in SECRETS}
        with pytest.raises(SettingsError) as again:
            Settings.from_env(without_secrets)
        assert str(again.value) == line
        return None


@given(st.sampled_from(sorted(VARIABLES.values())), st.text())
def test_any_text_in_a_variable_loads_or_is_refused_in_one_line_naming_it(variable, text):
    settings = _refused_or_loaded({variable: text})
    if variable in SECRETS:  # taken as it is, whatever it holds
        assert settings is not None
        assert secret_value(getattr(settings, _field(variable))) == (text or None)


@given(st.dictionaries(st.sampled_from(sorted(VARIABLES.values())), st.text(), max_size=6))
def test_any_texts_in_several_variables_load_or_are_refused_naming_one(variables):
    settings = _refused_or_loaded(variables)
    if settings is not None:
        given = SECRETS & set(variables)
        # a secret's text shows only where the settings without any secret show it too
        shown = repr(settings)
        shown_anyway = repr(settings.replace(**{_field(name): None for name in given}))
        for name in given:
            assert variables[name] not in shown or variables[name] in shown_anyway, name


def test_a_child_process_environment_is_this_one_with_the_variables_given(monkeypatch):
    monkeypatch.setenv("ODAVL_HOME", "/srv/odavl")
    child = process_environment({"ODAVL_MARTS_PATH": "/srv/marts.duckdb"})
    assert child["ODAVL_HOME"] == "/srv/odavl" and child["ODAVL_MARTS_PATH"] == "/srv/marts.duckdb"
    assert Settings.from_env(child).marts_path == Path("/srv/marts.duckdb")


# --- the Dagster resources ------------------------------------------------------------------


def _configured(monkeypatch, variables: dict[str, str]) -> dict[str, dict[str, object]]:
    """Each resource's configuration as the UI gets it (the code location's snapshot), with
    `variables` the only settings' variables of the environment."""
    from dagster._core.remote_representation.external_data import (
        RepositorySnap,
        ResourceConfigEnvVarSnap,
    )

    from odavl_pipeline.definitions import defs

    for name in VARIABLES.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    snap = RepositorySnap.from_def(defs().get_repository_def())
    serialized = serialize_value(snap)
    for name in SECRETS & set(variables):
        assert variables[name] not in serialized, name
    return {
        resource.name: {
            field: f"EnvVar {shown.name}"
            if isinstance(shown, ResourceConfigEnvVarSnap)
            else json.loads(shown)
            for field, shown in resource.configured_values.items()
        }
        for resource in snap.resources
    }


# Dagster's own snapshot reads a property it has deprecated
@pytest.mark.filterwarnings("ignore:Property `ScheduleDefinition.environment_vars`")
def test_the_resources_show_set_variables_by_name_and_defaults_resolved(monkeypatch, tmp_path):
    home = tmp_path / "home"
    shown = _configured(
        monkeypatch,
        {**SECRET_VALUES, "ODAVL_HOME": str(home), "ODAVL_LANDING_URL": "s3://bucket/landing"},
    )
    assert shown == {
        "database": {"home": "EnvVar ODAVL_HOME", "url": "EnvVar ODAVL_DATABASE_URL"},
        "marts": {"path": str(home / "marts.duckdb"), "billing_grace_minutes": "60"},
        "landing_zone": {"dir": str(home / "landing"), "url": "EnvVar ODAVL_LANDING_URL"},
        "stripe": {
            "api_key": "EnvVar STRIPE_API_KEY",
            "api_base": None,
            "webhook_secret": "EnvVar STRIPE_WEBHOOK_SECRET",
        },
        "alerts": {
            "webhook_url": "EnvVar ODAVL_ALERT_WEBHOOK_URL",
            "webhook_secret": "EnvVar ODAVL_ALERT_WEBHOOK_SECRET",
        },
    }
    # unset: a default resolved, or nothing (Dagster leaves some of these out)
    nothing_set = _configured(monkeypatch, {})
    assert nothing_set["database"]["home"] == str(Path.cwd() / ".odavl")
    assert nothing_set["marts"]["path"] == str(Path.cwd() / ".odavl" / "marts.duckdb")
    for resource, field in (("database", "url"), ("stripe", "api_key"), ("alerts", "webhook_url")):
        assert nothing_set[resource].get(field) is None


def test_the_resources_turn_back_into_the_settings_of_the_environment(monkeypatch, tmp_path):
    variables = {
        **SECRET_VALUES,
        "ODAVL_HOME": str(tmp_path),
        "ODAVL_MARTS_PATH": str(tmp_path / "elsewhere.duckdb"),
        "ODAVL_BILLING_GRACE_MINUTES": "90",
        "STRIPE_API_BASE": "http://127.0.0.1:1",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    resources = {
        name: resource.process_config_and_initialize()  # the EnvVars resolved, as in a run
        for name, resource in pipeline_resources().items()
    }
    together = settings_of(*resources.values())
    expected = Settings.from_env()
    for field in VARIABLES:
        if not field.startswith(("celery_", "executor", "staff_", "session_", "trusted_", "api_")):
            assert getattr(together, field) == getattr(expected, field), field
    assert together.billing_grace == timedelta(minutes=90)
    assert resources["marts"].settings().marts_path == tmp_path / "elsewhere.duckdb"
    for resource in resources.values():  # their secrets are no more in their repr
        for value in SECRET_VALUES.values():
            assert value not in repr(resource)
