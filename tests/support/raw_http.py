"""HTTP/1.x requests written byte for byte (httpx normalises and refuses hostile headers)."""
from __future__ import annotations

import asyncio

# Host headers no client library would send; None: no Host header at all
HOSTILE_HOSTS: dict[str, bytes | None] = {
    "bytes over 0x7f, not UTF-8": b"sc\xffim.\xfe.example",
    "UTF-8 beyond ASCII": "caf\u00e9.example".encode(),
    "latin-1 and a port": b"\xe9t\xe9.example:8090",
    "20,000 characters": b"a" * 20_000,
    "a path and a query": b"evil.example/scim/v2?x=1",
    "credentials": b"user:pass@evil.example",
    "an unclosed IPv6 address": b"[::1",
    "a space": b"evil example",
    "empty": b"",
    "only a port": b":8090",
    "a huge port": b"evil.example:99999999",
    "a scheme": b"https://evil.example",
    "none": None,
}


async def exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (lower-case names) and body of the answer to `request`; the request
    should say `Connection: close`, the answer is read to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunked(body)
    return int(status_line.split(" ")[1]), headers, body


def _dechunked(body: bytes) -> bytes:
    whole = b""
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return whole
        whole, body = whole + rest[:size], rest[size + 2:]


def get(path: str, host: bytes | None, version: str = "HTTP/1.1", extra: bytes = b"") -> bytes:
    """A GET of `path` with this Host header (None: none), closing the connection after."""
    host_line = b"" if host is None else b"Host: " + host + b"\r\n"
    return f"GET {path} {version}\r\n".encode() + host_line + extra + b"Connection: close\r\n\r\n"
