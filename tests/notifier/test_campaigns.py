"""Campaign validation, the payload budget, receipts and the state machine."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.campaigns import (
    DONE,
    PAUSED,
    PLANNING,
    SENDING,
    TRANSITIONS,
    TTL_BREAKING,
    TTL_DEFAULT,
    CampaignState,
    CampaignStore,
    ReceiptSigner,
    campaign_payload_prefix,
    message_payload,
    payload_size,
    receipt_token,
    record_receipt,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import Conflict, PayloadTooLarge, ValidationError
from notifier.topics import DEFAULT_TOPICS

BASE = {
    "title": "Harga cabai turun",
    "body": "Pasokan dari Jawa Tengah pulih.",
    "url": "https://kabarkini.example/ekonomi/cabai",
}


def test_defaults_breaking_and_ordinary() -> None:
    breaking = validate_campaign({**BASE, "breaking": True}, topics=DEFAULT_TOPICS)
    assert breaking.urgency == "high" and breaking.ttl == TTL_BREAKING
    ordinary = validate_campaign(BASE, topics=DEFAULT_TOPICS)
    assert ordinary.urgency == "normal" and ordinary.ttl == TTL_DEFAULT
    assert ordinary.story and len(ordinary.story) <= 32
    # The Topic header is per story: the same article URL gives the same story, so a correction replaces it.
    assert validate_campaign({**BASE, "title": "Koreksi"}, topics=DEFAULT_TOPICS).story == ordinary.story


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"title": ""}, "title"),
        ({"url": "javascript:alert(1)"}, "http(s)"),
        ({"url": "data:text/html,hi"}, "http(s)"),
        ({"image": "ftp://x/y.png"}, "http(s)"),
        ({"url": "/relative"}, "http(s)"),
        ({"ttl": 0}, "never 0"),
        ({"ttl": "600"}, "ttl"),
        ({"urgency": "asap"}, "urgency"),
        ({"topics": ["gosip"]}, "unknown topic"),
        ({"breaking": "yes"}, "breaking"),
        ({"send_at": "2020-01-01T00:00:00+07:00"}, "past"),
        ({"send_at": "2030-01-01T00:00:00"}, "time zone"),
        ({"title": "x" * 500}, "at most"),
        ({"story": "has space"}, "story"),
    ],
)
def test_invalid_campaigns_say_why(change: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        validate_campaign({**BASE, **change}, topics=DEFAULT_TOPICS)


def test_payload_budget_is_enforced_with_the_size_named() -> None:
    long_url = "https://kabarkini.example/" + "a" * 1900
    with pytest.raises(PayloadTooLarge) as info:
        validate_campaign(
            {**BASE, "body": "b" * 499, "url": long_url, "image": long_url}, topics=DEFAULT_TOPICS
        )
    size = payload_size(BASE["title"], "b" * 499, long_url, long_url)
    assert str(size) in info.value.message and str(MAX_PLAINTEXT) in info.value.message
    # What fits is exactly what a real message produces.
    item = validate_campaign(BASE, topics=DEFAULT_TOPICS)
    prefix = campaign_payload_prefix(item.title, item.body, item.url, "", "", item.story, "c" * 20)
    real = message_payload(prefix, "s" * 16, "r" * 22, 10**13)
    assert len(real) == payload_size(item.title, item.body, item.url, tag=item.story)
    message = json.loads(real)
    assert message["web_push"] == 8030 and message["mutable"] is True
    assert message["notification"]["navigate"] == BASE["url"]
    assert message["notification"]["data"] == {"cid": "c" * 20, "sid": "s" * 16, "rt": "r" * 22}


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=1, max_size=200),
    st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz", min_size=8, max_size=40),
    st.lists(st.text(min_size=0, max_size=24), min_size=1, max_size=5),
)
def test_the_batch_receipt_signer_makes_receipt_tokens(key: bytes, cid: str, sids: list[str]) -> None:
    # Keys shorter than, equal to and longer than SHA-256's 64-byte block; any subscription id.
    sign = ReceiptSigner(key, cid)
    assert [sign(sid) for sid in sids] == [receipt_token(key, cid, sid) for sid in sids]
    assert ReceiptSigner(key, cid + "x")(sids[0]) != receipt_token(key, cid, sids[0])


TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=1900))
def test_the_topic_of_any_article_is_at_most_32_base64url_characters(path: str) -> None:
    # Apple (and RFC 8030) refuse a Topic longer than 32 characters of the base64url alphabet; the
    # default story is "s" + 23 hex digits of the URL's SHA-256.
    url = "https://kabarkini.example/" + "".join(ch for ch in path if ch.isalnum()) + "x"
    story = validate_campaign({**BASE, "url": url}, topics=DEFAULT_TOPICS).story
    assert TOPIC.fullmatch(story) and len(story) == 24


def test_an_editors_story_is_the_topic_only_when_apple_would_take_it() -> None:
    assert validate_campaign({**BASE, "story": "a" * 32}, topics=DEFAULT_TOPICS).story == "a" * 32
    assert validate_campaign({**BASE, "story": "pilkada-2026_Jateng"}, topics=DEFAULT_TOPICS).story
    for bad in ("a" * 33, "pilkada.2026", "pilkada 2026", "berita+", "ü"):
        with pytest.raises(ValidationError, match="Topic header"):
            validate_campaign({**BASE, "story": bad}, topics=DEFAULT_TOPICS)


def test_state_machine_and_cancel(r, context) -> None:  # type: ignore[no-untyped-def]
    store = CampaignStore(r, context.keys)
    cid = store.create(validate_campaign(BASE, topics=DEFAULT_TOPICS))
    assert store.get(cid).state == "scheduled"
    assert not store.transition(cid, "done")  # scheduled → done is not a move
    assert store.transition(cid, "planning")
    assert store.get(cid).started
    assert store.cancel(cid).state == "cancelled"
    with pytest.raises(Conflict):
        store.cancel(cid)
    draft = store.duplicate(cid)
    assert store.get(draft).state == "draft" and store.get(draft).title == BASE["title"]
    assert [c.cid for c in store.list()] == [draft, cid]


def test_every_move_follows_the_one_transition_table_in_python_and_in_lua(r, context) -> None:  # type: ignore[no-untyped-def]
    store = CampaignStore(r, context.keys)
    for state, targets in TRANSITIONS.items():
        for new in CampaignState:
            cid = store.create(validate_campaign(BASE, topics=DEFAULT_TOPICS))
            r.hset(context.keys.campaign(cid), "state", state)  # put it there directly, for the test
            assert store.transition(cid, new) == (new in targets), (state, new)
            assert store.state(cid) == (new if new in targets else state)
    with pytest.raises(ValueError, match="no campaign moves to done from paused"):
        store.transition(cid, DONE, allowed_from=[PAUSED])
    # The batch-finish script finishes through the same table: a paused campaign stays paused.
    paused = store.create(validate_campaign(BASE, topics=DEFAULT_TOPICS))
    for state in (PLANNING, SENDING, PAUSED):
        assert store.transition(paused, state)
    store.reserve(paused, "b0")
    pipe = r.pipeline(transaction=True)
    store.record_batch(
        paused,
        "b0",
        now=time.time(),
        counts={"sent": 1},
        services={},
        first_sent=None,
        last_sent=None,
        held=["7"],
        pipe=pipe,
    )
    pipe.execute()
    assert store.state(paused) == PAUSED and store.pending(paused) == 0
    assert store.take_held(paused, 10) == ["7"]
    assert store.transition(paused, SENDING) and store.transition(paused, DONE)
    assert store.get(paused).finished and store.get(paused).counters["sent"] == 1


def test_receipts_are_bound_to_campaign_and_subscription_and_counted_once(r, context) -> None:  # type: ignore[no-untyped-def]
    store = CampaignStore(r, context.keys)
    cid = store.create(validate_campaign(BASE, topics=DEFAULT_TOPICS))
    key = context.receipt_key
    good = {
        "type": "clicked",
        "cid": cid,
        "sid": "AAAAAAAAAAAAAAAA",
        "rt": receipt_token(key, cid, "AAAAAAAAAAAAAAAA"),
    }
    assert record_receipt(r, context.keys, key, good, now=time.time())
    assert not record_receipt(r, context.keys, key, good)
    with pytest.raises(ValidationError, match="token"):
        record_receipt(r, context.keys, key, {**good, "sid": "BBBBBBBBBBBBBBBB"})
    with pytest.raises(ValidationError, match="type"):
        record_receipt(r, context.keys, key, {**good, "type": "opened"})
    assert store.get(cid).counters["clicked"] == 1
