"""VAPID key rotation: the key ring every process shares through Redis, its private parts encrypted."""

from __future__ import annotations

import json

import pytest

from notifier.context import Context
from notifier.errors import ConfigError, Conflict, NotFound
from notifier.keyring import KeyRing, ring_secret


def other_process(context: Context, *, secret: bytes | None = None) -> KeyRing:
    """The ring as another process (another host) builds it from the same configuration and Redis."""
    return KeyRing(
        context.redis,
        context.keys,
        {site.id: context.site_keys.get(site.id, context.vapid) for site in context.sites},
        secret=secret or ring_secret(context.settings.secret_key, context.vapid),
        subject=context.settings.vapid_subject,
        refresh=0.0,
    )


def test_a_rotated_key_is_current_everywhere_and_the_old_one_still_signs_for_its_readers(
    context: Context,
) -> None:
    first = context.vapid_for("default")
    assert first is context.vapid  # the configured key until a rotation
    new = context.keyring.rotate("default")
    assert new.key_id != first.key_id
    assert context.vapid_for("default").key_id == new.key_id
    elsewhere = other_process(context)
    assert elsewhere.current("default").public_key_b64 == new.public_key_b64
    # The same private key (it signs the same way): its JWT verifies with the new public key.
    assert elsewhere.current("default").private_key.private_numbers() == new.private_key.private_numbers()
    assert elsewhere.signing_key("default", first.key_id) is context.vapid
    assert elsewhere.signing_key("default", new.key_id).key_id == new.key_id
    assert elsewhere.signing_key("default", "").key_id == new.key_id  # a record without a key id
    assert elsewhere.find("default", new.public_key_b64 + "=") is not None
    infos = elsewhere.keys_of("default")
    assert [(i.key_id, i.current, i.configured) for i in infos] == [
        (first.key_id, False, True),
        (new.key_id, True, False),
    ]


def test_the_private_key_is_not_in_redis_in_the_clear_and_another_secret_cannot_read_it(
    context: Context,
) -> None:
    new = context.keyring.rotate("default")
    stored = json.loads(context.redis.hget(context.keys.vapid_keys("default"), new.key_id))
    scalar = new.private_key.private_numbers().private_value.to_bytes(32, "big")
    dump = json.dumps([stored, *context.redis.hgetall(context.keys.vapid_keys("default")).values()])
    from notifier.crypto import b64url_encode

    assert b64url_encode(scalar) not in dump and "PRIVATE KEY" not in dump
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        other_process(context, secret=b"x" * 32).current("default")


def test_retiring_refuses_the_current_key_and_drops_the_private_part_of_an_old_one(context: Context) -> None:
    ring = context.keyring
    first = ring.rotate("default")
    second = ring.rotate("default")
    with pytest.raises(Conflict, match="current key"):
        ring.retire("default", second.key_id)
    with pytest.raises(NotFound):
        ring.retire("default", "no-such-key")
    ring.retire("default", first.key_id)
    assert "private" not in json.loads(context.redis.hget(context.keys.vapid_keys("default"), first.key_id))
    assert other_process(context).signing_key("default", first.key_id) is None
    # The configured key can be retired too once it holds nobody (it is only marked).
    ring.retire("default", context.vapid.key_id)
    assert other_process(context).signing_key("default", context.vapid.key_id) is None
    assert [i.retired for i in ring.keys_of("default")] == [True, True, False]


def test_readers_stored_without_a_key_id_count_for_the_key_that_signs_them(context: Context) -> None:
    from notifier.subscriptions import SubscriptionInput
    from tests.factories import make_sub

    def store(n: int, key_id: str) -> None:
        for _ in range(n):
            sub = make_sub()
            item = SubscriptionInput(sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], (), "id")
            context.subscriptions.upsert(item, browser="firefox", key_id=key_id)

    first = context.vapid_for("default")
    store(3, "")  # stored by a tool that names no key (or before key ids were kept)
    store(2, first.key_id)
    new = context.keyring.rotate("default")
    store(1, new.key_id)
    ids = [first.key_id, new.key_id]
    assert context.subscriptions.count_by_key(ids, site="default") == {first.key_id: 2, new.key_id: 1}
    # Signed with the current key (signing_key("default", "")), so they are its readers: the ops panel,
    # /metrics and `notifier vapid list` add up to the site's subscriptions.
    counted = context.subscriptions.count_by_key(ids, site="default", unbound_to=new.key_id)
    assert counted == {first.key_id: 2, new.key_id: 4}
    assert sum(counted.values()) == context.subscriptions.count(site="default") == 6
