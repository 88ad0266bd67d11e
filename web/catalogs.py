"""The translation catalogs on disk: compile ``.po`` to ``.mo`` and to JSON, and check their completeness.

Imports only Babel and the standard library (no Flask, not even the ``web`` package), so the wheel build
(``setup.py``) can load this file by path and compile the catalogs into the wheel.

Layout (``scripts/i18n`` drives it; ``docs/translations.md`` explains the workflow)::

    web/babel.cfg                                  what pybabel extracts from (Python, templates, scripts)
    web/translations/messages.pot                  the template: every message, in English (the source)
    web/translations/<lang>/LC_MESSAGES/messages.po one catalog per language (committed)
    web/translations/<lang>/LC_MESSAGES/messages.mo compiled for the pages (built, not committed)
    web/static/i18n/<bundle>.<lang>.json           compiled for the page scripts (built, not committed)

English is the source language: the ``msgid`` is the English text and ``en`` needs no catalog. Every
other language falls back to Indonesian (the product's default) for the messages it does not translate
yet, then to the English source; :func:`fallback_chain` is that rule. A *bundle* is the set of messages
that the scripts of one folder of ``web/static`` use (``js`` for the reader pages and the service
worker, ``editor``, ``ops``, ``embed``...), so a page carries only its own scripts' strings.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from gettext import c2py
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parent
TRANSLATIONS = WEB / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
JSON_DIR = WEB / "static" / "i18n"
DOMAIN = "messages"

#: The language the message ids are written in (no catalog needed).
SOURCE_LANG = "en"
#: The product's default language: every other language falls back to it.
DEFAULT_LANG = "id"
#: Languages that must translate every message (the completeness test enforces it). Others may be partial.
COMPLETE_LANGS: tuple[str, ...] = ("id",)

#: ``web/static/<bundle>/...`` scripts whose messages are compiled to ``<bundle>.<lang>.json``.
_STATIC_SCRIPT = re.compile(r"^web/static/([a-z0-9_-]+)/[^/]+\.js$")
#: CLDR plural categories in gettext's order (Babel builds ``Plural-Forms`` in this order).
_CATEGORIES = ("zero", "one", "two", "few", "many", "other")


def po_path(lang: str, root: Path = TRANSLATIONS) -> Path:
    """The ``.po`` catalog of ``lang``."""
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str, root: Path = TRANSLATIONS) -> Path:
    """The compiled ``.mo`` of ``lang``."""
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


def catalog_langs(root: Path = TRANSLATIONS) -> list[str]:
    """Languages with a ``.po`` catalog, sorted."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if po_path(p.name, root).is_file())


def languages(root: Path = TRANSLATIONS) -> list[str]:
    """Every language the site speaks: the default first, the source second, then the others sorted."""
    found = set(catalog_langs(root)) | {SOURCE_LANG, DEFAULT_LANG}
    return [DEFAULT_LANG, SOURCE_LANG, *sorted(found - {DEFAULT_LANG, SOURCE_LANG})]


def fallback_chain(lang: str) -> list[str]:
    """The catalogs consulted for ``lang``, in order (the English source is always last, implicitly)."""
    if lang in (SOURCE_LANG, DEFAULT_LANG):
        return [lang] if lang != SOURCE_LANG else []
    return [lang, DEFAULT_LANG]


def read_catalog(path: Path, lang: str | None = None) -> Catalog:
    """A ``.po``/``.pot`` file as a Babel catalog."""
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def translated(message: Message) -> bool:
    """True when the message has a usable (non-fuzzy, non-empty) translation in every plural form."""
    if message.fuzzy or not message.id:
        return False
    forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return all(forms)


def bundles_of(message: Message) -> set[str]:
    """The script bundles a message is used in (from its ``#:`` locations)."""
    found = set()
    for filename, _line in message.locations:
        match = _STATIC_SCRIPT.match(filename.replace(os.sep, "/"))
        if match:
            found.add(match.group(1))
    return found


def _key(message: Message) -> str:
    """The JSON key of a message: its id, prefixed by ``context\\u0004`` when it has a context."""
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return f"{message.context}\x04{msgid}" if message.context else msgid


def plural_categories(lang: str, catalog: Catalog | None) -> dict[str, int]:
    """CLDR plural category → gettext plural form index for ``lang`` (what ``Intl.PluralRules`` returns).

    Worked out by evaluating both the catalog's ``Plural-Forms`` expression and CLDR's rule on the
    integers 0..1000, so the page script never evaluates the expression itself (the pages' CSP forbids
    ``eval``). Categories that no integer reaches map to the form of ``other``.
    """
    rule = Locale.parse(lang).plural_form
    if catalog is None:  # the source language: English's two forms
        form = c2py("(n != 1)")
        expr_forms = 2
    else:
        form = c2py(catalog.plural_expr)
        expr_forms = catalog.num_plurals
    seen: dict[str, int] = {}
    for n in range(1001):
        seen.setdefault(rule(n), min(form(n), expr_forms - 1))
    other = seen.get("other", 0)
    return {
        category: seen.get(category, other)
        for category in _CATEGORIES
        if category in seen or category == "other"
    }


@dataclass
class LanguageCatalog:
    """One language's catalogs with its fallbacks (what the pages and scripts see)."""

    lang: str
    chain: list[str]
    catalogs: list[tuple[str, Catalog]] = field(default_factory=list)

    def lookup(self, message: Message) -> tuple[str, Catalog | None, str | tuple[str, ...]]:
        """``(language, catalog, text)`` of a message: this language's, a fallback's or the source."""
        for code, catalog in self.catalogs:
            found = catalog.get(message.id, context=message.context)
            if found is not None and translated(found):
                return (
                    code,
                    catalog,
                    tuple(found.string) if isinstance(found.string, tuple | list) else found.string,
                )
        return SOURCE_LANG, None, tuple(message.id) if isinstance(message.id, tuple | list) else message.id


def load_language(lang: str, root: Path = TRANSLATIONS) -> LanguageCatalog:
    """The catalogs of ``lang`` and its fallbacks, read from ``root``."""
    chain = fallback_chain(lang)
    catalogs = [
        (code, read_catalog(po_path(code, root), code)) for code in chain if po_path(code, root).is_file()
    ]
    return LanguageCatalog(lang, chain, catalogs)


def js_catalog(lang: str, bundle: str, template: Catalog, root: Path = TRANSLATIONS) -> dict[str, Any]:
    """The JSON document of one bundle in one language, fallbacks applied.

    A singular message maps to its text; a plural one to ``{"_lang": code, "<category>": text, ...}``
    keyed by CLDR plural category of the language the text is in (which may be a fallback's).
    """
    language = load_language(lang, root)
    categories: dict[str, dict[str, int]] = {}
    messages: dict[str, Any] = {}
    for message in template:
        if not message.id or bundle not in bundles_of(message):
            continue
        code, catalog, text = language.lookup(message)
        if isinstance(message.id, tuple | list):
            forms = text if isinstance(text, tuple) else (text,)
            if code not in categories:
                categories[code] = plural_categories(code, catalog)
            value: Any = {"_lang": code}
            for category, index in categories[code].items():
                value[category] = forms[min(index, len(forms) - 1)]
            messages[_key(message)] = value
        else:
            messages[_key(message)] = text
    return {
        "lang": lang,
        "fallback": language.chain[1:],
        "locales": [*dict.fromkeys([*language.chain, lang, SOURCE_LANG])],
        "messages": messages,
    }


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file; False when it already held exactly that (then
    only its time is refreshed, so it no longer looks older than its catalog)."""
    if path.is_file() and path.read_bytes() == data:
        os.utime(path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # served as static files, possibly by another user (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def compile_mo(lang: str, root: Path = TRANSLATIONS, out_root: Path | None = None) -> Path:
    """Compile one ``.po`` to ``.mo`` (what ``pybabel compile`` does; untranslated and fuzzy are left out)."""
    catalog = read_catalog(po_path(lang, root), lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    target = mo_path(lang, out_root or root)
    _write_atomic(target, buffer.getvalue())
    return target


def template_bundles(template: Catalog) -> list[str]:
    """Every bundle the template's messages name."""
    return sorted({b for message in template for b in bundles_of(message)})


def compile_all(
    root: Path = TRANSLATIONS, json_dir: Path = JSON_DIR, out_root: Path | None = None
) -> list[Path]:
    """Compile every catalog to ``.mo`` and every (bundle, language) to JSON; returns the files written."""
    written = [compile_mo(lang, root, out_root) for lang in catalog_langs(root)]
    template = read_catalog(root / f"{DOMAIN}.pot")
    for bundle in template_bundles(template):
        for lang in languages(root):
            doc = js_catalog(lang, bundle, template, root)
            data = (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=0) + "\n").encode()
            target = json_dir / f"{bundle}.{lang}.json"
            _write_atomic(target, data)
            written.append(target)
    return written


def _inputs(root: Path) -> Iterator[Path]:
    yield root / f"{DOMAIN}.pot"
    for lang in catalog_langs(root):
        yield po_path(lang, root)


def _outputs(root: Path, json_dir: Path) -> Iterator[Path]:
    for lang in catalog_langs(root):
        yield mo_path(lang, root)
    template = read_catalog(root / f"{DOMAIN}.pot")
    for bundle in template_bundles(template):
        for lang in languages(root):
            yield json_dir / f"{bundle}.{lang}.json"


def stale(root: Path = TRANSLATIONS, json_dir: Path = JSON_DIR) -> bool:
    """True when a compiled file is missing or older than a catalog (a fresh clone, a pulled ``.po``)."""
    newest = max((p.stat().st_mtime for p in _inputs(root) if p.exists()), default=0.0)
    for out in _outputs(root, json_dir):
        if not out.exists() or out.stat().st_mtime < newest:
            return True
    return False


def ensure_compiled(root: Path = TRANSLATIONS, json_dir: Path = JSON_DIR) -> bool:
    """Compile when :func:`stale`; True when it compiled. Cheap when up to date (a few ``stat`` calls)."""
    if not stale(root, json_dir):
        return False
    compile_all(root, json_dir)
    return True


# -- completeness ----------------------------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`check` found: problems (fail) and per-language statistics (information)."""

    problems: list[str] = field(default_factory=list)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)


_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _placeholders(text: str | Sequence[str]) -> set[str]:
    texts = [text] if isinstance(text, str) else list(text)
    return {name for t in texts for name in _PLACEHOLDER.findall(t or "")}


def check(
    root: Path = TRANSLATIONS, complete: Iterable[str] = COMPLETE_LANGS, extracted: Catalog | None = None
) -> Report:
    """Every language has every message of the template, the complete ones translate all of them, and
    no translation drops or invents a placeholder. With ``extracted`` (a fresh extraction of the
    sources), the template must hold exactly its messages (``scripts/i18n update`` was run)."""
    report = Report()
    template = read_catalog(root / f"{DOMAIN}.pot")
    ids = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in template if m.id}
    if extracted is not None:
        fresh = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in extracted if m.id}
        for msgid, context in sorted(fresh - ids, key=str):
            report.problems.append(
                f"messages.pot lacks {msgid!r} (context {context!r}): run scripts/i18n update"
            )
        for msgid, context in sorted(ids - fresh, key=str):
            report.problems.append(f"messages.pot still has {msgid!r} (context {context!r}), no longer used")
    must_complete = set(complete)
    for lang in catalog_langs(root):
        catalog = read_catalog(po_path(lang, root), lang)
        done = 0
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            label = f"{lang}: {message.id if isinstance(message.id, str) else message.id[0]!r}"
            if found is None:
                report.problems.append(f"{label} is missing from the catalog: run scripts/i18n update")
                continue
            if translated(found):
                done += 1
                want = _placeholders(message.id)
                have = _placeholders(found.string)
                if want != have:
                    report.problems.append(f"{label} has placeholders {sorted(have)}, source {sorted(want)}")
                forms = found.string if isinstance(found.string, tuple | list) else (found.string,)
                if isinstance(message.id, tuple | list) and len(forms) != catalog.num_plurals:
                    report.problems.append(
                        f"{label} has {len(forms)} plural forms, {lang} needs {catalog.num_plurals}"
                    )
            elif lang in must_complete:
                report.problems.append(f"{label} is not translated{' (fuzzy)' if found.fuzzy else ''}")
        report.stats[lang] = (done, len(ids))
    for lang in must_complete - set(catalog_langs(root)):
        report.problems.append(f"{lang} must be complete but has no catalog")
    return report


def main(argv: Sequence[str]) -> int:
    """``python web/catalogs.py compile|check`` (``scripts/i18n`` calls it)."""
    command = argv[0] if argv else ""
    if command == "compile":
        written = compile_all()
        print(f"compiled {len(written)} files ({', '.join(languages())})")
        return 0
    if command == "check":
        extracted = read_catalog(Path(argv[1])) if len(argv) > 1 else None
        report = check(extracted=extracted)
        for lang, (done, total) in sorted(report.stats.items()):
            print(f"{lang}: {done}/{total} translated ({100 * done // max(1, total)} %)")
        for problem in report.problems:
            print("problem:", problem, file=sys.stderr)
        return 1 if report.problems else 0
    print("usage: catalogs.py compile | check [FRESH.pot]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
