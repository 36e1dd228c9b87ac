"""The HTML part of an invitation email, made from its text: paragraphs, and anchors for the
invitation's own links only, each exactly as sent. Nothing else becomes a link: text next to a
link ("click {{ link }}." or "{{ link }}と") never joins its href, and a URL typed as a
person's name stays text."""
from __future__ import annotations

import html
import re
from collections.abc import Iterable


def text_to_html(title: str, text: str, links: Iterable[str]) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    # the longest first: an accept link starts with the plain link
    wanted = sorted({link for link in links if link}, key=len, reverse=True)
    rendered = "\n".join(f"<p>{_with_anchors(p, wanted)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{rendered}\n</body></html>\n'
    )


def anchor(link: str) -> str:
    """The anchor a link becomes in the HTML part."""
    url = html.escape(link)
    return f'<a href="{url}">{url}</a>'


def _with_anchors(paragraph: str, links: list[str]) -> str:
    """The paragraph escaped, each occurrence of a link an anchor (plain string search: a
    regular expression compiled per email, each with its own token, cost more than the rest of
    the email)."""
    out, at = [], 0
    while links:
        found = [(i, link) for link in links if (i := paragraph.find(link, at)) >= 0]
        if not found:
            break
        start, link = min(found, key=lambda f: (f[0], -len(f[1])))
        out += [_escaped(paragraph[at:start]), anchor(link)]
        at = start + len(link)
    out.append(_escaped(paragraph[at:]))
    return "".join(out)


def _escaped(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")
