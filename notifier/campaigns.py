"""Campaigns: one alert to an audience, validated, stored in Redis, and moved through its states.

States::

    draft ──approve──> scheduled ──(send_at reached)──> planning ──> sending ──> done
                           │                                  │  └─> paused ──resume──> sending
                           └───────────── cancel ─────────────┴────> cancelled
    (any active state) ──> failed   (planning crashed, or nothing could be delivered)

Counters (``HINCRBY`` from the batch pipelines): ``total``, ``sent``, ``gone``,
``rejected``, ``failed``, ``retried`` (a push service asked us to try again),
``deferred`` (held back locally while its push service rate-limits us),
``skipped`` (quarantined, capped or vanished), ``shown``, ``clicked``;
``pending`` is the number of batch jobs not finished yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis

from notifier.crypto import MAX_PLAINTEXT, b64url_encode
from notifier.declarative import WEB_PUSH
from notifier.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from notifier.keys import Keys
from notifier.topics import Topic

STATES = ("draft", "scheduled", "planning", "sending", "paused", "done", "cancelled", "failed")
ACTIVE = ("scheduled", "planning", "sending", "paused")
FINAL = ("done", "cancelled", "failed")
COUNTERS = (
    "total",
    "sent",
    "gone",
    "rejected",
    "failed",
    "retried",
    "deferred",
    "skipped",
    "shown",
    "clicked",
)
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

#: Allowed state changes; anything else is a :class:`Conflict`.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("scheduled", "cancelled"),
    "scheduled": ("planning", "cancelled", "failed"),
    "planning": ("sending", "done", "cancelled", "failed"),
    "sending": ("done", "paused", "cancelled", "failed"),
    "paused": ("sending", "cancelled", "failed"),
    "done": (),
    "cancelled": (),
    "failed": (),
}

# A receipt token and a subscription id are fixed-length; the budget check
# builds the payload with these sizes so every real message fits too.
_SID_LEN = 16
_RT_LEN = 22


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


@dataclass
class Campaign:
    """A stored campaign with its counters."""

    cid: str
    title: str
    body: str
    url: str
    image: str
    icon: str
    topics: tuple[str, ...]
    ttl: int
    urgency: str
    breaking: bool
    story: str
    state: str
    source: str
    created_by: str
    created: float
    send_at: float | None
    started: float | None
    first_sent: float | None
    last_sent: float | None
    finished: float | None
    batches: int
    pending: int
    reason: str
    article_guid: str
    counters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, cid: str, h: Mapping[str, str]) -> Campaign:
        """Build from the stored hash."""

        def opt(name: str) -> float | None:
            value = h.get(name)
            return float(value) if value not in (None, "") else None

        return cls(
            cid=cid,
            title=h.get("title", ""),
            body=h.get("body", ""),
            url=h.get("url", ""),
            image=h.get("image", ""),
            icon=h.get("icon", ""),
            topics=tuple(t for t in h.get("topics", "").split(",") if t),
            ttl=int(h.get("ttl", TTL_DEFAULT)),
            urgency=h.get("urgency", "normal"),
            breaking=h.get("breaking") == "1",
            story=h.get("story", ""),
            state=h.get("state", "draft"),
            source=h.get("source", ""),
            created_by=h.get("created_by", ""),
            created=float(h.get("created", 0)),
            send_at=opt("send_at"),
            started=opt("started"),
            first_sent=opt("first_sent"),
            last_sent=opt("last_sent"),
            finished=opt("finished"),
            batches=int(h.get("batches", 0)),
            pending=int(h.get("pending", 0)),
            reason=h.get("reason", ""),
            article_guid=h.get("article_guid", ""),
            counters={name: int(h.get(name, 0)) for name in COUNTERS},
        )

    @property
    def done_count(self) -> int:
        """Messages that reached a final outcome."""
        c = self.counters
        return c["sent"] + c["gone"] + c["rejected"] + c["failed"] + c["skipped"]

    @property
    def progress(self) -> float:
        """Share of the audience with a final outcome, 0..1."""
        total = self.counters["total"]
        if self.state == "done":
            return 1.0
        return min(1.0, self.done_count / total) if total else 0.0

    @property
    def click_through_rate(self) -> float | None:
        """Clicks per notification shown (or per sent, when no shown receipts arrived)."""
        base = self.counters["shown"] or self.counters["sent"]
        return self.counters["clicked"] / base if base else None

    def info(self) -> dict[str, Any]:
        """JSON view for the API and CLI."""
        data = asdict(self)
        data["id"] = data.pop("cid")
        data["topics"] = list(self.topics)
        data["progress"] = round(self.progress, 4)
        data["ctr"] = self.click_through_rate
        return data

    def payload_prefix(self) -> str:
        """The JSON payload up to the per-subscriber fields, serialised once per campaign."""
        return campaign_payload_prefix(
            self.title, self.body, self.url, self.image, self.icon, self.tag, self.cid
        )

    @property
    def tag(self) -> str:
        """Notification tag: one per story, so updates replace each other on the device."""
        return self.story or self.cid


def campaign_payload_prefix(
    title: str, body: str, url: str, image: str, icon: str, tag: str, cid: str
) -> str:
    """The declarative push message up to the subscriber's own fields, serialised once per campaign.

    The message is the Declarative Web Push format (:mod:`notifier.declarative`) with ``mutable: true``:
    Safari shows it by itself, and every service worker (ours in every browser, Safari's included)
    renders it and reports the receipt. The text ends inside ``notification.data``, right after the
    campaign id, so :func:`message_payload` only appends the subscription id, the receipt token and
    the timestamp.
    """
    note: dict[str, Any] = {"title": title, "body": body, "navigate": url}
    if image:
        note["image"] = image
    if icon:
        note["icon"] = icon
    note["tag"] = tag
    note["renotify"] = True
    note["data"] = {"cid": cid}
    message = {"web_push": WEB_PUSH, "mutable": True, "notification": note}
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    # The text ends with the "}" of data, of the notification and of the message: reopen data.
    return text[:-3] + ","


def message_payload(prefix: str, sid: str, receipt: str, ts_ms: int) -> bytes:
    """The complete payload of one message: the shared prefix plus the subscriber's fields.

    ``ts_ms`` is the notification's ``timestamp`` (milliseconds since the epoch).
    """
    return f'{prefix}"sid":"{sid}","rt":"{receipt}"}},"timestamp":{ts_ms}}}}}'.encode()


def payload_size(
    title: str, body: str, url: str, image: str = "", icon: str = "", tag: str = "x" * 24
) -> int:
    """Bytes of the largest plaintext a message of this content produces."""
    prefix = campaign_payload_prefix(title, body, url, image, icon, tag or "x" * 24, "c" * 20)
    return len(message_payload(prefix, "s" * _SID_LEN, "r" * _RT_LEN, 10**13))


def receipt_token(key: bytes, cid: str, sid: str) -> str:
    """Token binding a receipt to one campaign and one subscription (HMAC-SHA256, 128 bits)."""
    return b64url_encode(hmac.new(key, f"{cid}:{sid}".encode(), hashlib.sha256).digest()[:16])


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
    except ValueError as exc:
        raise ValidationError(f"{name!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"{name!r} must be an http(s) URL, not {parts.scheme or 'a relative URL'}:")
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
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"{name!r} is not an ISO 8601 time: {value[:40]!r}") from exc
        if moment.tzinfo is None:
            raise ValidationError(f"{name!r} must carry a time zone (e.g. +07:00)")
        return moment.astimezone(UTC).timestamp()
    raise ValidationError(f"{name!r} must be a time")


def validate_campaign(
    data: Any, *, topics: Sequence[Topic], now: float | None = None, source: str = "api", created_by: str = ""
) -> CampaignInput:
    """Check an alert; raise ValidationError (or PayloadTooLarge naming the size) when it cannot be sent."""
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
        from notifier.subscriptions import validate_topics

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
    )


def new_campaign_id(now: float | None = None) -> str:
    """Time-ordered, unguessable id: milliseconds in base 36 plus 48 random bits."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{_base36(ms)}{os.urandom(6).hex()}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, rem = divmod(n, 36)
        out = digits[rem] + out
    return out or "0"


# Compare-and-set of the state field, so two processes never both move a campaign.
_SET_STATE = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {err='missing'} end
local allowed = false
for i = 3, #ARGV do if ARGV[i] == current then allowed = true end end
if not allowed then return current end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
return 'OK'
"""


class CampaignStore:
    """Campaigns in Redis."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._set_state = r.register_script(_SET_STATE)

    def create(self, item: CampaignInput, *, state: str | None = None, now: float | None = None) -> str:
        """Store a campaign; ``scheduled`` unless ``state`` says ``draft``. Returns its id."""
        now = time.time() if now is None else now
        cid = new_campaign_id(now)
        state = state or "scheduled"
        if state not in ("draft", "scheduled"):
            raise ValueError(f"a new campaign is draft or scheduled, not {state}")
        mapping: dict[str, Any] = {
            "title": item.title,
            "body": item.body,
            "url": item.url,
            "image": item.image,
            "icon": item.icon,
            "topics": ",".join(item.topics),
            "ttl": item.ttl,
            "urgency": item.urgency,
            "breaking": "1" if item.breaking else "0",
            "story": item.story,
            "state": state,
            "source": item.source,
            "created_by": item.created_by,
            "created": repr(now),
            "send_at": repr(item.send_at) if item.send_at is not None else "",
            "article_guid": item.article_guid,
        }
        mapping.update({name: 0 for name in COUNTERS})
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.campaign(cid), mapping=mapping)
        pipe.zadd(self.keys.campaigns, {cid: now})
        pipe.execute()
        return cid

    def get(self, cid: str) -> Campaign:
        """A campaign by id; :class:`NotFound` when absent."""
        if not cid or len(cid) > 64:
            raise NotFound(f"no campaign {cid[:64]!r}")
        data = self.r.hgetall(self.keys.campaign(cid))
        if not data:
            raise NotFound(f"no campaign {cid}")
        return Campaign.from_hash(cid, data)

    def state(self, cid: str) -> str | None:
        """Just the state (one HGET: batches poll it to notice a cancel)."""
        return self.r.hget(self.keys.campaign(cid), "state")

    def transition(
        self, cid: str, new: str, *, reason: str = "", allowed_from: Sequence[str] | None = None
    ) -> bool:
        """Move to ``new`` when the current state allows it; False when it does not."""
        sources = allowed_from or [s for s, targets in TRANSITIONS.items() if new in targets]
        try:
            result = self._set_state(keys=[self.keys.campaign(cid)], args=[new, reason, *sources])
        except redis.ResponseError as exc:
            raise NotFound(f"no campaign {cid}") from exc
        if result == "OK":
            stamp = {"planning": "started", "done": "finished", "cancelled": "finished", "failed": "finished"}
            if new in stamp:
                self.r.hsetnx(self.keys.campaign(cid), stamp[new], repr(time.time()))
            return True
        return False

    def cancel(self, cid: str) -> Campaign:
        """Cancel a campaign that has not finished; batches in flight stop within a second or two."""
        campaign = self.get(cid)
        if campaign.state in FINAL:
            raise Conflict(f"campaign {cid} is already {campaign.state}")
        if not self.transition(cid, "cancelled", reason="cancelled by an editor"):
            raise Conflict(f"campaign {cid} could not be cancelled from {self.get(cid).state}")
        return self.get(cid)

    def list(self, offset: int = 0, limit: int = 50) -> list[Campaign]:
        """Newest campaigns first."""
        cids = self.r.zrevrange(self.keys.campaigns, offset, offset + limit - 1)
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(self.keys.campaign(cid))
        return [Campaign.from_hash(cid, h) for cid, h in zip(cids, pipe.execute(), strict=True) if h]

    def active(self) -> list[Campaign]:
        """Campaigns planning, sending or paused (ops view)."""
        return [c for c in self.list(0, 200) if c.state in ("planning", "sending", "paused")]

    def duplicate(self, cid: str, *, created_by: str = "") -> str:
        """A new draft with the same content."""
        c = self.get(cid)
        item = CampaignInput(
            title=c.title,
            body=c.body,
            url=c.url,
            image=c.image,
            icon=c.icon,
            topics=c.topics,
            ttl=c.ttl,
            urgency=c.urgency,
            breaking=c.breaking,
            story=c.story,
            source="duplicate",
            created_by=created_by or c.created_by,
        )
        return self.create(item, state="draft")


RECEIPT_KINDS = ("shown", "clicked")
#: Receipt sets are kept this long after a campaign's latest receipt (a repeat then counts again).
RECEIPTS_TTL = 90 * 86400

# Count a receipt once per campaign and subscription, in one round trip: a new one adds to the campaign's
# counter and timeline; a repeat counts nothing but its token's repeats (for the per-token limit).
# KEYS: campaign hash, receipt set, timeline, repeats counter. ARGV: sid, kind, timeline field, receipt
# set TTL, repeat window (seconds). Returns {0, 0} when counted, {-1, 0} for an unknown campaign, else
# {repeats in the current window, seconds left in it}.
_COUNT_RECEIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return {0, 0}
end
local n = redis.call('INCR', KEYS[4])
if n == 1 then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return {n, redis.call('TTL', KEYS[4])}
"""


@dataclass(frozen=True)
class Receipt:
    """A ``shown``/``clicked`` receipt whose token was checked: the campaign's own for that subscriber."""

    kind: str
    cid: str
    sid: str
    token: str


@dataclass(frozen=True)
class ReceiptCount:
    """What counting a receipt did: counted now, or the how-many-th repeat of its token this window."""

    counted: bool
    repeats: int = 0
    window_left: int = 0


def parse_receipt(receipt_key: bytes, data: Any) -> Receipt:
    """A receipt from its JSON body; ValidationError for a malformed or forged one (no Redis touched)."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    kind, cid, sid, token = (data.get(k) for k in ("type", "cid", "sid", "rt"))
    if kind not in RECEIPT_KINDS:
        raise ValidationError("'type' must be 'shown' or 'clicked'")
    for name, value in (("cid", cid), ("sid", sid), ("rt", token)):
        if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii():
            raise ValidationError(f"missing or malformed field {name!r}", code="missing_field")
    assert isinstance(cid, str) and isinstance(sid, str) and isinstance(token, str)
    if not hmac.compare_digest(receipt_token(receipt_key, cid, sid), token):
        raise ValidationError(
            "the receipt token does not match this campaign and subscription", code="bad_receipt"
        )
    return Receipt(kind, cid, sid, token)


def count_receipt(
    r: redis.Redis, keys: Keys, receipt: Receipt, *, now: float | None = None, repeat_window: int = 60
) -> ReceiptCount:
    """Count a checked receipt once per campaign and subscription; :class:`NotFound` for no campaign."""
    now = time.time() if now is None else now
    repeats, left = r.register_script(_COUNT_RECEIPT)(
        keys=[
            keys.campaign(receipt.cid),
            keys.campaign_receipts(receipt.cid, receipt.kind),
            keys.campaign_timeline(receipt.cid),
            keys.receipt_repeats(receipt.token),
        ],
        args=[
            receipt.sid,
            receipt.kind,
            f"{int(now // 10) * 10}:{receipt.kind}",  # 10 s buckets
            RECEIPTS_TTL,
            max(1, repeat_window),
        ],
    )
    if int(repeats) < 0:
        raise NotFound(f"no campaign {receipt.cid}")
    return ReceiptCount(int(repeats) == 0, int(repeats), int(left))


def record_receipt(
    r: redis.Redis, keys: Keys, receipt_key: bytes, data: Any, *, now: float | None = None
) -> bool:
    """Count a ``shown``/``clicked`` receipt once per campaign and subscription.

    The token must be the one the campaign put in that subscriber's payload, so
    figures cannot be inflated by forged receipts. Returns True when counted,
    False for a repeat; raises ValidationError for a malformed or forged one.
    """
    return count_receipt(r, keys, parse_receipt(receipt_key, data), now=now).counted
