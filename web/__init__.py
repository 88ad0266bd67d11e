"""The Flask site: reader pages, the JSON API, the newsroom and ops dashboards."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from notifier.context import Context
from notifier.settings import Settings
from web import api, cms, editor, embed, errors, i18n, openapi, ops, public, security, serviceworker, sites
from web import context as web_context
from web import logging as request_logging
from web.auth import CookieSessions
from web.fastpath import SubscribeFastPath
from web.prefix import PathPrefix, prefix_of


def create_app(test_config: dict[str, Any] | None = None, *, context: Context | None = None) -> Flask:
    """Application factory: build settings from the environment (or ``test_config``) and wire blueprints."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    if context is None:
        settings = test_config.pop("SETTINGS", None) or Settings.from_env()
        context = Context.build(settings)
    settings = context.settings
    app.config.update(
        SECRET_KEY=settings.secret_key or _development_secret(context),
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        JSON_SORT_KEYS=False,
    )
    if prefix_of(settings.public_url):
        # The newsroom's cookie belongs to notifier's path on the publisher's origin, not to every page of it.
        app.config["SESSION_COOKIE_PATH"] = prefix_of(settings.public_url) + "/"
    app.config.update(test_config)
    web_context.init_app(app, context)

    app.session_interface = CookieSessions()

    # First: it times everything.
    request_logging.init_request_logging(
        app, json_lines=settings.log_json, production=settings.production, tag=settings.log_tag or "site"
    )
    i18n.init_app(app)  # gettext catalogs (compiled when stale) and the request's language
    sites.init_app(app)  # which site a request is for; CORS for the sites' origins
    app.register_blueprint(public.bp)  # reader pages
    app.register_blueprint(serviceworker.bp)  # /sw.js, and /sw/<site>.js for publishers' origins
    app.register_blueprint(embed.bp)  # /embed.js and its configuration, for publishers' pages
    app.register_blueprint(api.bp)  # /api/v1
    app.register_blueprint(cms.bp)  # CMS webhook: POST /api/v1/articles
    editor.register(app)  # newsroom: /login, /logout, /newsroom/...
    app.register_blueprint(openapi.bp)  # GET /api/v1/openapi.json
    ops.register(app)  # ops: /ops, /metrics, /healthz, /readyz
    errors.register(app)  # a Redis outage answers 503 with Retry-After, not 500
    security.init_app(app, context)  # headers, early 413, rate limits: keep last
    # Outermost: a successful reader subscribe is answered before Flask (web/fastpath.py).
    app.wsgi_app = SubscribeFastPath(  # type: ignore[method-assign]
        app, context, app.wsgi_app, body_limit=api.SUBSCRIPTION_BODY_LIMIT
    )
    prefix = prefix_of(settings.public_url)
    if prefix:
        # Mounted under a path behind the publisher's proxy (web/prefix.py).
        app.wsgi_app = PathPrefix(app.wsgi_app, prefix)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # Outermost of all: every layer (the fast path's rate limit too) sees the reader's address. Trusts
        # X-Forwarded-For/-Proto/-Host/-Port/-Prefix exactly as many hops deep as there are proxies of ours.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n
        )
    return app


def _development_secret(context: Context) -> str:
    """A session key for development without SECRET_KEY: derived from the VAPID *private* key.

    Production refuses to start without SECRET_KEY; this keeps a newcomer's sessions unforgeable
    (nothing public goes into it) and stable across restarts.
    """
    private = context.vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return hashlib.sha256(b"notifier flask sessions\x00" + private).hexdigest()
