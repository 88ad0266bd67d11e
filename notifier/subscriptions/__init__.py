"""Reader subscriptions: validation, upsert by endpoint, topics, removal, staleness.

The package's rooms: ``validation`` (what a browser may post), ``records`` (the
stored form), ``scripts`` (the Lua of every multi-key write), ``store`` (the
:class:`SubscriptionStore`), ``legacy`` (the move from the first layout).

Storage is laid out for memory (a publisher's audience runs into millions, and
Redis holds it all in RAM); see docs/design-notes.md, "Subscriptions in Redis":

- Every subscription gets a dense integer id ``n`` (``subs:seq``), never reused.
- Its record is one string (``created`` and :func:`records.record_tail`) at index
  ``n % 128`` of the list ``subs:rec:{n // 128}``: lists pack their elements in listpacks whatever
  their length, so ~300-byte records cost ~3 bytes of overhead each with Redis's
  default settings. A removed subscription leaves an empty string.
- ``subs:ix:{bucket}`` hashes map 88 bits of the endpoint's SHA-256 to ``n``, so
  re-subscribing the same browser is an update, never a duplicate. They grow by
  linear hashing (one bucket split at a time, inside the upsert script), so every
  bucket holds about 48 entries and stays a compact listpack at any audience size.
- Bitmaps, one bit per id: ``subs:live`` (everyone), ``subs:t:{slug}`` (one per
  topic), ``subs:q`` (quarantined). Counts are BITCOUNTs, a campaign's audience is
  one BITOP OR, exact and a few milliseconds for a million readers.
- ``subs:fails`` / ``subs:fail1`` hashes hold the failure run of the few
  subscriptions currently failing (count, and the time of the first failure).
- ``subs:site:{site}`` bitmaps: each id is in exactly one site's (the upsert sets it and clears any
  other, the delete clears it). Topic bitmaps are shared by slug across sites; a site's audience is
  its topics' union ANDed with its bitmap, so two sites may both have a ``nasional`` topic and a
  campaign for one never reaches the other's readers. The record itself carries no site: the hot
  path (loading a batch) never needs it, and the records written before sites stay as they are;
  ``migrate_sites`` hands the subscriptions of before sites to the default site.
"""

from __future__ import annotations

from notifier.keys import RECORDS_PER_LIST
from notifier.subscriptions.legacy import migrate_legacy, migrate_sites
from notifier.subscriptions.records import (
    ENDPOINT_PREFIXES,
    RECORD_FIELDS,
    Subscription,
    decode_endpoint,
    decode_record,
    encode_endpoint,
    endpoint_index,
    ids_in_bitmap,
    record_tail,
)
from notifier.subscriptions.store import SubscriptionStore, iter_audience
from notifier.subscriptions.validation import (
    LANGS,
    MAX_KEY_CHARS,
    MAX_TOPICS,
    SubscriptionInput,
    validate_subscription,
    validate_topics,
)

__all__ = [
    "ENDPOINT_PREFIXES",
    "LANGS",
    "MAX_KEY_CHARS",
    "MAX_TOPICS",
    "RECORDS_PER_LIST",
    "RECORD_FIELDS",
    "Subscription",
    "SubscriptionInput",
    "SubscriptionStore",
    "decode_endpoint",
    "decode_record",
    "encode_endpoint",
    "endpoint_index",
    "ids_in_bitmap",
    "iter_audience",
    "migrate_legacy",
    "migrate_sites",
    "record_tail",
    "validate_subscription",
    "validate_topics",
]
