"""The simulator's state and decisions, independent of the HTTP server that exposes them.

Handlers run on the server's event-loop thread while tests call :class:`Simulator`
from theirs, so every compound update takes ``_lock``; single dict reads rely on
CPython making them atomic, which keeps the per-request path short.
"""

from __future__ import annotations

import collections
import http
import itertools
import random
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec

from notifier.crypto import RECORD_SIZE, b64url_decode, b64url_encode, decrypt, generate_subscriber
from notifier_simulator.vapid import VapidError, VapidVerifier, parse_authorization_cached

#: Statuses a rule may answer with (besides ``"stall"``).
RULE_STATUSES = frozenset({400, 401, 403, 404, 410, 413, 429, 500, 502, 503})
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
#: Endpoint path prefix; a token follows it.
ENDPOINT_PATH = "/wpush/"
_TOKEN_BYTES = 96  # 128 urlsafe characters, about as long as real FCM / autopush endpoints
_TOPIC_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_MAX_TOPIC = 32
_MAX_MINT = 1_000_000


@dataclass(frozen=True, slots=True)
class Received:
    """One message the simulator accepted (201)."""

    endpoint: str
    message_id: str
    payload: bytes | None  # the decrypted plaintext; None when not decrypted (sampled out, WebSocket, empty)
    size: int  # bytes of the encrypted body
    ttl: int
    urgency: str | None
    topic: str | None
    time: float
    decrypted: bool
    forwarded: bool  # handed to a WebSocket client (which holds the key)
    vapid_key: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view: payload as base64url, plus ``text`` when it is UTF-8."""
        text: str | None = None
        if self.payload is not None:
            try:
                text = self.payload.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return {
            "endpoint": self.endpoint,
            "message_id": self.message_id,
            "payload": None if self.payload is None else b64url_encode(self.payload),
            "text": text,
            "size": self.size,
            "ttl": self.ttl,
            "urgency": self.urgency,
            "topic": self.topic,
            "time": self.time,
            "decrypted": self.decrypted,
            "forwarded": self.forwarded,
            "vapid_key": self.vapid_key,
        }


#: Longest time a latency rule may hold an answer (seconds): a hold is a delay, not a stall.
MAX_LATENCY = 60.0


@dataclass(slots=True)
class Rule:
    """Answer matching push requests with ``status`` instead of handling them, or hold their answers.

    A request matches when every given condition holds: ``endpoint`` (exact URL),
    ``count`` (only the first ``count`` requests to each endpoint, then normal
    handling resumes: "500 twice then 201"), ``fraction`` (a seeded random share).
    ``status="stall"`` sleeps ``seconds``, then handles the request normally if the sender
    is still waiting (if it gave up, the message is dropped and counted as ``abandoned``);
    ``retry_after`` (seconds or an HTTP-date) is sent as ``Retry-After``.

    ``status="latency"`` changes no answer: the request is handled at once (or by the first
    matching answer rule) and its answer is held, like a push service far away on the
    internet. The hold is ``seconds``, plus a uniform ``jitter`` (0 to ``jitter`` seconds),
    and ``tail_fraction`` of the matching requests (seeded) are held ``tail_seconds`` instead
    (plus the same jitter): "60 ms, 5 % at 480 ms". Latency rules are checked apart from
    the answer rules, in the order added; the first that matches sets the hold.
    """

    status: int | Literal["stall", "latency"]
    endpoint: str | None = None
    fraction: float | None = None
    count: int | None = None
    retry_after: int | str | None = None
    seconds: float = 0.0
    jitter: float = 0.0
    tail_fraction: float = 0.0
    tail_seconds: float = 0.0
    id: int = 0
    hits: int = 0
    last_hit: float = 0.0  # wall-clock time of the latest request this rule took
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.status == "stall":
            if not self.seconds > 0:
                raise ValueError("a stall rule needs seconds > 0")
        elif self.status == "latency":
            self._check_latency()
        elif self.status not in RULE_STATUSES:
            raise ValueError(
                f"rule status must be one of {sorted(RULE_STATUSES)}, 'stall' or 'latency', "
                f"got {self.status!r}"
            )
        if self.status != "latency" and (self.jitter or self.tail_fraction or self.tail_seconds):
            raise ValueError("jitter, tail_fraction and tail_seconds belong to latency rules")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if isinstance(self.retry_after, int) and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")

    def _check_latency(self) -> None:
        if self.retry_after is not None:
            raise ValueError("a latency rule changes no answer: retry_after does not apply")
        for name in ("seconds", "jitter", "tail_seconds"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_LATENCY:
                raise ValueError(f"{name} must be between 0 and {MAX_LATENCY:.0f} seconds, got {value}")
        if not 0.0 <= self.tail_fraction <= 1.0:
            raise ValueError("tail_fraction must be between 0 and 1")
        if self.tail_fraction and self.tail_seconds < self.seconds:
            raise ValueError("tail_seconds must be at least seconds: the tail is the slow share")
        if not (self.seconds or self.jitter or (self.tail_fraction and self.tail_seconds)):
            raise ValueError("a latency rule needs seconds, jitter or a tail above 0")

    def hold(self, rng: random.Random) -> float:
        """Seconds to hold one answer under this latency rule (draws from ``rng``)."""
        base = self.seconds
        if self.tail_fraction and rng.random() < self.tail_fraction:
            base = self.tail_seconds
        return base + self.jitter * rng.random() if self.jitter else base

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        """Build a rule from its JSON form (the ``POST /_sim/rules`` body); ``ValueError`` if malformed."""
        allowed = {
            "status", "endpoint", "fraction", "count", "retry_after", "seconds",
            "jitter", "tail_fraction", "tail_seconds",
        }  # fmt: skip
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        status = data.get("status")
        if not (status in ("stall", "latency") or (isinstance(status, int) and not isinstance(status, bool))):
            raise ValueError("status must be an HTTP status code, 'stall' or 'latency'")
        endpoint = data.get("endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise ValueError("endpoint must be a string")
        fraction = data.get("fraction")
        if fraction is not None and not isinstance(fraction, int | float):
            raise ValueError("fraction must be a number")
        count = data.get("count")
        if count is not None and not isinstance(count, int):
            raise ValueError("count must be an integer")
        retry_after = data.get("retry_after")
        if retry_after is not None and not isinstance(retry_after, int | str):
            raise ValueError("retry_after must be seconds or an HTTP-date string")
        numbers: dict[str, float] = {}
        for name in ("seconds", "jitter", "tail_fraction", "tail_seconds"):
            value = data.get(name, 0.0)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number")
            numbers[name] = float(value)
        return cls(
            status=status,
            endpoint=endpoint,
            fraction=None if fraction is None else float(fraction),
            count=count,
            retry_after=retry_after,
            **numbers,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the rule, with its id and hit count."""
        return {
            "id": self.id,
            "status": self.status,
            "endpoint": self.endpoint,
            "fraction": self.fraction,
            "count": self.count,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "jitter": self.jitter,
            "tail_fraction": self.tail_fraction,
            "tail_seconds": self.tail_seconds,
            "hits": self.hits,
            "last_hit": self.last_hit,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer to one push request, and a notification to forward over a WebSocket, if any."""

    status: int
    reason: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    forward_to: str | None = None  # uaid of the WebSocket client
    notification: Mapping[str, Any] | None = None

    def error_body(self) -> dict[str, Any]:
        """The JSON error body, shaped like autopush's."""
        return {"code": self.status, "error": http.HTTPStatus(self.status).phrase, "message": self.reason}


@dataclass(slots=True)
class _Subscriber:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey | None  # None when a WebSocket client holds the key
    public: bytes | None
    auth: bytes | None
    app_server_key: bytes | None
    channel: tuple[str, str] | None = None  # (uaid, channelID) for WebSocket registrations


@dataclass(slots=True)
class _Pending:
    channel_id: str
    message: dict[str, Any]
    expires: float


class Simulator:
    """State of a simulated push service: subscriptions, rules, received messages and counters."""

    def __init__(
        self,
        origin: str = "",
        *,
        verify_fraction: float = 1.0,
        seed: int = 0,
        keep_received: int = 100_000,
    ) -> None:
        if not 0.0 <= verify_fraction <= 1.0:
            raise ValueError("verify_fraction must be between 0 and 1")
        self._lock = threading.Lock()
        self._origin = origin
        self._prefix = origin + ENDPOINT_PATH
        self.verify_fraction = verify_fraction
        self._seed = seed
        self._rule_rng = random.Random(seed)
        self._verify_rng = random.Random(seed + 1)
        self._latency_rng = random.Random(seed + 2)
        self._vapid = VapidVerifier()
        self._subscribers: dict[str, _Subscriber] = {}
        self._gone: set[str] = set()
        self._channels: dict[tuple[str, str], str] = {}
        self._uaids: set[str] = set()
        self._pending: dict[str, dict[str, _Pending]] = {}
        self._rules: list[Rule] = []
        # The same rules split by kind, rebuilt on every change (the request path reads them unlocked).
        self._answer_rules: list[Rule] = []
        self._latency_rules: list[Rule] = []
        self._rule_ids = itertools.count(1)
        self._received: collections.deque[Received] = collections.deque(maxlen=keep_received)
        self._message_ids = itertools.count(1)
        self._by_status: collections.Counter[int] = collections.Counter()
        self._counts: collections.Counter[str] = collections.Counter()

    @property
    def origin(self) -> str:
        """``scheme://host:port`` of the service: the ``aud`` every VAPID JWT must carry."""
        return self._origin

    def set_origin(self, origin: str) -> None:
        """Set the origin once the server knows its port (before any subscription is minted)."""
        with self._lock:
            self._origin = origin
            self._prefix = origin + ENDPOINT_PATH

    def _new_token(self) -> str:
        return secrets.token_urlsafe(_TOKEN_BYTES)

    def mint(
        self,
        count: int,
        *,
        application_server_key: bytes | str | None = None,
        shared_keys: bool = False,
    ) -> list[dict[str, Any]]:
        """Create ``count`` subscriptions in ``PushSubscription.toJSON()`` shape; the simulator keeps keys.

        With ``application_server_key`` set, a push signed with any other VAPID key gets 403.
        ``shared_keys`` gives the whole batch one key pair (the sender's work per message is
        the same, minting a million is much faster).
        """
        if not 1 <= count <= _MAX_MINT:
            raise ValueError(f"count must be between 1 and {_MAX_MINT}")
        if not self._origin:
            raise RuntimeError("the simulator has no origin yet; start the server first")
        app_key = (
            b64url_decode(application_server_key)
            if isinstance(application_server_key, str)
            else application_server_key
        )
        shared = generate_subscriber() if shared_keys else None
        out: list[dict[str, Any]] = []
        with self._lock:
            for _ in range(count):
                private, public, auth = shared or generate_subscriber()
                endpoint = self._prefix + self._new_token()
                token = endpoint[len(self._prefix) :]
                self._subscribers[token] = _Subscriber(endpoint, private, public, auth, app_key)
                out.append(
                    {
                        "endpoint": endpoint,
                        "expirationTime": None,
                        "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
                    }
                )
        return out

    def unsubscribe(self, endpoint: str) -> bool:
        """Delete a subscription: its endpoint answers 410 from now on. False if unknown."""
        token = self._token_of(endpoint)
        if token is None:
            return False
        with self._lock:
            sub = self._subscribers.pop(token, None)
            if sub is None:
                return False
            self._gone.add(token)
            if sub.channel is not None:
                self._channels.pop(sub.channel, None)
            self._counts["unsubscribed"] += 1
        return True

    def _token_of(self, endpoint: str) -> str | None:
        if endpoint.startswith(self._prefix):
            return endpoint[len(self._prefix) :]
        return None

    # -- rules -------------------------------------------------------------------------------------

    def add_rule(
        self,
        status: int | Literal["stall", "latency"],
        *,
        endpoint: str | None = None,
        fraction: float | None = None,
        count: int | None = None,
        retry_after: int | str | None = None,
        seconds: float = 0.0,
        jitter: float = 0.0,
        tail_fraction: float = 0.0,
        tail_seconds: float = 0.0,
    ) -> int:
        """Add a :class:`Rule` (checked in the order added, first match wins); return its id."""
        return self.add(
            Rule(status, endpoint, fraction, count, retry_after, seconds, jitter, tail_fraction, tail_seconds)
        )

    def add(self, rule: Rule) -> int:
        """Add a prepared :class:`Rule`; return its id."""
        with self._lock:
            rule.id = next(self._rule_ids)
            self._set_rules([*self._rules, rule])
        return rule.id

    def _set_rules(self, rules: list[Rule]) -> None:
        # Replaced, never mutated: the request path reads these lists without the lock.
        self._rules = rules
        self._answer_rules = [rule for rule in rules if rule.status != "latency"]
        self._latency_rules = [rule for rule in rules if rule.status == "latency"]

    def remove_rule(self, rule_id: int) -> bool:
        """Remove one rule by id; False if there was none."""
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._set_rules(kept)
        return removed

    def clear_rules(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._set_rules([])

    def rules(self) -> list[Rule]:
        """The current rules, in match order."""
        return list(self._rules)

    def has_stall_rule(self) -> bool:
        """Whether any rule may stall a request (the fast path then leaves pushes to aiohttp)."""
        rules = self._answer_rules
        return bool(rules) and any(rule.status == "stall" for rule in rules)

    def match_rule(self, token: str) -> Rule | None:
        """Return the first answer rule that takes this request (counting it), or None for normal handling."""
        rules = self._answer_rules  # replaced, never mutated, so reading it needs no lock
        if not rules:
            return None
        with self._lock:
            return self._first_match(rules, token, self._rule_rng)

    def hold_for(self, token: str) -> float:
        """Seconds to hold the answer to this request (the first matching latency rule's draw; 0: none)."""
        rules = self._latency_rules
        if not rules:
            return 0.0
        with self._lock:
            rule = self._first_match(rules, token, self._latency_rng)
            return rule.hold(self._latency_rng) if rule is not None else 0.0

    def _first_match(self, rules: list[Rule], token: str, rng: random.Random) -> Rule | None:
        endpoint = self._prefix + token
        for rule in rules:
            if rule.endpoint is not None and rule.endpoint != endpoint:
                continue
            if rule.count is not None and rule._seen.get(token, 0) >= rule.count:
                continue
            if rule.fraction is not None and rng.random() >= rule.fraction:
                continue
            if rule.count is not None:
                rule._seen[token] = rule._seen.get(token, 0) + 1
            rule.hits += 1
            rule.last_hit = time.time()
            return rule
        return None

    def rule_outcome(self, rule: Rule) -> Outcome:
        """The answer a (non-stall) rule gives, counted in the stats."""
        assert isinstance(rule.status, int)
        headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
        self.count_status(rule.status)
        return Outcome(rule.status, f"answered by simulator rule {rule.id}", headers)

    # -- push requests -----------------------------------------------------------------------------

    def note_h2(self, *, connection: bool = False) -> None:
        """Count one HTTP/2 push stream (or, with ``connection``, one connection that negotiated h2)."""
        with self._lock:
            self._counts["h2_connections" if connection else "h2_streams"] += 1

    def note_abandoned(self) -> None:
        """Count a stalled request whose sender left before the stall ended (it is not handled)."""
        with self._lock:
            self._counts["abandoned"] += 1

    def count_status(self, status: int) -> None:
        """Count one push request answered with ``status``."""
        with self._lock:
            self._by_status[status] += 1
            self._counts["requests"] += 1

    def refuse(self, status: int, reason: str) -> Outcome:
        """Count and return a refusal with a reason."""
        self.count_status(status)
        return Outcome(status, reason)

    def check_endpoint(self, token: str) -> Outcome | None:
        """404 for an unknown token, 410 for a deleted one, None when it exists."""
        if token in self._subscribers:
            return None
        if token in self._gone:
            return self.refuse(410, "subscription has been deleted")
        return self.refuse(404, "no such subscription")

    def handle_push(
        self,
        token: str,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
    ) -> Outcome:
        """Validate and accept (or refuse) one push message the way a real push service does.

        ``headers`` is looked up by lower-case names: a case-insensitive mapping (aiohttp's)
        or a dict with lower-case keys (the fast path's).
        """
        if now is None:
            now = time.time()
        sub = self._subscribers.get(token)
        if sub is None:
            refused = self.check_endpoint(token)
            assert refused is not None
            return refused
        try:
            jwt, key = parse_authorization_cached(headers.get("authorization"), headers.get("crypto-key"))
            raw_key = self._vapid.verify(jwt, key, self._origin, now)
        except VapidError as exc:
            return self.refuse(exc.status, exc.reason)
        if sub.app_server_key is not None and raw_key != sub.app_server_key:
            return self.refuse(403, "VAPID key does not match the applicationServerKey of this subscription")
        ttl_header = headers.get("ttl")
        if ttl_header is None:
            return self.refuse(400, "missing TTL header")
        try:
            ttl = int(ttl_header)
        except ValueError:
            return self.refuse(400, f"TTL must be a non-negative integer, got {ttl_header!r}")
        if ttl < 0:
            return self.refuse(400, f"TTL must be a non-negative integer, got {ttl_header!r}")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            return self.refuse(400, f"Urgency must be one of {sorted(URGENCIES)}")
        topic = headers.get("topic")
        if topic is not None and (len(topic) > _MAX_TOPIC or not _TOPIC_CHARS.issuperset(topic)):
            return self.refuse(400, "Topic must be at most 32 base64url characters")
        if len(body) > RECORD_SIZE:
            return self.refuse(413, f"body is {len(body)} bytes; the limit is {RECORD_SIZE}")
        if body:
            encoding = headers.get("content-encoding", "")
            if encoding.lower() != "aes128gcm":
                return self.refuse(400, f"Content-Encoding must be aes128gcm, got {encoding!r}")
        message_id = f"{next(self._message_ids):x}"
        payload: bytes | None = None
        decrypted = False
        if sub.channel is None and body:
            assert sub.private_key is not None and sub.auth is not None
            if self.verify_fraction >= 1.0 or self._verify_rng.random() < self.verify_fraction:
                try:
                    payload = decrypt(body, sub.private_key, sub.auth, ua_public=sub.public)
                except ValueError as exc:
                    with self._lock:
                        self._counts["decrypt_failed"] += 1
                    return self.refuse(400, f"cannot decrypt the message: {exc}")
                decrypted = True
        forward_to: str | None = None
        notification: dict[str, Any] | None = None
        record = Received(
            sub.endpoint, message_id, payload, len(body), ttl, urgency, topic, now, decrypted,
            sub.channel is not None, key,
        )  # fmt: skip
        with self._lock:
            self._received.append(record)
            self._by_status[201] += 1
            self._counts["requests"] += 1
            self._counts["received"] += 1
            if decrypted:
                self._counts["decrypted"] += 1
            elif sub.channel is None and body:
                self._counts["not_verified"] += 1
            if sub.channel is not None:
                self._counts["forwarded"] += 1
                forward_to, notification = self._queue_notification(sub.channel, ttl, body, now)
        return Outcome(201, None, {"Location": f"{self._origin}/m/{message_id}"}, forward_to, notification)

    # -- WebSocket (Mozilla push protocol) ---------------------------------------------------------

    def _queue_notification(
        self, channel: tuple[str, str], ttl: int, body: bytes, now: float
    ) -> tuple[str, dict[str, Any]]:
        uaid, channel_id = channel
        version = str(uuid.uuid4())
        message: dict[str, Any] = {
            "messageType": "notification",
            "channelID": channel_id,
            "version": version,
            "ttl": ttl,
        }
        if body:
            message["data"] = b64url_encode(body)
            message["headers"] = {"encoding": "aes128gcm"}
        if ttl > 0:
            self._pending.setdefault(uaid, {})[version] = _Pending(channel_id, message, now + ttl)
        return uaid, message

    def hello(self, uaid: str | None) -> str:
        """Accept a ``hello``: keep a known uaid, otherwise issue a new one."""
        with self._lock:
            if uaid and uaid in self._uaids:
                return uaid
            fresh = uuid.uuid4().hex
            self._uaids.add(fresh)
            return fresh

    def register_channel(self, uaid: str, channel_id: str, app_server_key: bytes | None) -> str:
        """Bind a new endpoint to a WebSocket client's channel; return the endpoint URL."""
        with self._lock:
            token = self._channels.get((uaid, channel_id))
            if token is not None and token in self._subscribers:
                return self._subscribers[token].endpoint
            endpoint = self._prefix + self._new_token()
            token = endpoint[len(self._prefix) :]
            self._subscribers[token] = _Subscriber(
                endpoint, None, None, None, app_server_key, (uaid, channel_id)
            )
            self._channels[(uaid, channel_id)] = token
            self._counts["ws_registered"] += 1
            return endpoint

    def unregister_channel(self, uaid: str, channel_id: str) -> bool:
        """Delete a WebSocket client's channel: its endpoint answers 410 from now on."""
        with self._lock:
            token = self._channels.pop((uaid, channel_id), None)
            if token is None:
                return False
            self._subscribers.pop(token, None)
            self._gone.add(token)
            pending = self._pending.get(uaid, {})
            for version in [v for v, p in pending.items() if p.channel_id == channel_id]:
                del pending[version]
            self._counts["ws_unregistered"] += 1
            return True

    def forget_client(self, uaid: str) -> list[str]:
        """Forget a WebSocket client as autopush forgets a user agent: uaid, channels, pending messages.

        Its endpoints answer 410 from now on. At its next ``hello`` (with the old uaid) it is issued a new
        uaid, and Firefox then drops every subscription it held and fires ``pushsubscriptionchange`` for
        each (``PushServiceWebSocket._handleHelloReply``). Returns the endpoints dropped.
        """
        with self._lock:
            self._uaids.discard(uaid)
            dropped: list[str] = []
            for channel in [key for key in self._channels if key[0] == uaid]:
                token = self._channels.pop(channel)
                sub = self._subscribers.pop(token, None)
                if sub is not None:
                    dropped.append(sub.endpoint)
                self._gone.add(token)
            self._pending.pop(uaid, None)
            self._counts["ws_forgotten"] += 1
            return dropped

    def clients(self) -> list[str]:
        """The uaids issued and not forgotten (WebSocket clients, connected or not)."""
        with self._lock:
            return sorted(self._uaids)

    def pending_for(self, uaid: str, now: float | None = None) -> list[dict[str, Any]]:
        """Unexpired, unacknowledged notifications for a client, oldest first (expired ones are dropped)."""
        if now is None:
            now = time.time()
        with self._lock:
            pending = self._pending.get(uaid)
            if not pending:
                return []
            for version in [v for v, p in pending.items() if p.expires <= now]:
                del pending[version]
            return [p.message for p in pending.values()]

    def acknowledge(self, uaid: str, version: str, *, ok: bool = True) -> bool:
        """Drop a delivered (``ack`` code 100) or refused (``nack``, ``ack`` with an error code) message."""
        with self._lock:
            found = self._pending.get(uaid, {}).pop(version, None) is not None
            self._counts["ws_acked" if ok else "ws_nacked"] += 1
            return found

    # -- inspection --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: requests, by_status, received, decrypted, decrypt_failed, not_verified, forwarded, ..."""
        with self._lock:
            counts = self._counts
            return {
                "requests": counts["requests"],
                "by_status": {str(status): n for status, n in sorted(self._by_status.items())},
                "received": counts["received"],
                "decrypted": counts["decrypted"],
                "decrypt_failed": counts["decrypt_failed"],
                "not_verified": counts["not_verified"],
                "forwarded": counts["forwarded"],
                "abandoned": counts["abandoned"],
                "h2_connections": counts["h2_connections"],
                "h2_streams": counts["h2_streams"],
                "vapid_verified": self._vapid.verified,
                "vapid_cache_hits": self._vapid.cache_hits,
                "subscriptions": len(self._subscribers),
                "gone": len(self._gone),
                "unsubscribed": counts["unsubscribed"],
                "rules": [rule.to_json() for rule in self._rules],
                "ws_registered": counts["ws_registered"],
                "ws_unregistered": counts["ws_unregistered"],
                "ws_pending": sum(len(p) for p in self._pending.values()),
                "ws_acked": counts["ws_acked"],
                "ws_nacked": counts["ws_nacked"],
                "ws_forgotten": counts["ws_forgotten"],
                "verify_fraction": self.verify_fraction,
            }

    def received(self, endpoint: str | None = None) -> list[Received]:
        """Messages accepted so far (the most recent ``keep_received``), optionally for one endpoint."""
        with self._lock:
            items = list(self._received)
        if endpoint is None:
            return items
        return [r for r in items if r.endpoint == endpoint]

    def reset(self) -> None:
        """Forget subscriptions, rules, received messages and counters (the origin stays)."""
        with self._lock:
            self._subscribers.clear()
            self._gone.clear()
            self._channels.clear()
            self._uaids.clear()
            self._pending.clear()
            self._set_rules([])
            self._received.clear()
            self._by_status.clear()
            self._counts.clear()
            self._rule_rng.seed(self._seed)
            self._verify_rng.seed(self._seed + 1)
            self._latency_rng.seed(self._seed + 2)
        self._vapid.clear()
