"""Storing a reader's subscription and the answer to it: one implementation for the Flask view and the
WSGI fast path (:mod:`web.fastpath`), so both answer byte for byte the same."""

from __future__ import annotations

import json
from dataclasses import dataclass

from notifier.browsers import detect_browser
from notifier.context import Context
from notifier.subscriptions import SubscriptionInput
from web.security import SubscribeLimit


@dataclass(frozen=True)
class Stored:
    """A stored subscription and the API's answer to it."""

    sid: str
    created: bool
    body: bytes

    @property
    def status(self) -> int:
        """201 when the endpoint was new, 200 when it was known."""
        return 201 if self.created else 200


def answer_body(sid: str, sub: SubscriptionInput) -> bytes:
    """The answer's JSON, as ``jsonify`` writes it (compact, sorted keys, final newline)."""
    data = {"id": sid, "lang": sub.lang, "topics": list(sub.topics)}
    return (json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n").encode()


def subscribed_key_id(context: Context, site: str, data: object) -> str:
    """The id of the VAPID key the browser subscribed with: the body's ``applicationServerKey`` when it is
    one of the site's keys (a page that subscribed just before a rotation), else the site's current key."""
    public = data.get("applicationServerKey") if isinstance(data, dict) else None
    if isinstance(public, str) and 0 < len(public) <= 200:
        key = context.keyring.find(site, public)
        if key is not None:
            return key.key_id
    return context.vapid_for(site).key_id


def store_subscription(
    context: Context,
    sub: SubscriptionInput,
    site: str,
    user_agent: str,
    limit: SubscribeLimit | None = None,
    network: str = "",
    key_id: str = "",
) -> Stored:
    """Upsert a validated subscription under ``site`` (browser from the User-Agent, bound to VAPID key
    ``key_id``, else the site's current one), count a new one against ``limit`` for the client's
    ``network``, and answer it.

    The caller has asked ``limit.refusal`` already (the view refuses, the fast path hands over to Flask).
    Raises ``redis.RedisError`` when Redis fails (the fast path then hands the request to Flask).
    """
    sid, created = context.subscriptions.upsert(
        sub, site=site, browser=detect_browser(user_agent), key_id=key_id or context.vapid_for(site).key_id
    )
    if created and limit is not None:
        limit.created(network)
    return Stored(sid, created, answer_body(sid, sub))
