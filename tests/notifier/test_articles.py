"""Article normalisation, topic mapping, campaign building and the at-most-once guards."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from notifier.articles import (
    GUARD_TTL,
    Article,
    ArticleIngest,
    build_campaign,
    map_topics,
    normalize_url,
    parse_article,
    plain_text,
    slugify,
)
from notifier.campaigns import CampaignStore
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import ValidationError

SLUGS = ("breaking", "nasional", "internasional", "ekonomi", "olahraga", "teknologi")


def test_normalize_url() -> None:
    assert normalize_url("HTTPS://KabarKini.Example:443/Nasional/a?utm_source=x&id=3&UTM_Medium=y#c") == (
        "https://kabarkini.example/Nasional/a?id=3"
    )
    assert normalize_url("http://kabarkini.example:8080") == "https://kabarkini.example:8080/"
    # One story over http and https, with or without a trailing slash, is one article.
    one = normalize_url("https://kabarkini.example/nasional/gempa")
    assert normalize_url("http://kabarkini.example/nasional/gempa/") == one
    assert normalize_url("http://kabarkini.example:80/nasional/gempa") == one
    assert normalize_url("https://kabarkini.example:99999/nasional/gempa")  # no crash on a bad port
    assert normalize_url("http://kabarkini.example/a?b=1&a=2") != normalize_url(
        "http://kabarkini.example/a?a=2&b=1"
    )


def test_slugify_and_plain_text() -> None:
    assert slugify("Sepak Bola") == "sepak-bola"
    assert slugify("  Ékonomi & Bisnis ") == "ekonomi-bisnis"
    assert plain_text("<p>Harga &amp; pasokan <b>beras</b>\n naik</p>") == "Harga & pasokan beras naik"


def test_map_topics() -> None:
    assert map_topics(["Olahraga", "Sepak Bola"], SLUGS, category_map={"sepak bola": "olahraga"}) == (
        "olahraga",
    )
    assert map_topics(["Ekonomi", "Teknologi"], SLUGS) == ("ekonomi", "teknologi")
    assert map_topics(["Gaya Hidup"], SLUGS, fallback=("nasional",)) == ("nasional",)
    assert map_topics([], SLUGS) == ()
    # A map pointing at an unknown topic does not invent one.
    assert map_topics(["X"], SLUGS, category_map={"X": "gosip"}, fallback=("nasional",)) == ("nasional",)


def test_parse_article_reasons() -> None:
    good: dict[str, Any] = {"guid": "g", "title": "Judul", "url": "https://kabarkini.example/a"}
    assert parse_article(good).guid == "g"
    assert parse_article({**good, "image": "data:image/png;base64,AAAA"}).image == ""
    for bad, needle in [
        ({**good, "guid": ""}, "guid"),
        ({**good, "guid": "x" * 600}, "guid"),
        ({**good, "summary": 5}, "summary"),
        ({**good, "categories": [1]}, "categories"),
        ({**good, "categories": ["x"] * 51}, "categories"),
        ({**good, "published_at": "2024-11-04T07:00"}, "time zone"),
    ]:
        with pytest.raises(ValidationError, match=needle):
            parse_article(bad)


def test_build_campaign_fits_the_push_record(context) -> None:  # type: ignore[no-untyped-def]
    from notifier.campaigns import payload_size

    url = "https://kabarkini.example/" + "a" * 1500
    article = Article(guid="g", title="J" * 300, url=url, summary="Kata " * 2000, image=url + ".jpg")
    item = build_campaign(article, topics=["nasional"], all_topics=context.topics, source="feed")
    assert len(item.title) == 120 and item.title.endswith("…")
    assert payload_size(item.title, item.body, item.url, item.image) <= MAX_PLAINTEXT
    assert item.body.endswith("…") and item.image and item.article_guid == "g" and item.source == "feed"
    breaking = build_campaign(
        Article(guid="b", title="T", url=url[:40], breaking=True),
        topics=[],
        all_topics=context.topics,
        source="webhook",
    )
    assert breaking.urgency == "high" and breaking.ttl == 6 * 3600 and breaking.body == "T"


def ingest(context, launched: list[str] | None = None) -> ArticleIngest:  # type: ignore[no-untyped-def]
    sink = launched if launched is not None else []
    return ArticleIngest(context.redis, context.keys, context.topics, lambda cid, at: sink.append(cid))


def test_guards_hold_the_campaign_id_and_expire(context) -> None:  # type: ignore[no-untyped-def]
    launched: list[str] = []
    article = Article(guid="g1", title="Judul", url="https://kabarkini.example/a")
    first = ingest(context, launched).ingest(article, topics=[], mode="auto", source="webhook")
    assert first.status == "created" and launched == [first.cid]
    for key in ingest(context).guard_keys(article):
        assert context.redis.get(key) == first.cid
        assert 0 < context.redis.ttl(key) <= GUARD_TTL
    again = ingest(context, launched).ingest(article, topics=[], mode="auto", source="feed")
    assert again.status == "duplicate" and again.cid == first.cid and launched == [first.cid]


def test_a_failed_store_releases_the_claim(context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    article = Article(guid="g2", title="Judul", url="https://kabarkini.example/b")
    engine = ingest(context)

    def broken(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(engine.campaigns, "create", broken)
    with pytest.raises(ConnectionError):
        engine.ingest(article, topics=[], mode="auto", source="webhook")
    assert not any(context.redis.exists(k) for k in engine.guard_keys(article))
    assert ingest(context).ingest(article, topics=[], mode="auto", source="webhook").status == "created"


def test_concurrent_ingest_of_one_article_by_guid_or_url_creates_one_campaign(context) -> None:  # type: ignore[no-untyped-def]
    n = 16
    barrier = threading.Barrier(n)
    outcomes: list[str] = []

    def arrive(i: int) -> None:
        # Half share the guid, the other half only the URL (with tracking parameters).
        article = Article(
            guid="same" if i % 2 else f"other-{i}",
            title="Judul",
            url=f"https://KabarKini.example/c?utm_source=s{i}",
        )
        engine = ingest(context)
        barrier.wait()
        outcomes.append(engine.ingest(article, topics=[], mode="review", source="feed").status)

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["duplicate"] * (n - 1)
    made = CampaignStore(context.redis, context.keys).list()
    assert len(made) == 1 and made[0].state == "draft"


def test_unknown_mode_is_refused(context) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="mode"):
        ingest(context).ingest(
            Article(guid="g", title="t", url="https://kabarkini.example/d"),
            topics=[],
            mode="later",
            source="webhook",
        )
