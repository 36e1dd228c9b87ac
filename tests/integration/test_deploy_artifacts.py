"""The deployment files against the real things they configure: the RabbitMQ definitions file
imported into the real broker is the topology the workers declare, and the KEDA objects pass
KEDA's CRD schema (kubernetes-models, generated from KEDA's CRDs, in Node.js). There is no
Kubernetes cluster here: the core objects are validated against the API's schemas in
tests/unit/test_k8s_manifests.py, not applied."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
import yaml
from aio_pika.abc import AbstractConnection
from structlog.testing import capture_logs

from contracts import routing
from tests.support.infra import drop_vhost, rabbitmqctl
from userprov.runtime.topology import declare_topology, definitions, service_queue_arguments
from userprov.settings import Settings
from userprov_devtools.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
KEDA_SCHEMA = Path(__file__).parents[1] / "keda_schema"


class TestRabbitMqDefinitions:
    async def test_the_definitions_file_is_the_topology_the_workers_declare(self) -> None:
        committed = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
        vhost = f"userprov_defs_{uuid.uuid4().hex[:8]}"
        renamed = json.loads(json.dumps(committed).replace(f'"vhost": "{committed["vhosts"][0]["name"]}"', f'"vhost": "{vhost}"'))
        renamed["vhosts"] = [{"name": vhost}]
        assert renamed == definitions(Settings().delivery_limit, vhost)
        # rabbitmqctl runs as the broker's user: the file must be readable outside pytest's private tmp
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(renamed, file)
            file.flush()
            os.chmod(file.name, 0o644)
            rabbitmqctl("import_definitions", file.name)
        try:
            rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            queues = {q["name"] for q in json.loads(rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name"))}
            assert queues == set(routing.work_queue_names()) | {routing.parking_queue_name(s) for s in routing.SERVICES}
            connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
            try:
                # a declaration that differs in any argument would close the channel (406)
                await declare_topology(connection, Settings().delivery_limit)
                with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                    await declare_topology(connection, Settings().delivery_limit + 1)
            finally:
                await connection.close()
            bindings = json.loads(rabbitmqctl("list_bindings", "-p", vhost, "--formatter", "json",
                                              "source_name", "destination_name", "routing_key"))
            declared = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in bindings if b["source_name"]}
            assert declared == {(b["source"], b["destination"], b["routing_key"]) for b in renamed["bindings"]}
        finally:
            drop_vhost(vhost)


def keda_objects() -> list[dict[str, Any]]:
    return [
        d for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())
        if d["apiVersion"].startswith("keda.sh/")
    ]


def validate_keda(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("validating the KEDA objects needs Node.js 20 and npm")
    wanted = json.loads((KEDA_SCHEMA / "package.json").read_text())["dependencies"]
    if not all((KEDA_SCHEMA / "node_modules" / name).is_dir() for name in wanted):  # none yet, or an older install
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=KEDA_SCHEMA, check=True, timeout=600)
    return subprocess.run(["node", "validate-keda.mjs"], cwd=KEDA_SCHEMA, input=json.dumps(objects),
                          capture_output=True, text=True, timeout=120)


class TestKedaObjects:
    def test_valid_against_the_crd_schema(self) -> None:
        objects = keda_objects()
        assert sorted(d["kind"] for d in objects) == ["ScaledObject"] * len(routing.SERVICES) + ["TriggerAuthentication"]
        done = validate_keda(objects)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("ok ") == len(objects)

    def test_the_lanes_overlay_valid_against_the_crd_schema(self) -> None:
        objects = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s-lanes" / "lanes.yaml").read_text())
                   if d["apiVersion"].startswith("keda.sh/")]
        assert [d["kind"] for d in objects] == ["ScaledObject", "ScaledObject"]
        done = validate_keda(objects)
        assert done.returncode == 0 and done.stdout.count("ok ") == 2, done.stdout + done.stderr

    def test_the_schema_check_can_fail(self) -> None:
        [scaled, *_] = [d for d in keda_objects() if d["kind"] == "ScaledObject"]
        scaled["spec"]["minReplicaCount"] = "one"
        del scaled["spec"]["triggers"][0]["type"]
        done = validate_keda([scaled])
        assert done.returncode == 1 and "minReplicaCount must be integer" in done.stdout


class TestMonitoringObjects:
    """The PodMonitor and PrometheusRule for prometheus-operator, against its CRD schemas."""

    def objects(self) -> list[dict[str, Any]]:
        return [d for path in sorted((ROOT / "deploy" / "k8s" / "monitoring").glob("*.yaml"))
                for d in yaml.safe_load_all(path.read_text()) if d["apiVersion"] == "monitoring.coreos.com/v1"]

    def test_valid_against_the_crd_schema_with_absolute_runbook_links(self) -> None:
        objects = self.objects()
        assert sorted(d["kind"] for d in objects) == ["PodMonitor", "PrometheusRule"]
        done = validate_keda(objects)
        assert done.returncode == 0 and done.stdout.count("ok ") == 2, done.stdout + done.stderr
        [rule] = [d for d in objects if d["kind"] == "PrometheusRule"]
        links = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
        assert links and all(link.startswith("https://") and "#" in link for link in links)
        [monitor] = [d for d in objects if d["kind"] == "PodMonitor"]
        assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"  # the port the Deployments name

    def test_the_schema_check_can_fail(self) -> None:
        [monitor] = [d for d in self.objects() if d["kind"] == "PodMonitor"]
        monitor["spec"]["podMetricsEndpoints"] = "metrics"
        done = validate_keda([monitor])
        assert done.returncode == 1 and "FAIL PodMonitor/userprov" in done.stdout


@pytest.fixture
async def empty_vhost() -> AsyncIterator[tuple[str, AbstractConnection]]:
    """A vhost of its own, with nothing declared yet, and a connection to it."""
    vhost = f"userprov_parking_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
        try:
            yield vhost, connection
        finally:
            await connection.close()
    finally:
        drop_vhost(vhost)


class TestParkingQueues:
    """Nothing leaves a parking queue except by replay or purge: each is declared with a delivery
    limit no parked message reaches (RabbitMQ 4 would give it 20, and `parked list` gives back
    what it read by closing its channel, which counts as a delivery)."""

    async def test_declared_with_the_highest_delivery_limit_and_a_message_outlives_many_reads(
        self, empty_vhost: tuple[str, AbstractConnection]
    ) -> None:
        vhost, connection = empty_vhost
        await declare_topology(connection, Settings().delivery_limit)
        queues = json.loads(rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name", "arguments"))
        arguments = {q["name"]: {a[0]: a[-1] for a in q["arguments"]} for q in queues}  # [key, type, value]
        for service in routing.SERVICES:
            assert arguments[routing.parking_queue_name(service)]["x-delivery-limit"] == 2**31 - 1
        assert {q["name"]: arguments[q["name"]]["x-quorum-initial-group-size"] for q in queues} == {q["name"]: 3 for q in queues}
        parking = routing.parking_queue_name(routing.USER_CREATION)
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(b"{}", message_id="parked-forever"), routing_key=parking)
        for _ in range(25):  # as `parked list` reads: basic.get, then the channel closes
            reader = await connection.channel()
            queue = await reader.get_queue(parking, ensure=False)
            assert (await eventually(lambda q=queue: q.get(no_ack=False, fail=False), 10)).message_id == "parked-forever"
            await reader.close()
        queue = await channel.get_queue(parking, ensure=False)
        assert (await eventually(lambda: queue.get(no_ack=True, fail=False), 10)).message_id == "parked-forever"

    async def test_a_parking_queue_declared_by_an_earlier_version_is_used_as_it_is(
        self, empty_vhost: tuple[str, AbstractConnection]
    ) -> None:
        vhost, connection = empty_vhost
        old = await connection.channel()
        await old.declare_queue(routing.parking_queue_name(routing.USER_CREATION), durable=True, arguments={"x-queue-type": "quorum"})
        with capture_logs() as logs:
            await declare_topology(connection, Settings().delivery_limit)
        assert [e["name"] for e in logs if e["event"] == "declared_differently_by_an_earlier_version"] == [
            routing.parking_queue_name(routing.USER_CREATION)]
        bindings = rabbitmqctl("list_bindings", "-p", vhost, "destination_name", "routing_key")
        assert routing.parking_queue_name(routing.USER_CREATION) in bindings

    async def test_a_service_queue_created_before_its_replica_count_was_declared_is_used_as_it_is(
        self, empty_vhost: tuple[str, AbstractConnection]
    ) -> None:
        """RabbitMQ refuses to declare a queue again with an x-quorum-initial-group-size it was not
        created with; the count matters only at creation, so the queue is used as it is."""
        vhost, connection = empty_vhost
        old = await connection.channel()
        queue = routing.queue_name(routing.USER_CREATION)
        await old.declare_queue(queue, durable=True, arguments={
            k: v for k, v in service_queue_arguments(routing.USER_CREATION, Settings().delivery_limit).items()
            if k != "x-quorum-initial-group-size"})
        with capture_logs() as logs:
            await declare_topology(connection, Settings().delivery_limit)
        assert [e["name"] for e in logs if e["event"] == "declared_differently_by_an_earlier_version"] == [queue]
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):  # a delivery limit of its own is still refused
            await declare_topology(connection, Settings().delivery_limit + 1)
