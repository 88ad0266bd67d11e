"""The service worker, for notifier's own origin and for every publisher's: one versioned worker code.

A push subscription belongs to the origin whose page registered the service worker, so a publisher
hosts a one-line file at its own origin's root (``/notifier-sw.js``, docs/embed.md)::

    importScripts("https://push.example.com/sw/medcom.js");

Three responses, two of them cached by browsers in different ways:

``GET /sw/<site>.js`` — the *loader* (``Cache-Control: no-cache``): ``self.NOTIFIER_CONFIG = {...}``
    (the site, its catalogs in every language, absolute API and icon URLs) followed by
    ``importScripts(".../sw/worker.<version>.js")``. It changes whenever the worker code or the site's
    configuration does; browsers re-check a service worker's imported scripts byte for byte when they
    look for an update (on navigations, and when the widget asks), so a deploy of notifier reaches
    readers' workers without the publisher re-uploading anything.
``GET /sw/worker.<version>.js`` — the *worker code* (``immutable``, a year): ``i18n.js`` then
    ``static/sw/service-worker.js``. ``<version>`` is the first 12 hex digits of the SHA-256 of that text, so
    a URL always means the same code; only the current version is served.
``GET /sw.js`` — notifier's own pages' worker at its own root scope: the loader of the site the
    request is for (the default one), with paths relative to this origin.

The configuration the worker code reads (``self.NOTIFIER_CONFIG``) is :func:`worker_config`; the
widget compares the active worker's ``version`` (``postMessage({type: "notifier:version"})``) with
the current one and calls ``registration.update()`` when they differ.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, url_for

from notifier.errors import NotifierError
from notifier.sites import Site
from web.context import ctx
from web.errors import status_for
from web.i18n import LANGS, js_catalog
from web.sites import request_site

bp = Blueprint("sw", __name__)


@bp.errorhandler(NotifierError)
def _refused(exc: NotifierError) -> Response:
    # A script URL: a plain-text answer the browser's console shows as the reason the worker failed.
    return Response(f"// {exc.message}\n", status=status_for(exc), mimetype="text/javascript")


STATIC = Path(__file__).parent / "static"
#: The worker code, in order: gettext for scripts, then the worker itself.
WORKER_PARTS = (STATIC / "js" / "i18n.js", STATIC / "sw" / "service-worker.js")
#: The gettext bundle of the worker's strings (its folder under web/static).
WORKER_BUNDLE = "sw"
#: A year: the worker code's URL names its content.
IMMUTABLE = "public, max-age=31536000, immutable"
#: How long the service worker retries a receipt within one event (Firefox ends an event's extension
#: after 30 s), and how long an undelivered one waits in its outbox for a later event (the default TTL).
RECEIPT_RETRY_SECONDS = 25
RECEIPT_KEEP_SECONDS = 24 * 3600


@lru_cache(maxsize=4)
def _code_for(stamps: tuple[tuple[str, int, int], ...]) -> tuple[str, str]:
    text = "".join(Path(path).read_text("utf-8") for path, _, _ in stamps)
    return hashlib.sha256(text.encode()).hexdigest()[:12], text


def worker_code() -> tuple[str, str]:
    """``(version, text)`` of the worker code (re-read when a part's file changes)."""
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in WORKER_PARTS)
    return _code_for(stamps)


def worker_config(site: Site, version: str, *, external: bool) -> dict[str, Any]:
    """What the worker code finds in ``self.NOTIFIER_CONFIG`` for ``site``.

    ``external``: absolute URLs (a publisher's origin loads this); otherwise paths on this origin.
    """

    def link(endpoint: str, **values: Any) -> str:
        return url_for(endpoint, _external=external, **values)

    site_arg = {"site": site.id} if external else {}
    return {
        "version": version,
        "site": {"id": site.id, "name": site.name, "url": site.url if external else link("public.home")},
        "defaultLang": site.lang,
        "catalogs": {lang: js_catalog(WORKER_BUNDLE, lang) for lang in LANGS},
        "icon": link("static", filename="icons/icon-192.png"),
        "badge": link("static", filename="icons/badge-96.png"),
        "api": {
            "vapidKey": link("api.vapid_public_key", **site_arg),
            "subscriptions": link("api.subscribe", **site_arg),
            "events": link("api.events"),
        },
        "receipts": {"retryMs": RECEIPT_RETRY_SECONDS * 1000, "keepMs": RECEIPT_KEEP_SECONDS * 1000},
    }


def _javascript(body: str, cache: str) -> Response:
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = cache
    # A publisher's page may isolate itself (COEP): these scripts are meant to load from anywhere.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def loader(site: Site, *, external: bool) -> str:
    """The loader script of ``site``: its configuration, then the current worker code."""
    version, _ = worker_code()
    config = worker_config(site, version, external=external)
    code_url = url_for("sw.code", version=version, _external=external)
    return (
        f"// notifier service worker for site {site.id}, code {version} (docs/embed.md)\n"
        f"self.NOTIFIER_CONFIG = {json.dumps(config, ensure_ascii=False, separators=(',', ':'))};\n"
        f"importScripts({json.dumps(code_url)});\n"
    )


@bp.get("/sw/<site_id>.js")
def site_loader(site_id: str) -> Response:
    """The worker a publisher's ``/notifier-sw.js`` imports (or its proxied ``/notifier-sw.js`` itself)."""
    site = ctx().sites.find(site_id)
    if site is None:
        abort(404)
    return _javascript(loader(site, external=True), "no-cache")


@bp.get("/sw/worker.<version>.js")
def code(version: str) -> Response:
    """The worker code of this release (the one version the current loaders import)."""
    current, text = worker_code()
    if version != current:
        abort(404)
    return _javascript(text, IMMUTABLE)


@bp.get("/sw.js")
def own() -> Response:
    """notifier's own pages' worker, at this origin's root scope (the default site's, or ``?site=``'s)."""
    response = _javascript(loader(request_site(), external=False), "no-cache")
    response.headers["Service-Worker-Allowed"] = "/"
    return response


def current_version() -> str:
    """The version of the worker code this release serves."""
    return worker_code()[0]
