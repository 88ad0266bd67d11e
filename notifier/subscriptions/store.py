"""The subscription store: upsert by endpoint, topics, removal, failure runs, counts and audiences."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis
from redis.client import NEVER_DECODE

from notifier.browsers import SERVICES, push_service
from notifier.endpoints import canonical_endpoint
from notifier.errors import NotFound, UnsafeEndpoint
from notifier.keys import RECORDS_PER_LIST, Keys
from notifier.sites import DEFAULT_SITE_ID
from notifier.subscriptions.records import (
    INDEX_LOAD,
    Subscription,
    decode_record,
    endpoint_index,
    ids_in_bitmap,
    record_tail,
)
from notifier.subscriptions.scripts import (
    DELETE,
    INTERSECT_COUNT,
    LOOKUP,
    MARK_SENT,
    REPLACE,
    SET_TOPICS,
    SNAPSHOT,
    UNION_COUNT,
    UPSERT,
)
from notifier.subscriptions.validation import SubscriptionInput


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class SubscriptionStore:
    """Subscriptions in Redis. Every method takes the work it needs in one round trip where it can.

    Each subscription belongs to one site (its id's bit in ``subs:site:{site}``). Writes that name no
    site store under ``default_site``; reads that name none see every site.
    """

    def __init__(self, r: redis.Redis, keys: Keys, default_site: str = DEFAULT_SITE_ID) -> None:
        self.r = r
        self.keys = keys
        self.default_site = default_site
        self._upsert = r.register_script(UPSERT)
        self._delete = r.register_script(DELETE)
        self._set_topics = r.register_script(SET_TOPICS)
        self._lookup = r.register_script(LOOKUP)
        self._union_count = r.register_script(UNION_COUNT)
        self._mark_sent = r.register_script(MARK_SENT)
        self._replace = r.register_script(REPLACE)
        self._snapshot = r.register_script(SNAPSHOT)
        self._intersect_count = r.register_script(INTERSECT_COUNT)

    # -- writing ------------------------------------------------------------------------------

    def _upsert_args(
        self,
        sub: SubscriptionInput,
        *,
        browser: str,
        key_id: str,
        now: int,
        created: int | None = None,
        seen: int | None = None,
        count_day: bool = True,
        site: str | None = None,
    ) -> list[str | int]:
        tail = record_tail(
            topics=sub.topics,
            seen=now if seen is None else seen,
            lang=sub.lang,
            browser=browser,
            key_id=key_id,
            expiration_time=sub.expiration_time,
            p256dh=sub.p256dh,
            auth=sub.auth,
            endpoint=sub.endpoint,
        )
        return [
            self.keys.prefix,
            endpoint_index(sub.endpoint),
            tail,
            ",".join(sub.topics),
            now if created is None else created,
            _day(now) if count_day else "",
            site or self.default_site,
            push_service(sub.endpoint),
            key_id,
            INDEX_LOAD,
        ]

    def upsert(
        self,
        sub: SubscriptionInput,
        *,
        site: str | None = None,
        browser: str = "other",
        key_id: str = "",
        now: float | None = None,
    ) -> tuple[str, bool]:
        """Store or update a subscription of ``site`` in one atomic round trip; returns ``(sid, created)``."""
        now_i = int(time.time() if now is None else now)
        args = self._upsert_args(sub, browser=browser, key_id=key_id, now=now_i, site=site)
        # EVALSHA straight through execute_command: the subscribe API's one round trip, without
        # redis-py's Script wrapper (~10 µs of its CPU per call); a flushed script cache reloads it.
        try:
            n, created = self.r.execute_command("EVALSHA", self._upsert.sha, 0, *args)
        except redis.exceptions.NoScriptError:
            n, created = self._upsert(args=args)
        return str(n), bool(created)

    def upsert_many(
        self,
        items: Sequence[SubscriptionInput],
        *,
        site: str | None = None,
        browser: str = "other",
        key_id: str = "",
        now: float | None = None,
        stamps: Sequence[tuple[int | None, int | None]] | None = None,
        sites: Sequence[str | None] | None = None,
        browsers: Sequence[str | None] | None = None,
    ) -> list[tuple[str, bool]]:
        """:meth:`upsert` for many, pipelined (each still atomic).

        ``stamps``: (created, seen) per item; ``sites`` / ``browsers``: each item's (else ``site``,
        ``browser``).
        """
        now_i = int(time.time() if now is None else now)
        pipe = self.r.pipeline(transaction=False)
        for i, sub in enumerate(items):
            created, seen = stamps[i] if stamps else (None, None)
            self._upsert(
                args=self._upsert_args(
                    sub,
                    browser=(browsers[i] if browsers else None) or browser,
                    key_id=key_id,
                    now=now_i,
                    created=created,
                    seen=seen,
                    site=(sites[i] if sites else None) or site,
                ),
                client=pipe,
            )
        return [(str(n), bool(new)) for n, new in pipe.execute()] if items else []

    def replace(
        self,
        old_endpoint: str,
        sub: SubscriptionInput,
        *,
        site: str | None = None,
        browser: str = "other",
        key_id: str = "",
        now: float | None = None,
    ) -> tuple[str, str] | None:
        """Put ``sub`` in the place of the subscription stored for ``old_endpoint`` (of ``site``), atomically.

        The browser replaced its subscription (``pushsubscriptionchange``, or a page moving it to a new
        VAPID key): the reader keeps its id, topics, language and site and is never stored twice. Returns
        ``(sid, "replaced")``, ``(sid, "merged")`` when the new endpoint was stored already (it takes the
        old one's topics and language; the old one is removed), or None when no subscription of ``site``
        has ``old_endpoint`` (the caller stores ``sub`` as usual).
        """
        now_i = int(time.time() if now is None else now)
        tail = record_tail(
            topics=(),
            seen=now_i,
            lang=sub.lang,
            browser=browser,
            key_id=key_id,
            expiration_time=sub.expiration_time,
            p256dh=sub.p256dh,
            auth=sub.auth,
            endpoint=sub.endpoint,
        )
        after_lang = tail.split(" ", 3)[3]
        n, how = self._replace(
            args=[
                self.keys.prefix,
                endpoint_index(old_endpoint),
                endpoint_index(sub.endpoint),
                after_lang,
                now_i,
                _day(now_i),
                site or self.default_site,
                push_service(sub.endpoint),
                key_id,
                INDEX_LOAD,
            ]
        )
        if int(n) < 0:
            return None
        return str(n), "replaced" if int(how) == 1 else "merged"

    def set_topics(self, endpoint: str, topics: Iterable[str], *, site: str | None = None) -> Subscription:
        """Replace the topics of a subscription (already validated slugs; of ``site`` when given)."""
        sub = self.get_by_endpoint(endpoint, site=site)
        new = tuple(dict.fromkeys(topics))
        if not self._set_topics(args=[self.keys.prefix, sub.sid, ",".join(new)]):
            raise NotFound("no subscription for this endpoint")
        return self.get(sub.sid)

    def delete(
        self, sub: Subscription, *, pipe: redis.client.Pipeline | None = None, exact: bool = False
    ) -> None:
        """Remove a subscription and its index entries (in ``pipe`` when given).

        With ``exact``, only if its stored keys are still the ones in ``sub``: a
        push service's 404 for an old subscription must not remove the fresh one
        the same browser has stored since.
        """
        self._delete(
            args=[
                self.keys.prefix,
                sub.sid,
                endpoint_index(sub.endpoint),
                sub.p256dh if exact else "",
                _day(time.time()),
            ],
            client=pipe or self.r,
        )

    def delete_exact(
        self, sid: str, index_field: str, p256dh: str, pipe: redis.client.Pipeline | None = None
    ) -> None:
        """Remove subscription ``sid`` if its stored key is still ``p256dh`` (by its endpoint index field)."""
        self._delete(
            args=[self.keys.prefix, sid, index_field, p256dh, _day(time.time())], client=pipe or self.r
        )

    def delete_by_endpoint(self, endpoint: str, *, site: str | None = None) -> bool:
        """Remove the subscription for ``endpoint`` (only one of ``site`` when given); False when none was."""
        try:
            sub = self.get_by_endpoint(endpoint, site=site)
        except NotFound:
            return False
        self.delete(sub)
        return True

    def quarantine(self, sids: Iterable[str], pipe: redis.client.Pipeline) -> None:
        """Mark subscriptions as kept out of fan-out (failing for days, or rejected again and again).

        A new subscribe from the browser lifts it (the upsert clears the bit and both runs).
        """
        for sid in sids:
            pipe.setbit(self.keys.subs_quarantined, int(sid), 1)

    def record_failure(self, sid: str, now: int, pipe: redis.client.Pipeline) -> None:
        """Count a failed push in the subscription's current run of failures."""
        pipe.hincrby(self.keys.subs_failures, sid, 1)
        pipe.hsetnx(self.keys.subs_first_failure, sid, now)

    def clear_failures(self, sid: str, pipe: redis.client.Pipeline) -> None:
        """End the subscription's run of failures and rejections (a push was accepted)."""
        pipe.hdel(self.keys.subs_failures, sid)
        pipe.hdel(self.keys.subs_first_failure, sid)
        pipe.hdel(self.keys.subs_rejections, sid)

    def mark_sent(
        self,
        sids: Sequence[str],
        pipe: redis.client.Pipeline,
        *,
        unreachable_after: int,
        budget: int,
        now: float,
    ) -> None:
        """Count pushes a push service accepted (in the batch's transaction): see ``MARK_SENT``.

        A reader whose last ``unreachable_after`` pushes were all accepted and none shown becomes
        unreachable (Apple answers 201 for subscriptions that no longer exist); one who clicked none of
        the last ``budget`` is over the reader budget. A ``shown``/``clicked`` receipt or a re-post of
        the subscription ends those runs (:func:`notifier.campaigns.count_receipt`, the upsert).
        """
        if sids:
            self._mark_sent(
                args=[self.keys.prefix, max(0, unreachable_after), max(0, budget), _day(now), *sids],
                client=pipe,
            )

    def build_service_bitmaps(self, page: int = 2000) -> int:
        """Put the subscriptions stored before ``subs:svc:{service}`` existed in their service's bitmap.

        Once (``subs:svc-built``); idempotent and safe beside live upserts (they set their own bit).
        Returns how many were placed, or -1 when it was done already.
        """
        if self.r.exists(self.keys.subs_services_built):
            return -1
        placed = 0
        for ids in self.scan_ids(page):
            pipe = self.r.pipeline(transaction=False)
            for sub in self.load_many(ids):
                pipe.setbit(self.keys.subs_service(push_service(sub.endpoint)), int(sub.sid), 1)
                placed += 1
            pipe.execute()
        self.r.set(self.keys.subs_services_built, placed)
        return placed

    def build_key_bitmaps(self, page: int = 2000) -> int:
        """Put the subscriptions stored before ``subs:vk:{key id}`` existed in their VAPID key's bitmap.

        Once (``subs:vk-built``); idempotent beside live upserts. Returns how many, or -1 when done already.
        """
        if self.r.exists(self.keys.subs_vapid_keys_built):
            return -1
        placed = 0
        for ids in self.scan_ids(page):
            pipe = self.r.pipeline(transaction=False)
            for sub in self.load_many(ids):
                if sub.key_id:
                    pipe.setbit(self.keys.subs_vapid_key(sub.key_id), int(sub.sid), 1)
                    placed += 1
            pipe.execute()
        self.r.set(self.keys.subs_vapid_keys_built, placed)
        return placed

    # -- reading ------------------------------------------------------------------------------

    def count_by_key(
        self, key_ids: Sequence[str], *, site: str | None = None, unbound_to: str | None = None
    ) -> dict[str, int]:
        """Subscriptions bound to each VAPID key of ``key_ids`` (of one site when given), exact.

        A subscription stored without a key id (before ids were kept, or stored by a tool that names none)
        is signed with its site's current key (:meth:`notifier.keyring.KeyRing.signing_key`): given that
        key as ``unbound_to``, those readers count as its own, so the figures add up to the site's total.
        """
        pipe = self.r.pipeline(transaction=False)
        scratch = self._scratch()
        for key_id in key_ids:
            if site is None:
                pipe.bitcount(self.keys.subs_vapid_key(key_id))
            else:
                self._intersect_count(
                    keys=[self.keys.subs_vapid_key(key_id), self.keys.subs_site(site)],
                    args=[scratch],
                    client=pipe,
                )
        counts = {k: int(n) for k, n in zip(key_ids, pipe.execute(), strict=True)} if key_ids else {}
        if unbound_to is not None and unbound_to in counts:
            counts[unbound_to] += max(0, self.count(site=site) - sum(counts.values()))
        return counts

    def sid_of(self, endpoint: str) -> str | None:
        """The id stored for ``endpoint`` (in any spelling of it), or None."""
        try:
            endpoint = canonical_endpoint(endpoint)
        except UnsafeEndpoint:
            return None
        found = self._lookup(args=[self.keys.prefix, endpoint_index(endpoint)])
        return None if found is None else str(found if isinstance(found, str) else found.decode())

    def get(self, sid: str) -> Subscription:
        """One subscription by id; :class:`NotFound` when absent."""
        found = self.load_many([sid])
        if not found:
            raise NotFound(f"no subscription {sid}")
        return found[0]

    def get_by_endpoint(self, endpoint: str, *, site: str | None = None) -> Subscription:
        """One subscription by its endpoint URL (NotFound unless it belongs to ``site``, when given)."""
        sid = self.sid_of(endpoint)
        if sid is None:
            raise NotFound("no subscription for this endpoint")
        sub = self.get(sid)
        if sub.endpoint != canonical_endpoint(
            endpoint
        ):  # a digest collision: 88 bits make it all but impossible
            raise NotFound("no subscription for this endpoint")
        if site is not None and not self.r.getbit(self.keys.subs_site(site), int(sid)):
            # Another site's reader: to this site it does not exist.
            raise NotFound("no subscription for this endpoint")
        return sub

    def site_of(self, sid: str) -> str | None:
        """The site a stored subscription belongs to (None when it is not stored)."""
        sites = sorted(self.r.smembers(self.keys.sites))
        if not sites or not sid.isdigit():
            return None
        pipe = self.r.pipeline(transaction=False)
        for site in sites:
            pipe.getbit(self.keys.subs_site(site), int(sid))
        return next((site for site, bit in zip(sites, pipe.execute(), strict=True) if bit), None)

    def sites_with_data(self) -> list[str]:
        """Ids of the sites that hold (or held) subscriptions."""
        return sorted(self.r.smembers(self.keys.sites))

    def load_many(self, sids: Sequence[str]) -> list[Subscription]:
        """Load subscriptions in one pipeline, in order; ids that are not stored are skipped.

        Ids close together (a planned batch) share record lists, so a list with
        several wanted records is read whole with one LRANGE.
        """
        wanted: dict[int, list[tuple[int, str]]] = {}
        for sid in sids:
            try:
                n = int(sid)
            except ValueError:
                continue
            if n < 0:
                continue
            wanted.setdefault(n // RECORDS_PER_LIST, []).append((n % RECORDS_PER_LIST, sid))
        if not wanted:
            return []
        pipe = self.r.pipeline(transaction=False)
        plan: list[tuple[int, list[tuple[int, str]]]] = []
        for bucket, members in wanted.items():
            key = self.keys.subs_records(bucket)
            if len(members) > 3:
                pipe.lrange(key, 0, -1)
                plan.append((-1, members))
            else:
                for pos, sid in members:
                    pipe.lindex(key, pos)
                    plan.append((pos, [(pos, sid)]))
        pipe.hmget(self.keys.subs_failures, list(sids))
        pipe.hmget(self.keys.subs_first_failure, list(sids))
        pipe.hmget(self.keys.subs_rejections, list(sids))
        replies = pipe.execute()
        failures = dict(zip(sids, replies[-3], strict=True))
        firsts = dict(zip(sids, replies[-2], strict=True))
        rejections = dict(zip(sids, replies[-1], strict=True))
        records: dict[str, str] = {}
        for (pos, members), reply in zip(plan, replies[:-3], strict=True):
            if pos >= 0:
                if reply:
                    records[members[0][1]] = reply
                continue
            for p, sid in members:
                if p < len(reply) and reply[p]:
                    records[sid] = reply[p]
        found: list[Subscription] = []
        for sid in dict.fromkeys(sids):
            record = records.get(sid)
            if record:
                found.append(
                    decode_record(
                        sid, record, int(failures[sid] or 0), int(firsts[sid] or 0), int(rejections[sid] or 0)
                    )
                )
        return found

    def _in_site(self, sids: Sequence[str], site: str) -> list[bool]:
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.getbit(self.keys.subs_site(site), int(sid))
        return [bool(bit) for bit in pipe.execute()] if sids else []

    def exists_many(self, sids: Sequence[str]) -> list[bool]:
        """Whether each id is a stored subscription."""
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.getbit(self.keys.subs_live, int(sid) if sid.isdigit() else 2**32 - 1)
        return [bool(bit) for bit in pipe.execute()] if sids else []

    def count(self, topic: str | None = None, *, site: str | None = None) -> int:
        """Number of subscriptions, in all or following one topic, of every site or of one."""
        if topic and site:
            return self.audience_size([topic], site=site)
        if site:
            return int(self.r.bitcount(self.keys.subs_site(site)))
        return int(self.r.bitcount(self.keys.subs_topic(topic) if topic else self.keys.subs_live))

    def count_by_site(self, sites: Sequence[str]) -> dict[str, int]:
        """Subscriptions of each of ``sites``, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for site in sites:
            pipe.bitcount(self.keys.subs_site(site))
        return {site: int(n) for site, n in zip(sites, pipe.execute(), strict=True)} if sites else {}

    def quarantined_count(self, *, site: str | None = None) -> int:
        """Subscriptions kept out of fan-out (of one site when given)."""
        if site is None:
            return int(self.r.bitcount(self.keys.subs_quarantined))
        return int(
            self._union_count(
                keys=[self.keys.subs_quarantined], args=[self._scratch(), self.keys.subs_site(site)]
            )
        )

    def _scratch(self) -> str:
        return self.keys.scratch("union")

    def audience_size(self, topics: Sequence[str], *, site: str | None = None) -> int:
        """Subscribers a campaign to ``topics`` (empty: everyone) would reach, each counted once.

        With ``site``, only that site's readers (its bitmap ANDed in); without, every site's.
        """
        unique = list(dict.fromkeys(topics))
        if not unique:
            return self.count(site=site)
        if len(unique) == 1 and site is None:
            return self.count(unique[0])
        site_key = self.keys.subs_site(site) if site else ""
        return int(
            self._union_count(
                keys=[self.keys.subs_topic(t) for t in unique], args=[self._scratch(), site_key]
            )
        )

    def snapshot_audience(
        self, topics: Sequence[str], dest: str, *, site: str | None = None, leave_out: Sequence[str] = ()
    ) -> tuple[int, list[int]]:
        """Write the audience of ``topics`` (empty: everyone) as a bitmap at ``dest``.

        With ``site``, the union of the topics' bitmaps is ANDed with the site's: a campaign for one site
        never reaches another site's readers, whatever topic slugs the two sites share. The readers in
        each bitmap of ``leave_out`` are taken out, in order. Returns the audience's size and how many
        each ``leave_out`` bitmap took out (a reader is counted by the first that holds it).
        """
        site_key = self.keys.subs_site(site) if site else ""
        sources = [self.keys.subs_topic(t) for t in dict.fromkeys(topics)] or [
            site_key or self.keys.subs_live
        ]
        reply = self._snapshot(keys=sources, args=[dest, self.keys.scratch("snapshot"), site_key, *leave_out])
        return int(reply[0]), [int(n) for n in reply[1:]]

    def audience_breakdown(
        self, topics: Sequence[str], *, site: str | None = None, unreachable: bool = True, budget: bool = True
    ) -> dict[str, int]:
        """Who a campaign to ``topics`` would go to: ``reached`` by a non-breaking one, and those only a
        breaking one reaches: ``unreachable`` and ``over_budget`` (each reader counted once, in that
        order); ``total`` all of them (a breaking campaign's audience). ``unreachable``/``budget``:
        whether those rules are on.
        """
        leave_out = [self.keys.subs_unreachable] if unreachable else []
        if budget:
            leave_out.append(self.keys.subs_over_budget)
        scratch = self.keys.scratch("audience")
        try:
            reached, out = self.snapshot_audience(topics, scratch, site=site, leave_out=leave_out)
        finally:
            self.r.delete(scratch)
        unreach = out[0] if unreachable else 0
        over = out[-1] if budget else 0
        return {
            "total": reached + unreach + over,
            "reached": reached,
            "unreachable": unreach,
            "over_budget": over,
        }

    def standing(self, *, site: str | None = None) -> dict[str, Any]:
        """Readers by push service, exact: ``by_service`` {service: {total, unreachable}}, and the
        ``unreachable`` and ``over_budget`` totals; of one site when given (else of every site)."""
        scratch = self._scratch()
        site_keys = [self.keys.subs_site(site)] if site else []
        groups = [[self.keys.subs_service(name)] for name in SERVICES]
        groups += [[self.keys.subs_service(name), self.keys.subs_unreachable] for name in SERVICES]
        groups += [[self.keys.subs_unreachable], [self.keys.subs_over_budget]]
        pipe = self.r.pipeline(transaction=False)
        for group in groups:
            bitmaps = group + site_keys
            if len(bitmaps) == 1:
                pipe.bitcount(bitmaps[0])
            else:
                self._intersect_count(keys=bitmaps, args=[scratch], client=pipe)
        counts = [int(n) for n in pipe.execute()]
        n = len(SERVICES)
        by_service = {
            name: {"total": counts[i], "unreachable": counts[n + i]} for i, name in enumerate(SERVICES)
        }
        return {"by_service": by_service, "unreachable": counts[2 * n], "over_budget": counts[2 * n + 1]}

    def iter_bitmap(
        self, key: str, *, start_byte: int = 0, chunk_bytes: int = 256
    ) -> Iterator[tuple[int, list[str]]]:
        """The ids set in the bitmap at ``key``, a chunk at a time: ``(next byte to read, ids)``.

        Resumable: pass a ``next byte`` already seen as ``start_byte``. Empty chunks yield nothing.
        """
        offset = start_byte
        while True:
            # Bitmaps are bytes, whatever the client decodes.
            data = self.r.execute_command(
                "GETRANGE", key, offset, offset + chunk_bytes - 1, **{NEVER_DECODE: True}
            )
            if not data:
                return
            ids = ids_in_bitmap(data, offset * 8)
            offset += len(data)
            if ids:
                yield offset, [str(n) for n in ids]
            if len(data) < chunk_bytes:
                return

    def scan_ids(self, page_size: int = 1000, *, site: str | None = None) -> Iterator[list[str]]:
        """Every subscription id (of one site when given), in pages, in id order."""
        key = self.keys.subs_site(site) if site else self.keys.subs_live
        for _, ids in self.iter_bitmap(key, chunk_bytes=max(1, page_size // 8)):
            yield ids

    def sample(self, size: int, *, site: str | None = None) -> list[Subscription]:
        """About ``size`` subscriptions (of one site when given), chosen uniformly (all when fewer)."""
        total = self.count(site=site)
        if total <= size:
            return [sub for page in self.scan_ids(1000, site=site) for sub in self.load_many(page)]
        top = int(self.r.get(self.keys.subs_seq) or 0)
        found: dict[str, Subscription] = {}
        for _ in range(8):
            want = size - len(found)
            if want <= 0 or top <= 0:
                break
            tries = min(top, int(want * top / total * 1.2) + 10)
            picked = [str(n) for n in random.sample(range(top), tries)]
            if site:
                picked = [s for s, ok in zip(picked, self._in_site(picked, site), strict=True) if ok]
            for sub in self.load_many([s for s in picked if s not in found]):
                found[sub.sid] = sub
        return list(found.values())[:size]


def iter_audience(
    r: redis.Redis, keys: Keys, topics: Sequence[str], page_size: int = 1000, *, site: str | None = None
) -> Iterator[list[str]]:
    """Pages of subscription ids following any of ``topics`` (everyone when empty), each id once.

    With ``site``, only that site's readers.
    """
    store = SubscriptionStore(r, keys)
    scratch = keys.scratch("audience")
    store.snapshot_audience(topics, scratch, site=site)
    try:
        for _, ids in store.iter_bitmap(scratch, chunk_bytes=max(1, page_size // 8)):
            yield ids
    finally:
        r.delete(scratch)
