"""Checking an alert from an editor, the API, a CMS or a feed before it is stored."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from notifier.campaigns.payload import payload_size
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import PayloadTooLarge, ValidationError
from notifier.subscriptions.validation import validate_topics
from notifier.topics import Topic

URGENCIES = ("very-low", "low", "normal", "high")

#: TTL defaults: a breaking alert is stale after 6 hours, an ordinary article after a day.
TTL_BREAKING = 6 * 3600
TTL_DEFAULT = 24 * 3600
#: Push services keep a message at most about four weeks; more is refused by some.
TTL_MAX = 28 * 24 * 3600
TITLE_MAX = 120
BODY_MAX = 500
URL_MAX = 2048
#: Bidirectional embedding/override/isolate controls, refused in titles and bodies (text spoofing).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class CampaignInput:
    """A validated alert, ready to store."""

    title: str
    body: str
    url: str
    image: str = ""
    icon: str = ""
    topics: tuple[str, ...] = ()
    ttl: int = TTL_DEFAULT
    urgency: str = "normal"
    breaking: bool = False
    story: str = ""
    send_at: float | None = None
    source: str = "api"
    created_by: str = ""
    article_guid: str = ""
    #: The site whose readers it goes to ("": the store's default site).
    site: str = ""


def check_url(value: Any, name: str, *, required: bool) -> str:
    """An http(s) URL or, when not required, the empty string; ValidationError otherwise."""
    if value in (None, ""):
        if required:
            raise ValidationError(f"missing field {name!r}", code="missing_field")
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{name!r} must be a string URL")
    if len(value) > URL_MAX:
        raise ValidationError(f"{name!r} is {len(value)} characters; at most {URL_MAX}")
    value = value.strip()
    try:
        parts = urlsplit(value)
        port = parts.port  # "Port out of range" / "could not convert" for :99999 and :abc
        host = parts.hostname
    except ValueError as exc:
        raise ValidationError(f"{name!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"{name!r} must be an http(s) URL, not {parts.scheme or 'a relative URL'}:")
    if not host or port == 0:
        raise ValidationError(f"{name!r} has no host" if not host else f"{name!r} has port 0")
    if any(ch in value for ch in "\x00\r\n\t<>\"' "):
        raise ValidationError(f"{name!r} contains characters not allowed in a URL")
    return value


def _text(data: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"missing field {name!r}", code="missing_field")
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{name!r} must be a string")
    value = " ".join(value.split()) if name == "title" else value.strip()
    if not value and required:
        raise ValidationError(f"{name!r} is blank", code="missing_field")
    if len(value) > limit:
        raise ValidationError(f"{name!r} is {len(value)} characters; at most {limit}")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise ValidationError(f"{name!r} contains control characters")
    if any(ch in BIDI_CONTROLS for ch in value):
        # Explicit overrides/isolates let a title display reversed (spoofed) text; real
        # right-to-left text needs none of them, the Unicode bidi algorithm orders it.
        raise ValidationError(f"{name!r} contains bidirectional override characters (U+202A-E, U+2066-9)")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValidationError(f"{name!r} contains a lone surrogate, not text")
    return value


def parse_time(value: Any, name: str = "send_at") -> float | None:
    """A unix time from a number or an ISO 8601 string with a time zone."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{name!r} must be a time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 2**40:
            raise ValidationError(f"{name!r} must be a time (unix seconds), not {value!r}")
        return float(value)
    if isinstance(value, str):
        if len(value) > 64:
            raise ValidationError(f"{name!r} is not an ISO 8601 time: {value[:40]!r}…")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"{name!r} is not an ISO 8601 time: {value[:40]!r}") from exc
        if moment.tzinfo is None:
            raise ValidationError(f"{name!r} must carry a time zone (e.g. +07:00)")
        return moment.astimezone(UTC).timestamp()
    raise ValidationError(f"{name!r} must be a time")


def validate_campaign(
    data: Any,
    *,
    topics: Sequence[Topic],
    now: float | None = None,
    source: str = "api",
    created_by: str = "",
    site: str = "",
) -> CampaignInput:
    """Check an alert for ``site`` (whose ``topics`` these are); raise ValidationError (or PayloadTooLarge
    naming the size) when it cannot be sent."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    title = _text(data, "title", TITLE_MAX, required=True)
    body = _text(data, "body", BODY_MAX, required=True)
    url = check_url(data.get("url"), "url", required=True)
    image = check_url(data.get("image"), "image", required=False)
    icon = check_url(data.get("icon"), "icon", required=False)
    breaking = data.get("breaking", False)
    if not isinstance(breaking, bool):
        raise ValidationError("'breaking' must be true or false")
    raw_topics = data.get("topics")
    if raw_topics is None:
        chosen: tuple[str, ...] = ()
    else:
        chosen = validate_topics(raw_topics, topics)
    urgency = data.get("urgency") or ("high" if breaking else "normal")
    if urgency not in URGENCIES:
        raise ValidationError(f"'urgency' must be one of {', '.join(URGENCIES)}")
    ttl = data.get("ttl")
    if ttl in (None, ""):
        ttl = TTL_BREAKING if breaking else TTL_DEFAULT
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= TTL_MAX:
        raise ValidationError(
            f"'ttl' must be whole seconds between 60 and {TTL_MAX} "
            "(never 0: the alert would be dropped when the device is offline)"
        )
    story = data.get("story") or ""
    if (
        not isinstance(story, str)
        or len(story) > 32
        or any(not (ch.isascii() and (ch.isalnum() or ch in "-_")) for ch in story)
    ):
        raise ValidationError(
            "'story' must be at most 32 characters of letters, digits, - and _ (the Topic header)"
        )
    if not story:
        story = "s" + hashlib.sha256(url.encode()).hexdigest()[:23]
    send_at = parse_time(data.get("send_at"))
    now = time.time() if now is None else now
    if send_at is not None and send_at < now - 60:
        raise ValidationError("'send_at' is in the past")
    if send_at is not None and send_at > now + 365 * 86400:
        raise ValidationError("'send_at' is more than a year away")
    size = payload_size(title, body, url, image, icon, story)
    if size > MAX_PLAINTEXT:
        raise PayloadTooLarge(
            f"the notification payload is {size} bytes; one encrypted push record holds at most "
            f"{MAX_PLAINTEXT} bytes of it: shorten the title or body, or use shorter URLs"
        )
    return CampaignInput(
        title=title,
        body=body,
        url=url,
        image=image,
        icon=icon,
        topics=chosen,
        ttl=ttl,
        urgency=urgency,
        breaking=breaking,
        story=story,
        send_at=send_at,
        source=source,
        created_by=created_by,
        article_guid=str(data.get("article_guid") or "")[:200],
        site=site,
    )
