"""The embed: one script tag on a publisher's page renders the opt-in widget (docs/embed.md).

``GET /embed.js`` is one file: ``i18n.js``, ``push.js`` (the same helpers as notifier's own pages) and
``static/embed/embed.js`` (the widget), wrapped in one function that defines ``NOTIFIER_SCOPE`` so that
nothing lands on the publisher's ``window``. It is cached for ten minutes with an ETag, so a deploy
reaches pages within minutes and a revalidation costs a 304.

``GET /embed/config?site=<id>&lang=<id|en>`` is what the widget fetches once it runs (CORS: the site's
declared origins only; the site comes from the page's origin): the site, its topics in that language,
the widget's strings (gettext bundle ``embed``), the per-browser steps for a blocked permission, the
API URLs and the current worker code version.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import rjsmin
from flask import Blueprint, Response, jsonify, request, url_for
from flask_babel import force_locale

from notifier.errors import NotifierError
from notifier.sites import SITE_LANGS, Site
from web.errors import json_error, status_for
from web.i18n import js_catalog, lang_name, normalize_lang
from web.public import BROWSER_ORDER, browser_names, denied_steps
from web.serviceworker import current_version
from web.sites import request_site

bp = Blueprint("embed", __name__)


@bp.errorhandler(NotifierError)
def _refused(exc: NotifierError) -> Response:
    return json_error(status_for(exc), exc.code, exc.message)


STATIC = Path(__file__).parent / "static"
#: The embed script, in order: gettext, the push helpers, the widget.
EMBED_PARTS = (STATIC / "js" / "i18n.js", STATIC / "js" / "push.js", STATIC / "embed" / "embed.js")
#: The gettext bundle of the widget's strings (its folder under web/static).
EMBED_BUNDLE = "embed"
#: Seconds browsers and CDNs may reuse /embed.js and the configuration before revalidating.
EMBED_MAX_AGE = 600
#: The worker file a publisher hosts at its origin's root, unless the tag names another (data-worker).
WORKER_FILE = "/notifier-sw.js"


@lru_cache(maxsize=4)
def _bundle_for(stamps: tuple[tuple[str, int, int], ...]) -> tuple[str, str]:
    inner = "\n".join(Path(path).read_text("utf-8") for path, _, _ in stamps)
    # Comments and layout go (rjsmin knows strings and regular expressions); the sources are readable.
    code = rjsmin.jsmin("(function () {\nvar NOTIFIER_SCOPE = {};\n" + inner + "\n}());\n")
    text = "/* notifier embed (docs/embed.md); its sources: web/static/{js/i18n,js/push,embed/embed}.js */\n"
    text += code + "\n"
    return hashlib.sha256(text.encode()).hexdigest()[:16], text


def embed_bundle() -> tuple[str, str]:
    """``(etag, text)`` of ``/embed.js`` (re-read when a part's file changes)."""
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in EMBED_PARTS)
    return _bundle_for(stamps)


@bp.get("/embed.js")
def script() -> Response:
    """The widget script a publisher's tag loads (``async``: it never blocks the page)."""
    etag, text = embed_bundle()
    response = Response(text, mimetype="text/javascript")
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={EMBED_MAX_AGE}"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


def widget_config(site: Site, lang: str) -> dict[str, Any]:
    """What the widget renders for ``site`` in ``lang``: texts, topics, steps, API URLs."""
    args = {"site": site.id}
    with force_locale(lang):
        names = browser_names()
        steps = denied_steps()
        langs = [{"code": code, "name": lang_name(code)} for code in SITE_LANGS]
    return {
        "site": {"id": site.id, "name": site.name, "lang": site.lang, "url": site.url},
        "lang": lang,
        "langs": langs,
        "topics": [{"slug": t.slug, "name": t.name(lang)} for t in site.topics],
        "defaultTopics": [site.topics[0].slug] if site.topics else [],
        "catalog": js_catalog(EMBED_BUNDLE, lang),
        "browsers": list(BROWSER_ORDER),
        "browserNames": names,
        "steps": steps,
        "api": {
            "vapidKey": url_for("api.vapid_public_key", _external=True, **args),
            "subscriptions": url_for("api.subscribe", _external=True, **args),
        },
        "worker": {"file": WORKER_FILE, "version": current_version()},
    }


@bp.get("/embed/config")
def config() -> Response:
    """The widget's configuration for the page's site, in ``?lang=`` (id or en; the site's by default)."""
    site = request_site()
    asked = normalize_lang(request.args.get("lang"))
    lang = asked if asked in SITE_LANGS else site.lang
    response = jsonify(widget_config(site, lang))
    response.headers["Cache-Control"] = f"public, max-age={EMBED_MAX_AGE}"
    response.headers["Content-Language"] = lang
    response.vary.add("Origin")
    return response
