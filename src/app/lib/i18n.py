"""Languages: English (the source text) and German. Which one speaks is the locale of the current request, queue
job or e-mail, kept in a context variable: pages and fragments in the reader's language, e-mails in the
recipient's, the JSON API always in English (machine-facing, with stable codes beside the words).

Messages are marked with `_()` (or `lazy_gettext()` where the text is made before anyone reads it, e.g. at import)
and extracted with `make i18n` into `src/app/translations/`; `make install` compiles the catalogues. Placeholders
are named, `%(name)s`, as in the templates' `{% trans %}` blocks. One English word with two meanings takes a context
in templates: `pgettext("dialog", "Cancel")` ("Abbrechen") beside `_("Cancel")` (a booking: "Absagen").
tests/integration/test_german_*.py prove a German reader meets no English on any page, fragment, live update or e-mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.support import LazyProxy, NullTranslations, Translations
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

SUPPORTED_LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
# How each language writes dates and numbers: English as at a British university ("Tue 1 Dec", 24-hour clock).
BABEL_LOCALES = {"en": "en_GB", "de": "de_DE"}
TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)


def current_locale() -> str:
    return _current.get()


def babel_locale(locale: str | None = None) -> Locale:
    return _parsed_locale(BABEL_LOCALES[locale or current_locale()])


@lru_cache(maxsize=8)
def _parsed_locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def supported(locale: str | None) -> str:
    """The supported language `locale` names ("de-AT" -> "de"), else the default."""
    language = (locale or "").replace("-", "_").split("_", 1)[0].lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


def from_accept_language(header: str | None) -> str:
    """The best supported language of an Accept-Language header, by its q-values."""
    wanted = []
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            wanted.append((quality, tag.replace("-", "_")))
    preferred = [tag for _, tag in sorted(wanted, key=lambda item: -item[0])]
    return supported(negotiate_locale(preferred, SUPPORTED_LOCALES) or next(iter(preferred), None))


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Speak `locale` (a supported language; anything else speaks the default) inside the block."""
    token = _current.set(supported(locale))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


@lru_cache
def translations(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    return Translations.load(TRANSLATIONS_DIR, [locale], domain="messages")


def translated(message: str) -> str:
    """The message in the current language, placeholders left in (the templates fill them in themselves)."""
    return translations(current_locale()).gettext(message)


def translated_plural(singular: str, plural: str, n: int) -> str:
    return translations(current_locale()).ngettext(singular, plural, n)


def translated_in_context(context: str, message: str) -> str:
    """One English word meaning two things ("Cancel" a booking, "Cancel" a dialog): `context` tells them apart."""
    return str(translations(current_locale()).pgettext(context, message))


def translated_plural_in_context(context: str, singular: str, plural: str, n: int) -> str:
    return str(translations(current_locale()).npgettext(context, singular, plural, n))


def gettext(message: str, **variables: Any) -> str:
    text = translated(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    return translated_plural(singular, plural, n) % {"num": n, **variables}


def lazy_gettext(message: str, **variables: Any) -> LazyProxy:
    """A message translated when it is read, in the locale of whoever reads it then."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


def N_(message: str) -> str:
    """Marks text for extraction where it is stored untranslated (a table of labels) and translated when shown."""
    return message


_ = gettext


LANGUAGE_COOKIE = "oh_lang"


class LocaleMiddleware:
    """Speak the reader's language for the rest of the request: the signed-in person's choice, else the language
    picked on this browser (LANGUAGE_COOKIE), else the browser's Accept-Language; the JSON API speaks English."""

    def __init__(self, app: ASGIApp, api_prefix: str = "/api/", exclude: tuple[str, ...] = ()) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.exclude = exclude  # path prefixes that show no words (static files, the health check)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(self.exclude):
            await self.app(scope, receive, send)
            return
        locale = self.locale_of(scope)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["Content-Language"] = locale
            await send(message)

        with use_locale(locale):
            await self.app(scope, receive, send_with_language)

    def locale_of(self, scope: Scope) -> str:
        if scope["path"].startswith(self.api_prefix):
            return DEFAULT_LOCALE
        chosen = getattr(scope.get("user"), "locale", None)
        if chosen:
            return supported(chosen)
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        if picked := connection.cookies.get(LANGUAGE_COOKIE):
            return supported(picked)
        return from_accept_language(connection.headers.get("accept-language"))
