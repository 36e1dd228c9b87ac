"""deploy/k8s/ and deploy/rabbitmq/: generated from the code, valid for the Kubernetes API, and
consistent with docker-compose.yml, the image and the workers' settings. (The KEDA objects are
validated against their CRD schema, and the definitions file imported into the real RabbitMQ,
in tests/integration/test_deploy_artifacts.py.)"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contracts import routing
from userprov.runtime.worker import stop_seconds
from userprov.settings import Settings
from userprov_devtools import deploy_manifests

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# the oldest Kubernetes release still supported upstream when this was written, and the newest
# the validator knows
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")


def documents() -> list[dict[str, Any]]:
    return [d for path in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_the_committed_files_are_what_the_code_generates() -> None:
    assert not deploy_manifests.stale(), "run: python -m userprov_devtools.deploy_manifests"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_core_object_is_valid_for_the_kubernetes_api(version: str) -> None:
    core = [d for d in documents() if not d["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/"))]
    assert {d["kind"] for d in core} == {"ConfigMap", "Secret", "Job", "Deployment", "PodDisruptionBudget", "Service",
                                         "HorizontalPodAutoscaler"}
    for document in core:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_a_wrong_field() -> None:
    """So that the test above can fail."""
    broken = of_kind("Deployment")[routing.USER_CREATION]
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_file_but_the_secret_example() -> None:
    [kustomization] = yaml.safe_load_all((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}


class TestEachWorker:
    @pytest.mark.parametrize("service", routing.SERVICES)
    def test_deployment(self, service: str) -> None:
        deployment = of_kind("Deployment")[service]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"] == ["run", service] == compose()[service]["command"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        health = {p["name"]: p["containerPort"] for p in container["ports"]}["health"]
        assert str(health) == of_kind("ConfigMap")["userprov-config"]["data"]["USERPROV_HEALTH_PORT"]
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + stop_seconds(Settings())
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        assert pod["securityContext"]["runAsUser"] == image_uid()
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it

    @pytest.mark.parametrize("service", routing.SERVICES)
    def test_disruption_budget_and_autoscaling(self, service: str) -> None:
        labels = of_kind("Deployment")[service]["spec"]["selector"]["matchLabels"]
        assert of_kind("PodDisruptionBudget")[service]["spec"]["selector"]["matchLabels"] == labels
        scaled = of_kind("ScaledObject")[service]["spec"]
        assert scaled["scaleTargetRef"]["name"] == service and scaled["minReplicaCount"] >= 1
        [trigger] = scaled["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["queueName"] == routing.queue_name(service)
        assert int(trigger["metadata"]["value"]) > 0
        auth = of_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
        [reference] = auth["spec"]["secretTargetRef"]
        secret = of_kind("Secret")[reference["name"]]
        assert reference["parameter"] == "host" and reference["key"] in secret["stringData"]


class TestComposeAgreesWithKubernetes:
    def test_every_setting_named_anywhere_exists(self) -> None:
        known = {f"USERPROV_{name.upper()}" for name in Settings.model_fields}
        named = set(of_kind("ConfigMap")["userprov-config"]["data"])
        named |= {key for secret in of_kind("Secret").values() for key in secret["stringData"]}
        named |= {e["name"] for c in of_kind("Deployment")["links"]["spec"]["template"]["spec"]["containers"] for e in c["env"]}
        named |= {key for name in (*routing.SERVICES, "links") for key in compose()[name]["environment"]}
        named |= {e["name"] for d in TestLanes.deployments().values() for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert named - {"PYTHONDONTWRITEBYTECODE"} <= known

    def test_grace_periods_cover_the_drain(self) -> None:
        grace = re.fullmatch(r"(\d+)s", compose()[routing.USER_CREATION]["stop_grace_period"])
        assert grace and int(grace.group(1)) >= stop_seconds(Settings())

    def test_health_checked_the_same_way(self) -> None:
        for service in routing.SERVICES:
            check = " ".join(compose()[service]["healthcheck"]["test"])
            port = compose()[service]["environment"]["USERPROV_HEALTH_PORT"]
            assert f"127.0.0.1:{port}/readyz" in check

    def test_one_image(self) -> None:
        images = {c["image"].split(":")[0] for d in of_kind("Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]}
        assert images == {compose()[routing.USER_CREATION]["image"].split(":")[0]}


def image_uid() -> int:
    found = re.search(r"--uid (\d+)", (ROOT / "deploy" / "Dockerfile").read_text())
    assert found
    return int(found.group(1))


class TestTheInvitationPage:
    """`userprov links`: a Deployment with probes, a Service, a disruption budget, an HPA on CPU,
    and AMQP credentials of its own (a link handler's), as in docker-compose.yml."""

    def test_deployment_service_and_autoscaler(self) -> None:
        deployment = of_kind("Deployment")["links"]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"] == ["links"] == compose()["links"]["command"]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        assert {"name": "USERPROV_LINKS_PORT", "value": str(port)} in container["env"]
        assert str(port) == compose()["links"]["environment"]["USERPROV_LINKS_PORT"]
        assert (container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]) == (
            {"path": "/readyz", "port": "http"}, {"path": "/livez", "port": "http"})
        assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        secrets = [source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source]
        assert secrets == ["userprov-links-secrets"] and "USERPROV_LINKS_FORM_SECRET" in of_kind("Secret")[secrets[0]]["stringData"]
        service = of_kind("Service")["links"]["spec"]
        assert service["selector"] == deployment["spec"]["selector"]["matchLabels"] and service["ports"][0]["targetPort"] == "http"
        scaler = of_kind("HorizontalPodAutoscaler")["links"]["spec"]
        assert scaler["scaleTargetRef"]["name"] == "links" and scaler["minReplicas"] >= 2
        assert scaler["metrics"][0]["resource"]["name"] == "cpu"
        assert "replicas" not in deployment["spec"]


class TestWithoutKeda:
    """deploy/k8s-cpu-autoscaling: the same workers, autoscaled on CPU by plain HPAs."""

    OVERLAY = ROOT / "deploy" / "k8s-cpu-autoscaling"

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_an_autoscaler_per_deployment_valid_for_the_kubernetes_api(self, version: str) -> None:
        autoscalers = list(yaml.safe_load_all((self.OVERLAY / "autoscalers.yaml").read_text()))
        assert sorted(a["spec"]["scaleTargetRef"]["name"] for a in autoscalers) == sorted(routing.SERVICES)  # the page has its own
        for autoscaler in autoscalers:
            kubernetes_validate.validate(autoscaler, version, strict=True)

    def test_the_overlay_deletes_every_keda_object_of_the_base(self) -> None:
        [overlay] = yaml.safe_load_all((self.OVERLAY / "kustomization.yaml").read_text())
        deleted = {(p["kind"], p["metadata"]["name"]) for p in (yaml.safe_load(x["patch"]) for x in overlay["patches"])
                   if p.get("$patch") == "delete"}
        assert deleted == {(d["kind"], d["metadata"]["name"]) for d in documents() if d["apiVersion"].startswith("keda.sh/")}

    def test_kustomize_builds_it_without_keda(self) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip("kubectl (with its kustomize) is not installed")
        built = subprocess.run([kubectl, "kustomize", str(self.OVERLAY)], capture_output=True, text=True, timeout=60, check=True)
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout))
        per_deployment = ["Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"]
        front_doors = 2  # the invitation page and SCIM, each behind a Service
        assert kinds == sorted(["ConfigMap", "Job"] + ["Service"] * front_doors + per_deployment * (len(routing.SERVICES) + front_doors))


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


class TestLanes:
    """deploy/k8s-lanes: every service in an interactive and a bulk Deployment, ranked on a busy
    node by their CPU requests (each pod's cgroup weight), not by niceness."""

    OVERLAY = ROOT / "deploy" / "k8s-lanes"

    @classmethod
    def objects(cls) -> list[dict[str, Any]]:
        return list(yaml.safe_load_all((cls.OVERLAY / "lanes.yaml").read_text()))

    @classmethod
    def deployments(cls) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in cls.objects() if d["kind"] == "Deployment"}

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_every_core_object_is_valid_for_the_kubernetes_api(self, version: str) -> None:
        core = [d for d in self.objects() if not d["apiVersion"].startswith("keda.sh/")]
        assert sorted(d["kind"] for d in core) == ["Deployment", "Deployment", "PodDisruptionBudget", "PodDisruptionBudget"]
        for document in core:
            kubernetes_validate.validate(document, version, strict=True)

    def test_each_lane_runs_every_service_and_the_interactive_one_weighs_more(self) -> None:
        deployments = self.deployments()
        assert set(deployments) == {"interactive", "bulk"}
        requests = {}
        for lane, deployment in deployments.items():
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            assert container["args"] == ["run"]
            assert {"name": "USERPROV_LANE", "value": lane} in container["env"]
            assert "cpu" not in container["resources"]["limits"], "a CPU limit throttles even on an idle node, and ranks nothing"
            requests[lane] = millicores(container["resources"]["requests"]["cpu"])
            # the rest as for every worker: probes, security, the grace period, replicas left to KEDA
            base = of_kind("Deployment")[routing.USER_CREATION]["spec"]["template"]["spec"]
            ours = deployment["spec"]["template"]["spec"]
            assert ours["securityContext"] == base["securityContext"]
            assert ours["terminationGracePeriodSeconds"] == base["terminationGracePeriodSeconds"]
            for key in ("startupProbe", "livenessProbe", "readinessProbe", "securityContext", "ports"):
                assert container[key] == base["containers"][0][key], key
            assert "replicas" not in deployment["spec"]
        assert requests["interactive"] >= 4 * requests["bulk"]

    def test_each_lane_scales_on_the_queues_it_consumes(self) -> None:
        scaled = {d["metadata"]["name"]: d["spec"] for d in self.objects() if d["kind"] == "ScaledObject"}
        queues = {lane: {t["metadata"]["queueName"] for t in spec["triggers"]} for lane, spec in scaled.items()}
        # the interactive lane takes every message; the bulk lane the large adds handed to it, and
        # the queue that carries nothing but signals (mailing's)
        assert queues == {"interactive": {routing.queue_name(s) for s in routing.SERVICES},
                          "bulk": {routing.bulk_queue_name(routing.USER_CREATION), routing.queue_name(routing.INVITATION_MAILING)}}
        for lane, spec in scaled.items():
            assert spec["scaleTargetRef"]["name"] == lane and spec["minReplicaCount"] >= 1
            assert all(t["type"] == "rabbitmq" and t["metadata"]["mode"] == "QueueLength" and int(t["metadata"]["value"]) > 0
                       for t in spec["triggers"])
            assert {t["authenticationRef"]["name"] for t in spec["triggers"]} == set(of_kind("TriggerAuthentication"))

    def test_the_overlay_replaces_every_worker_of_the_base(self) -> None:
        [overlay] = yaml.safe_load_all((self.OVERLAY / "kustomization.yaml").read_text())
        deleted = {(p["kind"], p["metadata"]["name"]) for p in (yaml.safe_load(x["patch"]) for x in overlay["patches"])
                   if p.get("$patch") == "delete"}
        assert deleted == {(d["kind"], d["metadata"]["name"]) for d in documents()
                           if d["kind"] in ("Deployment", "PodDisruptionBudget", "ScaledObject") and d["metadata"]["name"] in routing.SERVICES}

    def test_kustomize_builds_it(self) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip("kubectl (with its kustomize) is not installed")
        built = subprocess.run([kubectl, "kustomize", str(self.OVERLAY)], capture_output=True, text=True, timeout=60, check=True)
        names = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built.stdout) if d["kind"] in ("Deployment", "ScaledObject"))
        assert names == [("Deployment", "bulk"), ("Deployment", "interactive"), ("Deployment", "links"), ("Deployment", "scim"),
                         ("ScaledObject", "bulk"), ("ScaledObject", "interactive")]
