"""Recognise the reader's browser from its user agent, and the push service from an endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Browsers the permission walkthrough has steps for (the page uses the same names).
BROWSERS = (
    "chrome-desktop",
    "chrome-android",
    "firefox",
    "safari-macos",
    "safari-ios",
    "edge",
    "samsung",
    "other",
)


def detect_browser(user_agent: str) -> str:
    """One of :data:`BROWSERS` for a ``User-Agent`` header."""
    ua = user_agent or ""
    if "SamsungBrowser/" in ua:
        return "samsung"
    if "Edg/" in ua or "EdgA/" in ua or "EdgiOS/" in ua:
        return "edge"
    if "Firefox/" in ua or "FxiOS/" in ua:
        return "firefox"
    ios = "iPhone" in ua or "iPad" in ua or "iPod" in ua
    if ios:
        return "safari-ios"
    if ("Chrome/" in ua or "Chromium/" in ua) and "Android" in ua:
        return "chrome-android"
    if "Chrome/" in ua or "Chromium/" in ua:
        return "chrome-desktop"
    if "Safari/" in ua and "Macintosh" in ua:
        return "safari-macos"
    return "other"


#: Push service by endpoint host suffix (for outcome statistics).
_SERVICES = (
    ("fcm.googleapis.com", "fcm"),
    ("android.googleapis.com", "fcm"),
    ("push.services.mozilla.com", "mozilla"),
    ("push.apple.com", "apple"),
    ("notify.windows.com", "windows"),
)


#: Every name :func:`push_service` gives (the per-service bitmaps and figures use these).
SERVICES = (*dict.fromkeys(name for _, name in _SERVICES), "other")


def push_service(endpoint: str) -> str:
    """``fcm``, ``mozilla``, ``apple``, ``windows`` or ``other`` for a push endpoint URL."""
    host = (urlsplit(endpoint).hostname or "").lower()
    for suffix, name in _SERVICES:
        if host == suffix or host.endswith("." + suffix):
            return name
    return "other"


def service_id(url: str) -> str:
    """The push service an endpoint or origin belongs to, as holds and breakers name it.

    A known service's name (``fcm``, ``mozilla``, ``apple``, ``windows``: one name for all of its
    hosts), else the URL's ``host[:port]`` (an operator's own push service, the simulator).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "other"
    host = (parts.hostname or "").lower()
    for suffix, name in _SERVICES:
        if host == suffix or host.endswith("." + suffix):
            return name
    if not host:
        return "other"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host
