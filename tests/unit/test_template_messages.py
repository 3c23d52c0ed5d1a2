"""Messages in templates (lib/templates.template_gettext): each language's text, placeholders filled and escaped,
the same on every render although a message is looked up once per language."""

from __future__ import annotations

import pytest
from jinja2 import Environment

from app.lib.i18n import use_locale
from app.lib.templates import template_environment

PAGE = (
    "{{ _('Previous') }}|{% trans zone=zone %}Times in <strong>{{ zone }}</strong>{% endtrans %}"
    "|{% trans %}100% sure{% endtrans %}"
)


@pytest.fixture
def pages() -> Environment:
    return template_environment(("html",), strings_escaped=True)


@pytest.fixture
def emails() -> Environment:
    return template_environment(("html",), strings_escaped=False)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Previous|Times in <strong>Europe/London</strong>|100% sure"),
        ("de", "Zurück|Zeiten in <strong>Europe/London</strong>|100% sure"),
    ],
)
def test_a_page_shows_each_message_in_the_readers_language_on_every_render(
    pages: Environment, locale: str, expected: str
) -> None:
    with use_locale(locale):
        renders = [pages.from_string(PAGE).render(zone="Europe/London") for _ in range(3)]
    assert renders == [expected] * 3


def test_a_language_switch_between_renders_changes_the_messages(pages: Environment) -> None:
    template = pages.from_string("{{ _('Previous') }}")
    with use_locale("de"):
        german = template.render()
    with use_locale("en"):
        english = template.render()
    assert (german, english) == ("Zurück", "Previous")


def test_a_placeholder_filled_with_markup_is_escaped_in_a_page(pages: Environment) -> None:
    html = pages.from_string(PAGE).render(zone="<script>x</script>")
    assert "Times in <strong>&lt;script&gt;x&lt;/script&gt;</strong>" in html


def test_a_placeholder_in_an_email_text_is_filled_unescaped(emails: Environment) -> None:
    text = emails.from_string(PAGE).render(zone="Tom & Jerry")
    assert text == "Previous|Times in <strong>Tom & Jerry</strong>|100% sure"
