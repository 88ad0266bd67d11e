"""Export and import subscriptions as JSON lines: one ``PushSubscription.toJSON()`` per line, plus our fields.

A line looks like::

    {"endpoint": "...", "expirationTime": null, "keys": {"p256dh": "...", "auth": "..."},
     "topics": ["breaking"], "lang": "id", "created": 1796000000, "seen": 1796000000}

Export pages through ``subs:all`` with SSCAN and loads each page in one
pipeline; import validates every line with :func:`validate_subscription`,
writes accepted lines in pipelines (the ``SubscriptionStore.upsert`` layout),
and reports refused lines by number without stopping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from notifier.context import Context
from notifier.errors import NotifierError, ValidationError
from notifier.subscriptions import SubscriptionInput, subscription_id, validate_subscription

#: Subscriptions loaded or written per pipeline.
PAGE = 1000


def export_lines(context: Context, *, page_size: int = PAGE) -> Iterator[str]:
    """Every stored subscription as one JSON line (without the newline)."""
    for sids in context.subscriptions.scan_ids(page_size):
        pipe = context.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(context.keys.sub(sid))
        for data in pipe.execute():
            if not data or "e" not in data:
                continue  # removed between SSCAN and HGETALL
            expiration = data.get("x")
            yield json.dumps(
                {
                    "endpoint": data["e"],
                    "expirationTime": int(expiration) if expiration else None,
                    "keys": {"p256dh": data["p"], "auth": data["a"]},
                    "topics": [t for t in data.get("t", "").split(",") if t],
                    "lang": data.get("l", "id"),
                    "created": int(data.get("c", 0)),
                    "seen": int(data.get("s", 0)),
                },
                separators=(",", ":"),
            )


def export_to(context: Context, out: TextIO, *, progress: Callable[[int], Any] | None = None) -> int:
    """Write every subscription to ``out``; returns how many were written."""
    n = 0
    for line in export_lines(context):
        out.write(line + "\n")
        n += 1
        if progress is not None:
            progress(1)
    return n


@dataclass
class ImportReport:
    """What an import did: lines stored (new or updated) and lines refused with their reason."""

    created: int = 0
    updated: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Lines written."""
        return self.created + self.updated


def _parse(line: str, context: Context) -> tuple[SubscriptionInput, int | None, int | None]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    item = validate_subscription(data, policy=context.policy, topics=context.topics)
    stamps: list[int | None] = []
    for name in ("created", "seen"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationError(f"{name!r} must be unix seconds")
        stamps.append(value)
    return item, stamps[0], stamps[1]


def import_lines(
    context: Context,
    lines: Iterable[str],
    *,
    browser: str = "imported",
    batch: int = PAGE,
    progress: Callable[[int], Any] | None = None,
) -> ImportReport:
    """Validate and store each line; a bad line is reported by number and skipped."""
    report = ImportReport()
    pending: list[tuple[SubscriptionInput, int | None, int | None]] = []
    for number, line in enumerate(lines, start=1):
        if progress is not None:
            progress(1)
        if not line.strip():
            continue
        try:
            pending.append(_parse(line, context))
        except NotifierError as exc:
            report.refused.append((number, exc.message))
            continue
        if len(pending) >= batch:
            _store(context, pending, browser, report)
            pending = []
    if pending:
        _store(context, pending, browser, report)
    return report


def _store(
    context: Context,
    items: list[tuple[SubscriptionInput, int | None, int | None]],
    browser: str,
    report: ImportReport,
) -> None:
    keys = context.keys
    now = int(time.time())
    sids = [subscription_id(item.endpoint) for item, _, _ in items]
    look = context.redis.pipeline(transaction=False)
    for sid in sids:
        look.hget(keys.sub(sid), "t")
    old_topics = look.execute()
    pipe = context.redis.pipeline(transaction=True)
    added = 0
    for sid, (item, created, seen), old in zip(sids, items, old_topics, strict=True):
        mapping: dict[str, str | int] = {
            "e": item.endpoint, "p": item.p256dh, "a": item.auth, "t": ",".join(item.topics),
            "l": item.lang, "s": seen if seen is not None else now, "f": 0,
        }  # fmt: skip
        if item.expiration_time is not None:
            mapping["x"] = item.expiration_time
        if old is None:
            mapping["c"] = created if created is not None else now
            mapping["b"] = browser
            added += 1
        else:
            for slug in set(old.split(",")) - set(item.topics) - {""}:
                pipe.srem(keys.subs_topic(slug), sid)
        pipe.hset(keys.sub(sid), mapping=mapping)
        pipe.hdel(keys.sub(sid), "ff")
        pipe.sadd(keys.subs_all, sid)
        pipe.srem(keys.subs_quarantined, sid)
        for slug in item.topics:
            pipe.sadd(keys.subs_topic(slug), sid)
    if added:
        pipe.hincrby(keys.subs_daily("added"), time.strftime("%Y-%m-%d", time.gmtime(now)), added)
    pipe.execute()
    report.created += added
    report.updated += len(items) - added
