"""Data stored by earlier releases, moved into the current model when a worker starts.

Each move is idempotent and safe to run from several workers at once, so a deploy needs no
separate migration step:

- subscriptions of the first layout (a hash each) become records (:func:`migrate_legacy`);
- everything stored before sites existed (subscriptions, campaigns, newsroom accounts' roles, the
  one-push-per-article guards) becomes the default site's.
  The subscriptions' move is one script that also sets ``sites:migrated``, so it runs once; the
  campaigns' runs first and is repeated until then (it only writes campaigns without a site);
- subscriptions stored before the push-service bitmaps existed join their service's bitmap, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from notifier.campaigns import migrate_campaign_sites
from notifier.context import Context
from notifier.subscriptions import migrate_legacy, migrate_sites


@dataclass(frozen=True)
class Upgraded:
    """What one start-up moved."""

    legacy_subscriptions: int = 0
    campaigns_to_site: int = 0
    subscriptions_to_site: int = -1
    accounts_to_site: int = 0
    guards_to_site: int = 0
    service_bitmaps: int = -1

    def lines(self, default_site: str) -> list[str]:
        """Log lines for what was moved (none when nothing was)."""
        out = []
        if self.legacy_subscriptions:
            out.append(f"moved {self.legacy_subscriptions} subscriptions from the first storage layout")
        if self.campaigns_to_site:
            out.append(f"gave {self.campaigns_to_site} campaigns of before sites to site {default_site!r}")
        if self.guards_to_site:
            out.append(f"gave {self.guards_to_site} article guards of before sites to {default_site!r}")
        if self.accounts_to_site:
            out.append(
                f"gave {self.accounts_to_site} editor/ops accounts their role on site {default_site!r}"
            )
        if self.subscriptions_to_site >= 0:
            out.append(
                f"site {default_site!r} adopted the subscriptions of before sites; "
                f"it has {self.subscriptions_to_site} now"
            )
        if self.service_bitmaps >= 0:
            out.append(f"placed {self.service_bitmaps} subscriptions in their push service's bitmap")
        return out


def upgrade(context: Context) -> Upgraded:
    """Run every move of earlier data that is still due; returns what was moved."""
    legacy = migrate_legacy(context.subscriptions)
    services = context.subscriptions.build_service_bitmaps()
    context.subscriptions.build_key_bitmaps()
    if context.redis.exists(context.keys.sites_migrated):
        return Upgraded(legacy_subscriptions=legacy, service_bitmaps=services)
    default = context.sites.default_id
    campaigns = migrate_campaign_sites(context.redis, context.keys, default)
    accounts = context.users.adopt_legacy(default)
    guards = migrate_article_guards(context, default)
    subscriptions = migrate_sites(context.subscriptions, default)
    return Upgraded(
        legacy_subscriptions=legacy,
        campaigns_to_site=campaigns,
        subscriptions_to_site=subscriptions,
        accounts_to_site=accounts,
        guards_to_site=guards,
        service_bitmaps=services,
    )


def migrate_article_guards(context: Context, default_site: str) -> int:
    """Rename the one-push-per-article guards of before sites to the default site's (TTL kept)."""
    r, keys = context.redis, context.keys
    moved = 0
    for pattern in keys.legacy_article_guards:
        for key in list(r.scan_iter(match=pattern, count=1000)):
            target = keys.legacy_article_guard(key, default_site)
            if target is not None and r.renamenx(key, target):
                moved += 1
    return moved
