"""What a front door's listening address says: whether only this machine reaches it (a local
run, not a deployment), and the URL this machine reaches it at."""
from __future__ import annotations

import ipaddress


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a host name


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`: nothing but this machine connects."""
    address = _address(host)
    return address.is_loopback if address is not None else host.lower().rstrip(".") == "localhost"


def local_url(host: str, port: int, path: str) -> str:
    """Where this machine reaches a server listening on host:port. A wildcard address (0.0.0.0,
    ::: every interface) is no address to connect to: 127.0.0.1 instead."""
    address = _address(host) if host else ipaddress.ip_address("0.0.0.0")
    if address is not None and address.is_unspecified:
        host = "127.0.0.1"
    elif address is not None and address.version == 6:
        host = f"[{address}]"
    return f"http://{host}:{port}{path}"
