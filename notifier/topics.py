"""The topics readers can follow: a slug plus its name in Indonesian and English."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from notifier.errors import ConfigError


@dataclass(frozen=True)
class Topic:
    """One topic readers can follow."""

    slug: str
    name_id: str
    name_en: str

    def name(self, lang: str) -> str:
        """The topic's name in ``lang`` (``id`` or ``en``)."""
        return self.name_en if lang == "en" else self.name_id


DEFAULT_TOPICS: tuple[Topic, ...] = (
    Topic("breaking", "Berita terkini", "Breaking news"),
    Topic("nasional", "Nasional", "National"),
    Topic("internasional", "Internasional", "World"),
    Topic("ekonomi", "Ekonomi", "Business"),
    Topic("olahraga", "Olahraga", "Sports"),
    Topic("teknologi", "Teknologi", "Technology"),
)


def parse_topics(raw: object, *, source: str) -> tuple[Topic, ...]:
    """Topics from a decoded JSON list ``[{"slug", "id", "en"}, ...]``; ConfigError naming ``source``."""
    try:
        if not isinstance(raw, list):
            raise TypeError("not a list")
        topics = tuple(Topic(str(t["slug"]), str(t["id"]), str(t["en"])) for t in raw)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{source} is not a list of {{slug, id, en}}: {exc}") from exc
    if not topics:
        raise ConfigError(f"{source} defines no topics")
    seen: set[str] = set()
    for topic in topics:
        if not topic.slug.replace("-", "").isalnum() or not topic.slug.isascii() or len(topic.slug) > 32:
            raise ConfigError(f"topic slug {topic.slug!r} must be letters, digits and dashes (32 at most)")
        if topic.slug in seen:
            raise ConfigError(f"{source} declares topic {topic.slug!r} twice")
        seen.add(topic.slug)
    return topics


def load_topics(path: Path | None) -> tuple[Topic, ...]:
    """Topics from a JSON file ``[{"slug", "id", "en"}, ...]``, or the defaults."""
    if path is None:
        return DEFAULT_TOPICS
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"NOTIFIER_TOPICS_FILE {path} is not a list of {{slug, id, en}}: {exc}") from exc
    return parse_topics(raw, source=f"NOTIFIER_TOPICS_FILE {path}")
