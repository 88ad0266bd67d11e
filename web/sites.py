"""Which site a request is for, and CORS for the origins the sites declare.

A reader's browser says where it is: a page (the embed) or service worker on a publisher's origin
sends ``Origin``, and that origin's site is the request's site. A request that names a site
(``?site=medcom``) from an origin of another site is refused, so a subscription posted from one
site's pages can never land in another's. Requests with no ``Origin`` (an API client, a server)
or from notifier's own origin use ``?site=`` or the default site. An origin no site declares is
refused with 403 and gets no CORS headers, so its pages cannot read any answer either.

The reader routes (key, topics, subscriptions, receipts, the embed's configuration) answer CORS
preflights for declared origins; nothing else does (the campaign API takes tokens, which belong on
servers, not in pages).
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from flask import Flask, Response, request

from notifier.errors import Forbidden
from notifier.settings import Settings
from notifier.sites import Site, Sites, origin_of_url
from web.context import ctx
from web.errors import json_error

#: Endpoints a publisher's pages and service worker call cross-origin.
READER_ENDPOINTS = frozenset(
    {
        "api.vapid_public_key",
        "api.topics",
        "api.subscribe",
        "api.subscription_status",
        "api.change_topics",
        "api.unsubscribe",
        "api.events",
        "embed.config",
    }
)
#: What a declared origin may send (the reader API is JSON; no credentials cross-origin).
ALLOW_METHODS = "GET, POST, PATCH, DELETE"
ALLOW_HEADERS = "Content-Type"
#: Seconds a browser may reuse a preflight answer (Chromium caps it at 7200).
PREFLIGHT_MAX_AGE = "7200"


def own_origins(settings: Settings, host_url: str) -> frozenset[str]:
    """Notifier's own origins: its public URL's and the one this request reached."""
    return frozenset({origin_of_url(settings.public_url), origin_of_url(host_url)})


def resolve_site(sites: Sites, *, origin: str | None, explicit: str | None, own: Container[str]) -> Site:
    """The site of a request from ``origin`` naming ``explicit`` (or not); Forbidden / NotFound when none.

    A declared origin decides (naming another site is refused); notifier's own origin or no origin
    at all takes the named site or the default one; any other origin is refused.
    """
    if origin and origin != "null":
        site = sites.by_origin(origin)
        if site is not None:
            if explicit and explicit != site.id:
                raise Forbidden(
                    f"origin {origin} belongs to site {site.id!r}, not {explicit[:40]!r}", code="wrong_site"
                )
            return site
        if origin not in own:
            raise Forbidden(
                f"origin {origin[:100]} is not declared by any site; add it to the site's origins "
                "(notifier sites add / the sites file)",
                code="origin_not_allowed",
            )
    elif origin == "null":
        raise Forbidden("an opaque origin (null) is not declared by any site", code="origin_not_allowed")
    return sites.get(explicit or None)


def request_site() -> Site:
    """The site of the current request (see :func:`resolve_site`)."""
    c = ctx()
    return resolve_site(
        c.sites,
        origin=request.headers.get("Origin"),
        explicit=request.args.get("site") or None,
        own=own_origins(c.settings, request.host_url),
    )


def cors_headers(sites: Sites, origin: str | None) -> list[tuple[str, str]]:
    """The CORS answer headers for a declared ``origin`` (none for any other)."""
    if not origin or sites.by_origin(origin) is None:
        return []
    return [("Access-Control-Allow-Origin", origin)]


def preflight_headers(origin: str) -> Mapping[str, str]:
    """Headers of a successful preflight answer."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }


def init_app(app: Flask) -> None:
    """Answer preflights of the reader routes and add CORS headers for declared origins."""

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS" or request.endpoint not in READER_ENDPOINTS:
            return None
        origin = request.headers.get("Origin")
        if not origin:
            return None  # not a CORS preflight: Flask's automatic OPTIONS answer
        if ctx().sites.by_origin(origin) is None:
            response = json_error(
                403, "origin_not_allowed", f"origin {origin[:100]} is not declared by any site"
            )
        else:
            response = Response(status=204)
            response.headers.update(preflight_headers(origin))
        response.vary.add("Origin")
        return response

    @app.after_request
    def _cors(response: Response) -> Response:
        if request.endpoint in READER_ENDPOINTS:
            response.vary.add("Origin")
            for name, value in cors_headers(ctx().sites, request.headers.get("Origin")):
                response.headers[name] = value
        return response
