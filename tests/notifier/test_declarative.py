"""Declarative Web Push: the message notifier sends, the field list it is checked against, its budget."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.campaigns import (
    campaign_payload_prefix,
    message_payload,
    payload_size,
    receipt_token,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT, RECORD_SIZE, encrypt, generate_subscriber
from notifier.declarative import ACTION_FIELDS, MESSAGE_FIELDS, NOTIFICATION_FIELDS, WEB_PUSH, check_message
from notifier.errors import ValidationError
from notifier.topics import DEFAULT_TOPICS

#: A message using every member the Push API's declarative push message has.
EVERY_FIELD: dict[str, Any] = {
    "web_push": 8030,
    "notification": {
        "title": "Gempa M5,2 di Sukabumi",
        "navigate": "https://kabarkini.example/nasional/gempa",
        "body": "BMKG: tidak berpotensi tsunami.",
        "lang": "id",
        "dir": "ltr",
        "tag": "s0123456789abcdef0123456",
        "image": "https://kabarkini.example/img/gempa.jpg",
        "icon": "https://kabarkini.example/icon.png",
        "badge": "https://kabarkini.example/badge.png",
        "vibrate": [200, 100, 200],
        "timestamp": 1767225600000,
        "renotify": True,
        "silent": False,
        "requireInteraction": True,
        "data": {"cid": "c1", "sid": "7", "rt": "abc", "nested": [1, {"x": None}]},
        "actions": [
            {"action": "read", "title": "Baca", "navigate": "https://kabarkini.example/nasional/gempa"},
            {
                "action": "live",
                "title": "Siaran langsung",
                "navigate": "https://kabarkini.example/live",
                "icon": "https://kabarkini.example/live.png",
            },
        ],
    },
    "app_badge": 3,
    "mutable": True,
}


def test_a_message_with_every_field_validates_and_the_field_list_is_the_specs() -> None:
    assert check_message(json.loads(json.dumps(EVERY_FIELD))) == EVERY_FIELD
    assert set(EVERY_FIELD) == set(MESSAGE_FIELDS)
    assert set(EVERY_FIELD["notification"]) == set(NOTIFICATION_FIELDS)
    assert set(EVERY_FIELD["notification"]["actions"][1]) == set(ACTION_FIELDS)
    # The smallest valid message: the magic number, a title and a page to open.
    check_message({"web_push": 8030, "notification": {"title": "", "navigate": "https://a.example/"}})
    # Relative URLs resolve against the worker's scope, as a browser resolves them.
    relative = {"web_push": 8030, "notification": {"title": "t", "navigate": "/artikel/x"}}
    check_message(relative, base_url="https://kabarkini.example/")
    with pytest.raises(ValidationError, match="navigate"):
        check_message(relative)


def change(path: str, value: Any) -> dict[str, Any]:
    """EVERY_FIELD with one member set (``value`` ...) or removed (``...`` the Ellipsis)."""
    message = json.loads(json.dumps(EVERY_FIELD))
    *parents, last = path.split(".")
    target = message
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return message


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("web_push", 8031, "8030"),
        ("web_push", True, "8030"),
        ("web_push", ..., "8030"),
        ("notification", ..., "'notification' must be an object"),
        ("notification.title", ..., "title must be a string"),
        ("notification.title", 5, "title must be a string"),
        ("notification.navigate", ..., "navigate is required"),
        ("notification.navigate", "javascript:alert(1)", "http(s) URL"),
        ("notification.navigate", "", "non-empty URL"),
        ("notification.dir", "up", "dir must be one of"),
        ("notification.lang", 1, "lang must be a string"),
        ("notification.image", "ftp://a.example/x.jpg", "image must be an http(s) URL"),
        ("notification.timestamp", -1, "timestamp"),
        ("notification.timestamp", 1.5, "timestamp"),
        ("notification.renotify", "yes", "renotify must be true or false"),
        ("notification.tag", ..., "renotify: true needs a non-empty tag"),
        ("notification.silent", True, "vibrate cannot go with silent"),
        ("notification.vibrate", ["x"], "vibrate must be milliseconds"),
        ("notification.requireInteraction", 1, "requireInteraction must be true or false"),
        ("notification.actions", {}, "actions must be a list"),
        ("notification.actions.0.navigate", ..., r"actions\[0\].navigate is required"),
        ("notification.actions.1.action", "", r"actions\[1\].action must be a non-empty string"),
        ("notification.actions.0.url", "https://a.example/", "members no browser reads: url"),
        ("notification.url", "https://a.example/", "members no browser reads: url"),
        ("notification.requireInteration", True, "members no browser reads: requireInteration"),
        ("app_badge", -1, "app_badge"),
        ("app_badge", "3", "app_badge"),
        ("mutable", "true", "'mutable' must be true or false"),
    ],
)
def test_each_broken_field_is_named(path: str, value: Any, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_message(change(path, value))


def test_the_message_notifier_sends_is_declarative_mutable_and_carries_the_receipt() -> None:
    item = validate_campaign(
        {
            "title": "Harga cabai turun",
            "body": 'Pasokan "dari" Jawa Tengah pulih — é.',
            "url": "https://kabarkini.example/ekonomi/cabai",
            "image": "https://kabarkini.example/img/cabai.jpg",
        },
        topics=DEFAULT_TOPICS,
    )
    prefix = campaign_payload_prefix(item.title, item.body, item.url, item.image, "", item.story, "c" * 20)
    rt = receipt_token(b"k" * 32, "c" * 20, "1234")
    raw = message_payload(prefix, "1234", rt, 1767225600123)
    message = check_message(json.loads(raw))
    assert message["web_push"] == WEB_PUSH and message["mutable"] is True
    note = message["notification"]
    assert note["title"] == item.title and note["body"] == item.body
    assert note["navigate"] == item.url and note["image"] == item.image
    assert note["tag"] == item.story and note["renotify"] is True
    assert note["timestamp"] == 1767225600123
    assert note["data"] == {"cid": "c" * 20, "sid": "1234", "rt": rt}


def test_the_budget_is_the_real_message_and_the_largest_one_fits_one_record() -> None:
    long_url = "https://kabarkini.example/" + "a" * 1200
    title, body = "J" * 120, "é" * 500  # two bytes each in UTF-8
    size = payload_size(title, body, long_url, long_url, tag="s" * 32)
    # payload_size's stand-ins are the longest each field gets: a real message is never larger.
    prefix = campaign_payload_prefix(title, body, long_url, long_url, "", "s" * 32, "c" * 20)
    real = message_payload(prefix, "9" * 16, "r" * 22, 99_999_999_999_999)
    assert len(real) <= size
    assert size <= MAX_PLAINTEXT
    _, public, auth = generate_subscriber()
    assert len(encrypt(real, public, auth)) <= RECORD_SIZE
    # One byte more of body than the budget allows is refused before it is stored.
    too_long = "https://kabarkini.example/" + "a" * 1900
    with pytest.raises(ValidationError, match=str(MAX_PLAINTEXT)):
        validate_campaign(
            {"title": title, "body": body, "url": too_long, "image": too_long}, topics=DEFAULT_TOPICS
        )
