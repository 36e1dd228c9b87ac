"""Writes deploy/k8s/ (and its overlays) and deploy/rabbitmq/definitions.json from the code they
must agree with: the services and their queues (contracts.routing), the queues each lane
consumes (userprov.runtime.lanes), the topology (userprov.runtime.topology),
the settings' defaults and the worker's stop budget. A test fails when a committed file is not
what this writes: run `python -m userprov_devtools.deploy_manifests` after changing any of those."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from contracts import routing
from userprov import __version__
from userprov.app import service_run
from userprov.runtime.dispatch import Signal
from userprov.runtime.lanes import Lane
from userprov.runtime.topology import definitions
from userprov.runtime.worker import stop_seconds
from userprov.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "userprov:latest"  # set the registry and tag with kustomize's `images:`
UID = 10001  # the user deploy/Dockerfile creates
VHOST = "userprov"
HEALTH_PORT = 8081
METRICS_PORT = 9100
PRE_STOP_SECONDS = 2
CONFIG = "userprov-config"
SECRETS = "userprov-secrets"
TRIGGER_AUTH = "userprov-rabbitmq"
LABELS = {"app.kubernetes.io/part-of": "userprov"}


# Per service: resources, and the queue length per replica KEDA scales toward. A user-creation
# message is a command of up to 1,000 rows and a mailing message a chunk of up to 200 emails,
# so their targets are small; a lookup or response message is one small unit of work.
SIZING: dict[str, dict[str, Any]] = {
    routing.USER_CREATION: {"cpu": "250m", "memory": "384Mi", "limit": "768Mi", "queue_length": 10, "max": 10},
    routing.ACCOUNT_LOOKUP: {"cpu": "250m", "memory": "256Mi", "limit": "512Mi", "queue_length": 100, "max": 10},
    # the template sandbox processes live in this container too
    routing.INVITATION_MAILING: {"cpu": "500m", "memory": "512Mi", "limit": "1536Mi", "queue_length": 10, "max": 20},
    routing.INVITATION_RESPONSE: {"cpu": "100m", "memory": "256Mi", "limit": "512Mi", "queue_length": 100, "max": 5},
}

# Not secret; the URLs with credentials and the SMTP password are in the Secret.
CONFIG_DATA = {
    "USERPROV_MIGRATE_ON_START": "false",  # the migration Job migrates; workers wait for it
    "USERPROV_HEALTH_PORT": str(HEALTH_PORT),
    "USERPROV_METRICS_PORT": str(METRICS_PORT),
    "USERPROV_LOG_JSON": "true",
    "USERPROV_SMTP_HOST": "smtp.example.com",
    "USERPROV_SMTP_PORT": "587",
    "USERPROV_SMTP_STARTTLS": "true",
    "USERPROV_SMTP_USERNAME": "userprov",
    "USERPROV_LINK_BASE_URL": "https://admin.example.com/invitation",
    "USERPROV_LINKS_SIGN_IN_URL": "https://signin.example.com/login",
    "USERPROV_SCIM_BASE_URL": "https://admin.example.com/scim/v2",  # where the identity providers reach SCIM, behind TLS
    "USERPROV_SMTP_SENDER": "GoTo Admin <no-reply@example.com>",
    # the RabbitMQ users of the platform services that may act without requested_by (they set user_id)
    # (the SCIM service acts for the account of its bearer token, as a platform service does)
    "USERPROV_TRUSTED_PUBLISHERS": "platform-services,userprov,userprov-scim",
}
# the page (`userprov links`) connects as a link handler (its row of the permissions in docs/reference/wire.md), not as the workers
LINKS = "links"
LINKS_PORT = 8080
LINKS_SECRETS = "userprov-links-secrets"
LINKS_SECRET_KEYS = {
    "USERPROV_AMQP_URL": f"amqp://userprov-links:CHANGE-ME@rabbitmq.messaging.svc:5672/{VHOST}",
    "USERPROV_LINKS_FORM_SECRET": "CHANGE-ME-the-same-on-every-replica",
}
# SCIM (`userprov scim serve`) connects as a trusted platform service of its own
SCIM = "scim"
SCIM_PORT = 8090
SCIM_SECRETS = "userprov-scim-secrets"
SCIM_SECRET_KEYS = {"USERPROV_AMQP_URL": f"amqp://userprov-scim:CHANGE-ME@rabbitmq.messaging.svc:5672/{VHOST}"}
SECRET_KEYS = {
    "USERPROV_AMQP_URL": f"amqp://userprov:CHANGE-ME@rabbitmq.messaging.svc:5672/{VHOST}",
    "USERPROV_DATABASE_URL": "postgresql://userprov:CHANGE-ME@postgres.databases.svc:5432/userprov",
    "USERPROV_SMTP_PASSWORD": "CHANGE-ME",
}


def _selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "userprov", "app.kubernetes.io/component": component}


def _metadata(name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": {**LABELS, **_selector(component)}}


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security() -> dict[str, Any]:
    return {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _container(name: str, args: list[str], resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "args": args,
        "envFrom": [{"configMapRef": {"name": CONFIG}}, {"secretRef": {"name": SECRETS}}],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "resources": resources,
        "securityContext": _container_security(),
        # the read-only root leaves /tmp for the template sandbox's process start-up
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _pod(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
        **extra,
    }


def deployment(service: str) -> dict[str, Any]:
    return _worker_deployment(service, ["run", service], SIZING[service])


def _worker_deployment(name: str, args: list[str], sizing: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    container = _container(name, args, {
        "requests": {"cpu": sizing["cpu"], "memory": sizing["memory"]},
        "limits": {"memory": sizing["limit"]},  # no CPU limit: throttling would stall heartbeats
    })
    container["env"] += [{"name": key, "value": value} for key, value in (env or {}).items()]
    container["ports"] = [{"name": "health", "containerPort": HEALTH_PORT}, {"name": "metrics", "containerPort": METRICS_PORT}]
    # up while it waits for the migration job and connects; after that, /livez answers at once
    container["startupProbe"] = _probe("/livez", period=5, failures=120)
    container["livenessProbe"] = _probe("/livez", period=10, failures=3)
    container["readinessProbe"] = _probe("/readyz", period=5, failures=2)
    # SIGTERM stops consuming at once and drains; the pause only lets the endpoints and the
    # scrapers see the pod go before its metrics do. The grace period covers pause and drain.
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}}
    # no replicas: KEDA's HPA owns the count (an apply must not reset it)
    return _deployment(name, container, termination_grace_seconds(),
                       {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)})


def _deployment(name: str, container: dict[str, Any], grace_seconds: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment of one container, rolled one new pod at a time; `replicas` left to its autoscaler."""
    selector = _selector(name)
    metadata: dict[str, Any] = {"labels": {**LABELS, **selector}}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, name),
        "spec": {
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": metadata, "spec": _pod([container], terminationGracePeriodSeconds=grace_seconds)},
        },
    }


def termination_grace_seconds() -> int:
    return PRE_STOP_SECONDS + int(stop_seconds(Settings())) + 10


def _probe(path: str, *, period: int, failures: int, port: str = "health") -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 3,
            "failureThreshold": failures}


def disruption_budget(service: str) -> dict[str, Any]:
    # maxUnavailable, not minAvailable: a one-replica worker must not block a node drain; its
    # messages wait in the queue and the inbox absorbs a redelivery.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(service, service),
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": _selector(service)}},
    }


def scaled_object(service: str) -> dict[str, Any]:
    return _scaled_object(service, {routing.queue_name(service): SIZING[service]["queue_length"]}, SIZING[service]["max"])


def _scaled_object(name: str, queue_lengths: dict[str, int], max_replicas: int) -> dict[str, Any]:
    """`queue_lengths`: the messages per replica to scale toward, for each queue the Deployment
    consumes (KEDA takes the most replicas any of them asks for)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(name, name),
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 1,  # a consumer always registered: /readyz and the consumer gauge stay meaningful
            "maxReplicaCount": max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [{
                "type": "rabbitmq",
                "metadata": {"protocol": "amqp", "queueName": queue, "mode": "QueueLength", "value": str(length)},
                "authenticationRef": {"name": TRIGGER_AUTH},
            } for queue, length in queue_lengths.items()],
        },
    }


def trigger_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _metadata(TRIGGER_AUTH, "autoscaling"),
        # the workers' own AMQP URL (with its vhost): KEDA reads the queue depth with it
        "spec": {"secretTargetRef": [{"parameter": "host", "name": SECRETS, "key": "USERPROV_AMQP_URL"}]},
    }


def migration_job_name() -> str:
    """One Job per version: a Job's spec cannot change, so a new version applies a new Job (the
    finished one of the last version is deleted after ttlSecondsAfterFinished)."""
    return "userprov-migrate-" + re.sub(r"[^a-z0-9]+", "-", __version__.lower()).strip("-")


def migration_job() -> dict[str, Any]:
    container = _container("migrate", ["migrate"], {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    metadata = _metadata(migration_job_name(), "migrate")
    # Argo CD runs it as a hook before each sync (and replaces the last one); without Argo CD the
    # versioned name does the same: the workers wait for the schema until it has run
    metadata["annotations"] = {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 1800,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": {**LABELS, "app.kubernetes.io/component": "migrate"}},
                         "spec": _pod([container], restartPolicy="OnFailure")},
        },
    }


def front_door_deployment(component: str, command: list[str], port: int, secrets: str, metrics: bool = False) -> dict[str, Any]:
    """A web front door (the invitation page, SCIM): scaled on CPU, with AMQP credentials of its own;
    `metrics`: Prometheus metrics on the metrics port too, as the workers have."""
    container = _container(component, command, {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    container["envFrom"] = [{"configMapRef": {"name": CONFIG}}, {"secretRef": {"name": secrets}}]
    variable = component.upper()
    container["env"] += [{"name": f"USERPROV_{variable}_HOST", "value": "0.0.0.0"}, {"name": f"USERPROV_{variable}_PORT", "value": str(port)}]
    container["ports"] = [{"name": "http", "containerPort": port}]
    if metrics:
        container["env"].append({"name": "USERPROV_METRICS_PORT", "value": str(METRICS_PORT)})
        container["ports"].append({"name": "metrics", "containerPort": METRICS_PORT})
    container["startupProbe"] = _probe("/livez", period=2, failures=30, port="http")
    container["livenessProbe"] = _probe("/livez", period=10, failures=3, port="http")
    container["readinessProbe"] = _probe("/readyz", period=5, failures=2, port="http")
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}}
    return _deployment(component, container, PRE_STOP_SECONDS + 10 + 5)  # uvicorn finishes the requests in hand within 10 s of SIGTERM


def front_door_service(component: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(component, component),
            "spec": {"selector": _selector(component), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def front_door_autoscaler(component: str) -> dict[str, Any]:
    autoscaler = cpu_autoscaler(component)
    autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"] = 2, 10  # two: one may go while the other answers
    return autoscaler


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(CONFIG, "config"), "data": dict(CONFIG_DATA)}


def secret_example(name: str = SECRETS, keys: dict[str, str] = SECRET_KEYS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(name, "config"), "type": "Opaque", "stringData": dict(keys)}


def kustomization(files: list[str]) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files,
            "images": [{"name": "userprov", "newTag": "latest"}]}


def cpu_autoscaler(service: str) -> dict[str, Any]:
    """Without KEDA: a plain HorizontalPodAutoscaler on CPU (queue depth is the better signal)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(service, service),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
            "minReplicas": 1,
            "maxReplicas": SIZING[service]["max"] if service in SIZING else 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }


def cpu_autoscaling_overlay() -> dict[str, Any]:
    """deploy/k8s without KEDA (its ScaledObjects and TriggerAuthentication deleted), with an HPA
    on CPU per worker."""
    deleted = [(name, "ScaledObject") for name in routing.SERVICES] + [(TRIGGER_AUTH, "TriggerAuthentication")]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../k8s", "autoscalers.yaml"],
        "patches": [{"patch": yaml.safe_dump({"$patch": "delete", "apiVersion": "keda.sh/v1alpha1", "kind": kind,
                                              "metadata": {"name": name}}, sort_keys=False)} for name, kind in deleted],
    }


LANES_COMMENT = """\
# Lanes (docs/how-to/lanes.md): every service in two Deployments instead of one per service. Niceness
# orders only the processes of one cgroup, and each pod is a cgroup of its own: the kernel shares a
# busy node's cores between pods by their cgroup's cpu.weight, which follows their CPU requests
# (millicores x 1024 / 1000 as cpu.shares, then converted: 1 CPU gives weight 39 and 250m 10 with
# the linear conversion of KEP-2254, 100 and 35 with runc 1.3.2 and crun 1.23 on). So the
# requests rank the lanes: the interactive pod's is the larger. Size them:
# - interactive: what its small work uses at peak (rate of process_cpu_seconds_total); it is also
#   what the scheduler reserves on a node for each replica.
# - bulk: small; its batches take whatever the node leaves idle. The weight is per pod: keep the
#   interactive request above the sum of the bulk pods that may share its node (up to the bulk
#   ScaledObject's maxReplicaCount), or keep them apart (topology spread, a node pool).
# - no CPU limit on either: a limit ranks nothing, it throttles a pod even on an idle node.
# KEDA scales each lane on the queues it consumes. PostgreSQL, RabbitMQ and the SMTP relay serve
# both lanes alike: the weights rank only the workers' own CPU.
"""
# Per lane: resources and scaling. Both run every service (`userprov run`), as on one host.
LANE_SIZING: dict[Lane, dict[str, Any]] = {
    # every message, and small work of every service (the mailing's template sandbox too)
    Lane.INTERACTIVE: {"cpu": "1", "memory": "512Mi", "limit": "1536Mi", "max": 10},
    # large adds (up to 10,000 rows each), the lookup and mailing batches
    Lane.BULK: {"cpu": "250m", "memory": "768Mi", "limit": "2Gi", "max": 10},
}
BULK_QUEUE_LENGTH = 2  # per replica: each message a users.add of 11 to 10,000 rows


def lane_queue_lengths(lane: Lane) -> dict[str, int]:
    """The queues a process in `lane` consumes (as the worker decides), each with the length per
    replica to scale toward."""
    settings = Settings()
    lengths = {routing.queue_name(s): SIZING[s]["queue_length"] for s in routing.SERVICES
               if lane.consumes(service_run(settings, s).routes, Signal)}
    if lane is Lane.BULK:
        lengths |= {routing.bulk_queue_name(s): BULK_QUEUE_LENGTH for s in routing.HANDED_TO_BULK}
    return lengths


def lane_objects(lane: Lane) -> list[dict[str, Any]]:
    """A lane's Deployment, disruption budget and ScaledObject."""
    name, sizing = lane.value, LANE_SIZING[lane]
    return [_worker_deployment(name, ["run"], sizing, {"USERPROV_LANE": name}), disruption_budget(name),
            _scaled_object(name, lane_queue_lengths(lane), sizing["max"])]


def lanes_overlay() -> dict[str, Any]:
    """deploy/k8s with the lanes' Deployments instead of one per service."""
    deleted = [(name, kind, api) for name in routing.SERVICES for kind, api in
               (("Deployment", "apps/v1"), ("PodDisruptionBudget", "policy/v1"), ("ScaledObject", "keda.sh/v1alpha1"))]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../k8s", "lanes.yaml"],
        "patches": [{"patch": yaml.safe_dump({"$patch": "delete", "apiVersion": api, "kind": kind, "metadata": {"name": name}},
                                             sort_keys=False)} for name, kind, api in deleted],
    }


# Where the documentation's runbook is served (docs/how-to/runbook.md, built by scripts/docs): alerts
# link to its sections by absolute URL (set it with --runbook-url to where you publish the site)
RUNBOOK_URL = "https://userprov.example.com/how-to/runbook.html"


def pod_monitor() -> dict[str, Any]:
    """prometheus-operator scrapes every worker's metrics port (no Service is needed)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata("userprov", "monitoring"),
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }


def prometheus_rule(runbook_url: str) -> dict[str, Any]:
    """deploy/prometheus/alerts.yaml as a PrometheusRule, its runbook links made absolute."""
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            if "runbook_url" in annotations:
                annotations["runbook_url"] = runbook_url + "#" + annotations["runbook_url"].split("#", 1)[1]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": _metadata("userprov", "monitoring"),
            "spec": {"groups": groups}}


HEADER = "# Generated by `python -m userprov_devtools.deploy_manifests` from the code; change that, not this.\n"


def _yaml(*documents: dict[str, Any], comment: str = "") -> str:
    return HEADER + comment + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in documents)


def render(vhost: str = VHOST, runbook_url: str = RUNBOOK_URL) -> dict[str, str]:
    """Every generated file by its path under the repository root; `vhost`: the one
    definitions.json declares, `runbook_url`: where the alerts' runbooks are (the committed
    files have the defaults)."""
    files = {
        "configmap.yaml": _yaml(config_map()),
        "migrate-job.yaml": _yaml(migration_job()),
        "keda-trigger-authentication.yaml": _yaml(trigger_authentication()),
    }
    for service in routing.SERVICES:
        files[f"{service}.yaml"] = _yaml(deployment(service), disruption_budget(service), scaled_object(service))
    files[f"{LINKS}.yaml"] = _yaml(front_door_deployment(LINKS, [LINKS], LINKS_PORT, LINKS_SECRETS), front_door_service(LINKS),
                                   disruption_budget(LINKS), front_door_autoscaler(LINKS))
    files[f"{SCIM}.yaml"] = _yaml(front_door_deployment(SCIM, [SCIM, "serve"], SCIM_PORT, SCIM_SECRETS, metrics=True), front_door_service(SCIM),
                                  disruption_budget(SCIM), front_door_autoscaler(SCIM))
    rendered = {f"deploy/k8s/{name}": text for name, text in files.items()}
    rendered["deploy/k8s/kustomization.yaml"] = _yaml(kustomization(sorted(files)))
    # for clusters without KEDA: kubectl apply -k deploy/k8s-cpu-autoscaling (an overlay of deploy/k8s)
    rendered["deploy/k8s-cpu-autoscaling/autoscalers.yaml"] = _yaml(*(cpu_autoscaler(s) for s in routing.SERVICES))
    rendered["deploy/k8s-cpu-autoscaling/kustomization.yaml"] = _yaml(cpu_autoscaling_overlay())
    # lanes (kubectl apply -k deploy/k8s-lanes): an interactive and a bulk Deployment, ranked by their CPU requests
    rendered["deploy/k8s-lanes/lanes.yaml"] = _yaml(*lane_objects(Lane.INTERACTIVE), *lane_objects(Lane.BULK), comment=LANES_COMMENT)
    rendered["deploy/k8s-lanes/kustomization.yaml"] = _yaml(lanes_overlay())
    # for clusters with prometheus-operator (its CRDs): kubectl apply -k deploy/k8s/monitoring
    monitoring = {"podmonitor.yaml": _yaml(pod_monitor()), "prometheusrule.yaml": _yaml(prometheus_rule(runbook_url))}
    rendered |= {f"deploy/k8s/monitoring/{name}": text for name, text in monitoring.items()}
    rendered["deploy/k8s/monitoring/kustomization.yaml"] = _yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": sorted(monitoring)})
    # not in the kustomization: the operator creates the Secret (sealed, external, or from this)
    rendered["deploy/k8s/secret.example.yaml"] = _yaml(secret_example(), secret_example(LINKS_SECRETS, LINKS_SECRET_KEYS),
                                                      secret_example(SCIM_SECRETS, SCIM_SECRET_KEYS))
    rendered["deploy/rabbitmq/definitions.json"] = json.dumps(definitions(Settings().delivery_limit, vhost), indent=2) + "\n"
    return rendered


def stale() -> list[str]:
    return [path for path, text in render().items() if not (ROOT / path).is_file() or (ROOT / path).read_text() != text]


def main() -> None:
    parser = argparse.ArgumentParser(description="Writes deploy/k8s/ and deploy/rabbitmq/definitions.json from the code.")
    parser.add_argument("--vhost", default=VHOST, help=f"the vhost definitions.json declares (default {VHOST}; the tests"
                        " expect the committed file to have it)")
    parser.add_argument("--runbook-url", default=RUNBOOK_URL, help="where the documentation's runbook page is published:"
                        " the PrometheusRule's alerts link there")
    options = parser.parse_args()
    for path, text in render(options.vhost, options.runbook_url).items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
