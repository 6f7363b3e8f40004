"""Rendering of the portal pages: Jinja2 templates, facts formatting, payment QR."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import segno
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from markupsafe import Markup

from debtgate.config.portal import PortalConfig
from debtgate.model import State
from debtgate.portal.i18n import format_date, format_money, mask_account, minor_units
from debtgate.portal.urls import Original, portal_redirect, sanitize_url
from debtgate.view import SubscriberView

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "templates"
"""The templates shipped with debtgate (English source texts; translations in
``locale/``)."""

LANGUAGE_NAMES = {"ru": "Русский", "en": "English", "uk": "Українська", "kk": "Қазақша",
                  "be": "Беларуская", "de": "Deutsch", "tt": "Татарча"}
"""Language switch labels, each in its own language."""

STATE_PAGES = {s: s.value for s in State}


@dataclass(frozen=True, slots=True)
class Link:
    """A payment link ready to show."""

    title: str
    url: str


def fill_template(template: str, view: SubscriberView) -> str | None:
    """Fill ``{amount}``, ``{amount_kopecks}``, ``{account}``, ``{currency}`` of a URL
    template; None if the result is not a safe http(s) URL."""
    amount = max(view.amount_due, Decimal(0))
    fields = {
        "amount": f"{amount:.2f}",
        "amount_kopecks": str(minor_units(amount, view.currency or "RUB")),
        "account": quote(view.account, safe=""),
        "currency": quote(view.currency, safe=""),
    }
    return sanitize_url(template.format_map(fields))


@functools.lru_cache(maxsize=512)
def qr_svg(url: str, label: str) -> Markup:
    """An inline, scalable SVG QR code of ``url`` (segno), labelled for screen readers."""
    qr = segno.make(url, error="m", micro=False)
    svg: str = qr.svg_inline(scale=1, border=2, omitsize=True, title=label, svgclass="qr",
                             lineclass=None, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" shape-rendering="crispEdges" ', 1))  # noqa: S704 - segno output


HTML_CSP_TAIL = ("img-src data:; connect-src 'self'; form-action 'self' http: https:; "
                 "base-uri 'none'; frame-ancestors 'none'")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered HTML page and the Content-Security-Policy that lets its own inline
    ``<style>``/``<script>`` elements (and nothing else) run."""

    html: str
    csp: str


@functools.lru_cache(maxsize=256)
def _csp_hash(content: str) -> str:
    digest = hashlib.sha256(content.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _tel(value: str) -> str:
    return re.sub(r"[^0-9+]", "", value)


def load_catalogue(path: Path, lang: str) -> Translations:
    """A gettext catalogue (``.po``) read and compiled in memory (Babel): an operator adds
    a language with one file, no build step."""
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def catalogues(dirs: list[Path]) -> dict[str, Path]:
    """``<dir>/locale/<lang>/LC_MESSAGES/messages.po`` of each directory, the first one
    found winning (the operator's ``templates_dir`` before the shipped one)."""
    found: dict[str, Path] = {}
    for d in dirs:
        for po in sorted(d.glob("locale/*/LC_MESSAGES/messages.po")):
            found.setdefault(po.parents[1].name, po)
    return found


class Pages:
    """The template environments (one per language) and the page contexts.

    One set of templates, written in English (``templates/*.html``); every other language
    is a gettext catalogue (``locale/<lang>/LC_MESSAGES/messages.po``) applied through
    Jinja2's i18n extension.
    """

    def __init__(self, config: PortalConfig) -> None:
        self.config = config
        # The operator's templates_dir first: its pages, and its locale/ catalogues.
        first = [config.templates_dir] if config.templates_dir is not None else []
        loader = jinja2.FileSystemLoader([str(d) for d in [*first, SHIPPED]])
        self.envs: dict[str, jinja2.Environment] = {}
        for lang, po in {"en": None, **catalogues([*first, SHIPPED.parent])}.items():
            env = jinja2.Environment(
                loader=loader,
                autoescape=True,
                trim_blocks=True,
                lstrip_blocks=True,
                auto_reload=False,
                extensions=["jinja2.ext.i18n"],
            )
            translations = (load_catalogue(po, lang) if po is not None
                            else NullTranslations())
            env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            env.filters["tel"] = _tel
            self.envs[lang] = env
        # Templates mark their own inline <style>/<script> with nonce="{{ nonce }}". The
        # value is a per-process secret that never leaves the process: after rendering,
        # the marked elements lose the attribute and their contents' SHA-256 hashes go
        # into the CSP, so a page is cacheable and still allows only what the template
        # itself wrote inline.
        self._mark = secrets.token_hex(16)
        self._marked = re.compile(
            r"<(style|script)\b([^>]*?)\snonce=\"" + self._mark + r"\"([^>]*)>(.*?)</\1\s*>",
            re.S | re.I)
        self.languages: tuple[str, ...] = tuple(sorted(self.envs))

    def render(self, name: str, lang: str, **context: Any) -> Rendered:
        """Render ``<lang>/<name>.html`` with its hash-based CSP."""
        env = self.envs.get(lang) or self.envs["en"]
        html = env.get_template(f"{name}.html").render(
            lang=lang, nonce=self._mark, **context)
        hashes: dict[str, list[str]] = {"style": [], "script": []}

        def unmark(m: re.Match[str]) -> str:
            tag = m.group(1).lower()
            hashes[tag].append(_csp_hash(m.group(4)))
            return f"<{m.group(1)}{m.group(2)}{m.group(3)}>{m.group(4)}</{m.group(1)}>"

        html = self._marked.sub(unmark, html)
        if self._mark in html:  # used outside an inline element: never sent out
            html = html.replace(self._mark, "")
        style = " ".join(dict.fromkeys(hashes["style"])) or "'none'"
        script = " ".join(dict.fromkeys(hashes["script"])) or "'none'"
        csp = f"default-src 'none'; style-src {style}; script-src {script}; {HTML_CSP_TAIL}"
        return Rendered(html, csp)

    def common(self, lang: str, original: Original | None) -> dict[str, Any]:
        """Context every page gets."""
        cfg = self.config
        return {
            "operator": cfg.operator_name,
            "contacts": cfg.contacts,
            "original_url": original.url if original else None,
            "original_sig": original.sig if original else None,
            "portal_url": portal_redirect(cfg.public_url, original, lang),
            "languages": [
                (code, LANGUAGE_NAMES.get(code, code),
                 portal_redirect("/", original, code))
                for code in self.languages
            ],
            "poll": False,
            "poll_interval": cfg.poll_interval,
            "cabinet_url": cfg.cabinet_url,
        }

    def subscriber(self, view: SubscriberView, lang: str) -> dict[str, Any]:
        """Facts and ways to pay of one subscriber, formatted for ``lang``."""
        cfg = self.config
        owes = view.amount_due > 0
        amount = format_money(view.amount_due, view.currency, lang) if owes else ""
        links = []
        for link in cfg.payment_links:
            url = fill_template(link.url, view)
            if url:
                links.append(Link(link.title, url))
        sbp_url = fill_template(cfg.sbp_template, view) if cfg.sbp_template and owes else None
        return {
            "state": view.state.value,
            "amount": amount,
            "since": format_date(view.since, lang) if view.since else "",
            "block_at": format_date(view.block_at, lang) if view.block_at else "",
            "account": mask_account(view.account),
            "pay_links": links,
            "sbp_url": sbp_url,
            "sbp_svg": qr_svg(sbp_url, "QR SBP") if sbp_url else None,
            "poll": view.captive and view.state is not State.WARN,
            "ack_minutes": (view.ack_timeout + 59) // 60 if view.ack_timeout else 0,
        }
