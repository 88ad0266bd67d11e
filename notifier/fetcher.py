"""The one guarded fetcher: how this server reads a page of the publisher's own site (prefill, feeds).

A GET that an editor or a feed URL points at is a way to steer the server into its own network
(SSRF), so every fetch here, and every redirect of it, must go to one of the site's declared
domains (:meth:`notifier.sites.Sites.fetch_domains`: the hosts of that site's origins and its
extra ``domains``, plus ``NOTIFIER_SITE_DOMAINS`` for the default site; ``host`` or ``host:port``,
compared exactly: ``2130706433``,
``0x7f.1`` or ``[::ffff:127.0.0.1]`` are not ``127.0.0.1`` even where a resolver would make them
so), with a timeout, a size cap and a few redirects at most. Anything else is a :class:`FetchRefused`
with a ``reason`` the caller can word for its reader (the newsroom translates it; feeds record it).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from notifier.errors import ValidationError

#: At most this many redirects, each re-checked.
MAX_REDIRECTS = 3


class FetchRefused(ValidationError):
    """A fetch that was not made, or failed. ``reason`` says which, ``detail`` carries its figures.

    Reasons: ``off`` (no domains declared), ``not_allowed`` (``host``), ``bad_url`` (``problem``),
    ``redirect`` (``host``: off the site), ``too_many_redirects``, ``http`` (``status``),
    ``too_large`` (``limit``), ``dns``, ``timeout`` (``seconds``), ``refused``, ``tls``, ``broken``,
    ``network`` (``problem``).
    """

    code = "fetch_refused"

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Fetched:
    """The answer to one fetch (``status`` 304 for a conditional GET that found nothing new)."""

    status: int
    body: bytes = b""
    url: str = ""
    content_type: str = ""
    charset: str = ""
    etag: str = ""
    last_modified: str = ""
    truncated: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


def site_netloc(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of an http(s) URL; :class:`FetchRefused` (``bad_url``) when it is not one.

    A port outside 1-65535 or not a number, credentials in the URL, another scheme or no host are
    refused here, before anything tries to connect.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchRefused("bad_url", f"not a valid URL: {exc}", problem=str(exc)) from exc
    if parts.scheme not in ("http", "https"):
        raise FetchRefused("bad_url", "only http and https URLs can be read", problem="scheme")
    if not parts.hostname:
        raise FetchRefused("bad_url", "the URL has no host", problem="host")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("bad_url", "the URL must not carry a user name or password", problem="credentials")
    if port is not None and not 0 < port < 65536:
        raise FetchRefused("bad_url", f"port {port} does not exist", problem="port")
    return parts.scheme, parts.hostname.lower(), port


def allowed(url: str, domains: Sequence[str]) -> bool:
    """True for an http(s) URL whose ``host[:port]`` is exactly one of ``domains`` (False when malformed)."""
    try:
        _, host, port = site_netloc(url)
    except FetchRefused:
        return False
    shown = f"[{host}]" if ":" in host else host
    netloc = f"{shown}:{port}" if port is not None else shown
    declared = {d.strip().lower().rstrip("/") for d in domains if d.strip()}
    return netloc in declared or (port is None and shown in declared)


class _OnTheSite(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the site's own domains, a few times at most."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, domains: Sequence[str]) -> None:
        self.domains = domains

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not allowed(newurl, self.domains):
            host = urlsplit(newurl).netloc[:80]
            raise FetchRefused("redirect", f"it redirects to {host}, off the site's domains", host=host)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        try:
            return super().http_error_302(req, fp, code, msg, headers)
        except urllib.error.HTTPError as exc:
            if "redirect" in str(exc.reason).lower():
                raise FetchRefused("too_many_redirects", f"more than {MAX_REDIRECTS} redirects") from exc
            raise

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


@dataclass(frozen=True)
class GuardedFetcher:
    """GETs pages of the site's declared ``domains`` only; see the module docstring."""

    domains: tuple[str, ...]
    timeout: float = 10.0
    max_bytes: int = 2_000_000
    user_agent: str = "notifier/1"

    def check(self, url: str) -> None:
        """Refuse a URL this fetcher would not read (without fetching it)."""
        site_netloc(url)
        if not self.domains:
            raise FetchRefused(
                "off", "the site declares no domains (its origins or 'domains', or NOTIFIER_SITE_DOMAINS)"
            )
        if not allowed(url, self.domains):
            host = urlsplit(url).netloc[:80]
            domains = ", ".join(self.domains)
            message = f"{host} is not one of the site's domains: {domains}"
            raise FetchRefused("not_allowed", message, host=host)

    def fetch(
        self,
        url: str,
        *,
        accept: str = "*/*",
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> Fetched:
        """GET ``url``; ``truncate``: keep the first ``max_bytes`` of a larger body instead of refusing it."""
        self.check(url)
        opener = urllib.request.build_opener(_OnTheSite(self.domains), urllib.request.ProxyHandler({}))
        request = urllib.request.Request(  # noqa: S310 - scheme and host checked by self.check
            url.strip(), headers={"User-Agent": self.user_agent, "Accept": accept, **(headers or {})}
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                if not truncate and length and length.isdigit() and int(length) > self.max_bytes:
                    raise FetchRefused("too_large", f"it is {length} bytes; at most {self.max_bytes}",
                                       limit=self.max_bytes)  # fmt: skip
                body = response.read(self.max_bytes + 1)
                if len(body) > self.max_bytes and not truncate:
                    raise FetchRefused("too_large", f"it is larger than {self.max_bytes} bytes",
                                       limit=self.max_bytes)  # fmt: skip
                return Fetched(
                    response.status,
                    body[: self.max_bytes],
                    response.geturl(),
                    response.headers.get("Content-Type", ""),
                    response.headers.get_content_charset() or "",
                    response.headers.get("ETag", ""),
                    response.headers.get("Last-Modified", ""),
                    len(body) > self.max_bytes,
                    dict(response.headers.items()),
                )
        except FetchRefused:
            raise
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return Fetched(304, url=url)
            raise FetchRefused("http", f"it answered HTTP {exc.code}", status=exc.code) from exc
        except (urllib.error.URLError, OSError, ValueError, UnicodeError) as exc:
            raise _network_problem(exc, self.timeout) from exc
        except http.client.HTTPException as exc:  # a garbage status line, a body cut short, ...
            raise FetchRefused("broken", f"the answer could not be read ({type(exc).__name__})") from exc


def _network_problem(exc: BaseException, timeout: float) -> FetchRefused:
    """What went wrong on the way, as a FetchRefused (never the raw errno text alone)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return FetchRefused("dns", "the site's name could not be found (DNS)")
    if isinstance(reason, TimeoutError | socket.timeout):
        return FetchRefused("timeout", f"no answer within {timeout:g} s", seconds=timeout)
    if isinstance(reason, ConnectionRefusedError):
        return FetchRefused("refused", "the connection was refused")
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        return FetchRefused("tls", "the HTTPS certificate is not valid")
    if isinstance(reason, ConnectionError):
        return FetchRefused("broken", "the connection broke off")
    problem = str(reason)[:200]
    return FetchRefused("network", f"it could not be fetched: {problem}", problem=problem)
