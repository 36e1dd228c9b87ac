"""Renders invitation emails: the account's own template for the language, else the built-in
one for the language, else English. Account templates are user-supplied, so every template
is rendered in Jinja2's immutable sandbox, and one that fails falls back to the built-in."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import structlog
from jinja2 import Template, TemplateError, Undefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.languages import DEFAULT_LANGUAGE

log = structlog.get_logger()

_environment = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, keep_trailing_newline=False)
_URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class AccountTemplate:
    subject: str
    body: str


def template_errors(subject: str, body: str) -> dict[str, str]:
    """Syntax problems of an account template, by part (empty when usable)."""
    problems = {}
    for part, source in (("subject", subject), ("body", body)):
        try:
            parsed = _environment.parse(source)
        except TemplateError as error:
            problems[part] = f"line {getattr(error, 'lineno', '?')}: {error.message}"
            continue
        if part == "body" and "link" not in meta.find_undeclared_variables(parsed):
            problems[part] = "the body must contain {{ link }}"
    return problems


def render_invitation(kind: str, language: str, context: dict[str, Any], account_template: AccountTemplate | None) -> RenderedEmail:
    if account_template is not None and kind == "welcome":
        try:
            body = _render(account_template.body, context)
            if context["link"] in body:
                return _assemble(_render(account_template.subject, context), body)
            log.warning("account_template_unusable", error_type="link_missing")
        except Exception as error:  # noqa: BLE001 - a bad account template must never stop the worker
            log.warning("account_template_unusable", error_type=type(error).__name__)
    subject, body = builtin_template(kind, language)
    return _assemble(_render(subject, context), _render(body, context))


def builtin_template(kind: str, language: str) -> tuple[str, str]:
    """(subject, body) of the built-in template, in the language if there is one, else English."""
    return _builtin(kind, language) or _builtin(kind, DEFAULT_LANGUAGE) or _missing(kind)


@cache
def _builtin(kind: str, language: str) -> tuple[str, str] | None:
    if not re.fullmatch(r"[a-z]{2}", language):
        return None
    source = resources.files("services.invitation_mailing") / "templates" / language / f"{kind}.txt"
    if not source.is_file():
        return None
    subject_line, _, body = source.read_text(encoding="utf-8").partition("\n\n")
    return subject_line.removeprefix("Subject:").strip(), body


def _missing(kind: str) -> tuple[str, str]:
    raise LookupError(f"no built-in {kind} template")


def _render(source: str, context: dict[str, Any]) -> str:
    return _compiled(source).render(context)


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """Templates compile once per process: a batch of thousands renders the same few sources."""
    return _environment.from_string(source)


def _assemble(subject: str, text: str) -> RenderedEmail:
    subject = " ".join(subject.split())[:200]  # one line: nothing reaches other headers
    text = text.strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=text_to_html(subject, text))


def text_to_html(title: str, text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    rendered = "\n".join(f"<p>{_linkify(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{rendered}\n</body></html>\n'
    )


def _linkify(paragraph: str) -> str:
    out, last = [], 0
    for match in _URL.finditer(paragraph):
        out.append(html.escape(paragraph[last : match.start()]).replace("\n", "<br>\n"))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(paragraph[last:]).replace("\n", "<br>\n"))
    return "".join(out)
