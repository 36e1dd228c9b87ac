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
    pattern = _links_pattern(links)
    rendered = "\n".join(f"<p>{_with_anchors(p, pattern)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{rendered}\n</body></html>\n'
    )


def anchor(link: str) -> str:
    """The anchor a link becomes in the HTML part."""
    url = html.escape(link)
    return f'<a href="{url}">{url}</a>'


def _links_pattern(links: Iterable[str]) -> re.Pattern[str] | None:
    # the longest first: an accept link starts with the plain link
    wanted = sorted({link for link in links if link}, key=len, reverse=True)
    return re.compile("|".join(re.escape(link) for link in wanted)) if wanted else None


def _with_anchors(paragraph: str, pattern: re.Pattern[str] | None) -> str:
    out, last = [], 0
    for match in pattern.finditer(paragraph) if pattern is not None else ():
        out.append(_escaped(paragraph[last : match.start()]))
        out.append(anchor(match.group(0)))
        last = match.end()
    out.append(_escaped(paragraph[last:]))
    return "".join(out)


def _escaped(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")
