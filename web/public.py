"""Reader-facing pages: the demo article, the subscribe walkthrough, preferences, the service worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request, url_for
from markupsafe import Markup, escape

from notifier.browsers import detect_browser
from web.context import ctx
from web.i18n import (
    ARTICLES,
    BROWSER_ORDER,
    DENIED_STEPS,
    HOME_ARTICLE,
    JS_KEYS,
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE,
    LANGS,
    SW_KEYS,
    browser_names,
    pick_lang,
    strings_for,
    translate,
)

bp = Blueprint("public", __name__)

#: The service worker source; ``/sw.js`` serves it at the root scope with its strings prepended.
SW_SOURCE = Path(__file__).parent / "static" / "js" / "sw.js"


def _origin() -> str:
    """This site's origin as the request reached it (the page script replaces it with ``location.origin``)."""
    return request.host_url.rstrip("/")


def _step_markup(text: str, origin: str, site: str) -> Markup:
    """One denied-permission step as HTML, the origin set in ``<code>`` so the script can refine it."""
    html = str(escape(text))
    html = html.replace("{site}", str(escape(site)))
    return Markup(html.replace("{origin}", f'<code class="js-origin">{escape(origin)}</code>'))  # noqa: S704


def _render(template: str, *, status: int = 200, **values: Any) -> Response:
    """Render a public page in the reader's language, remembering an explicit ``?lang=`` in a cookie."""
    lang, explicit = pick_lang(request)
    c = ctx()
    site = c.settings.site_name
    guess = detect_browser(request.headers.get("User-Agent", ""))
    origin = _origin()

    def t(key: str, **fill: str) -> str:
        return translate(lang, key, site=site, **fill)

    def lang_url(code: str) -> str:
        args = {k: v for k, v in request.args.items() if k != "lang"}
        args["lang"] = code
        return request.path + "?" + urlencode(args)

    topics = [{"slug": topic.slug, "name": topic.name(lang)} for topic in c.topics]
    page_data = {
        "lang": lang,
        "site": site,
        "browser": guess,
        "browsers": list(BROWSER_ORDER),
        "browserNames": browser_names(lang),
        "topics": topics,
        "defaultTopics": [c.topics[0].slug] if c.topics else [],
        "strings": strings_for(lang, JS_KEYS, site=site),
        "api": {
            "vapidKey": url_for("api.vapid_public_key"),
            "subscriptions": url_for("api.subscribe"),
        },
        "sw": url_for("public.service_worker"),
        "prefsUrl": url_for("public.preferences"),
    }
    steps = {
        family: [_step_markup(step, origin, site) for step in DENIED_STEPS[lang][family]]
        for family in BROWSER_ORDER
    }
    html = render_template(
        template,
        page_lang=lang,
        langs=LANGS,
        lang_names={code: translate(code, "lang.name") for code in LANGS},
        lang_url=lang_url,
        t=t,
        site=site,
        topics=topics,
        default_topics=page_data["defaultTopics"],
        browser_guess=guess,
        browser_order=BROWSER_ORDER,
        browser_names=browser_names(lang),
        denied_steps=steps,
        origin=origin,
        page_data=page_data,
        **values,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Language"] = lang
    response.vary.update(("Accept-Language", "Cookie", "User-Agent"))
    if explicit:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True)
    return response


def _article(slug: str) -> Response:
    lang, _explicit = pick_lang(request)
    article = ARTICLES.get(slug)
    if article is None:
        return _render("public/not_found.html", status=404)
    others = [{"slug": other, "title": ARTICLES[other][lang]["title"]} for other in ARTICLES if other != slug]
    return _render("public/article.html", article=article[lang], slug=slug, others=others, active="home")


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


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker at the root scope, with its strings (both languages) and site name prepended."""
    site = ctx().settings.site_name
    config = {
        "site": site,
        "defaultLang": LANGS[0],
        "strings": {lang: strings_for(lang, SW_KEYS, site=site) for lang in LANGS},
        "icon": url_for("static", filename="icons/icon-192.png"),
        "badge": url_for("static", filename="icons/badge-96.png"),
        "api": {
            "vapidKey": url_for("api.vapid_public_key"),
            "subscriptions": url_for("api.subscribe"),
            "events": "/api/v1/events",
        },
    }
    body = f"self.NOTIFIER_CONFIG = {json.dumps(config, ensure_ascii=False)};\n" + SW_SOURCE.read_text(
        "utf-8"
    )
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest (iOS and Android Home Screen installs)."""
    lang, _explicit = pick_lang(request)
    site = ctx().settings.site_name
    data = {
        "name": site,
        "short_name": site[:12],
        "description": translate(lang, "subscribe.lead", site=site),
        "lang": lang,
        "start_url": "/",
        "scope": "/",
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
