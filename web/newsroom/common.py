"""The newsroom's shared helpers: the account, its sites and campaigns, names and times in its language."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import gettext as _
from flask_babel import pgettext

from notifier.campaigns import (
    Campaign,
    CampaignStore,
)
from notifier.errors import Forbidden, NotFound
from notifier.sites import Site
from notifier.users import User
from web.auth import current_user
from web.context import ctx
from web.i18n import current_lang


def state_name(state: str) -> str:
    """A campaign state in the page language."""
    names = {
        "draft": pgettext("campaign state", "draft"),
        "scheduled": pgettext("campaign state", "scheduled"),
        "planning": pgettext("campaign state", "preparing"),
        "sending": pgettext("campaign state", "sending"),
        "paused": pgettext("campaign state", "paused"),
        "done": pgettext("campaign state", "done"),
        "cancelled": pgettext("campaign state", "cancelled"),
        "failed": pgettext("campaign state", "failed"),
    }
    return names.get(state, state)


def source_name(source: str) -> str:
    """Where a campaign came from, in the page language."""
    names = {
        "editor": _("newsroom"),
        "api": _("API"),
        "cms": _("CMS webhook"),
        "feed": _("RSS feed"),
        "test": _("test send"),
        "cli": _("command line"),
    }
    return names.get(source, source)


def campaign_store() -> CampaignStore:
    c = ctx()
    return CampaignStore(c.redis, c.keys)


def account() -> User:
    user = current_user()
    if user is None:  # require_role ran first; this keeps the type checker honest
        raise NotFound("no logged-in account")
    return user


def editor_sites(*roles: str) -> list[Site]:
    """The sites where the logged-in account has one of ``roles`` (an admin: every site), in order."""
    allowed = account().sites_for(*roles)
    return [s for s in ctx().sites if allowed is None or s.id in allowed]


def site_for(site_id: str | None, *roles: str) -> Site:
    """The site ``site_id`` names (none: the first the account may use) when the account has ``roles`` there.

    Another site's id is answered like an unknown one: an editor of site A learns nothing of site B.
    """
    sites = editor_sites(*roles)
    if not sites:
        raise Forbidden(
            _("This account works on no site; an administrator can add one on the Accounts page.")
        )
    if not site_id:
        return sites[0]
    found = next((s for s in sites if s.id == site_id), None)
    if found is None:
        raise NotFound(_("There is no site %(site)s for this account.", site=repr(site_id[:40])))
    return found


def campaign_for(cid: str, *roles: str) -> Campaign:
    """A campaign of a site where the account has ``roles``; another site's is answered as not found."""
    item = campaign_store().get(cid)
    if not account().has_role(*roles, site=item.site):
        raise NotFound(_("There is no such campaign (deleted, or a mistyped address)."))
    return item


def newsroom_zone(site: Site | str | None = None) -> ZoneInfo:
    """The time zone times of ``site`` are shown and entered in: the site's (``timezone`` in its entry),
    else the deployment's ``NOTIFIER_TIMEZONE``; with no site (accounts, the deployment), the latter.

    A campaign's times are its site's, as its quiet hours are: an editor of a site in Makassar schedules
    08:00 WITA, whatever zone the deployment runs in.
    """
    c = ctx()
    if site is None or site == "":
        return ZoneInfo(c.settings.timezone)
    found = site if isinstance(site, Site) else c.sites.find(site)
    return ZoneInfo((found or c.sites.default).zone(c.settings))


def zone_label(zone: ZoneInfo, at: float | None = None) -> str:
    """``Asia/Makassar, WITA``: the zone's name and its abbreviation now (or at ``at``)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, zone)
    abbr = moment.strftime("%Z")
    return f"{zone.key}, {abbr}" if abbr and abbr != zone.key else zone.key


def newsroom_time(ts: float | None, site: Site | str | None = None) -> str:
    """A unix time in the site's time zone (:func:`newsroom_zone`) and the page language,
    e.g. ``3 Mei 2025 14.05 WIB``."""
    if not ts:
        return "—"
    moment = datetime.fromtimestamp(ts, newsroom_zone(site))
    lang = current_lang()
    try:
        text = format_datetime(moment, "d MMM y HH:mm", locale=lang)
    except (ValueError, LookupError):
        text = format_datetime(moment, "d MMM y HH:mm", locale="id")
    return f"{text} {moment.strftime('%Z')}"
