"""Renders invitation emails: the account's own template for the language, else the built-in
one for the language, else English. Account templates are tenant code: they render in the
bounded sandbox (userprov.sandbox), and one that fails falls back to the built-in, saying so."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal, cast

import structlog
from jinja2 import Template

from contracts.events import TemplateFallback
from userprov.invitation_mailing.html_part import text_to_html
from userprov.languages import DEFAULT_LANGUAGE
from userprov.runtime import metrics
from userprov.sandbox.environment import sandboxed_environment
from userprov.sandbox.pool import RenderFailed, TemplateSandbox
from userprov.sandbox.trial import AccountTemplate

log = structlog.get_logger()

_environment = sandboxed_environment()  # built-in templates: trusted, rendered in process


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    template: Literal["account", "builtin"] = "builtin"
    fallback: TemplateFallback | None = None  # why the account's template was not used, when it was not


async def render_invitation(
    kind: str, language: str, context: dict[str, Any], account_template: AccountTemplate | None, sandbox: TemplateSandbox
) -> RenderedEmail:
    """The account's welcome template when there is one and it renders, in the sandbox, with the
    link; else the built-in email, saying why the account's was not used."""
    fallback: TemplateFallback | None = None
    if account_template is not None and kind == "welcome":
        try:
            parts = await sandbox.render({"subject": account_template.subject, "body": account_template.body}, context)
            if context["link"] in parts["body"]:
                return replace(_assemble(parts["subject"], parts["body"], context), template="account")
            fallback = "link_missing"
        except RenderFailed as failure:
            fallback = cast(TemplateFallback, failure.code)
        log.warning("account_template_unusable", reason=fallback)
        metrics.TEMPLATE_FALLBACKS.labels(fallback).inc()
    subject, body = builtin_template(kind, language)
    return replace(_assemble(_render(subject, context), _render(body, context), context), fallback=fallback)


def builtin_template(kind: str, language: str) -> tuple[str, str]:
    """(subject, body) of the built-in template, in the language if there is one, else English."""
    return _builtin(kind, language) or _builtin(kind, DEFAULT_LANGUAGE) or _missing(kind)


@cache
def _builtin(kind: str, language: str) -> tuple[str, str] | None:
    if not re.fullmatch(r"[a-z]{2}", language):
        return None
    source = resources.files("userprov.invitation_mailing") / "templates" / language / f"{kind}.txt"
    if not source.is_file():
        return None
    subject_line, _, body = source.read_text(encoding="utf-8").partition("\n\n")
    return subject_line.removeprefix("Subject:").strip(), body


def _missing(kind: str) -> tuple[str, str]:
    raise LookupError(f"no built-in {kind} template")


def _render(source: str, context: dict[str, Any]) -> str:
    return _compiled(source).render(context)


@lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    """Built-in templates compile once per process."""
    return _environment.from_string(source)


def _assemble(subject: str, text: str, context: dict[str, Any]) -> RenderedEmail:
    subject = " ".join(subject.split())[:200]  # one line: nothing reaches other headers
    text = text.strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=text_to_html(subject, text, invitation_links(context)))


def invitation_links(context: dict[str, Any]) -> list[str]:
    """The links of the invitation: the only text its HTML part makes anchors of."""
    return [context[key] for key in ("link", "accept_link", "decline_link") if isinstance(context.get(key), str)]
