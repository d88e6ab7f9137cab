"""The deployment files: docker-compose.yml (read, and validated by Debian's `docker-compose
config`), the Dagster instance files checked against Dagster's own schema, the Helm values.

Docker's engine does not run here: nothing below starts a container (see README, "Deployment").
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

# No public validator of dagster.yaml exists; this is the one `dagster instance` commands use.
from dagster._core.instance.config import dagster_instance_config

from odavl_pipeline import cli, cli_api
from odavl_pipeline.api.app import create_app
from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.execution import (
    BROKER_VARIABLE,
    CELERY_QUEUE_TAG,
    DEFAULT_QUEUE,
    EXECUTOR_VARIABLE,
    MARTS_QUEUE,
    celery_execution,
)
from odavl_pipeline.defs.jobs import INGEST_TAGS
from odavl_pipeline.orchestration import INSTANCE_YAML
from odavl_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
LONG_RUNNING = {"postgres", "code", "webserver", "daemon", "dashboards", "api", "stripe-webhooks"}
TAG_LIMITS = [
    {"key": "odavl/ingest", "limit": 2},
    {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_runs_every_service_with_health_checks_and_migrations_first():
    services = compose()["services"]
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]["test"]
        assert check[0] in ("CMD", "CMD-SHELL") and len(check) > 1, name
        assert services[name]["restart"] == "unless-stopped"

    # migrations: a one-shot before any Dagster process; the others wait for its success
    migrate = services["migrate"]
    assert migrate["restart"] == "no" and "healthcheck" not in migrate
    assert migrate["command"] == [
        "sh",
        "-c",
        "odavl-pipeline db upgrade && dagster instance migrate",
    ]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["code"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"] == {"condition": "service_healthy"}
    assert services["dashboards"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }

    # the code location on gRPC, which the webserver's and daemon's workspace names
    code = services["code"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"] and "odavl_pipeline.definitions" in code
    port = code[code.index("-p") + 1]
    assert services["code"]["healthcheck"]["test"][-2:] == ["-p", port]
    workspace = yaml.safe_load((ROOT / "deploy/docker/workspace.yaml").read_text())
    assert workspace["load_from"] == [
        {"grpc_server": {"host": "code", "port": int(port), "location_name": "odavl_pipeline"}}
    ]
    assert services["webserver"]["command"][-2:] == ["-w", "/opt/dagster/home/workspace.yaml"]
    assert services["daemon"]["command"] == [
        "dagster-daemon",
        "run",
        "-w",
        "/opt/dagster/home/workspace.yaml",
    ]
    assert services["daemon"]["healthcheck"]["test"] == ["CMD", "dagster-daemon", "liveness-check"]
    assert "/server_info" in services["webserver"]["healthcheck"]["test"][-1]

    # the dashboards: the other issue's command, Streamlit's health endpoint, the marts read-only
    assert services["dashboards"]["command"][:2] == ["odavl-pipeline", "dashboard"]
    assert "/_stcore/health" in services["dashboards"]["healthcheck"]["test"][-1]
    assert "marts:/var/lib/odavl/marts:ro" in services["dashboards"]["volumes"]


def test_compose_keeps_state_in_volumes_and_secrets_out_of_the_files():
    spec = compose()
    services = spec["services"]
    assert set(spec["volumes"]) == {"pgdata", "landing", "marts", "dagster-data"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in ("code",):
        assert {"landing:/var/lib/odavl/landing", "marts:/var/lib/odavl/marts"} <= set(
            services[name]["volumes"]
        )
    env = services["code"]["environment"]
    assert env["DAGSTER_HOME"] == "/opt/dagster/home"
    assert "${POSTGRES_PASSWORD:?" in env["ODAVL_DATABASE_URL"]
    assert env["ODAVL_DAGSTER_URL"].startswith("postgresql+psycopg2://")
    assert all(value.startswith("${") for key, value in env.items() if key.startswith("STRIPE_"))

    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for secret in (
        "POSTGRES_PASSWORD",
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "ODAVL_ALERT_WEBHOOK_URL",
    ):
        assert example[secret] == "", secret
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()

    files = [
        COMPOSE,
        ROOT / "Dockerfile",
        ROOT / ".env.example",
        *(ROOT / "deploy").rglob("*.y*ml"),
    ]
    for path in files:
        text = path.read_text()
        assert not re.search(r"(?<![\w/.])/(work|home|root|Users|tmp)/", text), (
            path
        )  # no machine paths
    for service in services.values():  # images by name only, no registry host
        assert (
            "/" not in service["image"].split(":")[0] or "." not in service["image"].split("/")[0]
        )


@pytest.mark.docker
def test_docker_compose_config_validates_the_file():
    env = {**os.environ, "POSTGRES_PASSWORD": "only-for-this-test"}
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["code"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert (
        resolved["services"]["webserver"]["environment"]["ODAVL_DATABASE_URL"]
        == "postgresql+psycopg://odavl:only-for-this-test@postgres:5432/odavl"
    )
    assert resolved["services"]["webserver"]["ports"] == ["127.0.0.1:3000:3000/tcp"]
    api = resolved["services"]["api"]
    assert api["ports"] == ["127.0.0.1:8000-8009:8000/tcp"]  # a port of the range per replica
    assert Settings.from_env(api["environment"]).api_rate_per_second == 200

    without = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    refused = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=without,
        timeout=60,
        cwd=ROOT,
    )
    assert refused.returncode != 0 and "set POSTGRES_PASSWORD in .env" in refused.stderr


def api_command(command: list[str]):
    """The arguments of `odavl-pipeline api` as the command line parses them."""
    assert command[:2] == ["odavl-pipeline", "api"]
    args = cli._parser().parse_args(command[1:])
    assert args.handler is cli_api.cmd_api
    return args


def api_paths(tmp_path) -> set[str]:
    """What the HTTP API serves (no database is needed to list it)."""
    app = create_app(Settings.from_env({"ODAVL_HOME": str(tmp_path)}))
    return {route.path for route in app.routes}


def documented_variables() -> set[str]:
    """The variables of the README's Configuration table (the contract's, section 1)."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z_]+)`", line.split(" | ")[0])
    }


def with_defaults(env: dict[str, str]) -> dict[str, str]:
    """A compose environment as it resolves with nothing set in .env but the password."""
    resolved = {}
    for name, value in env.items():
        value = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", "only-for-this-test", value)
        resolved[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return resolved


def test_compose_runs_the_api_stateless_and_scalable(tmp_path):
    services = compose()["services"]
    api = services["api"]
    args = api_command(api["command"])
    assert (args.host, args.port) == ("0.0.0.0", 8000)
    # as many replicas as asked for (`--scale api=N`): no fixed name, a host port range
    assert "container_name" not in api
    [published] = api["ports"]
    assert published == "${ODAVL_BIND_ADDRESS:-127.0.0.1}:8000-8009:" + str(args.port)
    # stateless: nothing written, the marts read for live quota
    assert api["volumes"] == ["marts:/var/lib/odavl/marts:ro"]
    assert api["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    check = api["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    assert f"'http://127.0.0.1:{args.port}/healthz'" in check[-1]
    assert "/healthz" in api_paths(tmp_path)

    # the environment of the other services, its variables the contract's, its values usable
    env = api["environment"]
    assert env == services["code"]["environment"] == services["dashboards"]["environment"]
    # ODAVL_DAGSTER_URL, the instance's storage, odavl-pipeline derives itself (deploy/README.md)
    ours = {name for name in env if name.startswith(("ODAVL_", "STRIPE_"))}
    assert ours - {"ODAVL_DAGSTER_URL"} <= documented_variables()
    settings = Settings.from_env(with_defaults(env))
    assert settings.api_rate_per_second == Settings.from_env({}).api_rate_per_second == 200
    example = (ROOT / ".env.example").read_text().splitlines()
    assert "ODAVL_API_RATE_PER_SECOND=200" in example


def _instance_config(tmp_path, text: str) -> dict:
    folder = tmp_path / str(abs(hash(text)))
    folder.mkdir()
    (folder / "dagster.yaml").write_text(text)
    config, _ = dagster_instance_config(str(folder))  # Dagster's own schema validation
    return config


def test_every_dagster_yaml_is_valid_and_limits_ingestion_the_same_way(tmp_path):
    local = _instance_config(tmp_path, INSTANCE_YAML)
    docker = _instance_config(tmp_path, (ROOT / "deploy/docker/dagster.yaml").read_text())
    celery = _instance_config(tmp_path, (ROOT / "deploy/celery/dagster.yaml").read_text())
    for config in (local, docker, celery):
        assert config["storage"] == {"postgres": {"postgres_url": {"env": "ODAVL_DAGSTER_URL"}}}
        assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
        assert config["concurrency"]["runs"]["tag_concurrency_limits"] == TAG_LIMITS
        assert config["retention"]["sensor"]["purge_after_days"]["skipped"] == 7
        assert config["freshness"] == {"enabled": True}
    # every instance monitors runs, so a run whose process died is failed and frees its place
    for config in (local, docker, celery):
        assert config["run_monitoring"]["enabled"]
        assert config["run_launcher"] == {
            "module": "odavl_pipeline.defs.run_launcher",
            "class": "OdavlRunLauncher",
        }
    # the Celery deployment's runs execute beside the code location; only the steps go to Celery
    # the tag the limits name is the one the ingesting jobs carry
    assert {**INGEST_TAGS} == {"odavl/ingest": "true"}
    assert all(
        defs().resolve_job_def(job).tags.items() >= INGEST_TAGS.items()
        for job in ("pipeline", "ingest")
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert (
        'cp deploy/docker/dagster.yaml deploy/docker/workspace.yaml "$DAGSTER_HOME"/' in dockerfile
    )


def test_helm_values_use_the_k8s_run_launcher_and_an_external_postgres():
    values = yaml.safe_load((ROOT / "deploy/helm/values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert (
        values["postgresql"]["enabled"] is False
        and values["generatePostgresqlPasswordSecret"] is False
    )
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"][:2] == ["-m", "odavl_pipeline.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == TAG_LIMITS
    assert set(values["retention"]["sensor"]["purgeAfterDays"]) == {
        "skipped",
        "success",
        "failure",
        "started",
    }


CELERY_YAML = ROOT / "deploy/celery/celery.yaml"


def test_the_workers_celery_yaml_is_the_executor_config_the_runs_send(monkeypatch):
    """What the workers start with (deploy/celery/celery.yaml, which the Celery test uses) is what
    defs/execution.py gives the runs, and dagster-celery's own validation accepts it."""
    from dagster_celery.cli import get_validated_config

    workers = yaml.safe_load(CELERY_YAML.read_text())
    runs = celery_execution(Settings.from_env({BROKER_VARIABLE: "redis://broker:6379/0"}))
    assert workers == runs
    assert workers["execution"]["config"]["broker"] == {"env": BROKER_VARIABLE}  # never a URL
    monkeypatch.setenv(BROKER_VARIABLE, "redis://broker:6379/0")
    validated = get_validated_config(str(CELERY_YAML))
    assert validated["broker"] == "redis://broker:6379/0"
    assert validated["config_source"]["worker_concurrency"] == 1
    # with a backend for the runs, the file says what to add for the workers
    with_backend = celery_execution(
        Settings.from_env({BROKER_VARIABLE: "x", "ODAVL_CELERY_BACKEND_URL": "y"})
    )
    assert with_backend["execution"]["config"]["backend"] == {"env": "ODAVL_CELERY_BACKEND_URL"}
    assert "env: ODAVL_CELERY_BACKEND_URL" in CELERY_YAML.read_text()


def test_the_marts_step_has_a_queue_of_its_own_and_the_ingest_steps_the_default_one():
    job = defs().resolve_job_def("pipeline")
    queues = {
        node.name: node.definition.tags.get(CELERY_QUEUE_TAG, DEFAULT_QUEUE)
        for node in job.graph.node_dict.values()
    }
    assert queues == {
        "marts": MARTS_QUEUE,
        **{source: DEFAULT_QUEUE for source in queues if source != "marts"},
    }
    assert len(queues) == 5


def test_the_kubernetes_api_is_replicas_behind_a_service_ready_on_healthz(tmp_path):
    """deploy/helm/api.yaml: stateless replicas of `odavl-pipeline api` beside the chart, with the
    code location's image, secret and volume (read-only), behind a Service."""
    values_text = (ROOT / "deploy/helm/values.yaml").read_text()
    assert "kubectl apply -f deploy/helm/api.yaml" in values_text.split("\n\n")[0]
    [code] = yaml.safe_load(values_text)["dagster-user-deployments"]["deployments"]
    deployment, service = yaml.safe_load_all((ROOT / "deploy/helm/api.yaml").read_text())
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    args = api_command(container["command"])
    assert args.host == "0.0.0.0"
    assert container["image"] == f"{code['image']['repository']}:{code['image']['tag']}"
    [port] = container["ports"]
    assert port == {"name": "http", "containerPort": args.port}

    # ready while the database answers; alive while it serves, whatever the database does
    paths = api_paths(tmp_path)
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["port"] == "http"
    assert {"/healthz", container["livenessProbe"]["httpGet"]["path"]} <= paths

    env = {item["name"]: item["value"] for item in container["env"]}
    assert set(env) <= documented_variables()
    for variable in ("ODAVL_HOME", "ODAVL_LANDING_DIR", "ODAVL_MARTS_PATH"):
        assert env[variable] == code["env"][variable], variable
    assert Settings.from_env(env).api_rate_per_second == int(env["ODAVL_API_RATE_PER_SECOND"])
    assert container["envFrom"] == [{"secretRef": {"name": "odavl-env"}}]
    [volume] = pod["spec"]["volumes"]
    claim = code["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    assert container["volumeMounts"] == [
        {
            "name": volume["name"],
            "mountPath": code["volumeMounts"][0]["mountPath"],
            "readOnly": True,
        }
    ]

    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels == service["spec"]["selector"]
    assert service["spec"]["ports"] == [{"name": "http", "port": args.port, "targetPort": "http"}]


def _worker_queues(deployment: dict) -> tuple[str, list[str]]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:5] == ["dagster-celery", "worker", "start", "-A", "dagster_celery.app"]
    assert command.count("-q") == 1  # several queues as one comma-separated -q (README)
    return command[command.index("-n") + 1], command[command.index("-q") + 1].split(",")


def test_the_kubernetes_celery_workers_are_the_tested_setup():
    """deploy/helm/celery-workers.yaml: the tested workers (queues, worker settings, variables)
    beside the chart's values (the same image, secret, volume and instance)."""
    values = yaml.safe_load((ROOT / "deploy/helm/values.yaml").read_text())
    [code] = values["dagster-user-deployments"]["deployments"]
    assert code["env"][EXECUTOR_VARIABLE] == "celery"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"  # the run pod sends the steps
    header = (ROOT / "deploy/helm/values.yaml").read_text().split("\n\n")[0]
    assert f"--from-literal={BROKER_VARIABLE}=redis://" in header
    assert "kubectl apply -f deploy/helm/celery-workers.yaml" in header

    config_map, *deployments = yaml.safe_load_all(
        (ROOT / "deploy/helm/celery-workers.yaml").read_text()
    )
    assert config_map["kind"] == "ConfigMap"
    assert yaml.safe_load(config_map["data"]["celery.yaml"]) == yaml.safe_load(
        CELERY_YAML.read_text()
    )
    queues = {}
    for deployment in deployments:
        assert deployment["kind"] == "Deployment"
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        name, its_queues = _worker_queues(deployment)
        queues[name] = its_queues
        assert container["image"] == f"{code['image']['repository']}:{code['image']['tag']}"
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env[EXECUTOR_VARIABLE] == "celery"
        for variable in ("ODAVL_HOME", "ODAVL_LANDING_DIR", "ODAVL_MARTS_PATH"):
            assert env[variable] == code["env"][variable], variable
        assert "DAGSTER_PG_PASSWORD" in env and "DAGSTER_HOME" in env
        assert container["envFrom"] == [{"secretRef": {"name": "odavl-env"}}]
        assert code["envSecrets"] == [{"name": "odavl-env"}]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert volumes["odavl-data"] == code["volumes"][0]
        assert volumes["dagster-instance"]["configMap"]["name"] == "odavl-dagster-instance"
        assert volumes["celery-config"]["configMap"]["name"] == config_map["metadata"]["name"]
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts["odavl-data"] == code["volumeMounts"][0]["mountPath"]
        assert mounts["dagster-instance"] == f"{env['DAGSTER_HOME']}/dagster.yaml"
        yaml_path = container["command"][container["command"].index("-y") + 1]
        assert yaml_path == f"{mounts['celery-config']}/celery.yaml"
    # as tests/test_celery.py starts them: one on the default queue, one also on the marts'
    assert queues == {"ingest": [DEFAULT_QUEUE], "marts": [DEFAULT_QUEUE, MARTS_QUEUE]}
    [marts] = [d for d in deployments if _worker_queues(d)[0] == "marts"]
    assert marts["spec"]["replicas"] == 1  # one writer of the marts file
