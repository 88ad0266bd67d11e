"""Names people read for the ids the figures carry: push services and browser families.

One list for every page (the campaign page, ops, the reader walkthrough), so a service or a browser is
called the same everywhere and in the page's language.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext

#: Push services by the names ops people know them (ids from ``notifier.browsers.push_service``).
SERVICE_NAMES = {
    "fcm": lazy_gettext("FCM (Google: Chrome, Edge, Samsung Internet)"),
    "mozilla": lazy_gettext("Mozilla (Firefox)"),
    "apple": lazy_gettext("Apple (Safari)"),
    "windows": lazy_gettext("WNS (Windows)"),
    "other": lazy_gettext("other push services"),
}


def service_name(service: str) -> str:
    """A push service's name for people (its id, e.g. ``host:port``, when it is not one of the big four)."""
    name = SERVICE_NAMES.get(service)
    return str(name) if name is not None else service


def browser_names() -> dict[str, str]:
    """Browser family (``notifier.browsers.BROWSERS``) → its name in the page language."""
    return {
        "chrome-desktop": _("Chrome (computer)"),
        "chrome-android": _("Chrome (Android)"),
        "firefox": _("Firefox"),
        "safari-macos": _("Safari (Mac)"),
        "safari-ios": _("Safari (iPhone/iPad)"),
        "edge": _("Microsoft Edge"),
        "samsung": _("Samsung Internet"),
        "other": _("Another browser"),
    }


def browser_name(family: str) -> str:
    """One browser family's name (the family itself when unknown)."""
    return browser_names().get(family, family)
