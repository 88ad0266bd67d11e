"""The objects one process needs, built once from settings and passed around explicitly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import redis

from notifier.endpoints import EndpointPolicy
from notifier.keyring import KeyRing, ring_secret
from notifier.keys import Keys
from notifier.redis_conn import connect, probe_client
from notifier.settings import Settings
from notifier.sites import Site, Sites, load_sites
from notifier.subscriptions import SubscriptionStore
from notifier.topics import Topic
from notifier.users import UserStore
from notifier.vapid import VapidKey, load_site_keys, load_vapid_key


@dataclass
class Context:
    """Settings plus the Redis client, key names, sites, VAPID keys, endpoint policy and topics.

    ``vapid`` is the deployment's key (the one of every site without its own); ``topics`` are the
    default site's (a single-site deployment's only ones).
    """

    settings: Settings
    redis: redis.Redis
    vapid: VapidKey
    sites: Sites = field(default=None)  # type: ignore[assignment]
    #: A one-try, 1-second client for health checks (``probe_redis``); built with the context's own client.
    probe: redis.Redis | None = field(default=None, repr=False)
    keys: Keys = field(init=False)
    policy: EndpointPolicy = field(init=False)
    site_keys: dict[str, VapidKey] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.redis_prefix)
        self.policy = EndpointPolicy(self.settings.push_hosts)
        if self.sites is None:
            self.sites = load_sites(self.settings)
        self.site_keys = load_site_keys(self.sites, self.vapid)

    @classmethod
    def build(
        cls, settings: Settings, *, client: redis.Redis | None = None, generate_key: bool = False
    ) -> Context:
        """Load the sites and VAPID keys (failing now if they are unusable) and connect to Redis."""
        vapid = load_vapid_key(settings, generate=generate_key)
        sites = load_sites(settings)
        if client is not None:
            return cls(settings, client, vapid, sites)
        url = settings.effective_redis_url
        return cls(settings, connect(url), vapid, sites, probe=probe_client(url))

    @property
    def probe_redis(self) -> redis.Redis:
        """The client health checks use: answers or fails within about a second, never waits out retries."""
        return self.probe if self.probe is not None else self.redis

    @property
    def topics(self) -> tuple[Topic, ...]:
        """The default site's topics."""
        return self.sites.default.topics

    def site(self, site_id: str | None = None) -> Site:
        """A site by id (the default one for None); NotFound for an unknown id."""
        return self.sites.get(site_id)

    def fetch_domains(self, site: Site | str | None = None) -> tuple[str, ...]:
        """What the server may fetch for a site (prefill, its feeds): see :meth:`Sites.fetch_domains`."""
        chosen = site if isinstance(site, Site) else self.sites.get(site)
        return self.sites.fetch_domains(chosen, self.settings)

    def vapid_for(self, site_id: str | None = None) -> VapidKey:
        """The VAPID key a site's new readers subscribe with: its current one (see :mod:`notifier.keyring`).

        A push is signed with its subscription's own key (:meth:`KeyRing.signing_key`).
        """
        return self.keyring.current(site_id or self.sites.default_id)

    @cached_property
    def keyring(self) -> KeyRing:
        """Every site's VAPID keys over time: the configured one and those rotated in (shared via Redis)."""
        return KeyRing(
            self.redis,
            self.keys,
            {site.id: self.site_keys.get(site.id, self.vapid) for site in self.sites},
            secret=ring_secret(self.settings.secret_key, self.vapid),
            subject=self.settings.vapid_subject,
        )

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        """The subscription store (writes naming no site go to the default site)."""
        return SubscriptionStore(self.redis, self.keys, self.sites.default_id)

    @cached_property
    def users(self) -> UserStore:
        """Newsroom accounts (an editor or ops account created without a site works on the default site)."""
        return UserStore(self.redis, self.keys, self.sites.default_id)

    @cached_property
    def raw_redis(self) -> redis.Redis:
        """A second client returning bytes, for RQ (which stores its job payloads as bytes)."""
        return connect(self.settings.effective_redis_url, decode_responses=False)

    def close(self) -> None:
        """Close the bytes client this context opened (the main client belongs to whoever passed it in)."""
        raw = self.__dict__.pop("raw_redis", None)
        if raw is not None:
            raw.close()
        if self.probe is not None:
            self.probe.close()

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
        """Slugs of the default site's topics."""
        return tuple(t.slug for t in self.topics)
