"""The userprov documentation site: Sphinx, MyST Markdown, the furo theme. Built by
scripts/docs (strict: warnings are errors, every link and cross-reference must resolve).

About these choices:
- Sphinx with MyST rather than MkDocs: the reference is generated from the code at each build
  (docs/_ext), and Sphinx's cross-reference roles (`envvar`, `option`, and the `message` and
  `metric` roles declared here) make every link from a hand-written page to a setting, option,
  message or metric checked by the build (`-n`): a renamed setting breaks the build, not the
  reader. MkDocs checks links to pages and headings, not to names in the code.
- furo: a maintained theme, readable on a phone, with a light and a dark mode.
- Diagrams with Graphviz (`sphinx.ext.graphviz`, Debian's `dot`), drawn as SVG when the site is
  built, on this machine and offline: Mermaid in Sphinx draws in the reader's browser with
  JavaScript fetched from a CDN. The README's picture is Mermaid, which GitHub draws itself.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "userprov"
author = "the userprov developers"
copyright = "the userprov developers"
from userprov import __version__ as release  # noqa: E402

version = release

extensions = ["myst_parser", "sphinx.ext.graphviz", "userprov_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["deflist", "colon_fence", "attrs_inline"]
myst_heading_anchors = 4  # every heading down to #### is a link target: file.md#its-slug
nitpicky = True

graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"userprov {release}"
