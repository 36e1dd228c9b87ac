"""Sphinx glue for the reference generated from the code (userprov_devtools.reference_docs):
writes the generated pages into docs/_generated/ as each build starts, and declares the
`message` and `metric` targets and roles the pages link with."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx


def _generate(app: Sphinx) -> None:
    from userprov_devtools import reference_docs

    reference_docs.write(Path(app.srcdir) / "_generated")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_crossref_type("message", "message", "pair: %s; message")
    app.add_crossref_type("metric", "metric", "pair: %s; metric")
    app.connect("builder-inited", _generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
