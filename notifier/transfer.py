"""Export and import subscriptions as JSON lines: one ``PushSubscription.toJSON()`` per line, plus our fields.

A line looks like::

    {"endpoint": "...", "expirationTime": null, "keys": {"p256dh": "...", "auth": "..."},
     "topics": ["breaking"], "lang": "id", "browser": "chrome-android", "site": "kabarkini",
     "created": 1796000000, "seen": 1796000000}

Export pages through the ``subs:live`` bitmap (or one site's) and loads each page in one
pipeline; import validates every line with :func:`validate_subscription` against its site's
topics (the line's ``site``, else the site the import names, else the default site),
writes accepted lines with ``SubscriptionStore.upsert_many`` (the subscribe
API's own atomic upsert, pipelined), and reports refused lines by number
without stopping. Import reads bytes: a file that starts with a UTF-8 byte order
mark is read as if it had none, and a line that is not UTF-8 is refused by number
like any other bad line (the rest of the file is still read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from notifier.browsers import BROWSERS
from notifier.context import Context
from notifier.errors import NotifierError, ValidationError
from notifier.subscriptions import SubscriptionInput, validate_subscription

#: Subscriptions loaded or written per pipeline.
PAGE = 1000
#: Browser families a line may name (what the site detects, and what an import without one is).
IMPORT_BROWSERS = frozenset({*BROWSERS, "imported"})
_BOM = b"\xef\xbb\xbf"


def export_lines(context: Context, *, page_size: int = PAGE, site: str | None = None) -> Iterator[str]:
    """Every stored subscription (of ``site`` only, when given) as one JSON line (without the newline)."""
    store = context.subscriptions
    sites = [site] if site else store.sites_with_data()
    for sids in store.scan_ids(page_size, site=site):
        subs = store.load_many(sids)  # one removed meanwhile is skipped
        site_of: dict[str, str] = {}
        pipe = store.r.pipeline(transaction=False)
        for site in sites:
            for sub in subs:
                pipe.getbit(context.keys.subs_site(site), int(sub.sid))
        bits = iter(pipe.execute() if sites and subs else [])
        for site in sites:
            for sub in subs:
                if next(bits):
                    site_of[sub.sid] = site
        for sub in subs:
            line: dict[str, Any] = {
                "endpoint": sub.endpoint,
                "expirationTime": sub.expiration_time,
                "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
                "topics": list(sub.topics),
                "lang": sub.lang,
                "browser": sub.browser,
                "created": sub.created,
                "seen": sub.seen,
            }
            if sub.sid in site_of:
                line["site"] = site_of[sub.sid]
            yield json.dumps(line, separators=(",", ":"))


def export_to(
    context: Context, out: TextIO, *, progress: Callable[[int], Any] | None = None, site: str | None = None
) -> int:
    """Write every subscription (of ``site`` when given) to ``out``; returns how many were written."""
    n = 0
    for line in export_lines(context, site=site):
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


@dataclass(frozen=True)
class _Line:
    item: SubscriptionInput
    created: int | None
    seen: int | None
    browser: str | None
    site: str | None


def _text(raw: bytes | str, number: int) -> str:
    """A line as text: its UTF-8 byte order mark (first line) dropped; ValidationError when not UTF-8."""
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff") if number == 1 else raw
    if number == 1:
        raw = raw.removeprefix(_BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", code="not_utf8"
        ) from exc


def _parse(line: str, context: Context, for_site: str | None = None) -> _Line:
    try:
        data = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError("a line must be a JSON object")
    site = data.get("site")
    if site is not None and (not isinstance(site, str) or context.sites.find(site) is None):
        shown = site[:40] if isinstance(site, str) else type(site).__name__
        raise ValidationError(f"unknown site {shown!r}; sites: {', '.join(context.sites.ids)}")
    if for_site and site and site != for_site:
        raise ValidationError(f"the line is site {site!r}'s, the import is for site {for_site!r}")
    target = context.site(site or for_site)
    # Its own site's topics and language: another site's topic is unknown to it.
    item = validate_subscription(data, policy=context.policy, topics=target.topics, default_lang=target.lang)
    stamps: list[int | None] = []
    for name in ("created", "seen"):
        value = data.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40
        ):
            raise ValidationError(f"{name!r} must be unix seconds")
        stamps.append(value)
    browser = data.get("browser")
    if browser is not None and browser not in IMPORT_BROWSERS:
        raise ValidationError(f"'browser' must be one of {', '.join(sorted(IMPORT_BROWSERS))}")
    return _Line(item, stamps[0], stamps[1], browser, target.id)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def import_lines(
    context: Context,
    lines: Iterable[bytes | str] | BinaryIO,
    *,
    browser: str = "imported",
    batch: int = PAGE,
    progress: Callable[[int], Any] | None = None,
    site: str | None = None,
) -> ImportReport:
    """Validate and store each line (bytes or text) under its ``site`` (else ``site``, else the default
    site); a bad line is reported by number and skipped."""
    report = ImportReport()
    pending: list[_Line] = []
    for number, raw in enumerate(lines, start=1):
        if progress is not None:
            progress(1)
        try:
            line = _text(raw, number)
            if not line.strip():
                continue
            pending.append(_parse(line, context, site))
        except NotifierError as exc:
            report.refused.append((number, exc.message))
            continue
        if len(pending) >= batch:
            _store(context, pending, browser, report)
            pending = []
    if pending:
        _store(context, pending, browser, report)
    return report


def _store(context: Context, items: list[_Line], browser: str, report: ImportReport) -> None:
    results = context.subscriptions.upsert_many(
        [line.item for line in items],
        browser=browser,
        stamps=[(line.created, line.seen) for line in items],
        sites=[line.site for line in items],
        browsers=[line.browser for line in items],
    )
    added = sum(1 for _, created in results if created)
    report.created += added
    report.updated += len(items) - added
