"""The objects one process needs, built once from settings and passed around explicitly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import redis

from notifier.endpoints import EndpointPolicy
from notifier.keys import Keys
from notifier.redis_conn import connect
from notifier.settings import Settings
from notifier.subscriptions import SubscriptionStore
from notifier.topics import Topic, load_topics
from notifier.vapid import VapidKey, load_vapid_key


@dataclass
class Context:
    """Settings plus the Redis client, key names, VAPID key, endpoint policy and topics."""

    settings: Settings
    redis: redis.Redis
    vapid: VapidKey
    keys: Keys = field(init=False)
    policy: EndpointPolicy = field(init=False)
    topics: tuple[Topic, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.redis_prefix)
        self.policy = EndpointPolicy(self.settings.push_hosts)
        self.topics = load_topics(self.settings.topics_file)

    @classmethod
    def build(
        cls, settings: Settings, *, client: redis.Redis | None = None, generate_key: bool = False
    ) -> Context:
        """Load the VAPID key (failing now if it is unusable) and connect to Redis."""
        vapid = load_vapid_key(settings, generate=generate_key)
        return cls(settings, client if client is not None else connect(settings.effective_redis_url), vapid)

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        """The subscription store."""
        return SubscriptionStore(self.redis, self.keys)

    @cached_property
    def raw_redis(self) -> redis.Redis:
        """A second client returning bytes, for RQ (which stores its job payloads as bytes)."""
        return connect(self.settings.effective_redis_url, decode_responses=False)

    def close(self) -> None:
        """Close the bytes client this context opened (the main client belongs to whoever passed it in)."""
        raw = self.__dict__.pop("raw_redis", None)
        if raw is not None:
            raw.close()

    @cached_property
    def receipt_key(self) -> bytes:
        """HMAC key of receipt tokens (derived from SECRET_KEY, else from the VAPID key)."""
        seed = (
            self.settings.secret_key.encode()
            or self.vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
        )
        return hashlib.sha256(b"notifier receipts\x00" + seed).digest()

    @property
    def topic_slugs(self) -> tuple[str, ...]:
        """Slugs of the configured topics."""
        return tuple(t.slug for t in self.topics)
