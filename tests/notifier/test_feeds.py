"""RSS and Atom polling against feeds served by a local HTTP server: new items, burst cap, topics, 304s."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from rq.registry import ScheduledJobRegistry

from notifier.articles import ArticleIngest
from notifier.campaigns import CampaignStore
from notifier.feeds import FeedPoller, FeedStore, feed_fetcher
from tests.factories import wait_for
from web.cms import sign
from workers.jobs import launch
from workers.periodic import schedule_next, start_feed_polling
from workers.queues import DEFAULT_QUEUE, queue

SITE = "https://kabarkini.example"


class FeedServer:
    """A local HTTP server handing out feed documents with ETags, recording each request's headers."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, bytes]] = {}
        self.requests: list[tuple[str, dict[str, str], int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = server.docs.get(self.path, ("text/plain", b""))
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if self.path not in server.docs:
                    status = 404
                elif self.headers.get("If-None-Match") == etag:
                    status = 304
                else:
                    status = 200
                server.requests.append((self.path, dict(self.headers), status))
                self.send_response(status)
                if status == 200:
                    self.send_header("Content-Type", content_type)
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", "Mon, 04 Nov 2024 00:00:00 GMT")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def settings_env(settings_env: dict[str, str], feed_server: FeedServer) -> dict[str, str]:
    """The publisher's domain and the local feed server are the site's declared domains."""
    host = f"127.0.0.1:{feed_server.httpd.server_address[1]}"
    return {**settings_env, "NOTIFIER_SITE_DOMAINS": f"kabarkini.example,{host}"}


def rss(items: list[dict[str, Any]]) -> bytes:
    """An RSS 2.0 document."""
    parts = []
    for item in items:
        cats = "".join(f"<category>{c}</category>" for c in item.get("categories", []))
        image = (
            f'<enclosure url="{item["image"]}" type="image/jpeg" length="1"/>' if item.get("image") else ""
        )
        parts.append(
            f"<item><title>{item['title']}</title><link>{item['link']}</link><guid>{item['guid']}</guid>"
            f"<description>{item.get('summary', 'Ringkasan berita.')}</description>"
            f"<pubDate>{format_datetime(datetime.fromtimestamp(item['at'], UTC))}</pubDate>"
            f"{cats}{image}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Kabar Kini</title>'
        f"<link>{SITE}</link><description>Berita</description>{''.join(parts)}</channel></rss>"
    ).encode()


def atom(entries: list[dict[str, Any]]) -> bytes:
    """An Atom 1.0 document."""
    parts = []
    for e in entries:
        cats = "".join(f'<category term="{c}"/>' for c in e.get("categories", []))
        stamp = datetime.fromtimestamp(e["at"], UTC).isoformat()
        parts.append(
            f'<entry><id>{e["guid"]}</id><title>{e["title"]}</title><link href="{e["link"]}"/>'
            f"<updated>{stamp}</updated><published>{stamp}</published>"
            f"<summary>{e.get('summary', 'Ringkasan.')}</summary>{cats}</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Kabar Kini</title><id>{SITE}/atom</id><updated>2024-11-04T00:00:00Z</updated>"
        f"{''.join(parts)}</feed>"
    ).encode()


def item(n: int, at: float, **extra: Any) -> dict[str, Any]:
    return {
        "guid": f"{SITE}/?p={n}",
        "title": f"Berita nomor {n}",
        "link": f"{SITE}/nasional/berita-{n}",
        "at": at,
        **extra,
    }


def poller(context) -> FeedPoller:  # type: ignore[no-untyped-def]
    ingest = ArticleIngest(
        context.redis, context.keys, context.topics, lambda cid, at: launch(context.raw_redis, cid, at)
    )
    return FeedPoller(context, ingest)


def campaigns(context) -> list:  # type: ignore[no-untyped-def]
    return CampaignStore(context.redis, context.keys).list(0, 100)


def test_rss_pushes_only_items_newer_than_the_feed_at_most_burst_newest_first(context, feed_server) -> None:  # type: ignore[no-untyped-def]
    added = time.time() - 3600
    store = FeedStore(context.redis, context.keys)
    feed = store.add(
        feed_server.url("/rss"),
        topics=["nasional"],
        mode="auto",
        category_map={},
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        now=added,
    )
    old = [item(i, added - 600 * i) for i in (1, 2)]
    new = [item(10 + i, added + 60 * i, image=f"{SITE}/img/{i}.jpg") for i in range(1, 6)]
    feed_server.docs["/rss"] = ("application/rss+xml", rss(old + new))

    result = poller(context).poll(store.get(feed.fid))
    assert (result.status, result.new, result.pushed, result.skipped) == ("ok", 5, 3, 2)
    made = campaigns(context)
    assert sorted(c.title for c in made) == ["Berita nomor 13", "Berita nomor 14", "Berita nomor 15"]
    c = next(c for c in made if c.title == "Berita nomor 15")
    assert c.source == "feed" and c.topics == ("nasional",) and c.state == "scheduled"
    assert (
        c.url == f"{SITE}/nasional/berita-15"
        and c.image == f"{SITE}/img/5.jpg"
        and c.article_guid == f"{SITE}/?p=15"
    )
    assert context.raw_redis.exists(f"rq:job:plan-{c.cid}")

    # Next poll: one more item; the two skipped are not pushed later as stale news.
    feed_server.docs["/rss"] = ("application/rss+xml", rss([*old, *new, item(16, added + 600)]))
    result = poller(context).poll(store.get(feed.fid))
    assert (result.new, result.pushed, result.skipped) == (1, 1, 0)
    assert len(campaigns(context)) == 4
    assert store.get(feed.fid).pushed == 4 and store.get(feed.fid).skipped == 2


def test_conditional_get_second_poll_is_304(context, feed_server) -> None:  # type: ignore[no-untyped-def]
    added = time.time() - 60
    store = FeedStore(context.redis, context.keys)
    feed = store.add(
        feed_server.url("/rss"),
        topics=[],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        now=added,
    )
    feed_server.docs["/rss"] = ("application/rss+xml", rss([item(1, added + 1)]))
    first = poller(context).poll(store.get(feed.fid))
    second = poller(context).poll(store.get(feed.fid))
    assert first.status == "ok" and first.pushed == 1
    assert second.status == "not_modified" and second.pushed == 0
    (_, h1, s1), (_, h2, s2) = feed_server.requests
    etag = store.get(feed.fid).etag
    assert s1 == 200 and "If-None-Match" not in h1
    assert (
        s2 == 304
        and h2["If-None-Match"] == etag
        and h2["If-Modified-Since"] == "Mon, 04 Nov 2024 00:00:00 GMT"
    )
    assert len(campaigns(context)) == 1


def test_atom_categories_map_to_topics_and_review_mode_drafts(context, feed_server) -> None:  # type: ignore[no-untyped-def]
    added = time.time() - 600
    store = FeedStore(context.redis, context.keys)
    feed = store.add(
        feed_server.url("/atom"),
        topics=["nasional"],
        mode="review",
        category_map={"Sepak Bola": "olahraga"},
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        now=added,
    )
    feed_server.docs["/atom"] = (
        "application/atom+xml",
        atom(
            [
                item(1, added + 10, categories=["Sepak Bola", "Liga 1"]),
                item(2, added + 20, categories=["Ekonomi", "Teknologi"]),
                item(3, added + 30, categories=["Gaya Hidup"]),
            ]
        ),
    )
    result = poller(context).poll(store.get(feed.fid))
    assert (result.status, result.pushed) == ("ok", 3)
    by_title = {c.title: c for c in campaigns(context)}
    assert by_title["Berita nomor 1"].topics == ("olahraga",)  # explicit map
    assert by_title["Berita nomor 2"].topics == ("ekonomi", "teknologi")  # slug equals a topic
    assert by_title["Berita nomor 3"].topics == ("nasional",)  # the feed's own topics
    assert {c.state for c in by_title.values()} == {"draft"}
    assert not any(context.raw_redis.exists(f"rq:job:plan-{c.cid}") for c in by_title.values())


def test_same_article_via_webhook_then_feed_is_one_campaign(client, context, feed_server) -> None:  # type: ignore[no-untyped-def]
    added = time.time() - 600
    store = FeedStore(context.redis, context.keys)
    feed = store.add(
        feed_server.url("/rss"),
        topics=["nasional"],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        now=added,
    )
    same_guid = item(1, added + 10)
    same_url = item(2, added + 20, guid="feed-only-guid")
    body = json.dumps(
        {"guid": same_guid["guid"], "title": "Dari CMS", "summary": "x", "url": same_guid["link"]}
    )
    body2 = json.dumps(
        {
            "guid": "cms-guid-2",
            "title": "Dari CMS 2",
            "summary": "x",
            "url": same_url["link"] + "?utm_campaign=push",
        }
    )
    for raw in (body, body2):
        stamp = str(int(time.time()))
        response = client.post(
            "/api/v1/articles",
            data=raw,
            content_type="application/json",
            headers={
                "X-Notifier-Timestamp": stamp,
                "X-Notifier-Signature": sign("webhook-test-secret", stamp, raw.encode()),
            },
        )
        assert response.status_code == 201
    feed_server.docs["/rss"] = ("application/rss+xml", rss([same_guid, same_url, item(3, added + 30)]))
    result = poller(context).poll(store.get(feed.fid))
    assert (result.new, result.pushed, result.duplicates) == (3, 1, 2)
    assert sorted(c.title for c in campaigns(context)) == ["Berita nomor 3", "Dari CMS", "Dari CMS 2"]


def test_unreachable_or_oversized_feed_is_recorded_not_raised(context, feed_server, settings_env, r) -> None:  # type: ignore[no-untyped-def]
    store = FeedStore(context.redis, context.keys)
    missing = store.add(
        feed_server.url("/gone"),
        topics=[],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
    )
    big = store.add(
        feed_server.url("/big"),
        topics=[],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
    )
    feed_server.docs["/big"] = ("application/rss+xml", b"<rss>" + b" " * 2_100_000 + b"</rss>")
    results = poller(context).poll_all()
    assert {x.fid: x.status for x in results} == {missing.fid: "error", big.fid: "error"}
    assert "404" in store.get(missing.fid).last_error
    assert "at most 2000000" in store.get(big.fid).last_error


def test_feed_validation(context) -> None:  # type: ignore[no-untyped-def]
    from notifier.errors import Conflict, ValidationError

    store = FeedStore(context.redis, context.keys)
    with pytest.raises(ValidationError, match="unknown topic"):
        store.add(
            f"{SITE}/rss",
            topics=["gosip"],
            mode="auto",
            category_map=None,
            known_topics=context.topic_slugs,
            fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        )
    with pytest.raises(ValidationError, match="http"):
        store.add(
            "file:///etc/passwd",
            topics=[],
            mode="auto",
            category_map=None,
            known_topics=context.topic_slugs,
            fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        )
    store.add(
        f"{SITE}/rss",
        topics=[],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
    )
    with pytest.raises(Conflict):
        store.add(
            f"{SITE}/rss",
            topics=[],
            mode="auto",
            category_map=None,
            known_topics=context.topic_slugs,
            fetcher=feed_fetcher(context.settings, context.fetch_domains()),
        )


def test_cli_add_list_poll_remove(context, feed_server, settings_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from notifier_cli import main

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    url = feed_server.url("/rss")
    out = runner.invoke(
        main,
        [
            "feeds",
            "add",
            url,
            "--topics",
            "nasional",
            "--mode",
            "review",
            "--category-map",
            "Sepak Bola=olahraga",
        ],
    )
    assert out.exit_code == 0, out.output
    fid = out.output.split()[1]
    bad = runner.invoke(main, ["feeds", "add", url + "2", "--category-map", "nope"])
    assert bad.exit_code != 0 and "category=topic" in bad.output
    feed_server.docs["/rss"] = ("application/rss+xml", rss([item(1, time.time() + 5)]))
    out = runner.invoke(main, ["feeds", "poll"])
    assert out.exit_code == 0 and f"{fid} ok: 1 new, 1 pushed" in out.output, out.output
    out = runner.invoke(main, ["feeds", "list"])
    assert fid in out.output and "review" in out.output and "sepak-bola=olahraga" in out.output
    assert runner.invoke(main, ["feeds", "remove", fid]).exit_code == 0
    assert runner.invoke(main, ["feeds", "remove", fid]).exit_code != 0
    assert FeedStore(context.redis, context.keys).list() == []


def test_one_polling_chain_however_many_starts(context) -> None:  # type: ignore[no-untyped-def]
    raw, settings = context.raw_redis, context.settings
    first = start_feed_polling(raw, settings)
    assert first is not None and start_feed_polling(raw, settings) is None
    tick = first.removeprefix("feeds-poll-")
    nxt = schedule_next(raw, settings, tick)
    assert nxt is not None
    # The same tick run again (RQ re-running an abandoned job) does not fork a second chain.
    assert schedule_next(raw, settings, tick) is None
    scheduled = ScheduledJobRegistry(queue=queue(DEFAULT_QUEUE, raw))
    assert scheduled.get_job_ids() == [nxt]


def test_workers_poll_feeds_by_themselves(context, feed_server, workers) -> None:  # type: ignore[no-untyped-def]
    store = FeedStore(context.redis, context.keys)
    feed = store.add(
        feed_server.url("/rss"),
        topics=["nasional"],
        mode="auto",
        category_map=None,
        known_topics=context.topic_slugs,
        fetcher=feed_fetcher(context.settings, context.fetch_domains()),
    )
    feed_server.docs["/rss"] = ("application/rss+xml", rss([]))
    workers.start(2, NOTIFIER_FEED_POLL_SECONDS="1")
    wait_for(lambda: store.get(feed.fid).polls >= 1, timeout=30, message="first poll")
    feed_server.docs["/rss"] = ("application/rss+xml", rss([item(1, time.time())]))
    made = wait_for(lambda: campaigns(context), timeout=30, message="a campaign from the feed")
    assert made[0].title == "Berita nomor 1" and made[0].source == "feed"
    # One chain: never more than one tick waiting, although two workers started.
    scheduled = ScheduledJobRegistry(queue=queue(DEFAULT_QUEUE, context.raw_redis))
    for _ in range(5):
        assert len([j for j in scheduled.get_job_ids() if j.startswith("feeds-poll-")]) <= 1
        time.sleep(0.2)
