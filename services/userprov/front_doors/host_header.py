"""A request's Host header, when it is one: a host name, an IPv4 or a bracketed IPv6 address,
and an optional port. Anything else (several, non-ASCII bytes, spaces, a path, an address with
credentials, over 255 characters) is no host: a front door never builds a URL from it."""
from __future__ import annotations

import re

from userprov.front_doors.asgi import Scope

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"(?:{LABEL}(?:\.{LABEL})*\.?|\[[0-9A-Fa-f:.]{{2,45}}\])(?::[0-9]{{1,5}})?")
LONGEST = 255


def request_host(scope: Scope) -> str | None:
    values = [value for name, value in scope.get("headers", ()) if name.lower() == b"host"]
    if len(values) != 1 or len(values[0]) > LONGEST or not values[0].isascii():
        return None
    host = values[0].decode("ascii")
    return host if HOST.fullmatch(host) else None
