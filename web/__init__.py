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

    from web import api, public

    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    return app


def ctx() -> Context:
    """The notifier context bound to the current app."""
    context: Context = current_app.extensions["notifier"]
    return context
