"""Asking a worker's health endpoint."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of GET `path` on the worker's health port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
