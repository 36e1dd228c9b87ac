"""What a PostgreSQL URL names: its database and hosts (several, for a failover)."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def host_of(url: str) -> str:
    """host:port of each host the URL names, comma-separated; never its credentials."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    return ",".join(_with_port(host) for host in hosts.split(",")) if hosts else "localhost:5432"


def _with_port(host: str) -> str:
    has_port = host.rpartition("]")[2].count(":") == 1 if host.startswith("[") else ":" in host
    return host if has_port else f"{host}:5432"
