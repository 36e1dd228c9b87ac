from __future__ import annotations

import compileall
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def compiled_sources() -> None:
    """The tests start many Python processes of the project (workers, the page, the command line),
    each importing most of it. Where no bytecode is written (PYTHONDONTWRITEBYTECODE, as in some
    containers), each would compile those modules anew, a tenth of a second per worker: they are
    compiled once here instead (into __pycache__, as an import does elsewhere); a checkout that
    cannot be written to is left as it is."""
    if sys.dont_write_bytecode:
        for folder in ("services", "contracts", "tests"):
            compileall.compile_dir(ROOT / folder, quiet=2)
