"""Reader-facing pages: the demo article, the subscribe walkthrough, preferences, the service worker."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from notifier.browsers import BROWSERS, detect_browser
from web.articles import ARTICLES, HOME_ARTICLE, article_in
from web.context import ctx
from web.i18n import LANGS, current_lang, lang_name
from web.names import browser_names

bp = Blueprint("public", __name__)


#: Browser families in the order the "other browser" picker lists them: the detector's own order.
BROWSER_ORDER: tuple[str, ...] = BROWSERS


def denied_steps() -> dict[str, dict[str, list[str]]]:
    """Per browser: the two steps that unblock notifications, and other ways (shown collapsed).

    ``%(origin)s`` becomes the site's origin in ``<code>`` and ``%(site)s`` the site's name.
    """
    return {
        "chrome-desktop": {
            "main": [
                _(
                    "Click the \u201cView site information\u201d icon (two small sliders, or a lock) to the "
                    "left of %(origin)s in the address bar."
                ),
                _(
                    "Next to \u201cNotifications\u201d, switch it on or choose \u201cAllow\u201d. Not "
                    "listed? Click \u201cSite settings\u201d and set \u201cNotifications\u201d to "
                    "\u201cAllow\u201d."
                ),
            ],
            "other": [
                _(
                    "Menu \u22ee \u2192 Settings \u2192 Privacy and security \u2192 Site settings \u2192 "
                    "Notifications: find %(origin)s under \u201cNot allowed to send notifications\u201d "
                    "and choose \u201cAllow\u201d."
                ),
            ],
        },
        "chrome-android": {
            "main": [
                _(
                    "Tap the \u201cView site information\u201d icon (two small sliders) to the left of the "
                    "address, then tap \u201cPermissions\u201d."
                ),
                _("Switch \u201cNotifications\u201d on."),
            ],
            "other": [
                _(
                    "Menu \u22ee \u2192 Settings \u2192 Site settings \u2192 Notifications: find %(origin)s "
                    "under \u201cBlocked\u201d and choose \u201cAllow\u201d."
                ),
                _(
                    "Still nothing? Allow notifications for the Chrome app itself: Android Settings \u2192 "
                    "Apps \u2192 Chrome \u2192 Notifications."
                ),
            ],
        },
        "firefox": {
            "main": [
                _("Click the crossed-out notification icon to the left of %(origin)s in the address bar."),
                _(
                    "Next to \u201cSend notifications: Blocked\u201d, click \u2715 to clear it, then press "
                    "\u201cTurn on notifications\u201d on this page again."
                ),
            ],
            "other": [
                _(
                    "Menu \u2630 \u2192 Settings \u2192 Privacy & Security \u2192 Permissions \u2192 "
                    "Notifications \u2192 Settings\u2026: set %(origin)s to \u201cAllow\u201d and save."
                ),
                _(
                    "Firefox on Android: menu \u22ee \u2192 Settings \u2192 Site permissions \u2192 "
                    "Notifications."
                ),
            ],
        },
        "safari-macos": {
            "main": [
                _(
                    "In the menu bar choose Safari \u2192 Settings\u2026, then open the \u201cWebsites\u201d "
                    "tab."
                ),
                _(
                    "Select \u201cNotifications\u201d on the left, find %(origin)s and choose "
                    "\u201cAllow\u201d."
                ),
            ],
            "other": [
                _(
                    "Make sure Safari may show notifications at all: System Settings \u2192 Notifications "
                    "\u2192 Safari."
                ),
            ],
        },
        "safari-ios": {
            "main": [
                _("Open the Settings app on your iPhone or iPad and tap \u201cNotifications\u201d."),
                _("Find %(site)s (the Home Screen app) and switch on \u201cAllow Notifications\u201d."),
            ],
            "other": [_("Then open %(site)s again from its Home Screen icon.")],
        },
        "edge": {
            "main": [
                _("Click the lock icon to the left of %(origin)s in the address bar."),
                _(
                    "Choose \u201cPermissions for this site\u201d and set \u201cNotifications\u201d to "
                    "\u201cAllow\u201d."
                ),
            ],
            "other": [
                _(
                    "Menu \u22ef \u2192 Settings \u2192 Cookies and site permissions \u2192 Notifications: "
                    "find %(origin)s under \u201cBlock\u201d and choose \u201cAllow\u201d."
                ),
            ],
        },
        "samsung": {
            "main": [
                _("Tap the menu \u2261 at the bottom right, then \u201cSettings\u201d."),
                _(
                    "Tap \u201cSites and downloads\u201d \u2192 \u201cNotifications\u201d, find %(origin)s "
                    "among the blocked sites and choose \u201cAllow\u201d."
                ),
            ],
            "other": [],
        },
        "other": {
            "main": [
                _(
                    "Open your browser's settings and find \u201cNotifications\u201d (under site "
                    "settings or privacy)."
                ),
                _("Find %(origin)s in the list of sites and choose \u201cAllow\u201d."),
            ],
            "other": [],
        },
    }


def _origin() -> str:
    """This site's origin as the request reached it (the page script replaces it with ``location.origin``)."""
    return request.host_url.rstrip("/")


def _step_markup(text: str, origin: str, site: str) -> Markup:
    """One step as HTML: the origin set in ``<code>`` (the script refines it), the site name filled in."""
    html = str(escape(text))
    html = html.replace("%(site)s", str(escape(site)))
    return Markup(html.replace("%(origin)s", f'<code class="js-origin">{escape(origin)}</code>'))  # noqa: S704


def _render(template: str, *, status: int = 200, **values: Any) -> Response:
    """Render a reader page in the reader's language."""
    lang = current_lang()
    c = ctx()
    site = c.settings.site_name
    guess = detect_browser(request.headers.get("User-Agent", ""))
    origin = _origin()
    topics = [{"slug": topic.slug, "name": topic.name(lang)} for topic in c.topics]
    names = browser_names()
    page_data = {
        "lang": lang,
        "site": site,
        "browser": guess,
        "browsers": list(BROWSER_ORDER),
        "browserNames": names,
        "topics": topics,
        "defaultTopics": [c.topics[0].slug] if c.topics else [],
        "api": {
            "vapidKey": url_for("api.vapid_public_key"),
            "subscriptions": url_for("api.subscribe"),
        },
        "sw": url_for("sw.own"),
        # Under a path prefix (web/prefix.py) notifier's own pages keep their worker to that path.
        "scope": request.script_root + "/",
        "prefsUrl": url_for("public.preferences"),
    }
    steps = {
        family: {part: [_step_markup(step, origin, site) for step in texts] for part, texts in parts.items()}
        for family, parts in denied_steps().items()
    }
    html = render_template(
        template,
        page_lang=lang,
        langs=LANGS,
        lang_names={code: lang_name(code) for code in LANGS},
        site=site,
        topics=topics,
        default_topics=page_data["defaultTopics"],
        browser_guess=guess,
        browser_order=BROWSER_ORDER,
        browser_names=names,
        denied_steps=steps,
        origin=origin,
        page_data=page_data,
        **values,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.vary.add("User-Agent")
    return response


def _article(slug: str) -> Response:
    lang = current_lang()
    article = article_in(slug, lang)
    if article is None:
        return _render("public/not_found.html", status=404)
    others = [
        {"slug": other, "title": (article_in(other, lang) or {}).get("title", "")}
        for other in ARTICLES
        if other != slug
    ]
    return _render("public/article.html", article=article, slug=slug, others=others, active="home")


@bp.get("/")
def home() -> Response:
    """The demo front page: the lead article with the opt-in call to action."""
    return _article(HOME_ARTICLE)


@bp.get("/artikel/<slug>")
def article(slug: str) -> Response:
    """One demo article with the opt-in call to action in its footer."""
    return _article(slug)


@bp.get("/langganan")
@bp.get("/subscribe")
def subscribe() -> Response:
    """The subscribe walkthrough: soft prompt, topic picker, denied and iOS instructions."""
    return _render("public/subscribe.html", active="subscribe")


@bp.get("/preferensi")
@bp.get("/preferences")
def preferences() -> Response:
    """Change topics or unsubscribe this browser."""
    return _render("public/preferences.html", active="preferences")


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest (iOS and Android Home Screen installs)."""
    lang = current_lang()
    site = ctx().settings.site_name
    data = {
        "name": site,
        "short_name": site[:12],
        "description": _(
            "Follow the latest news from %(site)s without opening the site again and again.", site=site
        ),
        "lang": lang,
        "start_url": request.script_root + "/",
        "scope": request.script_root + "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b4f8a",
        "icons": [
            {
                "src": url_for("static", filename="icons/icon-192.png"),
                "sizes": "192x192",
                "type": "image/png",
            },
            {
                "src": url_for("static", filename="icons/icon-512.png"),
                "sizes": "512x512",
                "type": "image/png",
            },
        ],
    }
    response = Response(json.dumps(data, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.vary.add("Accept-Language")
    return response


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    return response
