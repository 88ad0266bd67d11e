"""Validation of what a browser posts: ``PushSubscription.toJSON()`` plus topics and language."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from notifier.crypto import b64url_decode
from notifier.endpoints import EndpointPolicy, canonical_endpoint
from notifier.errors import ValidationError
from notifier.topics import Topic

LANGS = ("id", "en")
MAX_TOPICS = 32
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class SubscriptionInput:
    """A validated subscription as the browser sent it."""

    endpoint: str
    p256dh: str
    auth: str
    topics: tuple[str, ...]
    lang: str
    expiration_time: int | None = None


def _require_str(data: Mapping[str, Any], name: str, where: str = "") -> str:
    value = data.get(name)
    label = f"{where}{name}"
    if value is None:
        raise ValidationError(f"missing field {label!r}", code="missing_field")
    if not isinstance(value, str):
        raise ValidationError(f"field {label!r} must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(f"field {label!r} is empty", code="missing_field")
    return value


def validate_topics(value: Any, topics: Sequence[Topic]) -> tuple[str, ...]:
    """A tuple of known topic slugs, or :class:`ValidationError` naming what is wrong."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError("'topics' must be a list of topic slugs")
    if len(value) > MAX_TOPICS:
        raise ValidationError(f"'topics' has {len(value)} entries; at most {MAX_TOPICS}")
    known = {t.slug for t in topics}
    chosen: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValidationError("'topics' must contain only strings")
        if item not in known:
            shown = item if len(item) <= 40 else item[:40] + "…"
            raise ValidationError(
                f"unknown topic {shown!r}; known topics: {', '.join(sorted(known))}", code="unknown_topic"
            )
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)


def validate_subscription(
    data: Any,
    *,
    policy: EndpointPolicy,
    topics: Sequence[Topic],
    default_lang: str = "id",
    now: float | None = None,
) -> SubscriptionInput:
    """Check a ``PushSubscription.toJSON()`` (+ ``topics``, ``lang``); ValidationError says why not."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    # One spelling per device: stored, looked up and signed for in this form only.
    endpoint = canonical_endpoint(_require_str(data, "endpoint"))
    policy.check(endpoint)
    keys = data.get("keys")
    if keys is None:
        raise ValidationError("missing field 'keys' (with 'p256dh' and 'auth')", code="missing_field")
    if not isinstance(keys, dict):
        raise ValidationError("field 'keys' must be an object with 'p256dh' and 'auth'")
    p256dh = _require_str(keys, "p256dh", "keys.")
    auth = _require_str(keys, "auth", "keys.")
    if len(p256dh) > MAX_KEY_CHARS or len(auth) > MAX_KEY_CHARS:
        raise ValidationError("keys.p256dh or keys.auth is far too long")
    try:
        point = b64url_decode(p256dh)
    except ValueError as exc:
        raise ValidationError(f"keys.p256dh is not base64url: {exc}", code="invalid_key") from exc
    if len(point) != 65 or point[0] != 4:
        raise ValidationError(
            "keys.p256dh must be an uncompressed P-256 point (65 bytes starting 0x04), "
            f"got {len(point)} bytes",
            code="invalid_key",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise ValidationError("keys.p256dh is not a point on the P-256 curve", code="invalid_key") from exc
    try:
        auth_raw = b64url_decode(auth)
    except ValueError as exc:
        raise ValidationError(f"keys.auth is not base64url: {exc}", code="invalid_key") from exc
    if len(auth_raw) != 16:
        raise ValidationError(f"keys.auth must be 16 bytes, got {len(auth_raw)}", code="invalid_key")
    chosen = validate_topics(data.get("topics"), topics)
    lang = data.get("lang", default_lang)
    if lang is None:
        lang = default_lang
    if not isinstance(lang, str) or lang not in LANGS:
        raise ValidationError(f"'lang' must be one of {', '.join(LANGS)}")
    expiration = data.get("expirationTime")
    if expiration is not None and (
        isinstance(expiration, bool)
        or not isinstance(expiration, int | float)
        or not math.isfinite(expiration)
        or not 0 <= expiration < 2**53
    ):
        raise ValidationError("'expirationTime' must be null or a time in milliseconds")
    if expiration is not None and expiration <= (time.time() if now is None else now) * 1000:
        # The browser says the subscription ends then: one already over can never receive a push.
        raise ValidationError(
            "'expirationTime' is in the past: this subscription has expired", code="expired"
        )
    return SubscriptionInput(
        endpoint=endpoint,
        p256dh=p256dh.rstrip("="),
        auth=auth.rstrip("="),
        topics=chosen,
        lang=lang,
        expiration_time=int(expiration) if expiration is not None else None,
    )
