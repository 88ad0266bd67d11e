"""The reader pages, the service worker and the manifest, through the Flask test client."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from notifier.browsers import BROWSERS, detect_browser
from tests.factories import loader_parts
from web.articles import ARTICLES
from web.i18n import LANGS, translations_for
from web.public import BROWSER_ORDER

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)

#: A user agent per browser family the denied walkthrough covers.
USER_AGENTS = {
    "chrome-desktop": CHROME_UA,
    "chrome-android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36",
    "firefox": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "safari-macos": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "safari-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36 Edg/126.0",
    "samsung": "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "other": "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80) Presto/2.5.25 Version/10.54",
}


def tr(lang: str, msgid: str, **values: str) -> str:
    """``msgid`` as the pages show it in ``lang``."""
    text = translations_for(lang).gettext(msgid)
    return text % values if values else text


def denied_steps_in(app: Any, lang: str) -> dict[str, dict[str, list[str]]]:
    """The denied-permission steps as the server has them in ``lang`` (placeholders unfilled)."""
    from web.public import denied_steps

    with app.test_request_context(f"/?lang={lang}"):
        return denied_steps()


PAGES = ["/", "/artikel/harga-cabai-turun-jelang-panen", "/langganan", "/subscribe", "/preferensi"]


class Scripts(HTMLParser):
    """Collects every <script> element's attributes and body."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._body = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open, self._body = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._body += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append((self._open, self._body))
            self._open = None


def scripts_of(html: str) -> list[tuple[dict[str, str | None], str]]:
    parser = Scripts()
    parser.feed(html)
    return parser.scripts


def page_data(html: str) -> dict[str, Any]:
    """The JSON block the page hands to its scripts."""
    for attrs, body in scripts_of(html):
        if attrs.get("id") == "notifier-page":
            assert attrs.get("type") == "application/json"
            return dict(json.loads(body))
    raise AssertionError("no #notifier-page JSON block")


def fetch_status(client: Any, path: str) -> int:
    """Status of a GET, closing the (file-backed) response."""
    resp = client.get(path)
    resp.close()
    return int(resp.status_code)


def visible_steps(html: str) -> str:
    """The family of the denied-steps block the server shows first."""
    shown = re.findall(r'<div class="browser-steps" data-browser="([a-z-]+)">', html)
    assert len(shown) == 1, shown
    return shown[0]


# Language ------------------------------------------------------------------------------------------


def test_the_site_speaks_indonesian_first_then_english_and_javanese() -> None:
    assert LANGS[:2] == ("id", "en") and "jv" in LANGS
    for slug, article in ARTICLES.items():
        assert set(article) == {"id", "en"}, slug
        assert set(article["id"]) == set(article["en"]), slug


def test_every_browser_has_two_steps_and_names_its_icon(app) -> None:  # type: ignore[no-untyped-def]
    for lang in ("id", "en"):
        steps = denied_steps_in(app, lang)
        assert set(steps) == set(BROWSER_ORDER) == set(BROWSERS)
        for family, parts in steps.items():
            assert len(parts["main"]) == 2, (lang, family)
            # Alternatives are never numbered as steps.
            assert not any(text.startswith(("Cara lain", "Or:")) for text in parts["main"]), family


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_in_indonesian_by_default(client, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert '<html lang="id">' in html
    assert resp.headers["Content-Language"] == "id"
    assert "Kabar Kini" in html
    assert "Lewati ke konten" in html
    assert page_data(html)["lang"] == "id"


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_in_english_from_accept_language(client, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    html = resp.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Skip to content" in html
    assert resp.headers["Content-Language"] == "en"
    assert "lang=" not in resp.headers.get("Set-Cookie", "")


def test_indonesian_wins_when_the_reader_prefers_it(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/", headers={"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="id">' in html
    legacy = client.get("/", headers={"Accept-Language": "in-ID"}).get_data(as_text=True)
    assert '<html lang="id">' in legacy
    unknown = client.get("/", headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)
    assert '<html lang="id">' in unknown


def test_lang_query_is_remembered_in_a_cookie(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/langganan?lang=en", headers={"Accept-Language": "id"})
    assert '<html lang="en">' in resp.get_data(as_text=True)
    assert "lang=en" in resp.headers["Set-Cookie"]
    # The next page, with no ?lang=, stays English even though the browser prefers Indonesian.
    follow = client.get("/preferensi", headers={"Accept-Language": "id"})
    assert '<html lang="en">' in follow.get_data(as_text=True)
    back = client.get("/?lang=id")
    assert '<html lang="id">' in back.get_data(as_text=True)
    assert '<html lang="id">' in client.get("/langganan").get_data(as_text=True)


def test_language_switcher_links_keep_the_page(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/artikel/harga-cabai-turun-jelang-panen").get_data(as_text=True)
    assert 'href="/artikel/harga-cabai-turun-jelang-panen?lang=en"' in html
    assert 'aria-current="true" lang="id"' in html
    # The accessible name starts with the visible text ("EN (English)"), as WCAG 2.5.3 asks.
    assert re.search(r'hreflang="en" lang="en">EN<span class="visually-hidden"> \(English\)</span></a>', html)
    assert 'href="/artikel/harga-cabai-turun-jelang-panen?lang=jv"' in html


# Pages -----------------------------------------------------------------------------------------------


def test_article_page_has_the_article_and_the_call_to_action(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/").get_data(as_text=True)
    article = ARTICLES["bus-listrik-rute-pesisir"]["id"]
    assert article["title"] in html
    assert article["paragraphs"][0] in html
    assert 'id="optin"' in html
    assert "Dapatkan berita terbaru dari Kabar Kini" in html
    assert 'class="optin optin-compact"' in html  # a subscribed reader gets one line on articles
    assert (
        '<button type="submit" class="btn btn-primary" id="optin-button">Aktifkan notifikasi</button>' in html
    )
    en = client.get("/?lang=en").get_data(as_text=True)
    assert ARTICLES["bus-listrik-rute-pesisir"]["en"]["title"] in en


def test_unknown_article_is_an_html_404(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/artikel/tidak-ada")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "Artikel tidak ditemukan" in resp.get_data(as_text=True)


def test_site_name_comes_from_settings(settings, r) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from notifier.context import Context
    from web import create_app

    context = Context.build(replace(settings, site_name="Warta Pagi"), client=r)
    html = (
        create_app({"TESTING": True}, context=context).test_client().get("/langganan").get_data(as_text=True)
    )
    assert "<title>Notifikasi berita | Warta Pagi</title>" in html
    assert page_data(html)["site"] == "Warta Pagi"


def test_topic_picker_lists_the_configured_topics_in_the_page_language(client, context) -> None:  # type: ignore[no-untyped-def]
    for lang in LANGS:
        html = client.get(f"/langganan?lang={lang}").get_data(as_text=True)
        for topic in context.topics:
            assert f'name="topics" value="{topic.slug}"' in html
            assert f"<span>{topic.name(lang)}</span>" in html
        data = page_data(html)
        assert [t["slug"] for t in data["topics"]] == list(context.topic_slugs)
        assert data["defaultTopics"] == [context.topics[0].slug]
    prefs = client.get("/preferensi").get_data(as_text=True)
    assert all(f'value="{topic.slug}"' in prefs for topic in context.topics)


def test_page_scripts_are_files_and_data_is_json(client) -> None:  # type: ignore[no-untyped-def]
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        for attrs, body in scripts_of(html):
            if attrs.get("type") == "application/json":
                json.loads(body)
            else:
                assert attrs.get("src", "").startswith("/static/js/"), (path, attrs)
                assert not body.strip(), (path, body[:80])
        assert re.search(r"\son[a-z]+=", html) is None, path


def i18n_data(html: str) -> dict[str, Any]:
    """The JSON catalog the page hands to its scripts."""
    for attrs, body in scripts_of(html):
        if attrs.get("id") == "notifier-i18n":
            assert attrs.get("type") == "application/json"
            return dict(json.loads(body))
    raise AssertionError("no #notifier-i18n JSON block")


def test_page_carries_its_language_catalog_for_the_scripts(client) -> None:  # type: ignore[no-untyped-def]
    for lang in LANGS:
        html = client.get(f"/langganan?lang={lang}").get_data(as_text=True)
        data = page_data(html)
        catalog = i18n_data(html)
        assert catalog["lang"] == data["lang"] == lang
        assert catalog["messages"]["Turning on notifications…"] == tr(lang, "Turning on notifications…")
        # Only the reader scripts' messages: no newsroom or ops text on a reader page.
        # The service worker's strings travel in its loader (bundle "sw"), not in every page.
        assert "Read" not in catalog["messages"] and len(catalog["messages"]) < 40
        assert data["api"] == {
            "vapidKey": "/api/v1/vapid-public-key",
            "subscriptions": "/api/v1/subscriptions",
        }
        assert data["sw"] == "/sw.js"
        assert set(data["browserNames"]) == set(BROWSER_ORDER)


def test_page_scripts_hold_no_translated_text() -> None:
    from web.catalogs import TRANSLATIONS, read_catalog

    root = Path(__file__).parents[2] / "web" / "static"
    sources = {path: path.read_text() for path in root.rglob("*.js")}
    for lang in ("id", "jv"):
        for message in read_catalog(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", lang):
            texts = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in texts:
                if text and len(text) > 12 and text != message.id:
                    for path, source in sources.items():
                        assert text not in source, (path, text)


@pytest.mark.parametrize("family", BROWSER_ORDER)
@pytest.mark.parametrize("lang", LANGS)
def test_denied_steps_for_each_browser_in_every_language(app, client, family: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    assert detect_browser(USER_AGENTS[family]) == family
    resp = client.get(f"/langganan?lang={lang}", headers={"User-Agent": USER_AGENTS[family]})
    html = resp.get_data(as_text=True)
    assert visible_steps(html) == family
    assert page_data(html)["browser"] == family
    assert f'<option value="{family}" selected>' in html
    with app.test_request_context(f"/?lang={lang}"):
        from web.public import browser_names

        name = browser_names()[family]
    assert str(escape(tr(lang, "Steps for %(browser)s", browser=name))) in html
    # Every family's steps are in the page (the reader may pick another browser), origin in <code>.
    for other, parts in denied_steps_in(app, lang).items():
        for step in parts["main"] + parts["other"]:
            assert str(escape(step.split("%(")[0])) in html, (other, step)
    assert '<code class="js-origin">http://localhost</code>' in html
    assert tr(lang, "Check again") in html
    assert html.count('<details class="other-ways">') >= 6


def test_denied_steps_name_the_site_origin(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/langganan", base_url="https://berita.example").get_data(as_text=True)
    assert '<code class="js-origin origin-main">https://berita.example</code>' in html
    assert "Periksa lagi" in html


def test_ios_and_unsupported_panels_are_present(client) -> None:  # type: ignore[no-untyped-def]
    for lang in LANGS:
        html = client.get(f"/langganan?lang={lang}").get_data(as_text=True)
        assert str(escape(tr(lang, "Choose “Add to Home Screen”, then tap “Add”."))) in html
        assert 'data-panel="ios" hidden' in html
        assert 'data-panel="inapp" hidden' in html
        assert '<ol class="steps" data-ios="chrome" hidden>' in html
        assert 'data-panel="unsupported" hidden' in html
        assert 'role="status" aria-live="polite"' in html


def test_preferences_page(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/preferensi").get_data(as_text=True)
    assert "Preferensi notifikasi" in html
    assert 'id="prefs-unsubscribe">Berhenti berlangganan</button>' in html
    assert '<script src="/static/js/prefs.js" defer></script>' in html
    en = client.get("/preferences?lang=en").get_data(as_text=True)
    assert "Notification preferences" in en


# Service worker and manifest -------------------------------------------------------------------------


def test_service_worker_headers_and_strings(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/sw.js")
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    assert resp.headers["Service-Worker-Allowed"] == "/"
    assert resp.headers["Cache-Control"] == "no-cache"
    config, code_url = loader_parts(resp.get_data(as_text=True))
    assert config["site"] == {"id": "default", "name": "Kabar Kini", "url": "/"}
    assert config["defaultLang"] == "id"
    assert config["catalogs"]["id"]["messages"]["Read"] == "Baca"
    assert config["catalogs"]["en"]["messages"]["Read"] == "Read"
    assert config["catalogs"]["jv"]["messages"]["Read"] == "Waca"
    assert config["api"]["events"] == "/api/v1/events"
    assert code_url == f"/sw/worker.{config['version']}.js"
    code = client.get(code_url)
    assert code.status_code == 200 and code.mimetype == "text/javascript"
    assert "immutable" in code.headers["Cache-Control"]
    rest = code.get_data(as_text=True)
    assert "NotifierI18n" in rest
    for handler in ("push", "notificationclick", "pushsubscriptionchange", "message"):
        assert f'addEventListener("{handler}"' in rest
    assert fetch_status(client, config["icon"]) == 200
    assert fetch_status(client, config["badge"]) == 200


def test_manifest(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/manifest.webmanifest")
    assert resp.status_code == 200
    assert resp.mimetype == "application/manifest+json"
    manifest = resp.get_json(force=True)
    assert manifest["name"] == "Kabar Kini"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert fetch_status(client, icon["src"]) == 200
    html = client.get("/").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert '<link rel="apple-touch-icon" href="/static/icons/apple-touch-icon.png">' in html
    assert fetch_status(client, "/static/icons/apple-touch-icon.png") == 200
