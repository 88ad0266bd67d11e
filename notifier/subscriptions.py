"""Reader subscriptions: validation, upsert by endpoint, topics, removal, staleness.

A subscription is stored as a small hash (short field names keep Redis memory
per subscriber low; :data:`FIELDS` maps them) and indexed in ``subs:all`` and
one set per topic. Its id is derived from the endpoint, so re-subscribing the
same browser is an update, never a duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.crypto import b64url_decode
from notifier.endpoints import EndpointPolicy
from notifier.errors import NotFound, ValidationError
from notifier.keys import Keys
from notifier.topics import Topic

#: Hash field → meaning. Short names: they are stored once per subscriber.
FIELDS = {
    "e": "endpoint",
    "p": "p256dh (base64url)",
    "a": "auth secret (base64url)",
    "t": "topics, comma separated",
    "l": "language (id/en)",
    "b": "browser family",
    "c": "created (unix seconds)",
    "s": "last seen on the site (unix seconds)",
    "ok": "last accepted push (unix seconds)",
    "f": "consecutive failed pushes",
    "ff": "first of the current run of failures (unix seconds)",
    "k": "VAPID key id the browser subscribed with",
    "x": "expirationTime the browser gave (ms), when not null",
}

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


@dataclass(frozen=True)
class Subscription:
    """A stored subscription, as the sender needs it."""

    sid: str
    endpoint: str
    p256dh: str
    auth: str
    topics: tuple[str, ...]
    lang: str
    browser: str
    created: int
    seen: int
    last_ok: int
    failures: int
    first_failure: int

    @classmethod
    def from_hash(cls, sid: str, data: Mapping[str, str]) -> Subscription:
        """Build from the stored hash."""
        return cls(
            sid=sid,
            endpoint=data["e"],
            p256dh=data["p"],
            auth=data["a"],
            topics=tuple(t for t in data.get("t", "").split(",") if t),
            lang=data.get("l", "id"),
            browser=data.get("b", "other"),
            created=int(data.get("c", 0)),
            seen=int(data.get("s", 0)),
            last_ok=int(data.get("ok", 0)),
            failures=int(data.get("f", 0)),
            first_failure=int(data.get("ff", 0)),
        )

    def info(self) -> dict[str, Any]:
        """A JSON-friendly view (export, API)."""
        return {
            "id": self.sid,
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
            "topics": list(self.topics),
            "lang": self.lang,
            "browser": self.browser,
            "created": self.created,
            "seen": self.seen,
        }


def subscription_id(endpoint: str) -> str:
    """Stable 16-character id of an endpoint (96 bits of its SHA-256)."""
    digest = hashlib.sha256(endpoint.encode()).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode()


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
    data: Any, *, policy: EndpointPolicy, topics: Sequence[Topic], default_lang: str = "id"
) -> SubscriptionInput:
    """Check a ``PushSubscription.toJSON()`` (+ ``topics``, ``lang``); ValidationError says why not."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    endpoint = _require_str(data, "endpoint")
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
        isinstance(expiration, bool) or not isinstance(expiration, int | float) or not 0 <= expiration < 2**53
    ):
        raise ValidationError("'expirationTime' must be null or a time in milliseconds")
    return SubscriptionInput(
        endpoint=endpoint,
        p256dh=p256dh.rstrip("="),
        auth=auth.rstrip("="),
        topics=chosen,
        lang=lang,
        expiration_time=int(expiration) if expiration is not None else None,
    )


# Upsert in one round trip, atomically: two browsers racing on one endpoint cannot both count as new, and
# the topic sets always match the stored topics. Topic set keys are built from a prefix inside the script
# (this service does not run on Redis Cluster).
_UPSERT = """
local old = redis.call('HGET', KEYS[1], 't')
local created = 0
if not old and redis.call('EXISTS', KEYS[1]) == 0 then created = 1 end
local keep = {}
for t in string.gmatch(ARGV[4], '[^,]+') do keep[t] = true end
if old then
  for t in string.gmatch(old, '[^,]+') do
    if not keep[t] then redis.call('SREM', ARGV[5] .. t, ARGV[1]) end
  end
end
for t, _ in pairs(keep) do redis.call('SADD', ARGV[5] .. t, ARGV[1]) end
local fields = {}
for i = 7, 6 + 2 * tonumber(ARGV[6]) do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('HDEL', KEYS[1], 'ff')
if created == 1 then
  redis.call('HSET', KEYS[1], 'c', ARGV[3])
  redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return created
"""


class SubscriptionStore:
    """Subscriptions in Redis. Every method takes the work it needs in one round trip where it can."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._upsert = r.register_script(_UPSERT)

    def upsert(
        self, sub: SubscriptionInput, *, browser: str = "other", key_id: str = "", now: float | None = None
    ) -> tuple[str, bool]:
        """Store or update a subscription in one atomic round trip; returns ``(sid, created)``."""
        now_i = int(time.time() if now is None else now)
        sid = subscription_id(sub.endpoint)
        mapping: dict[str, str | int] = {
            "e": sub.endpoint,
            "p": sub.p256dh,
            "a": sub.auth,
            "t": ",".join(sub.topics),
            "l": sub.lang,
            "b": browser,
            "s": now_i,
            "f": 0,
        }
        if key_id:
            mapping["k"] = key_id
        if sub.expiration_time is not None:
            mapping["x"] = sub.expiration_time
        flat: list[str | int] = []
        for name, value in mapping.items():
            flat += [name, value]
        created = self._upsert(
            keys=[
                self.keys.sub(sid),
                self.keys.subs_all,
                self.keys.subs_quarantined,
                self.keys.subs_daily("added"),
            ],
            args=[
                sid,
                time.strftime("%Y-%m-%d", time.gmtime(now_i)),
                now_i,
                mapping["t"],
                self.keys.subs_topic(""),
                len(mapping),
                *flat,
            ],
        )
        return sid, bool(created)

    def get(self, sid: str) -> Subscription:
        """One subscription by id; :class:`NotFound` when absent."""
        data = self.r.hgetall(self.keys.sub(sid))
        if not data:
            raise NotFound(f"no subscription {sid}")
        return Subscription.from_hash(sid, data)

    def get_by_endpoint(self, endpoint: str) -> Subscription:
        """One subscription by its endpoint URL."""
        return self.get(subscription_id(endpoint))

    def load_many(self, sids: Sequence[str]) -> list[Subscription]:
        """Load subscriptions in one pipeline; ids that vanished are skipped."""
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self.keys.sub(sid))
        found: list[Subscription] = []
        for sid, data in zip(sids, pipe.execute(), strict=True):
            if data and "e" in data:
                found.append(Subscription.from_hash(sid, data))
        return found

    def set_topics(self, endpoint: str, topics: Iterable[str]) -> Subscription:
        """Replace the topics of a subscription (already validated slugs)."""
        sub = self.get_by_endpoint(endpoint)
        new = tuple(dict.fromkeys(topics))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.sub(sub.sid), "t", ",".join(new))
        for slug in set(sub.topics) - set(new):
            pipe.srem(self.keys.subs_topic(slug), sub.sid)
        for slug in new:
            pipe.sadd(self.keys.subs_topic(slug), sub.sid)
        pipe.execute()
        return self.get(sub.sid)

    def delete(
        self, sid: str, *, pipe: redis.client.Pipeline | None = None, topics: Iterable[str] | None = None
    ) -> None:
        """Remove a subscription and its index entries (in ``pipe`` when given)."""
        own = pipe is None
        if topics is None:
            raw = self.r.hget(self.keys.sub(sid), "t") or ""
            topics = [t for t in raw.split(",") if t]
        p = self.r.pipeline(transaction=True) if pipe is None else pipe
        p.delete(self.keys.sub(sid))
        p.srem(self.keys.subs_all, sid)
        p.srem(self.keys.subs_quarantined, sid)
        for slug in topics:
            p.srem(self.keys.subs_topic(slug), sid)
        p.hincrby(self.keys.subs_daily("removed"), time.strftime("%Y-%m-%d", time.gmtime()), 1)
        if own:
            p.execute()

    def delete_by_endpoint(self, endpoint: str) -> bool:
        """Remove the subscription for ``endpoint``; False when none was stored."""
        sid = subscription_id(endpoint)
        if not self.r.exists(self.keys.sub(sid)):
            return False
        self.delete(sid)
        return True

    def count(self, topic: str | None = None) -> int:
        """Number of subscriptions, in all or following one topic."""
        return int(self.r.scard(self.keys.subs_topic(topic) if topic else self.keys.subs_all))

    def audience_size(self, topics: Sequence[str]) -> int:
        """Subscribers a campaign to ``topics`` (empty: everyone) would reach, each counted once."""
        if not topics:
            return self.count()
        if len(topics) == 1:
            return self.count(topics[0])
        total = 0
        for page in iter_audience(self.r, self.keys, topics):
            total += len(page)
        return total

    def scan_ids(self, page_size: int = 1000) -> Iterator[list[str]]:
        """Every subscription id, in pages (SSCAN)."""
        yield from _sscan_pages(self.r, self.keys.subs_all, page_size)


def _sscan_pages(r: redis.Redis, key: str, page_size: int) -> Iterator[list[str]]:
    cursor: int | str = 0
    while True:
        cursor, members = r.sscan(key, cursor=cursor, count=page_size)
        if members:
            yield list(members)
        if int(cursor) == 0:
            return


def iter_audience(
    r: redis.Redis, keys: Keys, topics: Sequence[str], page_size: int = 1000
) -> Iterator[list[str]]:
    """Pages of subscription ids following any of ``topics`` (everyone when empty), each id once.

    Streams with SSCAN; an id in several topic sets is kept only in the first
    set that holds it (checked with SMISMEMBER against the earlier sets), so
    no page of millions is ever held and nobody is counted twice.
    """
    if not topics:
        yield from _sscan_pages(r, keys.subs_all, page_size)
        return
    sets = [keys.subs_topic(t) for t in dict.fromkeys(topics)]
    for index, key in enumerate(sets):
        earlier = sets[:index]
        for page in _sscan_pages(r, key, page_size):
            if earlier:
                pipe = r.pipeline(transaction=False)
                for other in earlier:
                    pipe.smismember(other, page)
                seen_before = pipe.execute()
                page = [sid for i, sid in enumerate(page) if not any(flags[i] for flags in seen_before)]
            if page:
                yield page
