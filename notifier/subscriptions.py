"""Reader subscriptions: validation, upsert by endpoint, topics, removal, staleness.

Storage is laid out for memory (a publisher's audience runs into millions, and
Redis holds it all in RAM); see docs/design-notes.md, "Subscriptions in Redis":

- Every subscription gets a dense integer id ``n`` (``subs:seq``), never reused.
- Its record is one string (:func:`encode_record`) at index ``n % 128`` of the
  list ``subs:rec:{n // 128}``: lists pack their elements in listpacks whatever
  their length, so ~300-byte records cost ~3 bytes of overhead each with Redis's
  default settings. A removed subscription leaves an empty string.
- ``subs:ix:{bucket}`` hashes map a digest of the endpoint to ``n``, so
  re-subscribing the same browser is an update, never a duplicate. They grow by
  linear hashing (one bucket split at a time, inside the upsert script), so every
  bucket holds about 48 entries and stays a compact listpack at any audience size.
- Bitmaps, one bit per id: ``subs:live`` (everyone), ``subs:t:{slug}`` (one per
  topic), ``subs:q`` (quarantined). Counts are BITCOUNTs, a campaign's audience is
  one BITOP OR, exact and a few milliseconds for a million readers.
- ``subs:fails`` / ``subs:fail1`` hashes hold the failure run of the few
  subscriptions currently failing (count, and the time of the first failure).
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from cryptography.hazmat.primitives.asymmetric import ec
from redis.client import NEVER_DECODE

from notifier.crypto import b64url_decode
from notifier.endpoints import EndpointPolicy
from notifier.errors import NotFound, ValidationError
from notifier.keys import Keys
from notifier.topics import Topic

#: Record fields, in order, separated by one space (the endpoint, last, is the only one that could hold one).
RECORD_FIELDS = (
    "created (unix seconds)",
    "topics, comma separated",
    "seen: last subscribe call from the site (unix seconds)",
    "lang (id/en)",
    "browser family",
    "VAPID key id the browser subscribed with",
    "expirationTime the browser gave (ms), empty when null",
    "p256dh (base64url)",
    "auth secret (base64url)",
    "endpoint, its push-service prefix replaced by a one-digit code (ENDPOINT_PREFIXES)",
)

#: Common endpoint beginnings, stored as their index (one digit). A stored endpoint that starts with
#: "h" is verbatim. Append only: the digits are on disk.
ENDPOINT_PREFIXES = (
    "https://fcm.googleapis.com/fcm/send/",
    "https://updates.push.services.mozilla.com/wpush/",
    "https://web.push.apple.com/",
    "https://wns2-",
    "https://",
)

#: Records per list.
RECORDS_PER_LIST = 128
#: Average entries per endpoint-index bucket before the next bucket splits (Redis keeps a hash of up to
#: 128 entries as a listpack by default; a bucket not yet split this round holds about twice the average).
INDEX_LOAD = 48

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
    failures: int = 0
    first_failure: int = 0
    key_id: str = ""
    expiration_time: int | None = None

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


def encode_endpoint(endpoint: str) -> str:
    """The endpoint with a known push-service prefix replaced by its one-digit code."""
    for code, prefix in enumerate(ENDPOINT_PREFIXES):
        if endpoint.startswith(prefix):
            return f"{code}{endpoint[len(prefix) :]}"
    return endpoint


def decode_endpoint(stored: str) -> str:
    """Inverse of :func:`encode_endpoint`."""
    if stored[:1].isdigit():
        return ENDPOINT_PREFIXES[int(stored[0])] + stored[1:]
    return stored


def record_tail(
    *,
    topics: Sequence[str],
    seen: int,
    lang: str,
    browser: str,
    key_id: str,
    expiration_time: int | None,
    p256dh: str,
    auth: str,
    endpoint: str,
) -> str:
    """Every record field after ``created`` (the upsert script keeps a stored ``created``)."""
    exp = "" if expiration_time is None else str(expiration_time)
    return (
        f"{','.join(topics)} {seen} {lang} {browser.replace(' ', '-') or 'other'} {key_id} {exp} "
        f"{p256dh} {auth} {encode_endpoint(endpoint)}"
    )


def decode_record(sid: str, record: str, failures: int = 0, first_failure: int = 0) -> Subscription:
    """A :class:`Subscription` from its stored record."""
    created, topics, seen, lang, browser, key_id, exp, p256dh, auth, endpoint = record.split(" ", 9)
    # The frozen dataclass's __init__ sets each of the 13 fields through object.__setattr__ (~1.6 us
    # of the 2.8 a record took, once per message sent): the same fields, in field order, directly.
    sub = _new_object(Subscription)
    sub.__dict__.update(
        sid=sid,
        endpoint=decode_endpoint(endpoint),
        p256dh=p256dh,
        auth=auth,
        topics=tuple(topics.split(",")) if topics else (),
        lang=lang,
        browser=browser,
        created=int(created),
        seen=int(seen),
        failures=failures,
        first_failure=first_failure,
        key_id=key_id,
        expiration_time=int(exp) if exp else None,
    )
    return sub


_new_object = object.__new__


def endpoint_index(endpoint: str) -> str:
    """The endpoint's field in the ``subs:ix`` hashes: 88 bits of its SHA-256, the first 32 in hex.

    The scripts read the hex part as the hash that picks the bucket (linear hashing).
    """
    digest = hashlib.sha256(endpoint.encode()).digest()
    return digest[:4].hex() + base64.urlsafe_b64encode(digest[4:11]).decode().rstrip("=")


def record_key(keys: Keys, n: int) -> tuple[str, int]:
    """(list key, index) of subscription ``n``'s record."""
    return keys.subs_records(n // RECORDS_PER_LIST), n % RECORDS_PER_LIST


#: Bit offsets set in a byte, most significant first (Redis's bit order).
_BITS = tuple(tuple(i for i in range(8) if byte & (0x80 >> i)) for byte in range(256))


def ids_in_bitmap(chunk: bytes, first_id: int = 0) -> list[int]:
    """Ids whose bits are set in ``chunk``, a bitmap slice starting at ``first_id`` (a multiple of 8)."""
    out: list[int] = []
    extend = out.extend
    bits = _BITS
    position = 0
    end = len(chunk)
    while position < end:
        # Skip runs of empty bytes quickly.
        if not chunk[position]:
            nxt = len(chunk[position:].lstrip(b"\x00"))
            if not nxt:
                break
            position = end - nxt
        byte = chunk[position]
        base = first_id + position * 8
        extend([base + b for b in bits[byte]])
        position += 1
    return out


# The endpoint index's bucket for a field (linear hashing: ``subs:ixmeta`` holds the round ``k`` and the
# next bucket to split ``s``; buckets below ``s`` are already split into ``b`` and ``b + 2^k``).
_IX_BUCKET = """
local function ix_bucket(p, field)
  local meta = redis.call('HMGET', p .. 'subs:ixmeta', 'k', 's')
  local k = tonumber(meta[1] or '6')
  local s = tonumber(meta[2] or '0')
  local h = tonumber(string.sub(field, 1, 8), 16)
  local b = h % 2 ^ k
  if b < s then b = h % 2 ^ (k + 1) end
  return p .. 'subs:ix:' .. string.format('%d', b)
end
"""

# Count an index entry in or out; past INDEX_LOAD entries per bucket on average, split the next bucket.
_IX_COUNT = """
local function ix_count(p, delta)
  local meta = p .. 'subs:ixmeta'
  local n = redis.call('HINCRBY', meta, 'n', delta)
  if delta < 0 then return end
  local got = redis.call('HMGET', meta, 'k', 's')
  local k = tonumber(got[1] or '6')
  local s = tonumber(got[2] or '0')
  if n <= (2 ^ k + s) * tonumber(ARGV[#ARGV]) then return end
  local from = p .. 'subs:ix:' .. string.format('%d', s)
  local to = p .. 'subs:ix:' .. string.format('%d', s + 2 ^ k)
  local entries = redis.call('HGETALL', from)
  for i = 1, #entries, 2 do
    local h = tonumber(string.sub(entries[i], 1, 8), 16)
    if h % 2 ^ (k + 1) ~= s then
      redis.call('HSET', to, entries[i], entries[i + 1])
      redis.call('HDEL', from, entries[i])
    end
  end
  s = s + 1
  if s == 2 ^ k then
    k = k + 1
    s = 0
  end
  redis.call('HSET', meta, 'k', string.format('%d', k), 's', string.format('%d', s))
end
"""

# Upsert in one round trip, atomically: two browsers racing on one endpoint cannot both count as new, and
# the topic bitmaps always match the stored topics. Keys are built from the prefix inside the script (this
# service does not run on Redis Cluster).
# ARGV: prefix, index field, record tail, topics, created-if-new, day to count it as added on ('' for none:
# a migrated subscription was counted when it first came), index load.
_UPSERT = (
    _IX_BUCKET
    + _IX_COUNT
    + """
local p = ARGV[1]
local ix = ix_bucket(p, ARGV[2])
local n = redis.call('HGET', ix, ARGV[2])
local is_new = 0
if n then
  n = tonumber(n)
else
  n = redis.call('INCR', p .. 'subs:seq') - 1
  redis.call('HSET', ix, ARGV[2], n)
  ix_count(p, 1)
  is_new = 1
end
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local len = redis.call('LLEN', rk)
local created = ARGV[5]
local keep = {}
for t in string.gmatch(ARGV[4], '[^,]+') do keep[t] = true end
if pos < len then
  local old = redis.call('LINDEX', rk, pos)
  local c, t = string.match(old, '^(%d+) ([^ ]*) ')
  if c then
    created = c
    for slug in string.gmatch(t, '[^,]+') do
      if not keep[slug] then redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
    end
  else
    is_new = 1
  end
  redis.call('LSET', rk, pos, created .. ' ' .. ARGV[3])
else
  while len < pos do
    len = redis.call('RPUSH', rk, '')
  end
  redis.call('RPUSH', rk, created .. ' ' .. ARGV[3])
end
for t, _ in pairs(keep) do redis.call('SETBIT', p .. 'subs:t:' .. t, n, 1) end
redis.call('SETBIT', p .. 'subs:live', n, 1)
redis.call('SETBIT', p .. 'subs:q', n, 0)
redis.call('HDEL', p .. 'subs:fails', n)
redis.call('HDEL', p .. 'subs:fail1', n)
if is_new == 1 and ARGV[6] ~= '' then redis.call('HINCRBY', p .. 'subs:daily:added', ARGV[6], 1) end
return {n, is_new}
"""
)

# Remove subscription n (ARGV: prefix, n, index field, expected p256dh or '', day). With an expected key, a
# record that changed since it was read (the browser subscribed again) is left alone.
_DELETE = (
    _IX_BUCKET
    + _IX_COUNT
    + """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local ix = ix_bucket(p, ARGV[3])
local function unindex()
  if redis.call('HGET', ix, ARGV[3]) == ARGV[2] then
    redis.call('HDEL', ix, ARGV[3])
    ix_count(p, -1)
  end
end
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then
  unindex()
  return 0
end
local t = string.match(old, '^%d+ ([^ ]*) ')
if ARGV[4] ~= '' then
  local key = string.match(old, '^%d+ [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* ([^ ]*) ')
  if key ~= ARGV[4] then return 0 end
end
redis.call('LSET', rk, pos, '')
unindex()
for slug in string.gmatch(t or '', '[^,]+') do redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
redis.call('SETBIT', p .. 'subs:live', n, 0)
redis.call('SETBIT', p .. 'subs:q', n, 0)
redis.call('HDEL', p .. 'subs:fails', n)
redis.call('HDEL', p .. 'subs:fail1', n)
redis.call('HINCRBY', p .. 'subs:daily:removed', ARGV[5], 1)
return 1
"""
)

_LOOKUP = (
    _IX_BUCKET
    + """
return redis.call('HGET', ix_bucket(ARGV[1], ARGV[2]), ARGV[2])
"""
)

# Replace the topics of subscription n (ARGV: prefix, n, topics). Returns 0 when it is gone.
_SET_TOPICS = """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then return 0 end
local c, t, rest = string.match(old, '^(%d+) ([^ ]*) (.*)$')
local keep = {}
for slug in string.gmatch(ARGV[3], '[^,]+') do keep[slug] = true end
for slug in string.gmatch(t, '[^,]+') do
  if not keep[slug] then redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
end
for slug, _ in pairs(keep) do redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 1) end
redis.call('LSET', rk, pos, c .. ' ' .. ARGV[3] .. ' ' .. rest)
return 1
"""

# Count the union of topic bitmaps (ARGV: scratch key; KEYS: the bitmaps). The scratch key is removed.
_UNION_COUNT = """
redis.call('BITOP', 'OR', ARGV[1], unpack(KEYS))
local n = redis.call('BITCOUNT', ARGV[1])
redis.call('DEL', ARGV[1])
return n
"""


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class SubscriptionStore:
    """Subscriptions in Redis. Every method takes the work it needs in one round trip where it can."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._upsert = r.register_script(_UPSERT)
        self._delete = r.register_script(_DELETE)
        self._set_topics = r.register_script(_SET_TOPICS)
        self._lookup = r.register_script(_LOOKUP)
        self._union_count = r.register_script(_UNION_COUNT)

    # -- writing ------------------------------------------------------------------------------

    def _upsert_args(
        self,
        sub: SubscriptionInput,
        *,
        browser: str,
        key_id: str,
        now: int,
        created: int | None = None,
        seen: int | None = None,
        count_day: bool = True,
    ) -> list[str | int]:
        tail = record_tail(
            topics=sub.topics,
            seen=now if seen is None else seen,
            lang=sub.lang,
            browser=browser,
            key_id=key_id,
            expiration_time=sub.expiration_time,
            p256dh=sub.p256dh,
            auth=sub.auth,
            endpoint=sub.endpoint,
        )
        return [
            self.keys.prefix,
            endpoint_index(sub.endpoint),
            tail,
            ",".join(sub.topics),
            now if created is None else created,
            _day(now) if count_day else "",
            INDEX_LOAD,
        ]

    def upsert(
        self, sub: SubscriptionInput, *, browser: str = "other", key_id: str = "", now: float | None = None
    ) -> tuple[str, bool]:
        """Store or update a subscription in one atomic round trip; returns ``(sid, created)``."""
        now_i = int(time.time() if now is None else now)
        args = self._upsert_args(sub, browser=browser, key_id=key_id, now=now_i)
        # EVALSHA straight through execute_command: the subscribe API's one round trip, without
        # redis-py's Script wrapper (~10 µs of its CPU per call); a flushed script cache reloads it.
        try:
            n, created = self.r.execute_command("EVALSHA", self._upsert.sha, 0, *args)
        except redis.exceptions.NoScriptError:
            n, created = self._upsert(args=args)
        return str(n), bool(created)

    def upsert_many(
        self,
        items: Sequence[SubscriptionInput],
        *,
        browser: str = "other",
        key_id: str = "",
        now: float | None = None,
        stamps: Sequence[tuple[int | None, int | None]] | None = None,
    ) -> list[tuple[str, bool]]:
        """:meth:`upsert` for many, pipelined (each still atomic); ``stamps``: (created, seen) per item."""
        now_i = int(time.time() if now is None else now)
        pipe = self.r.pipeline(transaction=False)
        for i, sub in enumerate(items):
            created, seen = stamps[i] if stamps else (None, None)
            self._upsert(
                args=self._upsert_args(
                    sub, browser=browser, key_id=key_id, now=now_i, created=created, seen=seen
                ),
                client=pipe,
            )
        return [(str(n), bool(new)) for n, new in pipe.execute()] if items else []

    def set_topics(self, endpoint: str, topics: Iterable[str]) -> Subscription:
        """Replace the topics of a subscription (already validated slugs)."""
        sub = self.get_by_endpoint(endpoint)
        new = tuple(dict.fromkeys(topics))
        if not self._set_topics(args=[self.keys.prefix, sub.sid, ",".join(new)]):
            raise NotFound("no subscription for this endpoint")
        return self.get(sub.sid)

    def delete(
        self, sub: Subscription, *, pipe: redis.client.Pipeline | None = None, exact: bool = False
    ) -> None:
        """Remove a subscription and its index entries (in ``pipe`` when given).

        With ``exact``, only if its stored keys are still the ones in ``sub``: a
        push service's 404 for an old subscription must not remove the fresh one
        the same browser has stored since.
        """
        self._delete(
            args=[
                self.keys.prefix,
                sub.sid,
                endpoint_index(sub.endpoint),
                sub.p256dh if exact else "",
                _day(time.time()),
            ],
            client=pipe or self.r,
        )

    def delete_by_endpoint(self, endpoint: str) -> bool:
        """Remove the subscription for ``endpoint``; False when none was stored."""
        try:
            sub = self.get_by_endpoint(endpoint)
        except NotFound:
            return False
        self.delete(sub)
        return True

    def quarantine(self, sids: Iterable[str], pipe: redis.client.Pipeline) -> None:
        """Mark subscriptions as kept out of fan-out (they failed for days; a new subscribe lifts it)."""
        for sid in sids:
            pipe.setbit(self.keys.subs_quarantined, int(sid), 1)

    def record_failure(self, sid: str, now: int, pipe: redis.client.Pipeline) -> None:
        """Count a failed push in the subscription's current run of failures."""
        pipe.hincrby(self.keys.subs_failures, sid, 1)
        pipe.hsetnx(self.keys.subs_first_failure, sid, now)

    def clear_failures(self, sid: str, pipe: redis.client.Pipeline) -> None:
        """End the subscription's run of failures (a push was accepted)."""
        pipe.hdel(self.keys.subs_failures, sid)
        pipe.hdel(self.keys.subs_first_failure, sid)

    # -- reading ------------------------------------------------------------------------------

    def sid_of(self, endpoint: str) -> str | None:
        """The id stored for ``endpoint``, or None."""
        found = self._lookup(args=[self.keys.prefix, endpoint_index(endpoint)])
        return None if found is None else str(found if isinstance(found, str) else found.decode())

    def get(self, sid: str) -> Subscription:
        """One subscription by id; :class:`NotFound` when absent."""
        found = self.load_many([sid])
        if not found:
            raise NotFound(f"no subscription {sid}")
        return found[0]

    def get_by_endpoint(self, endpoint: str) -> Subscription:
        """One subscription by its endpoint URL."""
        sid = self.sid_of(endpoint)
        if sid is None:
            raise NotFound("no subscription for this endpoint")
        sub = self.get(sid)
        if sub.endpoint != endpoint:  # a digest collision: 84 bits make it all but impossible
            raise NotFound("no subscription for this endpoint")
        return sub

    def load_many(self, sids: Sequence[str]) -> list[Subscription]:
        """Load subscriptions in one pipeline, in order; ids that are not stored are skipped.

        Ids close together (a planned batch) share record lists, so a list with
        several wanted records is read whole with one LRANGE.
        """
        wanted: dict[int, list[tuple[int, str]]] = {}
        for sid in sids:
            try:
                n = int(sid)
            except ValueError:
                continue
            if n < 0:
                continue
            wanted.setdefault(n // RECORDS_PER_LIST, []).append((n % RECORDS_PER_LIST, sid))
        if not wanted:
            return []
        pipe = self.r.pipeline(transaction=False)
        plan: list[tuple[int, list[tuple[int, str]]]] = []
        for bucket, members in wanted.items():
            key = self.keys.subs_records(bucket)
            if len(members) > 3:
                pipe.lrange(key, 0, -1)
                plan.append((-1, members))
            else:
                for pos, sid in members:
                    pipe.lindex(key, pos)
                    plan.append((pos, [(pos, sid)]))
        pipe.hmget(self.keys.subs_failures, list(sids))
        pipe.hmget(self.keys.subs_first_failure, list(sids))
        replies = pipe.execute()
        failures = dict(zip(sids, replies[-2], strict=True))
        firsts = dict(zip(sids, replies[-1], strict=True))
        records: dict[str, str] = {}
        for (pos, members), reply in zip(plan, replies[:-2], strict=True):
            if pos >= 0:
                if reply:
                    records[members[0][1]] = reply
                continue
            for p, sid in members:
                if p < len(reply) and reply[p]:
                    records[sid] = reply[p]
        found: list[Subscription] = []
        for sid in dict.fromkeys(sids):
            record = records.get(sid)
            if record:
                found.append(decode_record(sid, record, int(failures[sid] or 0), int(firsts[sid] or 0)))
        return found

    def exists_many(self, sids: Sequence[str]) -> list[bool]:
        """Whether each id is a stored subscription."""
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.getbit(self.keys.subs_live, int(sid) if sid.isdigit() else 2**32 - 1)
        return [bool(bit) for bit in pipe.execute()] if sids else []

    def count(self, topic: str | None = None) -> int:
        """Number of subscriptions, in all or following one topic."""
        return int(self.r.bitcount(self.keys.subs_topic(topic) if topic else self.keys.subs_live))

    def quarantined_count(self) -> int:
        """Subscriptions kept out of fan-out."""
        return int(self.r.bitcount(self.keys.subs_quarantined))

    def audience_size(self, topics: Sequence[str]) -> int:
        """Subscribers a campaign to ``topics`` (empty: everyone) would reach, each counted once."""
        unique = list(dict.fromkeys(topics))
        if len(unique) <= 1:
            return self.count(unique[0] if unique else None)
        scratch = f"{self.keys.prefix}tmp:union:{random.getrandbits(64):x}"
        return int(self._union_count(keys=[self.keys.subs_topic(t) for t in unique], args=[scratch]))

    def snapshot_audience(self, topics: Sequence[str], dest: str) -> int:
        """Write the audience of ``topics`` (empty: everyone) as a bitmap at ``dest``; returns its size."""
        sources = [self.keys.subs_topic(t) for t in dict.fromkeys(topics)] or [self.keys.subs_live]
        pipe = self.r.pipeline(transaction=True)
        pipe.bitop("OR", dest, *sources)
        pipe.bitcount(dest)
        return int(pipe.execute()[1])

    def iter_bitmap(
        self, key: str, *, start_byte: int = 0, chunk_bytes: int = 256
    ) -> Iterator[tuple[int, list[str]]]:
        """The ids set in the bitmap at ``key``, a chunk at a time: ``(next byte to read, ids)``.

        Resumable: pass a ``next byte`` already seen as ``start_byte``. Empty chunks yield nothing.
        """
        offset = start_byte
        while True:
            # Bitmaps are bytes, whatever the client decodes.
            data = self.r.execute_command(
                "GETRANGE", key, offset, offset + chunk_bytes - 1, **{NEVER_DECODE: True}
            )
            if not data:
                return
            ids = ids_in_bitmap(data, offset * 8)
            offset += len(data)
            if ids:
                yield offset, [str(n) for n in ids]
            if len(data) < chunk_bytes:
                return

    def scan_ids(self, page_size: int = 1000) -> Iterator[list[str]]:
        """Every subscription id, in pages, in id order."""
        for _, ids in self.iter_bitmap(self.keys.subs_live, chunk_bytes=max(1, page_size // 8)):
            yield ids

    def sample(self, size: int) -> list[Subscription]:
        """About ``size`` subscriptions chosen uniformly (all of them when there are fewer)."""
        total = self.count()
        if total <= size:
            return [sub for page in self.scan_ids(1000) for sub in self.load_many(page)]
        top = int(self.r.get(self.keys.subs_seq) or 0)
        found: dict[str, Subscription] = {}
        for _ in range(8):
            want = size - len(found)
            if want <= 0 or top <= 0:
                break
            tries = min(top, int(want * top / total * 1.2) + 10)
            picked = [str(n) for n in random.sample(range(top), tries)]
            for sub in self.load_many([s for s in picked if s not in found]):
                found[sub.sid] = sub
        return list(found.values())[:size]


def migrate_legacy(store: SubscriptionStore, page_size: int = 500) -> int:
    """Move subscriptions from the first layout (a hash per subscription, sets) into this one.

    The first release kept ``sub:{sid}`` hashes indexed by ``subs:all`` and
    ``subs:topic:{slug}`` sets. Each page is re-stored with the atomic upsert
    (keeping created, seen, browser, key id, failures and quarantine) before its
    old keys are removed, so an interrupted run simply continues. Returns the
    number moved; 0 when there is nothing to move.
    """
    r, p = store.r, store.keys.prefix
    legacy_all = f"{p}subs:all"
    if r.type(legacy_all) not in ("set", b"set"):
        return 0
    quarantined_key = f"{p}subs:quarantined"
    moved = 0
    while True:
        sids = r.srandmember(legacy_all, page_size)
        if not sids:
            break
        look = r.pipeline(transaction=False)
        for sid in sids:
            look.hgetall(f"{p}sub:{sid}")
        look.smismember(quarantined_key, sids)
        *rows, in_quarantine = look.execute()
        write = r.pipeline(transaction=False)
        kept: list[tuple[str, Mapping[str, str], bool]] = []
        for sid, data, quarantined in zip(sids, rows, in_quarantine, strict=True):
            if data and "e" in data:
                item = SubscriptionInput(
                    endpoint=data["e"],
                    p256dh=data["p"],
                    auth=data["a"],
                    topics=tuple(t for t in data.get("t", "").split(",") if t),
                    lang=data.get("l", "id"),
                    expiration_time=int(data["x"]) if data.get("x") else None,
                )
                args = store._upsert_args(
                    item,
                    browser=data.get("b", "other"),
                    key_id=data.get("k", ""),
                    now=int(time.time()),
                    created=int(data.get("c", 0)),
                    seen=int(data.get("s", 0)),
                    count_day=False,
                )
                store._upsert(args=args, client=write)
                kept.append((sid, data, bool(quarantined)))
        results = write.execute() if kept else []
        clean = r.pipeline(transaction=True)
        for (_sid, data, quarantined), (n, _) in zip(kept, results, strict=True):
            if int(data.get("f", 0) or 0):
                clean.hset(store.keys.subs_failures, str(n), int(data["f"]))
                if data.get("ff"):
                    clean.hset(store.keys.subs_first_failure, str(n), int(data["ff"]))
            if quarantined:
                clean.setbit(store.keys.subs_quarantined, int(n), 1)
        for sid in sids:
            clean.delete(f"{p}sub:{sid}")
        clean.srem(legacy_all, *sids)
        clean.execute()
        moved += len(kept)
    for key in r.scan_iter(match=f"{p}subs:topic:*", count=1000):
        r.delete(key)
    r.delete(quarantined_key)
    return moved


def iter_audience(
    r: redis.Redis, keys: Keys, topics: Sequence[str], page_size: int = 1000
) -> Iterator[list[str]]:
    """Pages of subscription ids following any of ``topics`` (everyone when empty), each id once."""
    store = SubscriptionStore(r, keys)
    scratch = f"{keys.prefix}tmp:audience:{random.getrandbits(64):x}"
    store.snapshot_audience(topics, scratch)
    try:
        for _, ids in store.iter_bitmap(scratch, chunk_bytes=max(1, page_size // 8)):
            yield ids
    finally:
        r.delete(scratch)
