"""Security headers, early refusal of oversized bodies, and per-address rate limits.

- Every response carries a Content-Security-Policy that allows scripts, styles and
  connections only from this origin (no inline script, no ``eval``, no plugins, no
  framing), plus ``nosniff``, a strict referrer policy and, when the public URL is
  https, HSTS; cookies get ``Secure`` (https) and ``SameSite`` when a view forgot them.
- A body larger than ``MAX_CONTENT_LENGTH`` is refused with 413 before any view,
  CSRF check or form parser touches it.
- Subscribe, receipts and login are limited per client address with a moving window
  whose hit times live in the same Redis (one script call per limited request, shared by
  every site process); over the limit the API answers 429 JSON with ``Retry-After``,
  pages an HTML 429. ``NOTIFIER_RATE_LIMITS=0`` turns them off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import redis
from flask import Flask, Response, current_app, request
from limits import parse_many
from markupsafe import escape
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from notifier.context import Context
from notifier.keys import Keys
from web.errors import json_error

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "img-src 'self' https: data:; connect-src 'self'; style-src 'self'"
)
#: Two years, the preload list's minimum; sent only when the site is served over https.
HSTS = "max-age=63072000; includeSubDomains"

#: Headers every response gets unless the view set its own.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)

#: endpoint → (Settings attribute holding its limit, methods limited). Endpoints not registered are skipped.
RATE_LIMITED: dict[str, tuple[str, tuple[str, ...]]] = {
    "api.subscribe": ("rate_subscribe", ("POST",)),
    "api.events": ("rate_events", ("POST",)),
    "auth.login": ("rate_login", ("POST",)),
}

EXTENSION = "notifier.limiter"

log = logging.getLogger(__name__)

# A moving window per (limit, address): a list of hit times, newest first, at most ``amount`` long.
# A hit is refused while the ``amount``-th newest hit is still inside the window; then the answer is
# the seconds until it leaves. Every limit of one route is checked before any is counted, atomically.
# ARGV: now, then (amount, window seconds) per key.
_MOVING_WINDOW = """
local now = tonumber(ARGV[1])
local wait = 0
for i = 1, #KEYS do
  local amount = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local oldest = redis.call('LINDEX', KEYS[i], amount - 1)
  if oldest and tonumber(oldest) >= now - window then
    wait = math.max(wait, math.ceil(tonumber(oldest) + window - now), 1)
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  local amount = tonumber(ARGV[2 * i])
  redis.call('LPUSH', KEYS[i], ARGV[1])
  redis.call('LTRIM', KEYS[i], 0, amount - 1)
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1])
end
return 0
"""


class RateLimited(TooManyRequests):
    """A 429 that knows the limit it broke and how long until the next request is allowed."""

    def __init__(self, limit: str, wait: int) -> None:
        super().__init__(description=limit, retry_after=wait)


class RouteLimit:
    """The limits of one route, checked and counted per client address in one Redis round trip."""

    def __init__(self, r: redis.Redis, keys: Keys, endpoint: str, spec: str) -> None:
        items = parse_many(spec)
        self.description = "; ".join(str(item) for item in items)
        self.keys = keys
        self.endpoint = endpoint
        self.parts = [(item.amount, item.get_expiry()) for item in items]
        self._script = r.register_script(_MOVING_WINDOW)

    def hit(self, address: str) -> int:
        """Count a request from ``address``: 0 when allowed, else the seconds to wait (nothing counted)."""
        keys = [self.keys.rate_limit(self.endpoint, amount, window, address) for amount, window in self.parts]
        args: list[float | int] = [time.time()]
        for amount, window in self.parts:
            args += [amount, window]
        return int(self._script(keys=keys, args=args))

    def check(self, address: str) -> None:
        """Raise :class:`RateLimited` when ``address`` is over the limit; a Redis failure lets it through."""
        try:
            wait = self.hit(address)
        except redis.RedisError:
            # A Redis hiccup must not turn every subscribe into a 500; the view's own Redis call decides.
            log.warning("rate limit not checked: Redis failed", exc_info=True)
            return
        if wait:
            raise RateLimited(self.description, wait)


def client_address() -> str:
    """The client's address (behind a proxy, the deployment's ProxyFix makes remote_addr the client's)."""
    return request.remote_addr or "unknown"


def limited(view: Callable[..., Any], limit: RouteLimit, methods: tuple[str, ...]) -> Callable[..., Any]:
    """``view`` behind ``limit`` for ``methods`` (after the before-request hooks, like a decorator)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method in methods:
            limit.check(client_address())
        return view(*args, **kwargs)

    return wrapped


def init_app(app: Flask, context: Context) -> dict[str, RouteLimit]:
    """Install headers, the body-size guard and the rate limits; call after every blueprint is registered."""
    settings = context.settings
    https = settings.public_url.startswith("https://")
    limits: dict[str, RouteLimit] = {}
    if settings.rate_limits:
        for endpoint, (attr, methods) in RATE_LIMITED.items():
            view = app.view_functions.get(endpoint)
            if view is not None:
                spec: str = getattr(settings, attr)
                limit = RouteLimit(context.redis, context.keys, endpoint, spec)
                limits[endpoint] = limit
                app.view_functions[endpoint] = limited(view, limit, methods)
    app.extensions[EXTENSION] = limits

    # First of all before_request hooks: nothing (CSRF check, form parser, view) reads an oversized body.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversized)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(TooManyRequests, _too_many)

    defaults = SECURITY_HEADERS + ((("Strict-Transport-Security", HSTS),) if https else ())
    lowered = tuple((name.lower(), name, value) for name, value in defaults)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers}
        for key, name, value in lowered:
            if key not in present:
                headers.add(name, value)
        if "set-cookie" in present:
            cookies = headers.getlist("Set-Cookie")
            headers.setlist("Set-Cookie", [harden_cookie(c, secure=https) for c in cookies])
        return response

    return limits


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
    length = request.content_length
    if length is not None:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and length > limit:
            return _too_large(RequestEntityTooLarge())
    return None


def _too_large(_exc: HTTPException) -> Response:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    message = f"the request body is larger than {limit} bytes"
    if _wants_json():
        return json_error(413, "too_large", message)
    return _page(413, "Request Entity Too Large", message.capitalize() + ".")


def _too_many(exc: HTTPException) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    wait = max(1, math.ceil(retry_after)) if isinstance(retry_after, int | float) else 60
    message = f"too many requests from your address ({exc.description}); try again in {wait} s"
    if _wants_json():
        response = json_error(429, "rate_limited", message, retry_after=wait)
    else:
        response = _page(429, "Too Many Requests", message[0].upper() + message[1:] + ".")
    response.headers["Retry-After"] = str(wait)
    return response
