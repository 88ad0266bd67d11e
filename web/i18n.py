"""Languages of the site: which one a request gets, and the gettext catalogs behind every page.

Every string a person can see (reader pages, newsroom, ops, page scripts, the service worker) is a
gettext message in English, the source language, translated in ``web/translations/<lang>/...po``
(see :mod:`web.catalogs` and ``docs/translations.md``). In Python and templates use Flask-Babel's
``gettext``/``_``, ``ngettext``, ``pgettext`` (``lazy_gettext`` at import time); in page scripts use
``NotifierI18n`` from ``static/js/i18n.js``, which reads the JSON catalog :func:`js_catalog_json`
puts in the page.

A request's language: ``?lang=`` (remembered in a cookie), the cookie, ``Accept-Language``, Indonesian.
A language with a partial catalog falls back to Indonesian message by message.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel import Locale, support
from babel.numbers import format_decimal
from flask import Flask, Request, Response, current_app, g, request
from flask_babel import Babel, Domain, get_locale
from markupsafe import Markup

from web import catalogs

log = logging.getLogger("notifier.web.i18n")

#: Languages the site speaks; the first is the default. A new ``.po`` file adds one.
LANGS: tuple[str, ...] = tuple(catalogs.languages())
DEFAULT_LANG = catalogs.DEFAULT_LANG
SOURCE_LANG = catalogs.SOURCE_LANG
#: Cookie that remembers a person's explicit choice (``?lang=`` or the switcher).
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
#: Tags browsers send for the languages we speak, beyond their own code.
_ALIASES = {"in": "id", "jw": "jv"}  # legacy ISO 639 codes (old Android browsers, Google's Javanese)


def normalize_lang(value: str | None) -> str | None:
    """A language we speak for a tag such as ``en-GB``, ``in`` or ``jv-ID``; None when unsupported."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-")[0]
    primary = _ALIASES.get(primary, primary)
    return primary if primary in LANGS else None


def pick_lang(req: Request) -> tuple[str, bool]:
    """The page language and whether it came from ``?lang=`` (so the response remembers it in a cookie).

    Order: ``?lang=``, the cookie, the ``Accept-Language`` header, Indonesian.
    """
    explicit = normalize_lang(req.args.get("lang"))
    if explicit:
        return explicit, True
    remembered = normalize_lang(req.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered, False
    offered = [*LANGS, *_ALIASES]
    best = req.accept_languages.best_match(offered)
    return normalize_lang(best) or DEFAULT_LANG, False


def current_lang() -> str:
    """The language of the current request (picked once per request)."""
    if "page_lang" not in g:
        g.page_lang, g.page_lang_explicit = pick_lang(request)
    return str(g.page_lang)


def lang_name(code: str) -> str:
    """A language's name in that language (CLDR's), capitalised: ``Indonesia``, ``English``, ``Jawa``."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def lang_url(code: str) -> str:
    """The current page in another language (the switcher's links keep the other query arguments)."""
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = code
    return request.path + "?" + urlencode(args)


def number(value: float | int, lang: str | None = None) -> str:
    """``2.007`` in Indonesian, ``2,007`` in English (Babel's CLDR data; a fallback's for partial ones)."""
    lang = lang or current_lang()
    for code in (*catalogs.fallback_chain(lang), SOURCE_LANG):
        try:
            return format_decimal(value, locale=code)
        except (ValueError, LookupError):
            continue
    return str(value)


# -- gettext for the pages -----------------------------------------------------------------------------


class FallbackDomain(Domain):
    """Flask-Babel's domain, with each language's catalog falling back to Indonesian's, then the source."""

    def __init__(self, directory: Path) -> None:
        super().__init__(translation_directories=[str(directory)], domain=catalogs.DOMAIN)
        self._directory = directory
        self._lock = threading.Lock()

    def get_translations(self) -> support.NullTranslations:
        """The chain for the request's language, built once per language and app."""
        locale = get_locale()
        lang = normalize_lang(str(locale)) if locale is not None else DEFAULT_LANG
        lang = lang or DEFAULT_LANG
        try:
            return self.cache[lang]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:
            if lang not in self.cache:
                self.cache[lang] = translations_for(lang, self._directory)
            return self.cache[lang]  # type: ignore[no-any-return]


def translations_for(lang: str, directory: Path = catalogs.TRANSLATIONS) -> support.NullTranslations:
    """The compiled catalogs of ``lang`` and its fallbacks, chained (NullTranslations for the source)."""
    chain: support.NullTranslations | None = None
    for code in reversed(catalogs.fallback_chain(lang)):
        path = catalogs.mo_path(code, directory)
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            loaded = support.Translations(handle, domain=catalogs.DOMAIN)
        if chain is not None:
            loaded.add_fallback(chain)
        chain = loaded
    return chain or support.NullTranslations()


class _NotifierBabel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:  # type: ignore[override]
        return FallbackDomain(catalogs.TRANSLATIONS)


def init_app(app: Flask) -> None:
    """Compile stale catalogs, install Flask-Babel (Jinja's ``_``/``ngettext``/``pgettext`` included)."""
    try:
        if catalogs.ensure_compiled():
            log.info("compiled the translation catalogs (%s)", ", ".join(LANGS))
    except OSError as exc:  # an installed, read-only tree ships them compiled; say what is missing
        log.warning("could not compile the translation catalogs: %s (run scripts/i18n compile)", exc)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANG)
    _NotifierBabel(app, locale_selector=current_lang)
    app.jinja_env.globals.update(
        page_langs=LANGS,
        lang_name=lang_name,
        lang_url=lang_url,
        current_lang=current_lang,
        js_catalog_json=js_catalog_json,
        js_catalog_data=js_catalog_data,
    )
    app.jinja_env.filters["number"] = lambda value: number(value)
    app.after_request(_remember_language)


def _remember_language(response: Response) -> Response:
    """HTML answers say their language; an explicit ``?lang=`` is remembered for a year."""
    if "page_lang" not in g or response.mimetype != "text/html":
        return response
    response.headers.setdefault("Content-Language", str(g.page_lang))
    response.vary.update(("Accept-Language", "Cookie"))
    if g.get("page_lang_explicit"):
        response.set_cookie(
            LANG_COOKIE,
            str(g.page_lang),
            max_age=LANG_COOKIE_MAX_AGE,
            samesite="Lax",
            httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure,
        )
    return response


# -- catalogs for page scripts -------------------------------------------------------------------------

_json_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def js_catalog(bundle: str, lang: str) -> dict[str, Any]:
    """The compiled JSON catalog of a script bundle (``js``, ``editor``, ``ops``...) in ``lang``."""
    path = catalogs.JSON_DIR / f"{bundle}.{lang}.json"
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {"lang": lang, "fallback": [], "locales": [lang], "messages": {}}
    cached = _json_cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, json.loads(path.read_text("utf-8")))
        _json_cache[path] = cached
    return cached[1]


def js_catalog_data(bundles: str | Sequence[str], lang: str | None = None) -> dict[str, Any]:
    """The catalogs of ``bundles`` merged into one document (a template sets it as ``i18n_catalog``)."""
    lang = lang or current_lang()
    names = [bundles] if isinstance(bundles, str) else list(bundles)
    merged: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    for name in names:
        doc = js_catalog(name, lang)
        merged.update(doc["messages"])
    return {"lang": lang, "locales": doc.get("locales", [lang]), "messages": merged}


def js_catalog_json(bundles: str | Sequence[str], lang: str | None = None) -> Markup:
    """The catalogs of ``bundles`` as one JSON document for ``<script type="application/json">``."""
    lang = lang or current_lang()
    names = [bundles] if isinstance(bundles, str) else list(bundles)
    merged: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    for name in names:
        doc = js_catalog(name, lang)
        merged.update(doc["messages"])
    data = {"lang": lang, "locales": doc.get("locales", [lang]), "messages": merged}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>, "</" must not appear literally.
    return Markup(text.replace("</", "<\\/"))  # noqa: S704 - JSON of our own catalogs, "</" neutralised
