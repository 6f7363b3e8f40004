"""The translations cover the templates: every text the pages show has a translation in
every shipped catalogue, and no catalogue keeps texts the templates no longer have."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from debtgate.portal import pages

TEMPLATES = pages.SHIPPED
CATALOGUES = sorted(TEMPLATES.parent.glob("locale/*/LC_MESSAGES/messages.po"))


def source_texts() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(TEMPLATES), method_map=[("*.html", "jinja2.ext:babel_extract")],
            options_map={"*.html": {"trimmed": "false"}}):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def test_the_templates_have_texts_to_translate() -> None:
    texts = source_texts()
    assert "Your Internet access is paused until payment" in texts
    assert ("%(count)s day", "%(count)s days") in texts
    assert len(texts) > 80


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parents[1].name)
def test_every_text_is_translated_and_none_is_stale(po: Path) -> None:
    with po.open("rb") as fh:
        catalog = read_po(fh)
    texts = source_texts()
    ids = {m.id if isinstance(m.id, str) else (m.id[0], m.id[1]) for m in catalog if m.id}
    assert not texts - ids, f"untranslated in {po}: {sorted(map(str, texts - ids))}"
    assert not ids - texts, f"stale in {po}: {sorted(map(str, ids - texts))}"
    for message in catalog:
        if message.id:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings) and not message.fuzzy, f"{po}: {message.id!r} untranslated"


def test_russian_is_shipped() -> None:
    assert [p.parents[1].name for p in CATALOGUES] == ["ru"]
