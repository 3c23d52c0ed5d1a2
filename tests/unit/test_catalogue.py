"""The German catalogue is complete: every message the code and templates mark today has a German translation with
the same placeholders, nothing is fuzzy, and the compiled catalogue is what the app loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.lib.i18n import gettext as _
from app.lib.i18n import translations, use_locale

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "src/app/translations/de/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")


def ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return (message_id,) if isinstance(message_id, str) else tuple(message_id)


@pytest.fixture(scope="module")
def marked() -> set[str]:
    """Every message id marked in the source today, extracted exactly as `make i18n` does (babel.cfg)."""
    found: set[str] = set()
    with (ROOT / "babel.cfg").open() as config:
        from babel.messages.frontend import parse_mapping_cfg

        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "lazy_gettext": None}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(ids(message)[0])
    return found


@pytest.fixture(scope="module")
def german() -> Catalog:
    with CATALOGUE.open("rb") as file:
        return read_po(file, locale="de")


def translated(message: Message) -> bool:
    strings = ids(message.string)
    return bool(strings) and all(strings)


def test_every_marked_message_has_a_german_translation(marked: set[str], german: Catalog) -> None:
    assert {"Sign out everywhere else", "This slot is full."} <= marked  # templates and Python both read
    missing = sorted(m for m in marked if m and (german.get(m) is None or not translated(german[m])))
    assert missing == []


def test_no_german_translation_is_fuzzy(german: Catalog) -> None:
    assert [m.id for m in german if m.id and m.fuzzy] == []


def test_every_german_translation_keeps_the_placeholders_of_its_english_source(german: Catalog) -> None:
    wrong = []
    for message in german:
        if not message.id:
            continue
        english = {name for text in ids(message.id) for name in PLACEHOLDER.findall(text)} - {"num"}
        for text in ids(message.string):
            if set(PLACEHOLDER.findall(text)) - {"num"} != english and not (
                isinstance(message.id, tuple) and set(PLACEHOLDER.findall(text)) <= english
            ):
                wrong.append((message.id, text))
    assert wrong == []


def test_the_app_loads_the_compiled_german_catalogue(german: Catalog) -> None:
    loaded = translations("de")
    assert len(getattr(loaded, "_catalog", {})) >= len([m for m in german if m.id])
    with use_locale("de"):
        assert _("Settings") == "Einstellungen"
