"""Security headers, early refusal of oversized bodies, and per-address rate limits.

- Every response carries a Content-Security-Policy that allows scripts, styles and
  connections only from this origin (no inline script, no ``eval``, no plugins, no
  framing), plus ``nosniff``, a strict referrer policy and, when the public URL is
  https, HSTS; cookies get ``Secure`` (https) and ``SameSite`` when a view forgot them.
- A body larger than ``MAX_CONTENT_LENGTH`` is refused with 413 before any view,
  CSRF check or form parser touches it.
- Subscribe, receipts and login are limited per client address with Flask-Limiter,
  counters in the same Redis; over the limit the API answers 429 JSON with
  ``Retry-After``, pages an HTML 429. ``NOTIFIER_RATE_LIMITS=0`` turns them off.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from markupsafe import escape
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from notifier.context import Context
from web.errors import json_error

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "img-src 'self' https: data:; connect-src 'self'; style-src 'self'"
)
#: Two years, the preload list's minimum; sent only when the site is served over https.
HSTS = "max-age=63072000; includeSubDomains"

#: endpoint → (Settings attribute holding its limit, methods limited). Endpoints not registered are skipped.
RATE_LIMITED: dict[str, tuple[str, tuple[str, ...]]] = {
    "api.subscribe": ("rate_subscribe", ("POST",)),
    "api.events": ("rate_events", ("POST",)),
    "auth.login": ("rate_login", ("POST",)),
}

EXTENSION = "notifier.limiter"


def client_address() -> str:
    """The client's address (behind a proxy, the deployment's ProxyFix makes remote_addr the client's)."""
    return request.remote_addr or "unknown"


def init_app(app: Flask, context: Context) -> Limiter:
    """Install headers, the body-size guard and the rate limits; call after every blueprint is registered."""
    settings = context.settings
    https = settings.public_url.startswith("https://")
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=settings.effective_redis_url,
        storage_options={"key_prefix": context.keys.rate_limit_prefix},
        enabled=settings.rate_limits,
        strategy="moving-window",
        headers_enabled=False,
        # A Redis hiccup must not turn every subscribe into a 500; the view's own Redis call decides.
        swallow_errors=True,
    )
    app.extensions[EXTENSION] = limiter
    for endpoint, (attr, methods) in RATE_LIMITED.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            limit: str = getattr(settings, attr)
            app.view_functions[endpoint] = limiter.limit(limit, methods=list(methods))(view)

    # First of all before_request hooks: nothing (CSRF check, form parser, view) reads an oversized body.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversized)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(TooManyRequests, _too_many)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        cookies = headers.getlist("Set-Cookie")
        if cookies:
            headers.setlist("Set-Cookie", [harden_cookie(c, secure=https) for c in cookies])
        return response

    return limiter


def harden_cookie(header: str, *, secure: bool) -> str:
    """Add ``SameSite=Lax`` when a Set-Cookie lacks SameSite, and ``Secure`` on an https site."""
    attributes = {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}
    if "samesite" not in attributes:
        header += "; SameSite=Lax"
    if secure and "secure" not in attributes:
        header += "; Secure"
    return header


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def _page(status: int, title: str, message: str) -> Response:
    """A small standalone HTML error page (no inline script or style)."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status} {escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
    )
    return Response(html, status=status, mimetype="text/html")


def _refuse_oversized() -> Response | None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        return _too_large(RequestEntityTooLarge())
    return None


def _too_large(_exc: HTTPException) -> Response:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    message = f"the request body is larger than {limit} bytes"
    if _wants_json():
        return json_error(413, "too_large", message)
    return _page(413, "Request Entity Too Large", message.capitalize() + ".")


def _retry_after() -> int:
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 60
    return max(1, math.ceil(current.window[0] - time.time()))


def _too_many(exc: HTTPException) -> Response:
    wait = _retry_after()
    message = f"too many requests from your address ({exc.description}); try again in {wait} s"
    if _wants_json():
        response = json_error(429, "rate_limited", message, retry_after=wait)
    else:
        response = _page(429, "Too Many Requests", message[0].upper() + message[1:] + ".")
    response.headers["Retry-After"] = str(wait)
    return response
