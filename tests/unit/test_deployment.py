from __future__ import annotations

import re
from pathlib import Path

import yaml

from contracts import routing
from userprov.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class TestDockerCompose:
    """docker-compose.yml runs every worker from the one image, the way `userprov run` starts them."""

    def test_one_compose_service_per_worker(self) -> None:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        services = compose["services"]
        for name in routing.SERVICES:
            assert services[name]["command"] == ["run", name]
            assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
            assert services[name]["environment"]["USERPROV_SMTP_HOST"] == "mailcatcher"
        assert services["migrate"]["command"] == ["migrate"]
        assert {"rabbitmq", "postgres", "mailcatcher"} <= set(services)

    def test_every_image_of_others_is_pinned(self) -> None:
        """A `latest` image changes under the demo without notice; userprov's own image is built here."""
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        images = {s["image"] for s in compose["services"].values() if "image" in s and not s["image"].startswith("userprov:")}
        assert images and all(":" in i and not i.endswith(":latest") for i in images), images

    def test_its_host_ports_leave_the_local_servers_theirs_and_the_page_names_them(self) -> None:
        """Compose once published PostgreSQL on 55432, where scripts/services-up starts a cluster of
        userprov's own, and the page and SCIM on 8080 and 8090, where `userprov links` and `userprov
        scim serve` listen by default; while its page said it published none of the usual ports."""
        services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
        published = {name: [int(str(port).split(":")[0]) for port in service.get("ports", [])] for name, service in services.items()}
        own_postgres = int(re.findall(r"USERPROV_OWN_POSTGRES_PORT:-(\d+)", (ROOT / "scripts" / "services-up").read_text())[0])
        defaults = {Settings.model_fields[f].default for f in ("links_port", "scim_port", "smtp_port")}
        local = {5672, 15672, 5432, own_postgres, *defaults}
        assert local & {port for ports in published.values() for port in ports} == set(), published
        # the links in the emails lead to the page as the host publishes it, SCIM's locations to SCIM
        [links_port], [scim_port] = published["links"], published["scim"]
        base_urls = {service["environment"]["USERPROV_LINK_BASE_URL"] for service in services.values() if "environment" in service
                     and "USERPROV_LINK_BASE_URL" in service["environment"]}
        assert base_urls == {f"http://localhost:{links_port}/invitation"}
        assert services["scim"]["environment"]["USERPROV_SCIM_BASE_URL"] == f"http://localhost:{scim_port}/scim/v2"
        page = (ROOT / "docs" / "how-to" / "run-workers.md").read_text().split("## With Docker Compose", 1)[1]
        for name, ports in published.items():
            assert all(str(port) in page for port in ports), (name, ports)

    def test_dockerfile_runs_the_console_script(self) -> None:
        dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
        assert 'ENTRYPOINT ["userprov"]' in dockerfile


class TestWhatTheImageHolds:
    """The workers' image holds the workers only: no demo, benchmark, bus client or mail catcher."""

    def test_the_image_copies_no_development_tools(self) -> None:
        dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
        copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY")]
        assert "services/userprov" in copied and not any("devtools" in c or c == "services" for c in copied)

    def test_no_worker_module_imports_the_development_tools(self) -> None:
        import ast

        for path in (ROOT / "services" / "userprov").rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    assert not (node.module or "").startswith("userprov_devtools"), path
                elif isinstance(node, ast.Import):
                    assert not any(a.name.startswith("userprov_devtools") for a in node.names), path

    def test_the_front_doors_use_only_the_public_interface(self) -> None:
        """The page and SCIM import the contracts and the public bus client, never a service's
        tables, SQL, lifecycle or runtime (nor does the public bus client)."""
        import ast

        allowed = ("contracts", "userprov.links", "userprov.scim", "userprov.front_doors", "userprov.public_bus",
                   "userprov.broker_nodes", "userprov.settings", "userprov.tokens")
        doors = ROOT / "services" / "userprov"
        paths = [*(doors / "links").rglob("*.py"), *(doors / "scim").rglob("*.py"), *(doors / "front_doors").rglob("*.py"),
                 doors / "public_bus.py"]
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(
                    node, ast.Import) else []
                for name in names:
                    if name.split(".")[0] in ("userprov", "contracts"):
                        assert name.startswith(allowed), f"{path.name} imports {name}"

    def test_the_smtp_server_library_is_not_a_runtime_dependency(self) -> None:
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert not any(d.startswith("aiosmtpd") for d in project["dependencies"])
