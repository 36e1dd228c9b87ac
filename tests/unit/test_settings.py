"""Settings: an empty variable is unset, a removed one is named, and what a process logs of where it
connects holds no secret."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from structlog.testing import capture_logs

from contracts import routing
from userprov import __version__
from userprov.app import service_run
from userprov.scim.server import sent_in_clear
from userprov.settings import Settings, removed_settings


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USERPROV_HEALTH_PORT", "USERPROV_SMTP_PORT", "USERPROV_SMTP_USERNAME", "USERPROV_DELIVERY_LIMIT"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.health_port is None and settings.smtp_port == 8025 and settings.smtp_username is None
    assert settings.delivery_limit == 20


def test_a_removed_setting_still_set_is_named_and_does_not_stop_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERPROV_LANE_PRIORITY_DIR", "/dev/shm")
    Settings()  # an upgrade with the old variable left in place still starts
    assert list(removed_settings({"USERPROV_LANE_PRIORITY_DIR": "/dev/shm"})) == ["USERPROV_LANE_PRIORITY_DIR"]
    assert list(removed_settings({"userprov_lane_priority_dir": "x"})) == ["USERPROV_LANE_PRIORITY_DIR"]  # read in any case
    assert removed_settings({"USERPROV_LANE_PRIORITY_DIR": "", "USERPROV_LANE": "bulk"}) == {}  # empty means unset


def test_endpoints_name_hosts_vhost_and_database_without_credentials() -> None:
    settings = Settings(amqp_url="amqp://rabbituser9:s3cret@rabbit.example.com:5673/prod%2Fusers",
                        database_url="postgresql://dbuser7:pa55@db.example.com/userprov_prod", smtp_host="smtp.example.com")
    endpoints = settings.endpoints()
    assert endpoints == {"broker": "rabbit.example.com:5673 vhost prod/users", "database": "db.example.com:5432/userprov_prod",
                         "smtp": "smtp.example.com:8025"}
    assert not any(secret in str(endpoints) for secret in ("s3cret", "pa55", "rabbituser9", "dbuser7"))


def test_a_database_url_with_several_hosts_names_each() -> None:
    settings = Settings(database_url="postgresql://u:pa55@db-1.example.com:5433,db-2.example.com,[::1]:5434,[::2]/userprov"
                                     "?target_session_attrs=read-write")
    assert settings.endpoints()["database"] == "db-1.example.com:5433,db-2.example.com:5432,[::1]:5434,[::2]:5432/userprov"


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "userprov", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"userprov {__version__}\n"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings().proxies() == []  # by default none: the TCP peer is the client
    assert Settings(trusted_proxies="10.0.0.7/8, 192.0.2.7,,2001:db8::/32").proxies() == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    with pytest.raises(ValueError, match="'ingress.example.com' is no address or network"):
        Settings(trusted_proxies="10.0.0.0/8,ingress.example.com")


def test_links_lead_to_the_page_on_its_port_unless_the_base_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERPROV_LINKS_PORT", "28080")  # the workers read it as `userprov links` does
    assert Settings().link_base() == "http://127.0.0.1:28080/invitation"
    monkeypatch.setenv("USERPROV_LINKS_HOST", "::1")
    assert Settings().link_base() == "http://[::1]:28080/invitation"
    for wildcard in ("0.0.0.0", "::"):  # no address to link to: this machine's
        monkeypatch.setenv("USERPROV_LINKS_HOST", wildcard)
        assert Settings().link_base() == "http://127.0.0.1:28080/invitation"
    monkeypatch.setenv("USERPROV_LINK_BASE_URL", "https://links.example.com/invitation")
    assert Settings().link_base() == "https://links.example.com/invitation"
    assert Settings().local_link_base() == "http://127.0.0.1:28080/invitation"  # the demo's page, whatever the base says
    monkeypatch.setenv("USERPROV_LINK_BASE_URL", "")  # empty is unset
    assert Settings().link_base() == "http://127.0.0.1:28080/invitation"


def test_mailing_warns_at_start_when_links_lead_to_this_machine_in_a_deployment() -> None:
    def warnings(**given: object) -> list[dict[str, object]]:
        with capture_logs() as logs:
            service_run(Settings(**given), routing.INVITATION_MAILING)
        return [entry for entry in logs if entry["log_level"] == "warning"]

    [unset] = warnings(links_host="0.0.0.0")
    assert (unset["event"], unset["links_to"]) == ("link_base_url_unset", "http://127.0.0.1:8080/invitation")
    assert [w["event"] for w in warnings(links_host="192.0.2.7")] == ["link_base_url_unset"]
    assert warnings() == [] and warnings(links_host="localhost") == []  # a local run: its page is this machine's
    assert warnings(links_host="0.0.0.0", link_base_url="https://links.example.com/invitation") == []


@pytest.mark.parametrize(("command", "variable", "value", "says"), [
    (["scim", "serve"], "USERPROV_SCIM_BASE_URL", "scim.example.com/scim/v2", "USERPROV_SCIM_BASE_URL must be an http(s) URL"),
    (["scim", "serve"], "USERPROV_SCIM_BASE_URL", "https://scim.example.com/scim/v2?x=1", "it has a query"),
    (["migrate"], "USERPROV_SMTP_PORT", "twenty-five", "USERPROV_SMTP_PORT: Input should be a valid integer"),
    (["links"], "USERPROV_LINKS_PORT", "-1", "USERPROV_LINKS_PORT: Input should be greater than or equal to 1"),
])
def test_a_bad_setting_is_one_line_and_exit_2(command: list[str], variable: str, value: str, says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "userprov", *command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, variable: value})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("userprov: ") and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "pydantic" not in done.stderr


def test_an_http_base_url_off_the_loopback_is_warned_of() -> None:
    assert sent_in_clear("http://scim.example.com/scim/v2") and sent_in_clear("http://192.0.2.7:8080/scim/v2")
    assert not sent_in_clear("https://scim.example.com/scim/v2")
    assert not any(map(sent_in_clear, ("http://127.0.0.1:8090/scim/v2", "http://localhost/scim/v2", "http://[::1]/scim/v2")))
