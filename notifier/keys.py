"""Redis key names, built in one place under one prefix (the Lua scripts' too: :func:`lua_key_functions`).

Data model (docs/design-notes.md tells why it is laid out so):

- ``subs:rec:{n // 128}`` list of subscription records (one string each, see
  notifier.subscriptions); ``subs:ix:{bucket}`` hashes endpoint digest → id,
  grown by linear hashing (``subs:ixmeta``); ``subs:seq`` ids handed out.
- ``subs:live``, ``subs:t:{slug}``, ``subs:q`` bitmaps by id: everyone, each
  topic, quarantined. ``subs:fails`` / ``subs:fail1`` hashes: current failure runs.
  ``subs:daily:{added|removed}`` hashes day → count (``…:{site}``: one site's).
- ``subs:site:{site}`` bitmap by id: the subscriptions of one site (each id is in exactly one);
  a site's audience is its topics' union ANDed with it. ``sites`` set of the site ids that hold
  subscriptions; ``sites:migrated`` the site that adopted the data of before sites.
- ``subs:vk:{key id}`` bitmaps: the subscriptions bound to each VAPID key. ``vapid:keys:{site}`` /
  ``vapid:current:{site}`` / ``vapid:retired:{site}`` / ``vapid:version``: the key ring (rotation).
- A reader's standing: ``subs:svc:{service}`` bitmaps by push service; ``subs:unshown`` and
  ``subs:unclicked`` BITFIELDs of u8 counters by id (pushes in a row never shown, pushes since the last
  click), with ``subs:unreach`` (unreachable) and ``subs:budget`` (over the reader budget) bitmaps set at
  their thresholds; ``readers:sent:{day}`` / ``readers:clicked:{day}`` bitmaps of who got / clicked a
  push that day; ``metrics:site:{site}:sent-daily`` hash day → pushes accepted.
- ``campaign:{cid}`` hash: payload fields, audience, state, counters, timestamps
  (written only by :mod:`notifier.campaigns`).
- ``campaigns`` sorted set of cids by creation time; ``campaigns:site:{site}`` one site's.
- ``campaign:{cid}:batches:done`` set of finished batch ids, ``…:done:reserved`` the
  batch ids that hold a unit of ``pending`` (each reserved and given back once).
- ``campaign:{cid}:audience`` bitmap snapshot of the audience while planning;
  ``campaign:{cid}:held`` list of ids a paused campaign has not sent yet.
- ``campaign:{cid}:timeline`` / ``:services`` / ``:browsers`` / ``:receipts:{kind}``: the campaign
  page's figures.
- ``metrics:*``: outcomes, statuses, per-minute status and throughput, latency, alerts;
  ``metrics:site:{site}:outcomes`` one site's outcomes.
- ``push:holds`` hash: push services that answered 429/503 with Retry-After, and until when; every
  sender reads it (notifier.holds). ``push:breakers``, ``push:held-deletions:{service}``,
  ``push:held-services``, ``push:recent:{service}``, ``push:gone-pending:{service}``,
  ``push:daily:{day}``, ``push:probes`` (half-open samples), ``push:recoveries``: the per-service
  breakers of notifier.breakers; ``campaign:{cid}:push``
  (answers by service), ``campaign:{cid}:rejections-waiting:{service}`` (readers' rejections waiting for
  the service's first acceptance), ``campaign:{cid}:holds`` and ``campaign:{cid}:held:{service}`` (messages a
  campaign holds back from a service); ``subs:rejects`` rejections in a row per subscription.
- ``campaign:{cid}:lease:{batch}`` the run that holds a batch (``host:pid``), for ``worker_ttl`` seconds
  unless its heartbeat renews it; only the holder may record the batch's outcome.
- ``article:{site}:{guid}`` / ``article-url:{site}:{sha}``: SET NX guards, one push per article and site
  (``article:{guid}`` / ``article-url:{sha}`` before sites; the upgrade gives them to the default site).
- ``tmp:{kind}:{random}`` scratch keys a script removes before it returns.
- ``sub:{sid}``, ``subs:all``, ``subs:topic:{slug}``, ``subs:quarantined``: the first
  layout, read only by the migration (:mod:`notifier.subscriptions.legacy`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Subscription records per list: record ``n`` is at index ``n % 128`` of ``subs:rec:{n // 128}``.
RECORDS_PER_LIST = 128

# The subscription store's key names, shared by the Python methods and the Lua functions below.
SUBS_RECORDS = "subs:rec:"
SUBS_INDEX = "subs:ix:"
SUBS_INDEX_META = "subs:ixmeta"
SUBS_SEQ = "subs:seq"
SUBS_LIVE = "subs:live"
SUBS_TOPIC = "subs:t:"
SUBS_QUARANTINED = "subs:q"
SUBS_FAILURES = "subs:fails"
SUBS_FIRST_FAILURE = "subs:fail1"
SUBS_REJECTIONS = "subs:rejects"
SUBS_DAILY = "subs:daily:"
SUBS_SITE = "subs:site:"
SUBS_SERVICE = "subs:svc:"
SUBS_SERVICES_BUILT = "subs:svc-built"
SUBS_VAPID_KEY = "subs:vk:"
SUBS_VAPID_KEYS_BUILT = "subs:vk-built"
SUBS_UNSHOWN = "subs:unshown"
SUBS_UNREACHABLE = "subs:unreach"
SUBS_UNCLICKED = "subs:unclicked"
SUBS_OVER_BUDGET = "subs:budget"
READERS_SENT_DAY = "readers:sent:"
READERS_CLICKED_DAY = "readers:clicked:"
SITES = "sites"
SITES_MIGRATED = "sites:migrated"


@dataclass(frozen=True)
class Keys:
    """Key templates for one namespace prefix."""

    prefix: str = "notifier:"

    # -- subscriptions -------------------------------------------------------------------------

    def subs_records(self, bucket: int) -> str:
        """List of the records of subscriptions ``128 * bucket`` to ``128 * bucket + 127``."""
        return f"{self.prefix}{SUBS_RECORDS}{bucket}"

    def subs_record(self, n: int) -> tuple[str, int]:
        """(list key, index in it) of subscription ``n``'s record."""
        return f"{self.prefix}{SUBS_RECORDS}{n // RECORDS_PER_LIST}", n % RECORDS_PER_LIST

    def subs_index(self, bucket: int) -> str:
        """Hash endpoint digest → subscription id, one bucket of the linear-hashing index."""
        return f"{self.prefix}{SUBS_INDEX}{bucket}"

    @property
    def subs_index_meta(self) -> str:
        """Hash of the endpoint index's state: entries ``n``, round ``k``, next bucket to split ``s``."""
        return f"{self.prefix}{SUBS_INDEX_META}"

    @property
    def subs_seq(self) -> str:
        """Counter of subscription ids handed out (ids are never reused)."""
        return f"{self.prefix}{SUBS_SEQ}"

    @property
    def subs_live(self) -> str:
        """Bitmap of stored subscription ids."""
        return f"{self.prefix}{SUBS_LIVE}"

    def subs_topic(self, slug: str) -> str:
        """Bitmap of subscription ids following one topic."""
        return f"{self.prefix}{SUBS_TOPIC}{slug}"

    def subs_site(self, site: str) -> str:
        """Bitmap of the subscription ids of one site."""
        return f"{self.prefix}{SUBS_SITE}{site}"

    @property
    def sites(self) -> str:
        """Set of the site ids that hold subscriptions (the scripts clear a moved id in each)."""
        return f"{self.prefix}{SITES}"

    @property
    def sites_migrated(self) -> str:
        """String: the site that adopted the subscriptions and campaigns stored before sites existed."""
        return f"{self.prefix}{SITES_MIGRATED}"

    def subs_service(self, service: str) -> str:
        """Bitmap of the subscription ids whose endpoint is at one push service (``fcm``, ``apple`` ...)."""
        return f"{self.prefix}{SUBS_SERVICE}{service}"

    @property
    def subs_services_built(self) -> str:
        """String set once the push-service bitmaps hold the subscriptions stored before they existed."""
        return f"{self.prefix}{SUBS_SERVICES_BUILT}"

    def subs_vapid_key(self, key_id: str) -> str:
        """Bitmap of the subscription ids bound to one VAPID key (by key id): the readers it still holds."""
        return f"{self.prefix}{SUBS_VAPID_KEY}{key_id}"

    @property
    def subs_vapid_keys_built(self) -> str:
        """String set once the VAPID-key bitmaps hold the subscriptions stored before they existed."""
        return f"{self.prefix}{SUBS_VAPID_KEYS_BUILT}"

    def vapid_keys(self, site: str) -> str:
        """Hash key id → JSON (created, encrypted private key) of the VAPID keys a site rotated in."""
        return f"{self.prefix}vapid:keys:{site}"

    def vapid_current(self, site: str) -> str:
        """String: the key id a site's new readers subscribe with (absent: its configured key)."""
        return f"{self.prefix}vapid:current:{site}"

    def vapid_retired(self, site: str) -> str:
        """Set of the key ids a site no longer signs with."""
        return f"{self.prefix}vapid:retired:{site}"

    @property
    def vapid_version(self) -> str:
        """Counter bumped by every rotation and retirement: processes reload the key ring when it moves."""
        return f"{self.prefix}vapid:version"

    @property
    def subs_unshown(self) -> str:
        """BITFIELD of u8 counters by id: campaigns sent in a row that the reader's browser never showed."""
        return f"{self.prefix}{SUBS_UNSHOWN}"

    @property
    def subs_unreachable(self) -> str:
        """Bitmap of subscriptions that showed none of their last ``NOTIFIER_UNREACHABLE_AFTER`` pushes."""
        return f"{self.prefix}{SUBS_UNREACHABLE}"

    @property
    def subs_unclicked(self) -> str:
        """BITFIELD of u8 counters by id: pushes sent since the reader last clicked one."""
        return f"{self.prefix}{SUBS_UNCLICKED}"

    @property
    def subs_over_budget(self) -> str:
        """Bitmap of readers who clicked none of their last ``NOTIFIER_READER_BUDGET`` pushes."""
        return f"{self.prefix}{SUBS_OVER_BUDGET}"

    def readers_sent(self, day: str) -> str:
        """Bitmap of the subscription ids sent at least one push on ``day`` (UTC ``YYYY-MM-DD``)."""
        return f"{self.prefix}{READERS_SENT_DAY}{day}"

    def readers_clicked(self, day: str) -> str:
        """Bitmap of the subscription ids that clicked a push on ``day`` (UTC ``YYYY-MM-DD``)."""
        return f"{self.prefix}{READERS_CLICKED_DAY}{day}"

    def sent_daily(self, site: str) -> str:
        """Hash day → pushes one site's campaigns had accepted by push services that day."""
        return f"{self.prefix}metrics:site:{site}:sent-daily"

    def subs_daily_site(self, kind: str, site: str) -> str:
        """Hash day → count of one site's subscriptions ``added`` or ``removed``."""
        return f"{self.prefix}{SUBS_DAILY}{kind}:{site}"

    @property
    def subs_quarantined(self) -> str:
        """Bitmap of subscriptions kept out of fan-out after failing for days."""
        return f"{self.prefix}{SUBS_QUARANTINED}"

    @property
    def subs_failures(self) -> str:
        """Hash id → failed pushes in a row, for subscriptions currently failing."""
        return f"{self.prefix}{SUBS_FAILURES}"

    @property
    def subs_first_failure(self) -> str:
        """Hash id → unix time of the first failure of the current run."""
        return f"{self.prefix}{SUBS_FIRST_FAILURE}"

    @property
    def subs_rejections(self) -> str:
        """Hash id → push-service rejections (400/401/403) in a row, for subscriptions being rejected."""
        return f"{self.prefix}{SUBS_REJECTIONS}"

    def subs_daily(self, kind: str) -> str:
        """Hash day → count of subscriptions ``added`` or ``removed``."""
        return f"{self.prefix}{SUBS_DAILY}{kind}"

    # The first layout (before records in lists), read only by the migration.

    def legacy_subscription(self, sid: str) -> str:
        """Hash of one subscription in the first layout."""
        return f"{self.prefix}sub:{sid}"

    @property
    def legacy_all(self) -> str:
        """Set of every subscription id in the first layout."""
        return f"{self.prefix}subs:all"

    def legacy_topic(self, slug: str) -> str:
        """Set of the ids following one topic in the first layout (``*``: a SCAN pattern for all)."""
        return f"{self.prefix}subs:topic:{slug}"

    @property
    def legacy_quarantined(self) -> str:
        """Set of quarantined ids in the first layout."""
        return f"{self.prefix}subs:quarantined"

    def scratch(self, kind: str) -> str:
        """A fresh scratch key (``tmp:{kind}:{random}``) for a result its user removes at once."""
        return f"{self.prefix}tmp:{kind}:{os.urandom(8).hex()}"

    # -- campaigns -------------------------------------------------------------------------------

    def campaign(self, cid: str) -> str:
        """Hash of one campaign."""
        return f"{self.prefix}campaign:{cid}"

    @property
    def campaigns(self) -> str:
        """Sorted set of campaign ids by creation time."""
        return f"{self.prefix}campaigns"

    def campaigns_of_site(self, site: str) -> str:
        """Sorted set of one site's campaign ids by creation time."""
        return f"{self.prefix}campaigns:site:{site}"

    def campaign_batches_done(self, cid: str) -> str:
        """Set of batch ids a campaign has finished (each gave its unit of ``pending`` back)."""
        return f"{self.prefix}campaign:{cid}:batches:done"

    def campaign_batches_reserved(self, cid: str) -> str:
        """Set of batch ids that reserved a unit of ``pending`` (reserved-but-not-done: still owed)."""
        return f"{self.prefix}campaign:{cid}:batches:done:reserved"

    def batch_lease(self, cid: str, batch_id: str) -> str:
        """String: the run holding one batch of a campaign (expires unless renewed)."""
        return f"{self.prefix}campaign:{cid}:lease:{batch_id}"

    def campaign_audience(self, cid: str) -> str:
        """Bitmap snapshot of a campaign's audience, kept while it is being planned."""
        return f"{self.prefix}campaign:{cid}:audience"

    def campaign_held(self, cid: str) -> str:
        """List of subscription ids a paused campaign held back, sent on when it resumes."""
        return f"{self.prefix}campaign:{cid}:held"

    def campaign_timeline(self, cid: str) -> str:
        """Hash epoch-of-10-s-bucket:outcome → count, for charts of sends and clicks (any resolution)."""
        return f"{self.prefix}campaign:{cid}:timeline"

    def campaign_services(self, cid: str) -> str:
        """Hash service:outcome → count, outcomes by push service."""
        return f"{self.prefix}campaign:{cid}:services"

    def campaign_browsers(self, cid: str) -> str:
        """Hash browser-family:outcome → count: outcomes by the browser each reader subscribed with."""
        return f"{self.prefix}campaign:{cid}:browsers"

    def campaign_told(self, cid: str) -> str:
        """Hash state → unix time: the end states (done, paused, ...) a worker has already logged, once."""
        return f"{self.prefix}campaign:{cid}:told"

    def campaign_push(self, cid: str) -> str:
        """Hash ``{service}:{answered|accepted|gone|rejected}`` → count: a campaign's answers by service."""
        return f"{self.prefix}campaign:{cid}:push"

    def campaign_rejections_waiting(self, cid: str, service: str) -> str:
        """List of ids a service rejected before it accepted anything in the campaign (not counted yet)."""
        return f"{self.prefix}campaign:{cid}:rejections-waiting:{service}"

    def campaign_holds(self, cid: str) -> str:
        """Hash push service → reason, for the services a campaign is holding its messages back from."""
        return f"{self.prefix}campaign:{cid}:holds"

    def campaign_held_for(self, cid: str, service: str) -> str:
        """List of subscription ids a campaign holds back from one push service until it is resumed."""
        return f"{self.prefix}campaign:{cid}:held:{service}"

    def campaign_hold_until(self, cid: str) -> str:
        """Hash push service → ``until|status|seconds``: a long Retry-After a campaign waits out."""
        return f"{self.prefix}campaign:{cid}:hold-until"

    @property
    def hold_releases(self) -> str:
        """Sorted set ``cid|service|release id`` → when a campaign's long hold on a push service ends."""
        return f"{self.prefix}push:hold-releases"

    def campaign_receipts(self, cid: str, kind: str) -> str:
        """Set of subscription ids that reported ``shown`` or ``clicked`` (counted once)."""
        return f"{self.prefix}campaign:{cid}:receipts:{kind}"

    def receipt_repeats(self, token: str) -> str:
        """Counter of repeats of one receipt token in the current window (the per-token receipt limit)."""
        return f"{self.prefix}receipt-repeats:{token}"

    # -- accounts and sessions -------------------------------------------------------------------

    def token(self, digest: str) -> str:
        """Hash of one API token, by the SHA-256 of the token."""
        return f"{self.prefix}token:{digest}"

    @property
    def tokens(self) -> str:
        """Hash token name → digest."""
        return f"{self.prefix}tokens"

    def user(self, email: str) -> str:
        """Hash of one editor account."""
        return f"{self.prefix}user:{email.lower()}"

    @property
    def users(self) -> str:
        """Set of editor emails."""
        return f"{self.prefix}users"

    def rate_limit(self, route: str, amount: int, window: int, address: str = "") -> str:
        """List of one address's recent requests to ``route``, limited to ``amount`` per ``window`` s."""
        return f"{self.prefix}ratelimit:{route}:{amount}/{window}:{address}"

    def login_failures(self, who: str) -> str:
        """Counter of recent failed logins for an email or address."""
        return f"{self.prefix}login-failures:{who}"

    def user_subs(self, email: str) -> str:
        """Set of subscription ids of an editor's own browsers (for "send a test to me")."""
        return f"{self.prefix}user-subs:{email.lower()}"

    def login_throttle(self, email: str) -> str:
        """Hash ``fails``/``next``/``busy`` of one account's password checks (spacing out guesses)."""
        return f"{self.prefix}login-throttle:{email.lower()}"

    def login_known(self, email: str) -> str:
        """Sorted set client network → last successful login of one account (exempt from its backoff)."""
        return f"{self.prefix}login-known:{email.lower()}"

    def web_session(self, token: str) -> str:
        """String ``email|epoch`` of one logged-in newsroom session (deleted at logout; expires)."""
        return f"{self.prefix}web-session:{token}"

    # -- articles and feeds ----------------------------------------------------------------------

    def article(self, guid_digest: str, site: str) -> str:
        """SET NX guard: an article (by guid) pushes at most once per site."""
        return f"{self.prefix}article:{site}:{guid_digest}"

    def article_url(self, url_digest: str, site: str) -> str:
        """SET NX guard: an article (by URL) pushes at most once per site."""
        return f"{self.prefix}article-url:{site}:{url_digest}"

    @property
    def legacy_article_guards(self) -> tuple[str, str]:
        """SCAN patterns of the article guards of before sites (``article:{digest}``, no site part)."""
        return f"{self.prefix}article:*", f"{self.prefix}article-url:*"

    def legacy_article_guard(self, key: str, site: str) -> str | None:
        """The per-site name of a guard of before sites (None when ``key`` already has a site part)."""
        for kind in ("article:", "article-url:"):
            head = f"{self.prefix}{kind}"
            if key.startswith(head) and ":" not in key[len(head) :]:
                return f"{head}{site}:{key[len(head) :]}"
        return None

    def feed(self, fid: str) -> str:
        """Hash of one RSS/Atom feed."""
        return f"{self.prefix}feed:{fid}"

    @property
    def feeds(self) -> str:
        """Set of feed ids."""
        return f"{self.prefix}feeds"

    def feed_seen(self, fid: str) -> str:
        """Sorted set of item-guid digests a feed has already shown us, by first-seen time."""
        return f"{self.prefix}feed:{fid}:seen"

    def feed_lock(self, fid: str) -> str:
        """Lock held while one process polls a feed (a CLI poll and the periodic job never overlap)."""
        return f"{self.prefix}feed:{fid}:lock"

    @property
    def feed_poll_chain(self) -> str:
        """Tick id of the one live periodic feed-polling job chain (expires when the chain dies)."""
        return f"{self.prefix}feeds:poll-chain"

    def freq(self, sid: str) -> str:
        """Sorted set of recent non-breaking push times of one subscriber (frequency cap)."""
        return f"{self.prefix}freq:{sid}"

    # -- metrics and ops -------------------------------------------------------------------------

    def site_outcomes(self, site: str) -> str:
        """Hash service:outcome → count since the start, of one site's campaigns (/metrics ``site`` label)."""
        return f"{self.prefix}metrics:site:{site}:outcomes"

    @property
    def outcomes_total(self) -> str:
        """Hash service:outcome → count since the start (all campaigns)."""
        return f"{self.prefix}metrics:outcomes"

    @property
    def statuses_total(self) -> str:
        """Hash service:HTTP status → count since the start (all campaigns)."""
        return f"{self.prefix}metrics:status"

    @property
    def alerts(self) -> str:
        """Hash alert kind → ``time|cid|status|reason`` of the latest alert of that kind (ops banner)."""
        return f"{self.prefix}metrics:alerts"

    @property
    def push_holds(self) -> str:
        """Hash service → ``until|status|seconds|since``: services asking every worker to wait (429/503)."""
        return f"{self.prefix}push:holds"

    def throughput_minute(self, minute: int) -> str:
        """Hash second-epoch → messages finished, for one minute (epoch of its first second)."""
        return f"{self.prefix}metrics:tp:{minute}"

    @property
    def latency(self) -> str:
        """Hash bucket → count, histogram of per-message send latency."""
        return f"{self.prefix}metrics:latency"

    def status_minute(self, minute: int) -> str:
        """Hash service:status → count for one minute (epoch of its first second), for spike alerts."""
        return f"{self.prefix}metrics:status:{minute}"

    @property
    def ready_probe(self) -> str:
        """String the site's ``/readyz`` writes (60 s TTL): proof that Redis takes writes, not only PINGs."""
        return f"{self.prefix}ops:ready-probe"

    @property
    def push_breakers(self) -> str:
        """Hash ``{gone|key}:{service}`` → the trip (JSON): open per-service breakers (notifier.breakers)."""
        return f"{self.prefix}push:breakers"

    def push_held_deletions(self, service: str) -> str:
        """Hash sid → ``p256dh|status|time|cid``: a service's gone answers held for review, not deleted."""
        return f"{self.prefix}push:held-deletions:{service}"

    @property
    def push_held_services(self) -> str:
        """Set of the push services with held deletions waiting for review."""
        return f"{self.prefix}push:held-services"

    def push_recent(self, service: str) -> str:
        """List of a push service's newest batches' answers, ``answered|gone|time|abnormal`` (all workers)."""
        return f"{self.prefix}push:recent:{service}"

    def push_held_campaigns(self, service: str) -> str:
        """Set of the campaigns whose messages a service's held deletions missed (``campaign_missed``)."""
        return f"{self.prefix}push:held-campaigns:{service}"

    def campaign_missed(self, cid: str, service: str) -> str:
        """Set of the readers a campaign missed because their service's gone answer was held for review."""
        return f"{self.prefix}campaign:{cid}:missed:{service}"

    def campaign_resent(self, cid: str) -> str:
        """Set of the readers a campaign was sent again after a restore (each at most once)."""
        return f"{self.prefix}campaign:{cid}:resent"

    @property
    def push_probes(self) -> str:
        """Hash service → the half-open state of its open breakers (JSON, notifier.breakers.Probe)."""
        return f"{self.prefix}push:probes"

    @property
    def push_recoveries(self) -> str:
        """Hash service → how many times its breakers closed by themselves after a healthy sample."""
        return f"{self.prefix}push:recoveries"

    def push_gone_pending(self, service: str) -> str:
        """Hash sid → ``status|p256dh|index field|cid``: gone answers waiting for normal answers to delete."""
        return f"{self.prefix}push:gone-pending:{service}"

    def push_daily(self, day: str) -> str:
        """Hash ``{service}:answered`` / ``{service}:pruned`` → count for one UTC day (normal gone rates)."""
        return f"{self.prefix}push:daily:{day}"

    @property
    def workers_seen(self) -> str:
        """Sorted set worker name → unix time of its last heartbeat (kept after RQ forgets a worker)."""
        return f"{self.prefix}ops:workers:seen"

    @property
    def workers_info(self) -> str:
        """Hash worker name → JSON (host, pid, ttl, heartbeat deadline, stopped) for the ops view."""
        return f"{self.prefix}ops:workers:info"


def _lua(text: str) -> str:
    """A Lua string literal (the names are plain ASCII without quotes or backslashes)."""
    assert "'" not in text and "\\" not in text
    return f"'{text}'"


def lua_key_functions() -> str:
    """Lua functions naming the subscription store's keys exactly as :class:`Keys` does.

    The prelude of every subscription script: each function takes the key prefix ``p``
    the script was given, so no script spells a key name or the records-per-list itself.
    """
    per = RECORDS_PER_LIST
    return f"""
local function subs_record_key(p, n)
  return p .. {_lua(SUBS_RECORDS)} .. string.format('%d', math.floor(n / {per})), n % {per}
end
local function subs_index_key(p, b) return p .. {_lua(SUBS_INDEX)} .. string.format('%d', b) end
local function subs_index_meta_key(p) return p .. {_lua(SUBS_INDEX_META)} end
local function subs_seq_key(p) return p .. {_lua(SUBS_SEQ)} end
local function subs_live_key(p) return p .. {_lua(SUBS_LIVE)} end
local function subs_topic_key(p, slug) return p .. {_lua(SUBS_TOPIC)} .. slug end
local function subs_quarantined_key(p) return p .. {_lua(SUBS_QUARANTINED)} end
local function subs_failures_key(p) return p .. {_lua(SUBS_FAILURES)} end
local function subs_first_failure_key(p) return p .. {_lua(SUBS_FIRST_FAILURE)} end
local function subs_rejections_key(p) return p .. {_lua(SUBS_REJECTIONS)} end
local function subs_daily_key(p, kind) return p .. {_lua(SUBS_DAILY)} .. kind end
local function subs_daily_site_key(p, kind, site) return p .. {_lua(SUBS_DAILY)} .. kind .. ':' .. site end
local function subs_site_key(p, site) return p .. {_lua(SUBS_SITE)} .. site end
local function subs_service_key(p, service) return p .. {_lua(SUBS_SERVICE)} .. service end
local function subs_unshown_key(p) return p .. {_lua(SUBS_UNSHOWN)} end
local function subs_vapid_key_key(p, key_id) return p .. {_lua(SUBS_VAPID_KEY)} .. key_id end
local function subs_unreachable_key(p) return p .. {_lua(SUBS_UNREACHABLE)} end
local function subs_unclicked_key(p) return p .. {_lua(SUBS_UNCLICKED)} end
local function subs_over_budget_key(p) return p .. {_lua(SUBS_OVER_BUDGET)} end
local function readers_sent_key(p, day) return p .. {_lua(READERS_SENT_DAY)} .. day end
local function readers_clicked_key(p, day) return p .. {_lua(READERS_CLICKED_DAY)} .. day end
local function sites_key(p) return p .. {_lua(SITES)} end
local function sites_migrated_key(p) return p .. {_lua(SITES_MIGRATED)} end
"""
