"""Export and import subscriptions as JSON lines: one ``PushSubscription.toJSON()`` per line, plus our fields.

A line looks like::

    {"endpoint": "...", "expirationTime": null, "keys": {"p256dh": "...", "auth": "..."},
     "topics": ["breaking"], "lang": "id", "created": 1796000000, "seen": 1796000000}

Export pages through the ``subs:live`` bitmap and loads each page in one
pipeline; import validates every line with :func:`validate_subscription`,
writes accepted lines with ``SubscriptionStore.upsert_many`` (the subscribe
API's own atomic upsert, pipelined), and reports refused lines by number
without stopping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from notifier.context import Context
from notifier.errors import NotifierError, ValidationError
from notifier.subscriptions import SubscriptionInput, validate_subscription

#: Subscriptions loaded or written per pipeline.
PAGE = 1000


def export_lines(context: Context, *, page_size: int = PAGE) -> Iterator[str]:
    """Every stored subscription as one JSON line (without the newline)."""
    store = context.subscriptions
    for sids in store.scan_ids(page_size):
        for sub in store.load_many(sids):  # one removed meanwhile is skipped
            yield json.dumps(
                {
                    "endpoint": sub.endpoint,
                    "expirationTime": sub.expiration_time,
                    "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
                    "topics": list(sub.topics),
                    "lang": sub.lang,
                    "created": sub.created,
                    "seen": sub.seen,
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
    results = context.subscriptions.upsert_many(
        [item for item, _, _ in items],
        browser=browser,
        stamps=[(created, seen) for _, created, seen in items],
    )
    added = sum(1 for _, created in results if created)
    report.created += added
    report.updated += len(items) - added
