"""Security headers, early refusal of oversized bodies, and per-address rate limits.

- Every response carries a Content-Security-Policy that allows scripts, styles and
  connections only from this origin (no inline script, no ``eval``, no plugins, no
  framing), plus ``nosniff``, a strict referrer policy and, when the public URL is
  https, HSTS; cookies get ``Secure`` (https) and ``SameSite`` when a view forgot them.
- A body larger than ``MAX_CONTENT_LENGTH`` is refused with 413 before any view,
  CSRF check or form parser touches it.
- Limits live in the same Redis (one script call per check, shared by every site process); over a
  limit the API answers 429 JSON with ``Retry-After``, pages an HTML 429. ``NOTIFIER_RATE_LIMITS=0``
  turns them off. They are shaped for readers behind carrier-grade NAT, where thousands share one
  public address (docs/security.md):

  - subscribe: only *new* subscriptions count, per client network (an IPv4 address, an IPv6 /64), plus
    one ceiling for the whole site that protects Redis; a browser re-posting a known endpoint (every
    page visit does) is never refused;
  - receipts: counted once per campaign and subscription by their unforgeable token, so none is
    limited per address; only repeats of one token are limited (per token), and refused receipts
    (forged, malformed) per address;
  - login: per address.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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

#: Views limited per client address by a wrapper: endpoint → (Settings attribute, methods limited).
#: Subscribe and receipts check their own limits inside the view (see :class:`SubscribeLimit`).
RATE_LIMITED: dict[str, tuple[str, tuple[str, ...]]] = {
    "auth.login": ("rate_login", ("POST",)),
}
#: ``app.extensions[EXTENSION]`` names of the limits the views check themselves.
SUBSCRIBE = "api.subscribe"
EVENTS_REFUSED = "api.events.refused"

EXTENSION = "notifier.limiter"

#: A limit of more than this many requests per window keeps one number (GCRA) instead of a list of
#: hit times, so a busy NAT address's day limit costs one small key, not thousands of entries.
EXACT_WINDOW_MAX = 200

log = logging.getLogger(__name__)

# Each key is one limit: "w" a moving window kept as a list of hit times (newest first, at most
# ``amount`` long; a hit is refused while the ``amount``-th newest is still inside the window), "g" the
# generic cell rate algorithm (one number, the theoretical arrival time: a hit is refused when it would
# take that more than ``window`` ahead of now). Modes: "hit" checks every key and counts on all when
# none refuses, "peek" only checks, "add" only counts. Returns {seconds to wait, index of the refusing
# key} ({0, 0} when allowed). ARGV: now, mode, then (kind, amount, window seconds) per key.
_LIMITS = """
local now = tonumber(ARGV[1])
local mode = ARGV[2]
if mode ~= 'add' then
  local wait, which = 0, 0
  for i = 1, #KEYS do
    local kind, amount, window = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
    local w = 0
    if kind == 'w' then
      local oldest = redis.call('LINDEX', KEYS[i], amount - 1)
      if oldest and tonumber(oldest) >= now - window then
        w = math.max(math.ceil(tonumber(oldest) + window - now), 1)
      end
    else
      local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now) + window / amount
      if tat - now > window then w = math.max(math.ceil(tat - window - now), 1) end
    end
    if w > wait then wait, which = w, i end
  end
  if wait > 0 or mode == 'peek' then return {wait, which} end
end
for i = 1, #KEYS do
  local kind, amount, window = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if kind == 'w' then
    redis.call('LPUSH', KEYS[i], ARGV[1])
    redis.call('LTRIM', KEYS[i], 0, amount - 1)
    redis.call('EXPIRE', KEYS[i], window)
  else
    local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now) + window / amount
    redis.call('SET', KEYS[i], string.format('%.6f', tat), 'EX', math.ceil(window) + 1)
  end
end
return {0, 0}
"""


class RateLimited(TooManyRequests):
    """A 429 that knows the limit it broke and how long until the next request is allowed.

    ``everyone``: the limit is the site's own ceiling, not this client's allowance.
    """

    def __init__(self, limit: str, wait: int, *, everyone: bool = False) -> None:
        super().__init__(description=limit, retry_after=wait)
        self.everyone = everyone


@dataclass(frozen=True)
class _Part:
    amount: int
    window: int
    shared: bool  # one counter for every client (a site-wide ceiling)
    description: str

    @property
    def kind(self) -> str:
        return "w" if self.amount <= EXACT_WINDOW_MAX else "g"


def _parts(spec: str, *, shared: bool) -> list[_Part]:
    items = parse_many(spec) if spec else []
    return [_Part(item.amount, item.get_expiry(), shared, str(item)) for item in items]


class RouteLimit:
    """The limits of one route, per client (``spec``) and site-wide (``shared_spec``), in one round trip."""

    def __init__(self, r: redis.Redis, keys: Keys, endpoint: str, spec: str, shared_spec: str = "") -> None:
        self.keys = keys
        self.endpoint = endpoint
        self.parts = _parts(spec, shared=False) + _parts(shared_spec, shared=True)
        self.description = "; ".join(part.description for part in self.parts if not part.shared)
        self._script = r.register_script(_LIMITS)

    def _call(self, mode: str, address: str) -> tuple[int, _Part | None]:
        keys = [
            self.keys.rate_limit(self.endpoint, part.amount, part.window, "*" if part.shared else address)
            for part in self.parts
        ]
        args: list[float | int | str] = [repr(time.time()), mode]
        for part in self.parts:
            args += [part.kind, part.amount, part.window]
        wait, which = self._script(keys=keys, args=args)
        return int(wait), self.parts[int(which) - 1] if int(which) else None

    def hit(self, address: str) -> int:
        """Count a request from ``address``: 0 when allowed, else the seconds to wait (nothing counted)."""
        return self._call("hit", address)[0]

    def peek(self, address: str) -> tuple[int, _Part | None]:
        """Whether a request from ``address`` would be allowed, counting nothing: (wait, refusing limit)."""
        return self._call("peek", address)

    def add(self, address: str) -> None:
        """Count a request from ``address`` that was let through after a :meth:`peek`."""
        self._call("add", address)

    def check(self, address: str) -> None:
        """Raise :class:`RateLimited` when ``address`` is over the limit; a Redis failure lets it through."""
        try:
            wait = self.hit(address)
        except redis.RedisError:
            # A Redis hiccup must not turn every request into a 500; the view's own Redis call decides.
            log.warning("rate limit not checked: Redis failed", exc_info=True)
            return
        if wait:
            raise RateLimited(self.description, wait)


class SubscribeLimit:
    """New subscriptions per client network and site-wide; re-posting a known endpoint is never refused.

    A subscribe asks :meth:`refusal` first (counting nothing); the view stores the subscription unless
    it was refused *and* its endpoint is unknown, then calls :meth:`created` for a new one. Concurrent
    first subscribes from one network may pass the check together: the overshoot is bounded by the
    number of requests in flight.
    """

    def __init__(self, limit: RouteLimit) -> None:
        self.limit = limit

    def refusal(self, network: str) -> RateLimited | None:
        """The 429 a *new* subscription from ``network`` would get now, or None (also when Redis fails)."""
        try:
            wait, part = self.limit.peek(network)
        except redis.RedisError:
            log.warning("subscribe limit not checked: Redis failed", exc_info=True)
            return None
        if not wait or part is None:
            return None
        return RateLimited(part.description, wait, everyone=part.shared)

    def created(self, network: str) -> None:
        """Count a new subscription from ``network``."""
        try:
            self.limit.add(network)
        except redis.RedisError:
            log.warning("subscribe limit not counted: Redis failed", exc_info=True)


def client_network(address: str) -> str:
    """The unit a client is limited by: an IPv4 address, or an IPv6 address's /64 (one subscriber's LAN).

    IPv6 hands every household or phone a /64 of its own, so counting single addresses would let one
    client rotate through 2**64 of them; an IPv4-mapped IPv6 address counts as the IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address() -> str:
    """The client's address (behind a proxy, the deployment's ProxyFix makes remote_addr the client's)."""
    return request.remote_addr or "unknown"


def limited(view: Callable[..., Any], limit: RouteLimit, methods: tuple[str, ...]) -> Callable[..., Any]:
    """``view`` behind ``limit`` for ``methods`` (after the before-request hooks, like a decorator)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method in methods:
            limit.check(client_network(client_address()))
        return view(*args, **kwargs)

    return wrapped


def subscribe_limit() -> SubscribeLimit | None:
    """This app's subscribe limit (None when limits are off)."""
    limit = current_app.extensions.get(EXTENSION, {}).get(SUBSCRIBE)
    return SubscribeLimit(limit) if limit is not None else None


def check_refused_receipt() -> None:
    """Count a refused (forged or malformed) receipt against the client's network; 429 past the limit."""
    limit = current_app.extensions.get(EXTENSION, {}).get(EVENTS_REFUSED)
    if limit is not None:
        limit.check(client_network(client_address()))


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
        if SUBSCRIBE in app.view_functions:
            limits[SUBSCRIBE] = RouteLimit(
                context.redis,
                context.keys,
                SUBSCRIBE,
                settings.rate_subscribe,
                settings.rate_subscribe_global,
            )
        if "api.events" in app.view_functions:
            limits[EVENTS_REFUSED] = RouteLimit(
                context.redis, context.keys, EVENTS_REFUSED, settings.rate_events_refused
            )
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
    if getattr(exc, "everyone", False):
        message = (
            f"the site is taking too many new subscriptions right now ({exc.description}); "
            f"try again in {wait} s"
        )
    else:
        message = f"too many requests from your address ({exc.description}); try again in {wait} s"
    if _wants_json():
        response = json_error(429, "rate_limited", message, retry_after=wait)
    else:
        response = _page(429, "Too Many Requests", message[0].upper() + message[1:] + ".")
    response.headers["Retry-After"] = str(wait)
    return response
