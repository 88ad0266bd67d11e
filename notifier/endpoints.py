"""Which URLs this server may POST to: known push services, plus hosts the operator names.

A push server POSTs to whatever URL it stores, so a stored endpoint is a way to
steer it into the company's own network (SSRF). Endpoints are checked when a
reader subscribes and again when the sender connects (DNS can change between).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from notifier.errors import UnsafeEndpoint

#: Hosts of the push services browsers use; a suffix entry (leading dot) matches subdomains.
KNOWN_PUSH_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge on Android, Samsung Internet, Opera
    "android.googleapis.com",  # legacy GCM endpoints still held by old subscriptions
    "updates.push.services.mozilla.com",  # Firefox
    "push.services.mozilla.com",
    "web.push.apple.com",  # Safari macOS 16+, iOS 16.4+
    ".push.apple.com",
    ".notify.windows.com",  # Edge on Windows (WNS)
)

MAX_ENDPOINT_LENGTH = 1024
_DNS_TTL = 300.0


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, unique-local, multicast, reserved or unspecified addresses."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: ``/a/./b/../c`` → ``/a/c``."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if path.endswith(("/.", "/..")):
        out.append("")
    return "/".join(out) or "/"


def canonical_endpoint(endpoint: str) -> str:
    """The one spelling of a push endpoint, for storing, looking up and signing (the VAPID ``aud``).

    Browsers hand out one URL per subscription, but a copy, an import or an attacker can spell it
    many ways; each would be stored as another subscription and the device alerted once per spelling.
    Surrounding blanks (a trailing newline) go; the scheme and host are lower-cased, the default port
    (443 for https, 80 for http) and the fragment dropped, ``.``/``..`` path segments resolved and
    percent escapes upper-cased. Blanks or control characters inside, or a port that is no port, are
    an :class:`UnsafeEndpoint` (the subscribe API's 400).
    """
    value = endpoint.strip()
    if _BLANK_OR_CONTROL.search(value):
        raise UnsafeEndpoint("endpoint contains blanks or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise UnsafeEndpoint(f"endpoint is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + host
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        netloc += f":{port}"
    path = _PERCENT.sub(lambda m: m.group(0).upper(), _remove_dot_segments(parts.path or "/"))
    query = _PERCENT.sub(lambda m: m.group(0).upper(), parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
#: What ``str.isspace`` calls a blank (``\s`` on str is the same Unicode test), C0 controls and DEL. A
#: character-by-character test in Python cost ~25 us of a subscribe's ~200 (endpoints are ~150 characters).
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass
class EndpointPolicy:
    """Decides whether an endpoint URL is a push service this server may call."""

    extra_hosts: Iterable[str] = ()
    resolve: bool = True
    #: ``host -> addresses``; None uses the system resolver (tests inject one to simulate DNS answers).
    resolver: Callable[[str], Sequence[str]] | None = None
    _extra: frozenset[str] = field(init=False)
    _cache: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._extra = frozenset(h.strip().lower() for h in self.extra_hosts if h.strip())

    def operator_named(self, host: str, port: int | None) -> bool:
        """True when NOTIFIER_PUSH_HOSTS names this host (with or without the port)."""
        return host in self._extra or (port is not None and f"{host}:{port}" in self._extra)

    def check(self, endpoint: str) -> None:
        """Raise :class:`UnsafeEndpoint` unless ``endpoint`` may be POSTed to."""
        if len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise UnsafeEndpoint(
                f"endpoint is {len(endpoint)} characters long; at most {MAX_ENDPOINT_LENGTH}"
            )
        try:
            parts = urlsplit(endpoint)
            port = parts.port
        except ValueError as exc:
            raise UnsafeEndpoint(f"endpoint is not a valid URL: {exc}") from exc
        host = (parts.hostname or "").lower()
        if not host:
            raise UnsafeEndpoint("endpoint has no host")
        if parts.username or parts.password:
            raise UnsafeEndpoint("endpoint must not carry credentials")
        named = self.operator_named(host, port)
        if parts.scheme != "https":
            if not (parts.scheme == "http" and named and self._is_loopback_literal(host)):
                raise UnsafeEndpoint("endpoint must be an https URL")
        if named:
            return
        if not self._known(host):
            raise UnsafeEndpoint(
                f"endpoint host {host} is not a known push service (FCM, Mozilla, Apple, Windows); "
                "an operator can allow more with NOTIFIER_PUSH_HOSTS"
            )
        if port not in (None, 443):
            raise UnsafeEndpoint(f"endpoint port {port} is not the push service's https port")
        self.check_addresses(host)

    @staticmethod
    def _is_loopback_literal(host: str) -> bool:
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @staticmethod
    def _known(host: str) -> bool:
        for entry in KNOWN_PUSH_HOSTS:
            if entry.startswith("."):
                if host.endswith(entry):
                    return True
            elif host == entry:
                return True
        return False

    def check_addresses(self, host: str) -> None:
        """Refuse a host that is, or resolves to, a non-public address (unless the operator named it)."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            if not is_public_address(str(literal)):
                raise UnsafeEndpoint(f"endpoint address {host} is private, loopback or link-local")
            return
        if not self.resolve:
            return
        for address in self.addresses(host):
            if not is_public_address(address):
                raise UnsafeEndpoint(f"endpoint host {host} resolves to a private address ({address})")

    def addresses(self, host: str) -> tuple[str, ...]:
        """The host's addresses, cached for five minutes; empty when it cannot be resolved now."""
        now = time.monotonic()
        cached = self._cache.get(host)
        if cached and cached[0] > now:
            return cached[1]
        try:
            if self.resolver is not None:
                found = tuple(sorted(set(self.resolver(host))))
            else:
                infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
                found = tuple(sorted({str(info[4][0]) for info in infos}))
        except (OSError, UnicodeError):
            # Offline or not resolvable now: the sender checks again when it connects.
            found = ()
        with self._lock:
            self._cache[host] = (now + _DNS_TTL, found)
        return found
