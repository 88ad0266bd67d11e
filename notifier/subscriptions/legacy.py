"""Moves of data stored by earlier releases: the first layout (a hash per subscription, sets per topic)
to records, and subscriptions of before sites to the default site."""

from __future__ import annotations

import time
from collections.abc import Mapping

from notifier.subscriptions.scripts import MIGRATE_SITES
from notifier.subscriptions.store import SubscriptionStore
from notifier.subscriptions.validation import SubscriptionInput


def migrate_legacy(store: SubscriptionStore, page_size: int = 500) -> int:
    """Move subscriptions from the first layout (a hash per subscription, sets) into this one.

    The first release kept ``sub:{sid}`` hashes indexed by ``subs:all`` and
    ``subs:topic:{slug}`` sets. Each page is re-stored with the atomic upsert
    (keeping created, seen, browser, key id, failures and quarantine) before its
    old keys are removed, so an interrupted run simply continues. Returns the
    number moved; 0 when there is nothing to move.
    """
    r, keys = store.r, store.keys
    legacy_all = keys.legacy_all
    if r.type(legacy_all) not in ("set", b"set"):
        return 0
    quarantined_key = keys.legacy_quarantined
    moved = 0
    while True:
        sids = r.srandmember(legacy_all, page_size)
        if not sids:
            break
        look = r.pipeline(transaction=False)
        for sid in sids:
            look.hgetall(keys.legacy_subscription(sid))
        look.smismember(quarantined_key, sids)
        *rows, in_quarantine = look.execute()
        write = r.pipeline(transaction=False)
        kept: list[tuple[str, Mapping[str, str], bool]] = []
        for sid, data, quarantined in zip(sids, rows, in_quarantine, strict=True):
            if data and "e" in data:
                item = SubscriptionInput(
                    endpoint=data["e"],
                    p256dh=data["p"],
                    auth=data["a"],
                    topics=tuple(t for t in data.get("t", "").split(",") if t),
                    lang=data.get("l", "id"),
                    expiration_time=int(data["x"]) if data.get("x") else None,
                )
                args = store._upsert_args(
                    item,
                    browser=data.get("b", "other"),
                    key_id=data.get("k", ""),
                    now=int(time.time()),
                    created=int(data.get("c", 0)),
                    seen=int(data.get("s", 0)),
                    count_day=False,
                )
                store._upsert(args=args, client=write)
                kept.append((sid, data, bool(quarantined)))
        results = write.execute() if kept else []
        clean = r.pipeline(transaction=True)
        for (_sid, data, quarantined), (n, _) in zip(kept, results, strict=True):
            if int(data.get("f", 0) or 0):
                clean.hset(keys.subs_failures, str(n), int(data["f"]))
                if data.get("ff"):
                    clean.hset(keys.subs_first_failure, str(n), int(data["ff"]))
            if quarantined:
                clean.setbit(keys.subs_quarantined, int(n), 1)
        for sid in sids:
            clean.delete(keys.legacy_subscription(sid))
        clean.srem(legacy_all, *sids)
        clean.execute()
        moved += len(kept)
    for key in r.scan_iter(match=keys.legacy_topic("*"), count=1000):
        r.delete(key)
    r.delete(quarantined_key)
    return moved


def migrate_sites(store: SubscriptionStore, default_site: str | None = None) -> int:
    """Give the subscriptions stored before sites existed to the default site, once.

    One script: every live id no site's bitmap holds joins ``default_site``'s (the store's default),
    so subscriptions a site-aware process stored meanwhile keep their site, and a second run (another
    worker starting) does nothing. Returns the number of subscriptions the default site now has, or
    -1 when the move was already done.
    """
    site = default_site or store.default_site
    scratch = store.keys.scratch("sites")
    return int(store.r.eval(MIGRATE_SITES, 0, store.keys.prefix, site, scratch))
