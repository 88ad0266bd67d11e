"""Declarative Web Push: the message format a browser shows by itself, with or without a service worker.

Safari 18.4 (iOS/iPadOS) and 18.5 (macOS) show such a message without running any script; Firefox has it
behind ``dom.push.declarative.enabled``; the Push API Working Draft (2025) defines it. Every other browser
hands the same bytes to the service worker's ``push`` event, and ``web/static/js/sw.js`` renders them the
same way. So one payload serves every reader::

    {"web_push": 8030,
     "notification": {"title", "navigate", "body", "lang", "dir", "tag", "image", "icon", "badge",
                      "vibrate", "timestamp", "renotify", "silent", "requireInteraction", "data",
                      "actions": [{"action", "title", "navigate", "icon"}]},
     "app_badge": 3,
     "mutable": true}

``mutable: true`` asks a browser that shows it declaratively to dispatch the ``push`` event to the
service worker first (when one is installed), so the worker can still report the ``shown`` receipt and
replace the notification; with no worker, or a worker that shows nothing, the browser shows the message
as declared.

:func:`check_message` applies the specification's parser (the magic number, a title, a navigable URL,
the types of the optional members, the combinations ``new Notification()`` refuses) and, unlike a
browser, refuses members it does not know, so a misspelt field is caught here rather than ignored on
a reader's phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from notifier.errors import ValidationError

#: The value of ``web_push`` that marks a declarative push message (the number of RFC 8030).
WEB_PUSH = 8030

#: Every member of ``notification`` and what it must hold.
NOTIFICATION_FIELDS: Mapping[str, str] = {
    "title": "a string (required)",
    "navigate": "an http(s) URL opened when the notification is activated (required)",
    "body": "a string",
    "lang": "a language tag (or the empty string)",
    "dir": '"auto", "ltr" or "rtl"',
    "tag": "a string; a newer notification with the same tag replaces the older one",
    "image": "an http(s) URL",
    "icon": "an http(s) URL",
    "badge": "an http(s) URL",
    "vibrate": "a list of milliseconds (not with silent)",
    "timestamp": "milliseconds since the epoch",
    "renotify": "a boolean (true needs a tag)",
    "silent": "a boolean or null",
    "requireInteraction": "a boolean",
    "data": "any JSON value, handed to the service worker",
    "actions": "a list of {action, title, navigate, icon?}",
}
#: Every member of an entry of ``actions``.
ACTION_FIELDS: Mapping[str, str] = {
    "action": "a non-empty string (the action's name)",
    "title": "a string shown on the button",
    "navigate": "an http(s) URL opened by the button (required)",
    "icon": "an http(s) URL",
}
#: Every member of the message itself.
MESSAGE_FIELDS: Mapping[str, str] = {
    "web_push": f"the number {WEB_PUSH} (required)",
    "notification": "the notification (required)",
    "app_badge": "a whole number from 0 to 2**64 - 1, the app icon's badge",
    "mutable": "a boolean: true lets the service worker see the push first",
}
_DIRS = ("auto", "ltr", "rtl")
_U64 = 2**64


def _url(value: Any, where: str, base: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where} must be a non-empty URL string")
    absolute = urljoin(base, value) if base else value
    try:
        parts = urlsplit(absolute)
    except ValueError as exc:
        raise ValidationError(f"{where} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"{where} must be an http(s) URL (or one relative to the site), not {value!r}")
    return absolute


def _unknown(data: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise ValidationError(f"{where} has members no browser reads: {', '.join(extra)}")


def check_message(message: Any, *, base_url: str | None = None) -> dict[str, Any]:
    """Check a declarative push message (already parsed JSON); return it, or raise ValidationError.

    ``base_url`` resolves relative URLs the way a browser resolves them against the service worker's
    scope; without it every URL must be absolute.
    """
    if not isinstance(message, dict):
        raise ValidationError("a declarative push message is a JSON object")
    _unknown(message, MESSAGE_FIELDS, "the message")
    magic = message.get("web_push")
    if isinstance(magic, bool) or magic != WEB_PUSH:
        raise ValidationError(f"'web_push' must be {WEB_PUSH}")
    note = message.get("notification")
    if not isinstance(note, dict):
        raise ValidationError("'notification' must be an object")
    _unknown(note, NOTIFICATION_FIELDS, "'notification'")
    if not isinstance(note.get("title"), str):
        raise ValidationError("notification.title must be a string")
    if "navigate" not in note:
        raise ValidationError("notification.navigate is required (the page the notification opens)")
    _url(note["navigate"], "notification.navigate", base_url)
    for name in ("body", "lang", "tag"):
        if name in note and not isinstance(note[name], str):
            raise ValidationError(f"notification.{name} must be a string")
    if "dir" in note and note["dir"] not in _DIRS:
        raise ValidationError(f"notification.dir must be one of {', '.join(_DIRS)}")
    for name in ("image", "icon", "badge"):
        if name in note:
            _url(note[name], f"notification.{name}", base_url)
    for name in ("renotify", "requireInteraction"):
        if name in note and not isinstance(note[name], bool):
            raise ValidationError(f"notification.{name} must be true or false")
    if "silent" in note and note["silent"] is not None and not isinstance(note["silent"], bool):
        raise ValidationError("notification.silent must be true, false or null")
    if "timestamp" in note:
        stamp = note["timestamp"]
        if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp < _U64:
            raise ValidationError("notification.timestamp must be whole milliseconds since the epoch")
    if "vibrate" in note:
        pattern = note["vibrate"]
        items = pattern if isinstance(pattern, list) else [pattern]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items):
            raise ValidationError("notification.vibrate must be milliseconds or a list of them")
        if note.get("silent") is True:
            raise ValidationError("notification.vibrate cannot go with silent: true")
    if note.get("renotify") is True and not note.get("tag"):
        raise ValidationError("notification.renotify: true needs a non-empty tag")
    if "actions" in note:
        actions = note["actions"]
        if not isinstance(actions, list):
            raise ValidationError("notification.actions must be a list")
        for i, action in enumerate(actions):
            where = f"notification.actions[{i}]"
            if not isinstance(action, dict):
                raise ValidationError(f"{where} must be an object")
            _unknown(action, ACTION_FIELDS, where)
            if not isinstance(action.get("action"), str) or not action["action"]:
                raise ValidationError(f"{where}.action must be a non-empty string")
            if not isinstance(action.get("title"), str):
                raise ValidationError(f"{where}.title must be a string")
            if "navigate" not in action:
                raise ValidationError(f"{where}.navigate is required")
            _url(action["navigate"], f"{where}.navigate", base_url)
            if "icon" in action:
                _url(action["icon"], f"{where}.icon", base_url)
    if "app_badge" in message:
        badge = message["app_badge"]
        if isinstance(badge, bool) or not isinstance(badge, int) or not 0 <= badge < _U64:
            raise ValidationError("'app_badge' must be a whole number from 0 to 2**64 - 1")
    if "mutable" in message and not isinstance(message["mutable"], bool):
        raise ValidationError("'mutable' must be true or false")
    return message
