"""Compose and send: the form and its checks in the page language, test sends, audience and budget figures."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext

from notifier import stats
from notifier.campaigns import (
    BODY_MAX,
    DRAFT,
    TITLE_MAX,
    TTL_MAX,
    URGENCIES,
    CampaignInput,
    payload_size,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import ValidationError
from notifier.sites import Site
from notifier.users import User
from web.auth import require_role
from web.context import ctx
from web.errors import json_error
from web.i18n import current_lang, number
from web.newsroom.common import (
    account,
    campaign_store,
    editor_sites,
    newsroom_time,
    newsroom_zone,
    site_for,
)
from workers.jobs import enqueue_test_send, launch

#: Soft display limits the counters warn at (characters). Browsers cut longer text, they do not refuse it:
#: Chrome on Android shows about 50 characters of the title and ~120 of the body in the expanded
#: notification (one line of each when collapsed); Windows' notification centre shows ~60 / ~150;
#: macOS banners show ~40 / ~90 (two body lines). 50 and 120 keep the headline whole on phones.
TITLE_SHOWN = 50


BODY_SHOWN = 120


#: TTL choices of the compose form (seconds); empty means the default (6 h urgent, 24 h otherwise).
TTL_CHOICES = (
    (3600, lazy_gettext("1 hour")),
    (3 * 3600, lazy_gettext("3 hours")),
    (6 * 3600, lazy_gettext("6 hours")),
    (12 * 3600, lazy_gettext("12 hours")),
    (86400, lazy_gettext("1 day")),
    (3 * 86400, lazy_gettext("3 days")),
    (7 * 86400, lazy_gettext("7 days")),
    (TTL_MAX, lazy_gettext("28 days")),
)


#: Web Push urgencies as the compose form names them.
URGENCY_NAMES = {
    "very-low": lazy_gettext("very low (may wait for Wi-Fi and charging)"),
    "low": lazy_gettext("low"),
    "normal": lazy_gettext("normal"),
    "high": lazy_gettext("high (wakes the phone at once)"),
}


def _form_values(source: Any) -> dict[str, Any]:
    """The compose form's fields as the template shows them (from a request form or defaults)."""
    get = source.get
    return {
        "title": get("title", ""),
        "body": get("body", ""),
        "url": get("url", ""),
        "image": get("image", ""),
        "topics": list(source.getlist("topics")) if hasattr(source, "getlist") else list(get("topics", [])),
        "urgency": get("urgency", ""),
        "ttl": get("ttl", ""),
        "breaking": bool(get("breaking")),
        "when": get("when", "now"),
        "send_at": get("send_at", ""),
        "confirm_everyone": bool(get("confirm_everyone")),
        "site": get("site", ""),
    }


def local_to_iso(value: str, site: Site) -> str:
    """``YYYY-MM-DDTHH:MM`` in the site's time zone → ISO 8601 with its offset."""
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
    except ValueError as exc:
        raise ValidationError(
            _("The send time %(value)s is not a date and time (YYYY-MM-DD HH:MM).", value=repr(value[:40]))
        ) from exc
    return moment.replace(tzinfo=newsroom_zone(site)).isoformat()


def _url_problem(value: str, *, required: bool) -> str:
    """Why an article or image URL cannot be used, in the page language; empty when it can."""
    value = value.strip()
    if not value:
        return _("Enter the article's address.") if required else ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _("Use a full address that starts with https://.")
    if len(value) > 2048 or any(ch in value for ch in "\x00\r\n\t<>\"' "):
        return _("This address has characters (spaces, quotes) that cannot be in a URL.")
    return ""


def field_errors(values: dict[str, Any], site: Site) -> dict[str, str]:
    """Every refusal of the compose form, by field, in the page language (the domain re-checks)."""
    errors: dict[str, str] = {}
    title = " ".join(values["title"].split())
    body = values["body"].strip()
    if not title:
        errors["title"] = _("Write a title: it is the line readers see first.")
    elif len(title) > TITLE_MAX:
        errors["title"] = _(
            "The title has %(n)s characters; at most %(max)s.", n=number(len(title)), max=number(TITLE_MAX)
        )
    if not body:
        errors["body"] = _("Write the text under the title (one or two sentences).")
    elif len(body) > BODY_MAX:
        errors["body"] = _(
            "The text has %(n)s characters; at most %(max)s.", n=number(len(body)), max=number(BODY_MAX)
        )
    for name, required in (("url", True), ("image", False)):
        problem = _url_problem(values[name], required=required)
        if problem:
            errors[name] = problem
    unknown = [t for t in values["topics"] if t not in set(site.topic_slugs)]
    if unknown:
        errors["topics"] = _("Unknown topic: %(topics)s.", topics=", ".join(unknown)[:80])
    if values["when"] == "later":
        if not values["send_at"]:
            errors["send_at"] = _("Choose the send time, or choose “Send now”.")
        else:
            try:
                moment = datetime.strptime(values["send_at"].strip(), "%Y-%m-%dT%H:%M").replace(
                    tzinfo=newsroom_zone(site)
                )
            except ValueError:
                errors["send_at"] = _("This is not a date and time (YYYY-MM-DD HH:MM).")
            else:
                if moment.timestamp() < time.time() - 60:
                    errors["send_at"] = _("This time has passed. Choose a later one, or “Send now”.")
                elif moment.timestamp() > time.time() + 365 * 86400:
                    errors["send_at"] = _("Choose a time within the next year.")
    if not errors:
        size = payload_size(title, body, values["url"].strip(), values["image"].strip())
        if size > MAX_PLAINTEXT:
            errors["body"] = _(
                "Too long to send: %(size)s bytes, a push message holds %(max)s. Shorten the title or text, "
                "or use a shorter address.",
                size=number(size),
                max=number(MAX_PLAINTEXT),
            )
    return errors


def _campaign_data(values: dict[str, Any], site: Site) -> dict[str, Any]:
    """The compose form as the dict :func:`validate_campaign` checks."""
    data: dict[str, Any] = {
        "title": values["title"],
        "body": values["body"],
        "url": values["url"],
        "image": values["image"],
        "topics": values["topics"],
        "breaking": values["breaking"],
        "urgency": values["urgency"] or None,
    }
    if values["ttl"]:
        try:
            data["ttl"] = int(values["ttl"])
        except ValueError as exc:
            raise ValidationError(_("Choose how long the alert stays valid from the list.")) from exc
    if values["when"] == "later":
        if not values["send_at"]:
            raise ValidationError(_("Choose the send time, or choose “Send now”."))
        data["send_at"] = local_to_iso(values["send_at"], site)
    return data


def send_label(size: int, *, everyone: bool, later: bool) -> str:
    """The send button: what it does and to how many readers (``Kirim ke 2.007 pelanggan``)."""
    count = number(size)
    if later:
        if everyone:
            return ngettext(
                "Schedule for all %(count)s subscriber",
                "Schedule for all %(count)s subscribers",
                size,
                count=count,
            )
        return ngettext(
            "Schedule for %(count)s subscriber", "Schedule for %(count)s subscribers", size, count=count
        )
    if everyone:
        return ngettext(
            "Send to all %(count)s subscriber", "Send to all %(count)s subscribers", size, count=count
        )
    return ngettext("Send to %(count)s subscriber", "Send to %(count)s subscribers", size, count=count)


def _render_compose(
    values: dict[str, Any],
    *,
    error: str = "",
    errors: dict[str, str] | None = None,
    review: bool = False,
    status: int = 200,
) -> Response:
    c = ctx()
    user = account()
    site = site_for(values["site"], "editor")
    values["site"] = site.id
    domains = c.fetch_domains(site)
    zone = newsroom_zone(site)
    now_local = datetime.fromtimestamp(time.time(), zone)
    detail = audience_of(tuple(t for t in values["topics"] if t in set(site.topic_slugs)), site.id)
    # A non-breaking campaign leaves out unreachable and over-budget readers; an urgent one reaches all.
    audience = detail["total"] if values["breaking"] else detail["reached"]
    everyone = not values["topics"]
    page = {
        "maxPlaintext": MAX_PLAINTEXT,
        "titleShown": TITLE_SHOWN,
        "bodyShown": BODY_SHOWN,
        "titleMax": TITLE_MAX,
        "siteName": site.name,
        "siteHost": urlsplit(site.url or c.settings.public_url).netloc,
        "site": site.id,
        "audienceUrl": url_for("editor.audience"),
        "budgetUrl": url_for("editor.budget"),
        "prefillUrl": url_for("editor.prefill"),
        "prefillEnabled": bool(domains),
        "icon": url_for("static", filename="icons/icon-192.png"),
        "topicNames": {t.slug: t.name(current_lang()) for t in site.topics},
        "audience": detail,
        "unreachableAfter": site.unreachable(c.settings),
        "readerBudget": site.budget(c.settings),
    }
    html = render_template(
        "editor/compose.html",
        values=values,
        error=error,
        errors=errors or {},
        review=review,
        topics=site.topics,
        site=site,
        sites=editor_sites("editor"),
        urgencies=URGENCIES,
        urgency_names=URGENCY_NAMES,
        ttl_choices=TTL_CHOICES,
        timezone=zone.key,
        now_local=now_local.strftime("%Y-%m-%dT%H:%M"),
        zone_abbr=now_local.strftime("%Z"),
        page=page,
        audience=audience,
        audience_detail=detail,
        unreachable_after=site.unreachable(c.settings),
        reader_budget=site.budget(c.settings),
        everyone=everyone,
        send_text=send_label(audience, everyone=everyone, later=values["when"] == "later"),
        own_subs=len(_own_subscriptions(user, site)),
        site_domains=domains,
    )
    return Response(html, status=status, mimetype="text/html")


def _own_subscriptions(user: User, site: Site) -> list[str]:
    """The editor's own browsers subscribed to ``site`` (a test send goes to the site's readers only)."""
    c = ctx()
    sids = c.users.own_subscriptions(user.email)
    return [sid for sid in sids if c.subscriptions.site_of(sid) == site.id]


def _send_test(item: CampaignInput, user: User, values: dict[str, Any], site: Site) -> ResponseReturnValue:
    """A campaign (source ``test``) to exactly the editor's own subscriptions, batched by a worker."""
    c = ctx()
    sids = _own_subscriptions(user, site)
    if not sids:
        return _render_compose(
            values,
            status=400,
            errors={
                "test": _(
                    "This browser is not subscribed yet. Open the site's subscribe page while logged in to "
                    "the newsroom, allow notifications, then try again."
                )
            },
        )
    cid = campaign_store().create(item, audience=f"test:{user.email}")
    enqueue_test_send(c.raw_redis, cid, sids)
    flash(
        ngettext(
            "Test sent to your %(count)s browser.",
            "Test sent to your %(count)s browsers.",
            len(sids),
            count=number(len(sids)),
        ),
        "ok",
    )
    return redirect(url_for("editor.campaign", cid=cid))


def audience_of(topics: Sequence[str], site: str) -> dict[str, int]:
    """The readers of ``site`` who follow ``topics`` (none: all of them), with those only urgent alerts
    reach counted apart (by the site's own rules, as its campaigns' planning: notifier.stats)."""
    c = ctx()
    return stats.audience_for(c.subscriptions, topics, site, c.sites, c.settings)


@require_role("editor")
def compose() -> Response:
    """The compose form (for ``?site=``, else the account's first site)."""
    return _render_compose(_form_values({"site": request.args.get("site", "")}))


@require_role("editor")
def compose_submit() -> ResponseReturnValue:
    """Send now, schedule, save a draft, or send a test to the editor's own browsers.

    A send to every subscriber (no topic) first shows a review of what goes out to how many readers;
    only its "Send to all N subscribers" button (``action=send-everyone``) sends.
    """
    c = ctx()
    user = account()
    values = _form_values(request.form)
    action = request.form.get("action", "send")
    if action == "send-everyone":
        action, values["confirm_everyone"] = "send", True
    if action not in ("send", "draft", "test"):
        return _render_compose(
            values, error=_("Unknown action %(action)s.", action=repr(action[:20])), status=400
        )
    site = site_for(values["site"], "editor")
    errors = field_errors(values, site)
    if action == "test":
        errors.pop("topics", None)
        errors.pop("send_at", None)
    if errors:
        return _render_compose(values, errors=errors, status=400)
    try:
        data = _campaign_data(values, site)
        if action == "test":
            data.pop("send_at", None)
            data["topics"] = []
        item = validate_campaign(
            data,
            topics=site.topics,
            source="test" if action == "test" else "editor",
            created_by=user.email,
            site=site.id,
        )
    except ValidationError as exc:
        return _render_compose(
            values, error=_("The notification was refused: %(reason)s", reason=exc.message), status=400
        )
    store = campaign_store()
    if action == "test":
        return _send_test(item, user, values, site)
    if action == "draft":
        cid = store.create(item, state=DRAFT)
        flash(_("Draft saved. Approve it to send it."), "ok")
        return redirect(url_for("editor.campaign", cid=cid))
    if not item.topics and not values["confirm_everyone"]:
        return _render_compose(values, review=True, status=409)
    cid = store.create(item)
    launch(c.raw_redis, cid, item.send_at)
    if item.send_at and item.send_at > time.time() + 1:
        flash(_("Scheduled for %(when)s.", when=newsroom_time(item.send_at, site)), "ok")
    return redirect(url_for("editor.campaign", cid=cid))


@require_role("editor", "ops")
def audience() -> Response:
    """How many subscribers of ``?site=`` the chosen topics reach (none chosen: everyone)."""
    site = site_for(request.args.get("site"), "editor", "ops")
    known = set(site.topic_slugs)
    chosen = [t for t in dict.fromkeys(request.args.getlist("topic")) if t]
    unknown = [t for t in chosen if t not in known]
    if unknown:
        return json_error(400, "unknown_topic", f"unknown topic(s): {', '.join(unknown)[:200]}")
    detail = audience_of(chosen, site.id)
    # ``size``: everyone the topics reach (an urgent alert); ``reached``: what any other campaign reaches.
    return jsonify({"topics": chosen, "everyone": not chosen, "size": detail["total"], **detail})


@require_role("editor")
def budget() -> Response:
    """Bytes of the payload and what is left of one encrypted record (the page computes the same)."""
    a = request.args
    size = payload_size(a.get("title", ""), a.get("body", ""), a.get("url", ""), a.get("image", ""))
    return jsonify({"size": size, "max": MAX_PLAINTEXT, "left": MAX_PLAINTEXT - size})
