"""The newsroom: compose and send alerts, test sends, the campaign list and live campaign pages.

Pages are plain forms (CSRF-checked by :mod:`web.auth`); the JSON endpoints they call
(``audience.json``, ``budget.json``, ``prefill.json``, ``campaigns/<cid>.json``) are read-only GETs.
Scripts live in ``static/editor/`` (no inline scripts: the CSP allows ``script-src 'self'``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Blueprint, Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext, pgettext
from markupsafe import Markup, escape

from notifier import stats
from notifier.campaigns import (
    BODY_MAX,
    DRAFT,
    FINAL,
    TITLE_MAX,
    TTL_MAX,
    URGENCIES,
    Campaign,
    CampaignInput,
    CampaignStore,
    check_url,
    payload_size,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import Conflict, Forbidden, NotFound, NotifierError, ValidationError
from notifier.fetcher import FetchRefused, GuardedFetcher
from notifier.sites import Site
from notifier.users import ROLES, User
from web.auth import bp as login_bp
from web.auth import current_user, error_page, require_role
from web.context import ctx
from web.errors import json_error
from web.i18n import current_lang, number
from web.names import SERVICE_NAMES, browser_names, service_name
from workers.jobs import enqueue_test_send, launch

bp = Blueprint("editor", __name__, url_prefix="/newsroom")

#: Soft display limits the counters warn at (characters). Browsers cut longer text, they do not refuse it:
#: Chrome on Android shows about 50 characters of the title and ~120 of the body in the expanded
#: notification (one line of each when collapsed); Windows' notification centre shows ~60 / ~150;
#: macOS banners show ~40 / ~90 (two body lines). 50 and 120 keep the headline whole on phones.
TITLE_SHOWN = 50
BODY_SHOWN = 120
#: Campaigns per page of the list.
PAGE_SIZE = 20
#: Article pages fetched for prefill: at most this many bytes, within this many seconds (and at most
#: notifier.fetcher.MAX_REDIRECTS redirects, each on the site's domains).
PREFILL_MAX_BYTES = 512 * 1024
PREFILL_TIMEOUT = 5.0
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


def register(app: Flask) -> None:
    """Register the newsroom blueprints (login and the editor pages) on ``app``."""
    app.register_blueprint(login_bp)
    app.register_blueprint(bp)


def _store() -> CampaignStore:
    c = ctx()
    return CampaignStore(c.redis, c.keys)


def _user() -> User:
    user = current_user()
    if user is None:  # require_role ran first; this keeps the type checker honest
        raise NotFound("no logged-in account")
    return user


def _editor_sites(*roles: str) -> list[Site]:
    """The sites where the logged-in account has one of ``roles`` (an admin: every site), in order."""
    allowed = _user().sites_for(*roles)
    return [s for s in ctx().sites if allowed is None or s.id in allowed]


def _site_for(site_id: str | None, *roles: str) -> Site:
    """The site ``site_id`` names (none: the first the account may use) when the account has ``roles`` there.

    Another site's id is answered like an unknown one: an editor of site A learns nothing of site B.
    """
    sites = _editor_sites(*roles)
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


def _campaign_for(cid: str, *roles: str) -> Campaign:
    """A campaign of a site where the account has ``roles``; another site's is answered as not found."""
    item = _store().get(cid)
    if not _user().has_role(*roles, site=item.site):
        raise NotFound(_("There is no such campaign (deleted, or a mistyped address)."))
    return item


def _zone() -> ZoneInfo:
    return ZoneInfo(ctx().settings.timezone)


@bp.app_template_filter("newsroom_time")
def newsroom_time(ts: float | None) -> str:
    """A unix time in the newsroom's time zone and the page language, e.g. ``3 Mei 2025 14.05 WIB``."""
    if not ts:
        return "—"
    moment = datetime.fromtimestamp(ts, _zone())
    lang = current_lang()
    try:
        text = format_datetime(moment, "d MMM y HH:mm", locale=lang)
    except (ValueError, LookupError):
        text = format_datetime(moment, "d MMM y HH:mm", locale="id")
    return f"{text} {moment.strftime('%Z')}"


app_filters = {"state_name": state_name, "source_name": source_name}
for _name, _func in app_filters.items():
    bp.add_app_template_filter(_func, _name)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return error_page(404, _("Not found"), _("There is no such campaign (deleted, or a mistyped address)."))


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return error_page(403, _("No access"), exc.message)


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> Response:
    return error_page(409, _("Not possible now"), exc.message)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Response:
    return error_page(400, _("Refused"), exc.message)


@bp.get("/")
@require_role("editor", "ops")
def index() -> ResponseReturnValue:
    """The newsroom's home is the campaign list."""
    return redirect(url_for("editor.campaigns"))


# -- compose ------------------------------------------------------------------------------------


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


def local_to_iso(value: str) -> str:
    """``YYYY-MM-DDTHH:MM`` in the newsroom's time zone → ISO 8601 with its offset."""
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
    except ValueError as exc:
        raise ValidationError(
            _("The send time %(value)s is not a date and time (YYYY-MM-DD HH:MM).", value=repr(value[:40]))
        ) from exc
    return moment.replace(tzinfo=_zone()).isoformat()


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
                    tzinfo=_zone()
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


def _campaign_data(values: dict[str, Any]) -> dict[str, Any]:
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
        data["send_at"] = local_to_iso(values["send_at"])
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
    user = _user()
    site = _site_for(values["site"], "editor")
    values["site"] = site.id
    now_local = datetime.fromtimestamp(time.time(), _zone())
    detail = _audience(tuple(t for t in values["topics"] if t in set(site.topic_slugs)), site.id)
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
        "prefillEnabled": bool(c.settings.site_domains),
        "icon": url_for("static", filename="icons/icon-192.png"),
        "topicNames": {t.slug: t.name(current_lang()) for t in site.topics},
        "audience": detail,
        "unreachableAfter": c.settings.unreachable_after,
        "readerBudget": c.settings.reader_budget,
    }
    html = render_template(
        "editor/compose.html",
        values=values,
        error=error,
        errors=errors or {},
        review=review,
        topics=site.topics,
        site=site,
        sites=_editor_sites("editor"),
        urgencies=URGENCIES,
        urgency_names=URGENCY_NAMES,
        ttl_choices=TTL_CHOICES,
        timezone=c.settings.timezone,
        now_local=now_local.strftime("%Y-%m-%dT%H:%M"),
        zone_abbr=now_local.strftime("%Z"),
        page=page,
        audience=audience,
        audience_detail=detail,
        unreachable_after=c.settings.unreachable_after,
        reader_budget=c.settings.reader_budget,
        everyone=everyone,
        send_text=send_label(audience, everyone=everyone, later=values["when"] == "later"),
        own_subs=len(_own_subscriptions(user, site)),
        site_domains=c.settings.site_domains,
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("/compose")
@require_role("editor")
def compose() -> Response:
    """The compose form (for ``?site=``, else the account's first site)."""
    return _render_compose(_form_values({"site": request.args.get("site", "")}))


@bp.post("/compose")
@require_role("editor")
def compose_submit() -> ResponseReturnValue:
    """Send now, schedule, save a draft, or send a test to the editor's own browsers.

    A send to every subscriber (no topic) first shows a review of what goes out to how many readers;
    only its "Send to all N subscribers" button (``action=send-everyone``) sends.
    """
    c = ctx()
    user = _user()
    values = _form_values(request.form)
    action = request.form.get("action", "send")
    if action == "send-everyone":
        action, values["confirm_everyone"] = "send", True
    if action not in ("send", "draft", "test"):
        return _render_compose(
            values, error=_("Unknown action %(action)s.", action=repr(action[:20])), status=400
        )
    site = _site_for(values["site"], "editor")
    errors = field_errors(values, site)
    if action == "test":
        errors.pop("topics", None)
        errors.pop("send_at", None)
    if errors:
        return _render_compose(values, errors=errors, status=400)
    try:
        data = _campaign_data(values)
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
    store = _store()
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
        flash(_("Scheduled for %(when)s.", when=newsroom_time(item.send_at)), "ok")
    return redirect(url_for("editor.campaign", cid=cid))


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
    cid = _store().create(item, audience=f"test:{user.email}")
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


@bp.get("/audience.json")
@require_role("editor", "ops")
def audience() -> Response:
    """How many subscribers of ``?site=`` the chosen topics reach (none chosen: everyone)."""
    site = _site_for(request.args.get("site"), "editor", "ops")
    known = set(site.topic_slugs)
    chosen = [t for t in dict.fromkeys(request.args.getlist("topic")) if t]
    unknown = [t for t in chosen if t not in known]
    if unknown:
        return json_error(400, "unknown_topic", f"unknown topic(s): {', '.join(unknown)[:200]}")
    detail = _audience(chosen, site.id)
    # ``size``: everyone the topics reach (an urgent alert); ``reached``: what any other campaign reaches.
    return jsonify({"topics": chosen, "everyone": not chosen, "size": detail["total"], **detail})


def _audience(topics: Sequence[str], site: str) -> dict[str, int]:
    """The readers of ``site`` who follow ``topics`` (none: all of them), with those only urgent alerts
    reach counted apart."""
    c = ctx()
    return c.subscriptions.audience_breakdown(
        topics, site=site, unreachable=c.settings.unreachable_after > 0, budget=c.settings.reader_budget > 0
    )


@bp.get("/budget.json")
@require_role("editor")
def budget() -> Response:
    """Bytes of the payload and what is left of one encrypted record (the page computes the same)."""
    a = request.args
    size = payload_size(a.get("title", ""), a.get("body", ""), a.get("url", ""), a.get("image", ""))
    return jsonify({"size": size, "max": MAX_PLAINTEXT, "left": MAX_PLAINTEXT - size})


# -- prefill from the publisher's own article ----------------------------------------------------


class _OgParser(HTMLParser):
    """Collects ``og:*`` meta tags (and ``<title>`` as a fallback) from an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            a = {k.lower(): (v or "") for k, v in attrs}
            prop = (a.get("property") or a.get("name") or "").lower()
            if prop in ("og:title", "og:description", "og:image", "og:url") and prop not in self.og:
                self.og[prop] = a.get("content", "").strip()
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and len(self.title) < 500:
            self.title += data


def fetch_problem(exc: FetchRefused, domains: tuple[str, ...]) -> str:
    """Why an article could not be read, said for an editor (the fetcher's reason, never errno text)."""
    reason = exc.reason
    if reason == "off":
        return _("Filling from an article is off: set NOTIFIER_SITE_DOMAINS to the site's domains.")
    if reason in ("not_allowed", "bad_url"):
        return _("Only articles on %(domains)s can be read.", domains=", ".join(domains))
    if reason == "redirect":
        return _(
            "The article redirects to %(host)s, which is not one of this site's domains.",
            host=exc.detail.get("host", "?"),
        )
    if reason == "http":
        if exc.detail.get("status") == 404:
            return _("The site has no article at this address (HTTP 404).")
        return _("The site answered with an error (HTTP %(code)s).", code=exc.detail.get("status"))
    if reason == "dns":
        return _("The site's name could not be found (DNS). Check the address.")
    if reason == "timeout":
        return _("The site did not answer within %(seconds)s seconds.", seconds=number(int(PREFILL_TIMEOUT)))
    if reason == "refused":
        return _("The site refused the connection.")
    if reason == "tls":
        return _("The site's HTTPS certificate is not valid.")
    if reason == "broken":
        return _("The connection to the site broke off. Try again.")
    return _("The article could not be fetched. Check the address and try again.")


def fetch_article_meta(url: str, domains: tuple[str, ...]) -> dict[str, str]:
    """``og:title``/``og:description``/``og:image`` of an article on the publisher's own site.

    Read with the domain's one guarded fetcher (:mod:`notifier.fetcher`, the one feeds use too):
    the site's declared domains only, every redirect re-checked, a timeout and a size cap.
    """
    fetcher = GuardedFetcher(
        domains,
        timeout=PREFILL_TIMEOUT,
        max_bytes=PREFILL_MAX_BYTES,
        user_agent="notifier-newsroom/1 (prefill)",
    )
    try:
        fetched = fetcher.fetch(url, accept="text/html", truncate=True)
    except FetchRefused as exc:
        raise ValidationError(fetch_problem(exc, domains)) from exc
    if "html" not in fetched.content_type:
        raise ValidationError(
            _("That address is not a web page (it answered %(type)s).", type=fetched.content_type or "?")
        )
    parser = _OgParser()
    try:
        parser.feed(fetched.body.decode(fetched.charset or "utf-8", errors="replace"))
    except LookupError:
        parser.feed(fetched.body.decode("utf-8", errors="replace"))
    image = parser.og.get("og:image", "")
    if image:
        try:
            image = urljoin(fetched.url, image)
            image = check_url(image, "image", required=False)
        except (ValueError, ValidationError):
            image = ""
    return {
        "url": url,
        "title": " ".join((parser.og.get("og:title") or parser.title).split())[:TITLE_MAX],
        "body": " ".join(parser.og.get("og:description", "").split())[:500],
        "image": image[:2048],
        "truncated": "1" if fetched.truncated else "",
    }


@bp.get("/prefill.json")
@require_role("editor")
def prefill() -> Response:
    """Title, description and image of one of the publisher's own articles (never another site)."""
    url = request.args.get("url", "").strip()
    try:
        return jsonify(fetch_article_meta(url, ctx().settings.site_domains))
    except ValidationError as exc:
        return json_error(400, "prefill_refused", exc.message)


# -- campaigns ----------------------------------------------------------------------------------


def timeline_step(span: float) -> int:
    """Seconds per chart bar for a campaign that has been sending for ``span`` seconds."""
    if span <= 5 * 60:
        return 10
    if span <= 3 * 3600:
        return 60
    return 600


def _campaign_json(campaign: Campaign) -> dict[str, Any]:
    store = _store()
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


@bp.get("/readers")
@require_role("editor", "ops")
def readers() -> Response:
    """Reader health: pushes per reader per day, readers who clicked in 30 days, campaigns by CTR, budget.

    What Chrome judges a site by (pushes per minute of reader time, engagement) before it caps the
    site's pushes for days: the newsroom sees it here, per site it may see.
    """
    c = ctx()
    visible = _user().sites_for("editor", "ops")
    sites = [s for s in c.sites if visible is None or s.id in visible]
    panels = [{"site": site, "health": stats.reader_health(c.redis, c.keys, site=site.id)} for site in sites]
    html = render_template(
        "editor/readers.html",
        panels=panels,
        several=len(c.sites) > 1,
        budget=c.settings.reader_budget,
        unreachable_after=c.settings.unreachable_after,
        freq_cap=c.settings.freq_cap_per_hour,
    )
    return Response(html, mimetype="text/html")


@bp.get("/campaigns")
@require_role("editor", "ops")
def campaigns() -> Response:
    """Campaigns of the account's sites, newest first, paginated."""
    store = _store()
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    visible = _user().sites_for("editor", "ops")
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


@bp.get("/campaigns/<cid>")
@require_role("editor", "ops")
def campaign(cid: str) -> Response:
    """One campaign: state, live progress, counters, chart, outcomes by push service, actions."""
    item = _campaign_for(cid, "editor", "ops")
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
        audience_size=(
            c.subscriptions.audience_size(item.topics, site=item.site) if item.state == DRAFT else None
        ),
        topic_names={t.slug: t.name(current_lang()) for t in site_topics},
        campaign_site=(site.name if site else item.site) if len(c.sites) > 1 else "",
        json_url=url_for("editor.campaign_json", cid=cid),
        timezone=c.settings.timezone,
        urgency_names=URGENCY_NAMES,
    )
    return Response(html, mimetype="text/html")


@bp.get("/campaigns/<cid>.json")
@require_role("editor", "ops")
def campaign_json(cid: str) -> Response:
    """State, counters, timeline and outcomes by service, polled by the campaign page."""
    try:
        return jsonify(_campaign_json(_campaign_for(cid, "editor", "ops")))
    except NotFound:
        return json_error(404, "not_found", _("There is no such campaign (deleted, or a mistyped address)."))


@bp.post("/campaigns/<cid>/cancel")
@require_role("editor", "ops")
def cancel(cid: str) -> ResponseReturnValue:
    """Stop a campaign that has not finished (batches in flight stop within a second or two)."""
    store = _store()
    item = _campaign_for(cid, "editor", "ops")
    if item.state in FINAL:
        raise Conflict(
            _("This campaign is already %(state)s: nothing to cancel.", state=state_name(item.state))
        )
    store.cancel(cid)
    flash(_("Campaign cancelled. Messages already handed to push services cannot be called back."), "ok")
    return redirect(url_for("editor.campaign", cid=cid))


@bp.post("/campaigns/<cid>/duplicate")
@require_role("editor")
def duplicate(cid: str) -> ResponseReturnValue:
    """Copy a campaign into a new draft."""
    _campaign_for(cid, "editor")
    new = _store().duplicate(cid, created_by=_user().email)
    flash(_("Copied into a new draft."), "ok")
    return redirect(url_for("editor.campaign", cid=new))


@bp.post("/campaigns/<cid>/approve")
@require_role("editor")
def approve(cid: str) -> ResponseReturnValue:
    """Approve a draft: schedule it and start it now (or at its send time)."""
    c = ctx()
    store = _store()
    item = _campaign_for(cid, "editor")
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
    if not store.approve(cid, _user().email):
        raise Conflict(_("Someone else approved or cancelled this draft a moment ago."))
    send_at = item.send_at if item.send_at and item.send_at > time.time() else None
    flash(_("Draft approved: sending.") if send_at is None else _("Draft approved and scheduled."), "ok")
    launch(c.raw_redis, cid, send_at)
    return redirect(url_for("editor.campaign", cid=cid))


# -- accounts (admin) ---------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@require_role("admin")
def user_admin() -> ResponseReturnValue:
    """List accounts; create one, or disable / re-enable one."""
    c = ctx()
    store = c.users
    error = ""
    status = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        email = request.form.get("email", "")
        try:
            if action == "create":
                chosen = [s for s in request.form.getlist("sites") if c.sites.find(s) is not None]
                store.create(
                    email, request.form.get("password", ""), request.form.get("role", "editor"), sites=chosen
                )
                flash(_("Account %(email)s created.", email=email.strip().lower()), "ok")
            elif action in ("grant", "revoke"):
                site = c.sites.get(request.form.get("site", ""))
                who = email.strip().lower()
                if action == "grant":
                    store.grant(email, site.id, request.form.get("role", "editor"))
                    flash(_("%(email)s now works on %(site)s.", email=who, site=site.name), "ok")
                else:
                    store.revoke(email, site.id)
                    flash(_("%(email)s no longer works on %(site)s.", email=who, site=site.name), "ok")
            elif action in ("disable", "enable"):
                if action == "disable" and email.strip().lower() == _user().email:
                    raise ValidationError(_("You cannot disable your own account."))
                store.set_disabled(email, action == "disable")
                address = email.strip().lower()
                if action == "disable":
                    flash(_("Account %(email)s disabled: its sessions ended.", email=address), "ok")
                else:
                    flash(_("Account %(email)s enabled again.", email=address), "ok")
            else:
                raise ValidationError(_("Unknown action %(action)s.", action=repr(action[:20])))
            return redirect(url_for("editor.user_admin"))
        except (ValidationError, Conflict, NotFound) as exc:
            error, status = exc.message, 400 if isinstance(exc, ValidationError) else 409
    role_names = {
        "editor": _("editor (writes and sends)"),
        "ops": _("ops (dashboard, cancels)"),
        "admin": _("admin (everything, accounts)"),
    }
    html = render_template(
        "editor/users.html",
        users=store.list(),
        roles=ROLES,
        role_names=role_names,
        error=error,
        sites=list(c.sites),
        site_names={s.id: s.name for s in c.sites},
    )
    return Response(html, status=status, mimetype="text/html")


def _domain_error_page(exc: NotifierError) -> Response:
    """Any other domain error as a page (never a 500 for bad input)."""
    return error_page(400, _("Refused"), exc.message)


bp.register_error_handler(NotifierError, _domain_error_page)
