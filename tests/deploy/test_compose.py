"""docker-compose.yml: valid against the Compose specification, and wired the way production is.

No container is started: the file is read with PyYAML and checked against the Compose JSON Schema
(a copy kept in tests/deploy/schemas/, see the README there) and against what the platform needs.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

APP_SERVICES = {"links": 8001, "attribution": 8002, "rewards": 8003, "notifications": 8004}
INFRA_SERVICES = {"kafka", "postgres", "otel-collector", "jaeger", "migrate", "mailpit"}
# Secrets that exactly one service needs; compose must refuse to start without them.
SERVICE_SECRETS = {
    "PII_HASH_KEY": "attribution",
    "VISITOR_HASH_SECRET": "links",
    "UNSUBSCRIBE_SECRET": "notifications",
}

# A value that is nothing but a required-variable reference: ${NAME:?message} or ${NAME?message}.
REQUIRED_VAR = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):?\?[^}]*\}$")
# Required and non-empty: ${NAME:?message} only (an empty key is as bad as none).
REQUIRED_NON_EMPTY = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}$")
SECRET_KEY_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)", re.IGNORECASE)
# postgresql://user:password@host:port/db
DB_URL = re.compile(
    r"^postgresql://(?P<user>[^:@/]+):(?P<password>[^@]+)"
    r"@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>\w+)$"
)


@cache
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as f:
        return yaml.safe_load(f)


def services() -> dict[str, Any]:
    return compose()["services"]


def env_of(service: str) -> dict[str, str]:
    env = services()[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: use the mapping form of environment"
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: str) -> dict[str, dict[str, Any]]:
    deps = services()[service].get("depends_on", {})
    assert isinstance(deps, dict), f"{service}: depends_on must use the long form with conditions"
    return deps


# --- the Compose specification --------------------------------------------------------------------


def test_schema_file_is_present() -> None:
    assert SCHEMA_FILE.is_file(), f"Compose JSON Schema not found at {SCHEMA_FILE}"


def test_compose_file_validates_against_the_compose_spec() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(
        validator_cls(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_schema_validation_is_not_a_no_op() -> None:
    """A broken file must fail, or the test above proves nothing."""
    schema = json.loads(SCHEMA_FILE.read_text())
    broken = {"services": {"links": {"image": "x", "depends_on": {"migrate": {"condition": "ok"}}}}}
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(broken))


# --- what the platform needs ---------------------------------------------------------------------


def test_all_services_present() -> None:
    assert set(APP_SERVICES) | INFRA_SERVICES <= set(services())


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_runs_its_module_from_the_shared_image(name: str) -> None:
    svc = services()[name]
    assert svc["image"] == services()["migrate"]["image"], "one image for every service"
    assert svc["command"] == [f"services.{name}"]
    assert "entrypoint" not in svc, "the image's `python -m` entrypoint is used"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_waits_for_migrations_and_healthy_backends(name: str) -> None:
    deps = depends_on(name)
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"


def test_migrate_waits_for_healthy_backends() -> None:
    deps = depends_on("migrate")
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", [*sorted(APP_SERVICES), "kafka", "postgres"])
def test_healthcheck_defined(name: str) -> None:
    hc = services()[name].get("healthcheck")
    assert hc, f"{name} has no healthcheck"
    assert hc.get("test"), f"{name}: healthcheck without a test"
    assert not hc.get("disable", False)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_healthcheck_probes_readyz_on_its_port(name: str) -> None:
    test = services()[name]["healthcheck"]["test"]
    joined = " ".join(test) if isinstance(test, list) else test
    assert "/readyz" in joined
    assert env_of(name)["PORT"] == str(APP_SERVICES[name])
    assert "os.environ['PORT']" in joined, "the check follows PORT"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_environment(name: str) -> None:
    env = env_of(name)
    for key in (
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_ENABLE_IDEMPOTENCE",
        "KAFKA_FETCH_MAX_WAIT_MS",
        "ADMIN_API_KEY",
        "LOG_LEVEL",
        "PORT",
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ):
        assert key in env, f"{name}: {key} missing"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true", "real Kafka: idempotent producer on"
    assert env["OTEL_SERVICE_NAME"] == name
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
    assert env["HOST"] == "0.0.0.0", "listen beyond the container's loopback"
    match = DB_URL.match(env["DATABASE_URL"])
    assert match, env["DATABASE_URL"]
    assert match["db"] == name, "each service uses its own database"
    assert match["host"] == "postgres"
    if name == "links":
        assert env["PUBLIC_BASE_URL"]


def test_migrate_runs_every_migration_and_topic_creation() -> None:
    migrate = services()["migrate"]
    script = " ".join(migrate["entrypoint"] + migrate["command"])
    for name in APP_SERVICES:
        assert f"python -m shared.migrate {name}" in script
        url = env_of("migrate")[f"{name.upper()}_DATABASE_URL"]
        match = DB_URL.match(url)
        assert match and match["db"] == name
        assert f'DATABASE_URL="$${name.upper()}_DATABASE_URL"' in script
    assert "python -m shared.messaging.topics" in script
    assert migrate.get("restart", "no") == "no"


def test_kafka_runs_in_kraft_mode() -> None:
    kafka = services()["kafka"]
    env = env_of("kafka")
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "broker" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert "zookeeper" not in json.dumps(kafka).lower()
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the migrate step"


def test_postgres_creates_the_four_databases() -> None:
    volumes = services()["postgres"]["volumes"]
    init = [v for v in volumes if "docker-entrypoint-initdb.d" in v]
    assert len(init) == 1
    host_path = init[0].split(":")[0]
    sql = (REPO / host_path).read_text().lower()
    for name in APP_SERVICES:
        assert re.search(rf"create database {name}\s*;", sql), name


def test_otel_collector_exports_traces_to_jaeger() -> None:
    collector = services()["otel-collector"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    mount = next(v for v in collector["volumes"] if v.endswith(":ro"))
    config = yaml.safe_load((REPO / mount.split(":")[0]).read_text())
    assert {"grpc", "http"} <= set(config["receivers"]["otlp"]["protocols"])
    traces = config["service"]["pipelines"]["traces"]
    assert "otlp" in traces["receivers"]
    exporters = {name: config["exporters"][name] for name in traces["exporters"]}
    assert any(e.get("endpoint", "").startswith("jaeger:") for e in exporters.values())
    assert services()["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert any("16686" in str(p) for p in services()["jaeger"]["ports"]), "trace UI published"


@pytest.mark.parametrize("name", [*sorted(APP_SERVICES), "migrate"])
def test_app_containers_are_hardened(name: str) -> None:
    svc = services()[name]
    assert svc["user"] == "10001:10001"
    assert svc["read_only"] is True
    assert "ALL" in svc["cap_drop"]
    assert "no-new-privileges:true" in svc["security_opt"]


# --- no secrets in the file -----------------------------------------------------------------------


def all_environments() -> list[tuple[str, str, str]]:
    return [(svc, key, value) for svc in services() for key, value in env_of(svc).items()]


def test_admin_api_key_comes_from_the_environment() -> None:
    for name in APP_SERVICES:
        value = env_of(name)["ADMIN_API_KEY"]
        match = REQUIRED_VAR.match(value)
        assert match and match["name"] == "ADMIN_API_KEY", f"{name}: ADMIN_API_KEY={value!r}"


@pytest.mark.parametrize("key", sorted(SERVICE_SECRETS))
def test_service_secret_is_required_and_only_given_to_its_service(key: str) -> None:
    owner = SERVICE_SECRETS[key]
    value = env_of(owner).get(key)
    assert value is not None, f"{owner}: {key} missing"
    match = REQUIRED_NON_EMPTY.match(value)
    assert match and match["name"] == key, f"{owner}: {key}={value!r}, want ${{{key}:?...}}"
    holders = [svc for svc, k, v in all_environments() if k == key or f"${{{key}" in v]
    assert holders == [owner], f"{key} must reach {owner} only, not {holders}"


def test_notifications_sends_mail_to_mailpit() -> None:
    mailpit = services()["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert any(str(p).endswith("8025:8025") for p in mailpit["ports"]), "web UI published"
    env = env_of("notifications")
    assert env["SMTP_HOST"] == "mailpit"
    assert env["SMTP_PORT"] == "1025"
    assert "@" in env["NOTIFY_MAIL_FROM"]
    assert env["NOTIFICATIONS_PUBLIC_URL"], "base URL of the unsubscribe links"
    assert "localhost:8004" in env["NOTIFICATIONS_PUBLIC_URL"]
    assert depends_on("notifications")["mailpit"]["condition"] == "service_started"
    for key in ("SMTP_USERNAME", "SMTP_PASSWORD"):
        value = env.get(key)
        assert value is None or REQUIRED_VAR.match(value), f"{key}: no literal credentials"


def test_links_journals_clicks_on_a_named_volume() -> None:
    links = services()["links"]
    env = env_of("links")
    journal = env["CLICK_JOURNAL_DIR"]
    mounts = [v for v in links.get("volumes", []) if isinstance(v, str)]
    on = [m for m in mounts if m.split(":")[1] == journal]
    assert len(on) == 1, f"CLICK_JOURNAL_DIR {journal} must be a mounted volume"
    volume = on[0].split(":")[0]
    assert volume in compose()["volumes"], "a named volume: it survives container restarts"
    assert not on[0].endswith(":ro")
    assert links["read_only"] is True, "the root filesystem stays read-only"
    # A new named volume belongs to root: a one-shot step hands it to the app user first.
    (init,) = [
        name
        for name, svc in services().items()
        if name != "links" and any(str(v).startswith(f"{volume}:") for v in svc.get("volumes", []))
    ]
    assert depends_on("links")[init]["condition"] == "service_completed_successfully"
    assert "10001:10001" in " ".join(services()[init]["entrypoint"])
    assert services()[init]["cap_add"] == ["CHOWN"]
    assert env["FORWARDED_ALLOW_IPS"] == "*", "the proxy in front is local"


def test_no_literal_secret_values() -> None:
    offenders = []
    for svc, key, value in all_environments():
        if SECRET_KEY_NAME.search(key) and not REQUIRED_VAR.match(value):
            offenders.append(f"{svc}.{key}={value!r}")
        if key.endswith("DATABASE_URL"):
            match = DB_URL.match(value)
            assert match, f"{svc}.{key}: not a postgresql:// URL"
            if not REQUIRED_VAR.match(match["password"]):
                offenders.append(f"{svc}.{key}: literal password")
    assert not offenders, offenders


def test_no_secret_like_literals_anywhere_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    for pattern in (r"change[ _-]?me", r"password123", r"-----BEGIN"):
        assert not re.search(pattern, text, re.IGNORECASE), pattern
