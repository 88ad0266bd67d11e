"""Redis key names, built in one place under one prefix.

Data model (docs/design-notes.md tells why it is laid out so):

- ``subs:rec:{n // 128}`` list of subscription records (one string each, see
  notifier.subscriptions); ``subs:ix:{bucket}`` hashes endpoint digest → id,
  grown by linear hashing (``subs:ixmeta``); ``subs:seq`` ids handed out.
- ``subs:live``, ``subs:t:{slug}``, ``subs:q`` bitmaps by id: everyone, each
  topic, quarantined. ``subs:fails`` / ``subs:fail1`` hashes: current failure runs.
- ``campaign:{cid}`` hash: payload fields, audience, state, counters, timestamps.
- ``campaigns`` sorted set of cids by creation time.
- ``campaign:{cid}:batches:done`` set of finished batch numbers (idempotent retries).
- ``campaign:{cid}:final`` set of sids that reached a final outcome (a retried batch skips them).
- ``article:{guid}`` / ``article-url:{sha}``: SET NX guards, one push per article.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key templates for one namespace prefix."""

    prefix: str = "notifier:"

    def subs_records(self, bucket: int) -> str:
        """List of the records of subscriptions ``128 * bucket`` to ``128 * bucket + 127``."""
        return f"{self.prefix}subs:rec:{bucket}"

    def subs_index(self, bucket: int) -> str:
        """Hash endpoint digest → subscription id, one bucket of the linear-hashing index."""
        return f"{self.prefix}subs:ix:{bucket}"

    @property
    def subs_index_meta(self) -> str:
        """Hash of the endpoint index's state: entries ``n``, round ``k``, next bucket to split ``s``."""
        return f"{self.prefix}subs:ixmeta"

    @property
    def subs_seq(self) -> str:
        """Counter of subscription ids handed out (ids are never reused)."""
        return f"{self.prefix}subs:seq"

    @property
    def subs_live(self) -> str:
        """Bitmap of stored subscription ids."""
        return f"{self.prefix}subs:live"

    def subs_topic(self, slug: str) -> str:
        """Bitmap of subscription ids following one topic."""
        return f"{self.prefix}subs:t:{slug}"

    @property
    def subs_quarantined(self) -> str:
        """Bitmap of subscriptions kept out of fan-out after failing for days."""
        return f"{self.prefix}subs:q"

    @property
    def subs_failures(self) -> str:
        """Hash id → failed pushes in a row, for subscriptions currently failing."""
        return f"{self.prefix}subs:fails"

    @property
    def subs_first_failure(self) -> str:
        """Hash id → unix time of the first failure of the current run."""
        return f"{self.prefix}subs:fail1"

    def subs_daily(self, kind: str) -> str:
        """Hash day → count of subscriptions ``added`` or ``removed``."""
        return f"{self.prefix}subs:daily:{kind}"

    def campaign(self, cid: str) -> str:
        """Hash of one campaign."""
        return f"{self.prefix}campaign:{cid}"

    @property
    def campaigns(self) -> str:
        """Sorted set of campaign ids by creation time."""
        return f"{self.prefix}campaigns"

    def campaign_batches_done(self, cid: str) -> str:
        """Set of batch numbers a campaign has finished."""
        return f"{self.prefix}campaign:{cid}:batches:done"

    def campaign_delivered(self, cid: str) -> str:
        """Set of subscription ids that reached a final outcome for a campaign."""
        return f"{self.prefix}campaign:{cid}:final"

    def campaign_batch(self, cid: str, batch: int) -> str:
        """List of subscription ids in one planned batch."""
        return f"{self.prefix}campaign:{cid}:batch:{batch}"

    def campaign_timeline(self, cid: str) -> str:
        """Hash minute-epoch:outcome → count, for charts of sends and clicks."""
        return f"{self.prefix}campaign:{cid}:timeline"

    def campaign_services(self, cid: str) -> str:
        """Hash service:outcome → count, outcomes by push service."""
        return f"{self.prefix}campaign:{cid}:services"

    def campaign_receipts(self, cid: str, kind: str) -> str:
        """Set of subscription ids that reported ``shown`` or ``clicked`` (counted once)."""
        return f"{self.prefix}campaign:{cid}:receipts:{kind}"

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

    @property
    def rate_limit_prefix(self) -> str:
        """Prefix of Flask-Limiter's per-address counters (``limits`` appends its own key parts)."""
        return f"{self.prefix}ratelimit"

    def login_failures(self, who: str) -> str:
        """Counter of recent failed logins for an email or address."""
        return f"{self.prefix}login-failures:{who}"

    def user_subs(self, email: str) -> str:
        """Set of subscription ids of an editor's own browsers (for "send a test to me")."""
        return f"{self.prefix}user-subs:{email.lower()}"

    def web_session(self, token: str) -> str:
        """String email of one logged-in newsroom session (deleted at logout; expires)."""
        return f"{self.prefix}web-session:{token}"

    def article(self, guid_digest: str) -> str:
        """SET NX guard: an article (by guid) pushes at most once."""
        return f"{self.prefix}article:{guid_digest}"

    def article_url(self, url_digest: str) -> str:
        """SET NX guard: an article (by URL) pushes at most once."""
        return f"{self.prefix}article-url:{url_digest}"

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

    def metrics(self, name: str) -> str:
        """Hash of a global counter family (outcomes by service and status, etc.)."""
        return f"{self.prefix}metrics:{name}"

    @property
    def throughput(self) -> str:
        """Hash second-epoch → messages finished, for the throughput chart."""
        return f"{self.prefix}metrics:throughput"

    @property
    def latency(self) -> str:
        """Hash bucket → count, histogram of per-message send latency."""
        return f"{self.prefix}metrics:latency"

    def status_minute(self, minute: int) -> str:
        """Hash service:status → count for one minute (epoch of its first second), for spike alerts."""
        return f"{self.prefix}metrics:status:{minute}"

    @property
    def workers_seen(self) -> str:
        """Sorted set worker name → unix time of its last heartbeat (kept after RQ forgets a worker)."""
        return f"{self.prefix}ops:workers:seen"

    @property
    def workers_info(self) -> str:
        """Hash worker name → JSON (host, pid, ttl, heartbeat deadline, stopped) for the ops view."""
        return f"{self.prefix}ops:workers:info"
