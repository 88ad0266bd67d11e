"""The objects one process needs, built once from settings and passed around explicitly."""

from __future__ import annotations

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

    @property
    def topic_slugs(self) -> tuple[str, ...]:
        """Slugs of the configured topics."""
        return tuple(t.slug for t in self.topics)
