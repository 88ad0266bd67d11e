"""The Flask site: reader pages, the JSON API, the newsroom and ops dashboards."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from notifier.context import Context
from notifier.settings import Settings


def create_app(test_config: dict[str, Any] | None = None, *, context: Context | None = None) -> Flask:
    """Application factory: build settings from the environment (or ``test_config``) and wire blueprints."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    if context is None:
        settings = test_config.pop("SETTINGS", None) or Settings.from_env()
        context = Context.build(settings)
    settings = context.settings
    app.config.update(
        SECRET_KEY=settings.secret_key or "dev-" + context.vapid.public_key_b64[:32],
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        JSON_SORT_KEYS=False,
    )
    app.config.update(test_config)
    app.extensions["notifier"] = context
    __import__("web.logging").logging.init_request_logging(
        app, json_lines=settings.log_json
    )  # first: times all

    from web import api, public

    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(__import__("web.cms").cms.bp)  # CMS webhook: POST /api/v1/articles
    __import__("web.editor").editor.register(app)  # newsroom: /login, /logout, /newsroom/...
    app.register_blueprint(__import__("web.openapi").openapi.bp)  # GET /api/v1/openapi.json
    __import__("web.ops").ops.register(app)  # ops: /ops, /metrics, /healthz, /readyz
    __import__("web.security").security.init_app(app, context)  # headers, 413, rate limits: keep last
    return app


def ctx() -> Context:
    """The notifier context bound to the current app."""
    context: Context = current_app.extensions["notifier"]
    return context
