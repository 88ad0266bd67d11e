"""Translation catalogs: complete, up to date with the sources, compiled for pages and scripts, with fallbacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from web import catalogs
from web.i18n import LANGS, normalize_lang, number, translations_for

ROOT = Path(__file__).parents[2]


def test_catalogs_are_up_to_date_and_complete() -> None:
    """What ``scripts/i18n check`` checks: a fresh extraction of web/ matches messages.pot, every
    language's catalog has every message, Indonesian translates all of them, placeholders agree."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "i18n"), "check"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "id: " in out.stdout and "(100 %)" in out.stdout.split("id: ", 1)[1].splitlines()[0]


def test_every_language_has_a_catalog_with_every_message() -> None:
    report = catalogs.check()
    assert report.problems == []
    total = report.stats["id"][1]
    assert report.stats["id"] == (total, total)
    done, _ = report.stats["jv"]
    assert 0 < done < total  # Javanese is partly translated on purpose: the rest falls back


def test_javanese_falls_back_to_indonesian_message_by_message(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/langganan?lang=jv").get_data(as_text=True)
    assert '<html lang="jv">' in html
    assert "Uripna notifikasi" in html  # translated in jv.po
    # Not in jv.po: Indonesian, never the English source.
    assert "Ikuti berita terbaru dari Kabar Kini tanpa harus membuka situs berulang kali." in html
    assert "without opening the site" not in html
    # The scripts get the same fallbacks.
    template = catalogs.read_catalog(catalogs.TEMPLATE)
    assert catalogs.js_catalog("jv", "sw", template)["messages"]["Read"] == "Waca"  # the service worker's
    catalog = catalogs.js_catalog("jv", "js", template)
    assert catalog["messages"]["Turning on notifications…"] == "Nguripake notifikasi…"
    assert catalog["messages"]["Topics saved."] == "Topik wis disimpen."
    assert catalog["messages"]["Please answer your browser’s permission request."] == (
        "Silakan jawab permintaan izin dari peramban Anda."
    )
    assert catalog["fallback"] == ["id"] and catalog["locales"] == ["jv", "id", "en"]


def test_language_tags_browsers_send() -> None:
    assert normalize_lang("jv-ID") == "jv"
    assert normalize_lang("jw") == "jv"  # Google's legacy code for Javanese
    assert normalize_lang("in-ID") == "id"
    assert normalize_lang("en_GB") == "en"
    assert normalize_lang("fr") is None
    assert set(LANGS) >= {"id", "en", "jv"}


def test_accept_language_picks_javanese(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/", headers={"Accept-Language": "jv,id;q=0.8"})
    assert resp.headers["Content-Language"] == "jv"


def test_numbers_follow_the_language(app) -> None:  # type: ignore[no-untyped-def]
    assert number(2007, "id") == "2.007"
    assert number(2007, "en") == "2,007"
    assert number(2007, "jv") in ("2.007", "2,007")  # CLDR's Javanese, else Indonesian


def test_source_language_needs_no_catalog() -> None:
    assert translations_for("en").gettext("Read") == "Read"
    assert translations_for("id").gettext("Read") == "Baca"
    assert translations_for("jv").gettext("Read") == "Waca"
    assert translations_for("jv").gettext("Copy link") == "Salin tautan"  # from Indonesian


# -- the compiler, on catalogs made for the test -------------------------------------------------------


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, include_lineno=False)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A template with a plural and a context message, an Indonesian and a partial Javanese catalog."""
    root, json_dir = tmp_path / "translations", tmp_path / "i18n"
    template = Catalog(project="t")
    plural = ("Send to %(count)s subscriber", "Send to %(count)s subscribers")
    template.add(plural, locations=[("web/static/editor/compose.js", None)], flags=["python-format"])
    template.add("done", context="campaign state", locations=[("web/static/editor/campaign.js", None)])
    template.add("Read", locations=[("web/static/js/sw.js", None), ("web/templates/a.html", None)])
    template.add("Page only", locations=[("web/templates/a.html", None)])
    _write(root / "messages.pot", template)
    ind = Catalog(locale="id")
    ind.add(plural, ("Kirim ke %(count)s pelanggan",))
    ind.add("done", "selesai", context="campaign state")
    ind.add("Read", "Baca")
    ind.add("Page only", "Hanya halaman")
    _write(catalogs.po_path("id", root), ind)
    jav = Catalog(locale="jv")
    jav.add("Read", "Waca")
    jav.add(plural, ("",))
    jav.add("done", "", context="campaign state")
    jav.add("Page only", "")
    _write(catalogs.po_path("jv", root), jav)
    return root, json_dir


def test_compile_writes_mo_and_one_json_per_bundle_and_language(tree: tuple[Path, Path]) -> None:
    root, json_dir = tree
    written = catalogs.compile_all(root, json_dir)
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["messages.mo"] * 2 + [f"{b}.{lang}.json" for b in ("editor", "js") for lang in ("id", "en", "jv")]
    )
    editor_en = json.loads((json_dir / "editor.en.json").read_text())
    assert editor_en["messages"]["Send to %(count)s subscriber"] == {
        "_lang": "en",
        "one": "Send to %(count)s subscriber",
        "other": "Send to %(count)s subscribers",
    }
    assert editor_en["messages"]["campaign state\x04done"] == "done"
    editor_jv = json.loads((json_dir / "editor.jv.json").read_text())
    # Untranslated in Javanese: Indonesian's single plural form, with Indonesian's plural rule.
    assert editor_jv["messages"]["Send to %(count)s subscriber"] == {
        "_lang": "id",
        "other": "Kirim ke %(count)s pelanggan",
    }
    assert editor_jv["messages"]["campaign state\x04done"] == "selesai"
    js_jv = json.loads((json_dir / "js.jv.json").read_text())
    assert js_jv["messages"] == {"Read": "Waca"}  # template-only messages stay out of the scripts' JSON


def test_compiled_files_are_rebuilt_when_a_catalog_changes(tree: tuple[Path, Path]) -> None:
    root, json_dir = tree
    assert catalogs.stale(root, json_dir)
    assert catalogs.ensure_compiled(root, json_dir)
    assert not catalogs.stale(root, json_dir)
    assert not catalogs.ensure_compiled(root, json_dir)
    # A pulled or edited catalog is newer than what was compiled from it.
    earlier = time.time() - 60
    for path in [catalogs.mo_path("jv", root), *json_dir.iterdir()]:
        os.utime(path, (earlier, earlier))
    assert catalogs.stale(root, json_dir)
    catalogs.ensure_compiled(root, json_dir)
    assert not catalogs.stale(root, json_dir)


def test_check_reports_missing_untranslated_and_broken_placeholders(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert catalogs.check(root).problems == []
    ind = Catalog(locale="id")
    ind.add(("Send to %(count)s subscriber", "Send to %(count)s subscribers"), ("Kirim ke %(jumlah)s",))
    ind.add("done", "", context="campaign state")
    ind.add("Read", "Baca")
    _write(catalogs.po_path("id", root), ind)
    problems = "\n".join(catalogs.check(root).problems)
    assert "has placeholders ['jumlah'], source ['count']" in problems
    assert "'done' is not translated" in problems
    assert "'Page only' is missing from the catalog" in problems


def test_a_new_language_is_one_po_file(tree: tuple[Path, Path]) -> None:
    root, json_dir = tree
    sunda = Catalog(locale="su")
    sunda.add("Read", "Maca")
    _write(catalogs.po_path("su", root), sunda)
    assert catalogs.languages(root) == ["id", "en", "jv", "su"]
    catalogs.compile_all(root, json_dir)
    js_su = json.loads((json_dir / "js.su.json").read_text())
    assert js_su["messages"] == {"Read": "Maca"}
    assert catalogs.mo_path("su", root).is_file()


def test_compile_needs_neither_flask_nor_the_web_package(tmp_path: Path) -> None:
    """The wheel build loads web/catalogs.py by path, in an environment with only Babel."""
    shutil.copy(ROOT / "web" / "catalogs.py", tmp_path / "catalogs.py")
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'web', 'notifier'));"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [os.sys.executable, "-c", code, str(tmp_path / "catalogs.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
