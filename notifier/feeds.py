"""RSS and Atom feeds polled for new articles, each new item pushed at most once.

A feed is polled with a conditional GET (``If-None-Match`` / ``If-Modified-Since``),
a timeout and a size cap. Only items published after the feed was added count as
new (an undated item counts when it appears after the first poll). At most
``feed_burst`` new items are pushed per poll, newest first; the others are
recorded as skipped and never pushed later as stale news. Each item's categories
map to topics: the feed's explicit map first, else a category whose slug is a
topic's slug, else the feed's own topics. The push itself goes through
:class:`notifier.articles.ArticleIngest`, which deduplicates across feed and webhook.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import feedparser
import redis

from notifier.articles import MODES, Article, ArticleIngest, digest, map_topics, safe_image, slugify
from notifier.campaigns import check_url
from notifier.context import Context
from notifier.errors import Conflict, NotFound, ValidationError
from notifier.fetcher import FetchRefused, GuardedFetcher
from notifier.keys import Keys
from notifier.settings import Settings

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"

log = logging.getLogger(__name__)

#: Item digests remembered per feed (a feed lists tens of items; this is many polls' worth).
SEEN_MAX = 2000
USER_AGENT = "notifier-feed-poller/0.1 (+web push for news publishers)"


@dataclass
class Feed:
    """One polled feed and its bookkeeping."""

    fid: str
    url: str
    topics: tuple[str, ...]
    mode: str
    category_map: dict[str, str]
    added: float
    etag: str = ""
    last_modified: str = ""
    polls: int = 0
    last_polled: float | None = None
    last_status: str = ""
    last_error: str = ""
    pushed: int = 0
    skipped: int = 0
    duplicates: int = 0
    invalid: int = 0
    #: The site whose readers its items go to ("": a feed of before sites, the default site's).
    site: str = ""

    @classmethod
    def from_hash(cls, fid: str, h: Mapping[str, str]) -> Feed:
        """Build from the stored hash."""
        return cls(
            fid=fid,
            url=h.get("url", ""),
            topics=tuple(t for t in h.get("topics", "").split(",") if t),
            mode=h.get("mode", "auto"),
            category_map=json.loads(h.get("category_map") or "{}"),
            added=float(h.get("added", 0)),
            etag=h.get("etag", ""),
            last_modified=h.get("last_modified", ""),
            polls=int(h.get("polls", 0)),
            last_polled=float(h["last_polled"]) if h.get("last_polled") else None,
            last_status=h.get("last_status", ""),
            last_error=h.get("last_error", ""),
            pushed=int(h.get("pushed", 0)),
            skipped=int(h.get("skipped", 0)),
            duplicates=int(h.get("duplicates", 0)),
            invalid=int(h.get("invalid", 0)),
            site=h.get("site", ""),
        )


@dataclass
class PollResult:
    """What one poll of one feed did."""

    fid: str
    url: str
    status: str = "ok"
    new: int = 0
    pushed: int = 0
    skipped: int = 0
    duplicates: int = 0
    invalid: int = 0
    error: str = ""
    cids: list[str] = field(default_factory=list)


def feed_id(url: str) -> str:
    """A feed's id: derived from its URL, so the same feed cannot be added twice."""
    return digest(url)[:12]


def feed_fetcher(settings: Settings, domains: Sequence[str]) -> GuardedFetcher:
    """The guarded fetcher a site's feeds are read with: that site's ``domains``, the feed timeout and cap."""
    return GuardedFetcher(
        tuple(domains),
        timeout=settings.feed_timeout,
        max_bytes=settings.feed_max_bytes,
        user_agent=USER_AGENT,
    )


def entry_time(entry: Any) -> float | None:
    """An entry's publication (else update) time as unix seconds, or None when undated."""
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(name)
        if value:
            return float(calendar.timegm(value))
    return None


def entry_image(entry: Any) -> str:
    """The first http(s) image of an entry (media:content, media:thumbnail, or an image enclosure)."""
    candidates: list[str] = []
    for name in ("media_content", "media_thumbnail"):
        for media in entry.get(name) or []:
            if media.get("url") and (
                media.get("medium") in (None, "image") or "image" in media.get("type", "image")
            ):
                candidates.append(media["url"])
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            candidates.append(link.get("href", ""))
    for url in candidates:
        image = safe_image(url)
        if image:
            return image
    return ""


def entry_article(entry: Any) -> Article:
    """An :class:`Article` from a feedparser entry; ValidationError without a title or an http(s) link."""
    url = check_url(entry.get("link"), "link", required=True)
    title = entry.get("title") or ""
    if not title.strip():
        raise ValidationError("the item has no title", code="missing_field")
    categories = tuple(t.get("term", "") for t in entry.get("tags") or [] if t.get("term"))
    return Article(
        guid=str(entry.get("id") or url)[:512],
        title=title,
        url=url,
        summary=entry.get("summary") or "",
        image=entry_image(entry),
        categories=categories[:50],
        published_at=entry_time(entry),
    )


class FeedStore:
    """Feeds in Redis."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    def add(
        self,
        url: str,
        *,
        topics: Sequence[str],
        mode: str,
        category_map: Mapping[str, str] | None,
        known_topics: Sequence[str],
        fetcher: GuardedFetcher,
        now: float | None = None,
        site: str = "",
    ) -> Feed:
        """Add a feed on one of the site's domains (``fetcher`` decides); only newer items will be pushed."""
        url = check_url(url, "url", required=True)
        fetcher.check(url)
        if mode not in MODES:
            raise ValidationError(f"mode must be auto or review, not {mode!r}")
        for topic in [*topics, *(category_map or {}).values()]:
            if topic not in known_topics:
                raise ValidationError(f"unknown topic {topic!r}; known: {', '.join(known_topics)}")
        mapping = {slugify(k): v for k, v in (category_map or {}).items()}
        fid = feed_id(url)
        key = self.keys.feed(fid)
        now = time.time() if now is None else now
        fields = {
            "url": url,
            "topics": ",".join(topics),
            "mode": mode,
            "category_map": json.dumps(mapping),
            "added": repr(now),
            "polls": 0,
            "site": site,
        }
        if not self.r.hsetnx(key, "url", url):
            raise Conflict(f"feed {url} is already added as {fid}")
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.sadd(self.keys.feeds, fid)
        pipe.execute()
        return self.get(fid)

    def get(self, fid: str) -> Feed:
        """A feed by id; NotFound when absent."""
        data = self.r.hgetall(self.keys.feed(fid))
        if not data:
            raise NotFound(f"no feed {fid}")
        return Feed.from_hash(fid, data)

    def list(self) -> list[Feed]:
        """Every feed, oldest first."""
        feeds = []
        for fid in self.r.smembers(self.keys.feeds):
            data = self.r.hgetall(self.keys.feed(fid))
            if data:
                feeds.append(Feed.from_hash(fid, data))
        return sorted(feeds, key=lambda f: f.added)

    def remove(self, fid: str) -> bool:
        """Forget a feed and what it has seen; False when there was none."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.feed(fid), self.keys.feed_seen(fid))
        pipe.srem(self.keys.feeds, fid)
        deleted, _ = pipe.execute()
        return bool(deleted)


class FeedPoller:
    """Polls feeds and hands their new items to :class:`ArticleIngest`."""

    def __init__(self, context: Context, ingest: ArticleIngest) -> None:
        self.c = context
        self.r = context.redis
        self.keys = context.keys
        self.settings = context.settings
        self.store = FeedStore(self.r, self.keys)
        self.ingest = ingest

    def fetcher(self, feed: Feed) -> GuardedFetcher | None:
        """The fetcher of the feed's site (its domains only), or None when that site is gone."""
        site = self.c.sites.find(feed.site) if feed.site else self.c.sites.default
        return None if site is None else feed_fetcher(self.settings, self.c.fetch_domains(site))

    def poll_all(self, on_progress: Callable[[PollResult], None] | None = None) -> list[PollResult]:
        """Poll every feed in turn; one feed failing, however it fails, does not stop the others.

        A feed whose poll raised something unforeseen has it recorded on the feed (``feeds list``
        shows it) and logged with its traceback; the next feed is polled all the same.
        """
        results = []
        for feed in self.store.list():
            try:
                result = self.poll(feed)
            except redis.RedisError:
                raise  # not this feed's fault: every other feed would fail the same way
            except Exception as exc:
                log.exception("feed %s (%s) failed to poll", feed.fid, feed.url)
                error = f"{type(exc).__name__}: {exc}"[:300]
                result = PollResult(feed.fid, feed.url, status="error", error=error)
                fields = {"last_polled": repr(time.time()), "last_status": "error", "last_error": error}
                self.r.hset(self.keys.feed(feed.fid), mapping=fields)
            results.append(result)
            if on_progress is not None:
                on_progress(result)
        return results

    def poll(self, feed: Feed, now: float | None = None) -> PollResult:
        """Fetch one feed and push its new items (at most ``feed_burst``, newest first)."""
        result = PollResult(feed.fid, feed.url)
        lock = self.keys.feed_lock(feed.fid)
        if not self.r.set(lock, "1", nx=True, ex=int(self.settings.feed_timeout * 3) + 60):
            result.status = "busy"
            return result
        try:
            self._poll(feed, result, time.time() if now is None else now)
        finally:
            self.r.delete(lock)
        return result

    def _poll(self, feed: Feed, result: PollResult, now: float) -> None:
        key = self.keys.feed(feed.fid)
        conditional = {}
        if feed.etag:
            conditional["If-None-Match"] = feed.etag
        if feed.last_modified:
            conditional["If-Modified-Since"] = feed.last_modified
        fetcher = self.fetcher(feed)
        try:
            if fetcher is None:
                raise FetchRefused("off", f"site {feed.site!r} is not configured any more")
            fetched = fetcher.fetch(feed.url, accept=FEED_ACCEPT, headers=conditional)
        except FetchRefused as exc:
            # Off the feed's site's domains (also by a redirect), unreachable, timing out, HTTP 4xx/5xx,
            # too large or a garbage answer: recorded on the feed for `feeds list`.
            result.status, result.error = "error", str(exc)[:300]
            self.r.hset(
                key, mapping={"last_polled": repr(now), "last_status": "error", "last_error": result.error}
            )
            return
        if fetched.status == 304:
            result.status = "not_modified"
            self.r.hset(
                key, mapping={"last_polled": repr(now), "last_status": "not_modified", "last_error": ""}
            )
            return
        parsed = feedparser.parse(
            fetched.body,
            response_headers={"content-type": fetched.content_type, "content-location": feed.url},
        )
        if parsed.bozo and not parsed.entries:
            result.status, result.error = (
                "error",
                f"not an RSS or Atom feed: {parsed.get('bozo_exception')}"[:300],
            )
            self.r.hset(
                key, mapping={"last_polled": repr(now), "last_status": "error", "last_error": result.error}
            )
            return
        self._take_new(feed, parsed.entries, result, now)
        mapping: dict[str, Any] = {
            "last_polled": repr(now),
            "last_status": "ok",
            "last_error": "",
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
        }
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)
        pipe.hincrby(key, "polls", 1)
        for name in ("pushed", "skipped", "duplicates", "invalid"):
            if getattr(result, name):
                pipe.hincrby(key, name, getattr(result, name))
        pipe.execute()

    def _take_new(self, feed: Feed, entries: Sequence[Any], result: PollResult, now: float) -> None:
        seen_key = self.keys.feed_seen(feed.fid)
        ids = [digest(str(e.get("id") or e.get("link") or e.get("title") or "")) for e in entries]
        pipe = self.r.pipeline(transaction=False)
        for item_id in ids:
            pipe.zscore(seen_key, item_id)
        already = pipe.execute()
        fresh: list[tuple[float, Any]] = []
        for entry, seen in zip(entries, already, strict=True):
            if seen is not None:
                continue
            published = entry_time(entry)
            if published is None:
                # Undated: new only when it appears after the first poll recorded what was there.
                if feed.polls > 0:
                    fresh.append((now, entry))
            elif published >= math.floor(feed.added):
                # Feed dates have whole seconds: an item from the second the feed was added counts as new.
                fresh.append((published, entry))
        fresh.sort(key=lambda pair: pair[0], reverse=True)
        result.new = len(fresh)
        # A feed of before sites is the default site's; one whose site was removed pushes nothing.
        site = self.c.sites.find(feed.site) if feed.site else self.c.sites.default
        if site is None:
            result.status, result.error = "error", f"site {feed.site!r} is not configured any more"
            result.skipped += len(fresh)
            fresh = []
        slugs = site.topic_slugs if site is not None else ()
        for _, entry in fresh:
            if result.pushed >= self.settings.feed_burst:
                result.skipped += 1
                continue
            try:
                article = entry_article(entry)
                topics = map_topics(
                    article.categories, slugs, category_map=feed.category_map, fallback=feed.topics
                )
                outcome = self.ingest.ingest(
                    article,
                    topics=topics,
                    mode=feed.mode,
                    source="feed",
                    created_by=f"feed:{feed.fid}",
                    site=site,
                )
            except (ValidationError, ValueError):
                # One bad item (no title, a link with port 99999, ...) is counted, never the poll's end.
                result.invalid += 1
                continue
            if outcome.status == "created":
                result.pushed += 1
                result.cids.append(outcome.cid)
            else:
                result.duplicates += 1
        if ids:
            pipe = self.r.pipeline(transaction=True)
            pipe.zadd(seen_key, {item_id: now for item_id in ids}, nx=True)
            pipe.zremrangebyrank(seen_key, 0, -SEEN_MAX - 1)
            pipe.execute()
