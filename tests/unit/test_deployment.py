from __future__ import annotations

from pathlib import Path

import yaml

from contracts import routing

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

    def test_dockerfile_runs_the_console_script(self) -> None:
        dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
        assert 'ENTRYPOINT ["userprov"]' in dockerfile
