"""Articles: news items from the CMS webhook or an RSS/Atom feed, turned into campaigns at most once.

Whichever path an article arrives by (webhook, feed, a retried request), it is
pushed at most once: two ``SET NX`` guards, one on the article's guid and one on
its normalised URL (http and https alike, host lowercase, no trailing slash, no
fragment, no ``utm_*`` parameters), are claimed together by one Lua script, so two concurrent arrivals
cannot both pass. A guard holds the id of the campaign it produced and expires
after :data:`GUARD_TTL` (a feed keeps an item far shorter than that).

Modes: ``auto`` stores a ``scheduled`` campaign and launches it at once;
``review`` stores a ``draft`` that an editor approves on the dashboard.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from notifier.campaigns import (
    BODY_MAX,
    DRAFT,
    SCHEDULED,
    TITLE_MAX,
    CampaignInput,
    CampaignStore,
    check_url,
    parse_time,
    payload_size,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import PayloadTooLarge, ValidationError
from notifier.keys import Keys
from notifier.sites import DEFAULT_SITE_ID, Site
from notifier.topics import Topic

#: Seconds an article guard lives: long past any feed's memory of an item, short enough not to pile up.
GUARD_TTL = 30 * 86400
MODES = ("auto", "review")
GUID_MAX = 512
CATEGORY_MAX = 100
CATEGORIES_MAX = 50
#: A summary longer than this is cut before it is even considered for the body.
SUMMARY_MAX = 20_000

#: (campaign id, send_at) → start delivery; the caller binds RQ (``workers.queues.launch``).
Launch = Callable[[str, "float | None"], object]

# Claim both guards or neither. Returns {1, ''} when claimed, else {0, value of the guard that exists}.
_CLAIM = """
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then return {0, v} end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
end
return {1, ''}
"""

# Replace our claim token with a final value (the campaign id), or drop the guards (value '').
_SETTLE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    if ARGV[2] == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], ARGV[2], 'KEEPTTL') end
  end
end
return 1
"""

_TAG = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Article:
    """A validated news item."""

    guid: str
    title: str
    url: str
    summary: str = ""
    image: str = ""
    categories: tuple[str, ...] = ()
    breaking: bool = False
    published_at: float | None = None


@dataclass(frozen=True)
class IngestResult:
    """What happened to one article: ``created`` (with its new campaign) or ``duplicate``."""

    status: str
    cid: str
    state: str = ""


def slugify(value: str) -> str:
    """``Sepak Bola`` → ``sepak-bola``: ASCII-folded, lowercase, dashes between words."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def normalize_url(url: str) -> str:
    """The URL an article is known by, so one story over two spellings makes one campaign.

    http and https are one page (stored as https); host lower-cased, default port, fragment and
    ``utm_*`` parameters dropped; a trailing slash does not make another article (``/a/`` is ``/a``).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if scheme == "http":
        scheme = "https"
        if port == 80:
            port = None
    netloc = host if port is None or port == 443 else f"{host}:{port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_")
        ]
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def digest(value: str) -> str:
    """Short SHA-256 hex of a guid or URL, for key names."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def plain_text(value: str) -> str:
    """Feed and CMS summaries are HTML: drop tags, unescape entities, collapse whitespace."""
    text = html.unescape(_TAG.sub(" ", value[:SUMMARY_MAX]))
    return " ".join(_CONTROL.sub(" ", text).split())


def trim(value: str, limit: int) -> str:
    """Cut to ``limit`` characters at a word boundary when one is near, ending with an ellipsis."""
    if len(value) <= limit:
        return value
    cut = value[: max(1, limit - 1)]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def parse_article(data: Any) -> Article:
    """Validate a webhook body (``guid, title, summary, url, image, categories, breaking, published_at``)."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    guid = data.get("guid")
    if not isinstance(guid, str) or not guid.strip():
        raise ValidationError("missing field 'guid' (a non-empty string)", code="missing_field")
    if len(guid) > GUID_MAX:
        raise ValidationError(f"'guid' is {len(guid)} characters; at most {GUID_MAX}")
    title = data.get("title")
    if not isinstance(title, str) or not plain_text(title):
        raise ValidationError("missing field 'title' (a non-empty string)", code="missing_field")
    summary = data.get("summary") or ""
    if not isinstance(summary, str):
        raise ValidationError("'summary' must be a string")
    url = check_url(data.get("url"), "url", required=True)
    image = data.get("image") or ""
    if not isinstance(image, str):
        raise ValidationError("'image' must be a string URL")
    categories = data.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValidationError("'categories' must be a list of strings")
    if len(categories) > CATEGORIES_MAX or any(len(c) > CATEGORY_MAX for c in categories):
        raise ValidationError(
            f"'categories' holds at most {CATEGORIES_MAX} names of {CATEGORY_MAX} characters"
        )
    breaking = data.get("breaking", False)
    if not isinstance(breaking, bool):
        raise ValidationError("'breaking' must be true or false")
    published_at = parse_time(data.get("published_at"), "published_at")
    return Article(
        guid=guid.strip(),
        title=title,
        url=url,
        summary=summary,
        image=safe_image(image),
        categories=tuple(c.strip() for c in categories if c.strip()),
        breaking=breaking,
        published_at=published_at,
    )


def safe_image(value: str) -> str:
    """The image URL when it is a usable http(s) URL, else the empty string (an image is optional)."""
    try:
        return check_url(value, "image", required=False)
    except ValidationError:
        return ""


def map_topics(
    categories: Iterable[str],
    slugs: Sequence[str],
    *,
    category_map: Mapping[str, str] | None = None,
    fallback: Sequence[str] = (),
) -> tuple[str, ...]:
    """Topics of an article: each category through the explicit map, else its slug when that is a topic."""
    explicit = {slugify(k): v for k, v in (category_map or {}).items()}
    chosen: list[str] = []
    for category in categories:
        slug = slugify(category)
        topic = explicit.get(slug) or (slug if slug in slugs else None)
        if topic and topic in slugs and topic not in chosen:
            chosen.append(topic)
    return tuple(chosen) if chosen else tuple(fallback)


def build_campaign(
    article: Article,
    *,
    topics: Sequence[str],
    all_topics: Sequence[Topic],
    source: str,
    created_by: str = "",
    site: str = "",
) -> CampaignInput:
    """The campaign an article becomes; the body (its summary) is shortened until the payload fits."""
    title = trim(plain_text(article.title), TITLE_MAX)
    body = trim(plain_text(article.summary) or title, BODY_MAX)
    data: dict[str, Any] = {
        "title": title,
        "body": body,
        "url": article.url,
        "image": article.image,
        "breaking": article.breaking,
        "topics": list(topics) or None,
        "article_guid": article.guid,
    }
    while True:
        try:
            return validate_campaign(
                data, topics=all_topics, source=source, created_by=created_by or source, site=site
            )
        except PayloadTooLarge:
            current = data["body"]
            excess = payload_size(title, current, article.url, data["image"]) - MAX_PLAINTEXT
            shorter = trim(current, max(1, len(current) - excess - 3))
            if len(shorter) < len(current):
                data["body"] = shorter
            elif data["image"]:
                # Long URLs leave no room for text: the image is the part a notification can lose.
                data["image"], data["body"] = "", body
            else:
                raise


class ArticleIngest:
    """Turns articles into campaigns, each at most once across every path."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        topics: Sequence[Topic],
        launch: Launch,
        *,
        default_site: str = DEFAULT_SITE_ID,
    ) -> None:
        self.r = r
        self.keys = keys
        #: The default site's topics and id (an article that names no site is its).
        self.topics = tuple(topics)
        self.default_site = default_site
        self.launch = launch
        self.campaigns = CampaignStore(r, keys)
        self._claim = r.register_script(_CLAIM)
        self._settle = r.register_script(_SETTLE)

    def guard_keys(self, article: Article, site: str | None = None) -> list[str]:
        """The two guard keys of an article on a site: by guid and by normalised URL."""
        site = site or self.default_site
        return [
            self.keys.article(digest(article.guid), site),
            self.keys.article_url(digest(normalize_url(article.url)), site),
        ]

    def ingest(
        self,
        article: Article,
        *,
        topics: Sequence[str],
        mode: str,
        source: str,
        created_by: str = "",
        site: Site | None = None,
    ) -> IngestResult:
        """Store (and in ``auto`` mode launch) the article's campaign for ``site`` (the default one when
        None), unless it was pushed to that site before."""
        if mode not in MODES:
            raise ValidationError(f"mode must be auto or review, not {mode!r}")
        site_id = site.id if site is not None else self.default_site
        item = build_campaign(
            article,
            topics=topics,
            all_topics=site.topics if site is not None else self.topics,
            source=source,
            created_by=created_by,
            site=site_id,
        )
        guards = self.guard_keys(article, site_id)
        token = "claim:" + os.urandom(8).hex()
        claimed, existing = self._claim(keys=guards, args=[token, GUARD_TTL])
        if not int(claimed):
            value = existing.decode() if isinstance(existing, bytes) else str(existing)
            return IngestResult("duplicate", "" if value.startswith("claim:") else value)
        state = DRAFT if mode == "review" else SCHEDULED
        try:
            cid = self.campaigns.create(item, state=state)
        except BaseException:
            # Nothing was stored: let a later arrival of the same article try again.
            self._settle(keys=guards, args=[token, ""])
            raise
        self._settle(keys=guards, args=[token, cid])
        if state == SCHEDULED:
            self.launch(cid, item.send_at)
        return IngestResult("created", cid, state)
