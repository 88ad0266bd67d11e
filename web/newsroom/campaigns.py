"""The campaign list, the live campaign page and its JSON, the readers panel; cancel, duplicate, approve."""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape

from notifier import stats
from notifier.campaigns import (
    DRAFT,
    FINAL,
    Campaign,
)
from notifier.errors import Conflict, NotFound
from web.auth import error_page, require_role
from web.context import ctx
from web.errors import json_error
from web.i18n import current_lang, number
from web.names import SERVICE_NAMES, browser_names, service_name
from web.newsroom.common import (
    account,
    campaign_for,
    campaign_store,
    newsroom_zone,
    state_name,
    zone_label,
)
from web.newsroom.compose import URGENCY_NAMES
from workers.jobs import launch

#: Campaigns per page of the list.
PAGE_SIZE = 20


def timeline_step(span: float) -> int:
    """Seconds per chart bar for a campaign that has been sending for ``span`` seconds."""
    if span <= 5 * 60:
        return 10
    if span <= 3 * 3600:
        return 60
    return 600


def _campaign_json(campaign: Campaign) -> dict[str, Any]:
    store = campaign_store()
    now = time.time()
    data = campaign.info()
    raw = store.timeline(campaign.cid)
    start = campaign.first_sent or campaign.started or (min(raw) if raw else now)
    end = campaign.finished or now
    step = timeline_step(max(0.0, end - start))
    timeline: dict[int, dict[str, int]] = {}
    for stamp, counts in raw.items():
        slot = timeline.setdefault(stamp // step * step, {})
        for counter, n in counts.items():
            slot[counter] = slot.get(counter, 0) + n
    services = store.services(campaign.cid)
    data["timeline"] = [{"t": t, **timeline[t]} for t in sorted(timeline)]
    data["step"] = step
    data["services"] = services
    data["service_names"] = {name: service_name(name) for name in services}
    browsers = store.browsers(campaign.cid)
    names = browser_names()
    data["browsers"] = browsers
    data["browser_names"] = {family: names.get(family, family) for family in browsers}
    data["final"] = campaign.state in FINAL
    data["state_name"] = state_name(campaign.state)
    data["now"] = now
    # Readers not reached yet (now, not a running total: "deferred" counts every wait of every message).
    data["left"] = max(0, campaign.counters["total"] - campaign.done_count)
    data.update(stats.campaign_rates(ctx().redis, ctx().keys, campaign, now=now))  # as ops shows them
    data["holds"] = _holds_for(services, now) if data["left"] and not data["final"] else []
    c = ctx()
    data["left_out"] = stats.left_out(c.subscriptions, campaign, c.sites, c.settings)
    return data


def _holds_for(services: dict[str, dict[str, int]], now: float) -> list[dict[str, Any]]:
    """Push services this campaign sends to that asked us to wait, and until when.

    Holds name a service by ``notifier.browsers.service_id`` (``host:port`` for one that is not one of
    the big four), the campaign's figures by ``push_service`` (``other`` for those): both are matched.
    """
    c = ctx()
    rows = []
    for hold in stats.push_holds(c.redis, c.keys, now=now):
        service = hold["service"]
        if service in services or (service not in SERVICE_NAMES and "other" in services):
            rows.append({**hold, "name": service_name(service)})
    return rows


@require_role("editor", "ops")
def readers() -> Response:
    """Reader health: pushes per reader per day, readers who clicked in 30 days, campaigns by CTR, budget.

    What Chrome judges a site by (pushes per minute of reader time, engagement) before it caps the
    site's pushes for days: the newsroom sees it here, per site it may see.
    """
    c = ctx()
    visible = account().sites_for("editor", "ops")
    sites = [s for s in c.sites if visible is None or s.id in visible]
    panels = [
        {
            "site": site,
            "health": stats.reader_health(c.redis, c.keys, site=site.id),
            # Each site's own rules (the sites file may override the deployment's).
            "budget": site.budget(c.settings),
            "unreachable_after": site.unreachable(c.settings),
            "freq_cap": site.freq_cap(c.settings),
        }
        for site in sites
    ]
    html = render_template("editor/readers.html", panels=panels, several=len(c.sites) > 1)
    return Response(html, mimetype="text/html")


@require_role("editor", "ops")
def campaigns() -> Response:
    """Campaigns of the account's sites, newest first, paginated."""
    store = campaign_store()
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    visible = account().sites_for("editor", "ops")
    total = store.count(sites=visible)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    items = store.list((page - 1) * PAGE_SIZE, PAGE_SIZE, sites=visible)
    names = {s.id: s.name for s in ctx().sites}
    html = render_template(
        "editor/campaigns.html",
        campaigns=items,
        page=page,
        pages=pages,
        total=total,
        site_names=names if len(ctx().sites) > 1 else {},
    )
    return Response(html, mimetype="text/html")


@require_role("editor", "ops")
def campaign(cid: str) -> Response:
    """One campaign: state, live progress, counters, chart, outcomes by push service, actions."""
    item = campaign_for(cid, "editor", "ops")
    c = ctx()
    site = c.sites.find(item.site)
    site_topics = site.topics if site else c.topics
    data = _campaign_json(item)
    html = render_template(
        "editor/campaign.html",
        c=item,
        progress_line=escape(_("%(done)s of %(total)s readers"))
        % {
            "done": Markup('<span id="done-count">{}</span>').format(number(item.done_count)),
            "total": Markup('<span id="total-count">{}</span>').format(number(item.counters["total"])),
        },
        data=data,
        final=FINAL,
        # A draft waiting for approval goes to what compose counts: an urgent one to every follower,
        # another to those not left out (notifier.stats.left_out).
        audience_size=data["left_out"]["readers"] if item.state == DRAFT else None,
        left_out_line=escape(_("left out: %(unreachable)s unreachable, %(over_budget)s over budget"))
        % {
            "unreachable": Markup('<span id="left-out-unreachable">{}</span>').format(
                number(data["left_out"]["unreachable"])
            ),
            "over_budget": Markup('<span id="left-out-over-budget">{}</span>').format(
                number(data["left_out"]["over_budget"])
            ),
        },
        topic_names={t.slug: t.name(current_lang()) for t in site_topics},
        campaign_site=(site.name if site else item.site) if len(c.sites) > 1 else "",
        json_url=url_for("editor.campaign_json", cid=cid),
        timezone=newsroom_zone(site or item.site).key,
        zone_label=zone_label(newsroom_zone(site or item.site)),
        urgency_names=URGENCY_NAMES,
    )
    return Response(html, mimetype="text/html")


@require_role("editor", "ops")
def campaign_json(cid: str) -> Response:
    """State, counters, timeline and outcomes by service, polled by the campaign page."""
    try:
        return jsonify(_campaign_json(campaign_for(cid, "editor", "ops")))
    except NotFound:
        return json_error(404, "not_found", _("There is no such campaign (deleted, or a mistyped address)."))


@require_role("editor", "ops")
def cancel(cid: str) -> ResponseReturnValue:
    """Stop a campaign that has not finished (batches in flight stop within a second or two)."""
    store = campaign_store()
    item = campaign_for(cid, "editor", "ops")
    if item.state in FINAL:
        raise Conflict(
            _("This campaign is already %(state)s: nothing to cancel.", state=state_name(item.state))
        )
    store.cancel(cid)
    flash(_("Campaign cancelled. Messages already handed to push services cannot be called back."), "ok")
    return redirect(url_for("editor.campaign", cid=cid))


@require_role("editor")
def duplicate(cid: str) -> ResponseReturnValue:
    """Copy a campaign into a new draft."""
    campaign_for(cid, "editor")
    new = campaign_store().duplicate(cid, created_by=account().email)
    flash(_("Copied into a new draft."), "ok")
    return redirect(url_for("editor.campaign", cid=new))


@require_role("editor")
def approve(cid: str) -> ResponseReturnValue:
    """Approve a draft: schedule it and start it now (or at its send time)."""
    c = ctx()
    store = campaign_store()
    item = campaign_for(cid, "editor")
    if item.state != DRAFT:
        raise Conflict(_("This campaign is %(state)s, not a draft.", state=state_name(item.state)))
    if not item.topics and not request.form.get("confirm_everyone"):
        size = c.subscriptions.audience_size((), site=item.site)
        return error_page(
            409,
            _("Confirmation needed"),
            ngettext(
                "This draft has no topic, so it goes to ALL %(count)s subscriber: tick the confirmation on "
                "the campaign page and approve again.",
                "This draft has no topic, so it goes to ALL %(count)s subscribers: tick the confirmation on "
                "the campaign page and approve again.",
                size,
                count=number(size),
            ),
        )
    if not store.approve(cid, account().email):
        raise Conflict(_("Someone else approved or cancelled this draft a moment ago."))
    send_at = item.send_at if item.send_at and item.send_at > time.time() else None
    flash(_("Draft approved: sending.") if send_at is None else _("Draft approved and scheduled."), "ok")
    launch(c.raw_redis, cid, send_at)
    return redirect(url_for("editor.campaign", cid=cid))
