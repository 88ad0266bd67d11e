"""The site mounted under a path prefix behind a publisher's proxy (``https://www.medcom.id/push/``).

Two ways to say where it is mounted, for the two ways proxies forward:

- ``NOTIFIER_PUBLIC_URL`` with a path (``https://www.medcom.id/push``): :class:`PathPrefix` sets
  ``SCRIPT_NAME`` to it, and takes it off ``PATH_INFO`` when the proxy forwarded the full path
  (Caddy's ``reverse_proxy``; nginx's ``proxy_pass`` without a URI part);
- ``X-Forwarded-Prefix`` from a trusted proxy (``NOTIFIER_TRUSTED_PROXIES``): werkzeug's ProxyFix sets
  ``SCRIPT_NAME`` from it (nginx's ``proxy_pass http://notifier/;``, which strips the prefix).

Either way every URL the site builds (``url_for``: pages, the embed's and the worker's API URLs, the
worker code) carries the prefix, and the routes match without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def prefix_of(public_url: str) -> str:
    """The path of the public URL without its trailing slash (empty for none)."""
    return urlsplit(public_url).path.rstrip("/")


class PathPrefix:
    """WSGI middleware: requests reach the app as if it were mounted at ``prefix``."""

    def __init__(self, inner: WsgiApp, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix.rstrip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("SCRIPT_NAME"):  # a proxy's X-Forwarded-Prefix (ProxyFix, outside) says more
            path = environ.get("PATH_INFO", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = self.prefix
        return self.inner(environ, start_response)
