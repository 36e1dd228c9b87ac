"""What a front door takes a URL from: a Host header only when it is a host, and
USERPROV_SCIM_BASE_URL only when it is an absolute http(s) URL."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from userprov.front_doors.host_header import request_host
from userprov.settings import Settings


def scope(*hosts: bytes) -> dict[str, object]:
    return {"headers": [(b"accept", b"*/*"), *((b"host", host) for host in hosts)]}


@pytest.mark.parametrize("host", [b"scim.example.com", b"SCIM.Example.com.", b"scim.example.com:443", b"10.0.0.7", b"10.0.0.7:8090",
                                  b"[2001:db8::7]", b"[::1]:8090", b"localhost", b"a" * 63 + b".example"])
def test_a_host_is_one(host: bytes) -> None:
    assert request_host(scope(host)) == host.decode()


@pytest.mark.parametrize("host", [b"", b"caf\xc3\xa9.example", b"sc\xffim.example", b"evil.example/scim", b"user@evil.example",
                                  b"evil example", b"[::1", b"::1", b"evil.example:", b"evil.example:123456", b":8090",
                                  b"-evil.example", b"evil-.example", b"a" * 64 + b".example", b"x." * 200 + b"example",
                                  b"evil..example", b"https://evil.example", b"evil.example\x00", b"evil.example\r\nX: 1"])
def test_anything_else_is_none(host: bytes) -> None:
    assert request_host(scope(host)) is None


def test_no_host_or_two_is_none() -> None:
    assert request_host(scope()) is None
    assert request_host(scope(b"one.example", b"two.example")) is None
    assert request_host({"headers": [(b"Host", b"scim.example.com")]}) == "scim.example.com"


def test_the_scim_base_url_is_an_absolute_http_url() -> None:
    assert Settings(scim_base_url="https://scim.example.com/scim/v2/").scim_base_url == "https://scim.example.com/scim/v2"
    assert Settings().scim_base_url is None
    for wrong in ("scim.example.com/scim/v2", "/scim/v2", "ftp://scim.example.com/scim/v2", "https://scim.example.com/scim/v2?x=1",
                  "https://u:p@scim.example.com/scim/v2", "https:///scim/v2"):
        with pytest.raises(ValidationError):
            Settings(scim_base_url=wrong)


def test_a_front_doors_start_line_names_the_broker_without_credentials() -> None:
    settings = Settings(amqp_url="amqp://rabbituser9:s3cret@rabbit-0.example.com:5673/prod,amqp://rabbituser9:s3cret@rabbit-1.example.com/prod")
    assert settings.broker_endpoint() == "rabbit-0.example.com:5673, rabbit-1.example.com:5672 vhost prod"
