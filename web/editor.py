"""The newsroom: compose and send alerts, test sends, the campaign list and live campaign pages.

Pages are plain forms (CSRF-checked by :mod:`web.auth`); the JSON endpoints they call
(``audience.json``, ``budget.json``, ``prefill.json``, ``campaigns/<cid>.json``) are read-only GETs.
Scripts live in ``static/editor/`` (no inline scripts: the CSP allows ``script-src 'self'``).
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import HTTPRedirectHandler, OpenerDirector, Request, build_opener
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from notifier.campaigns import (
    FINAL,
    TITLE_MAX,
    TTL_MAX,
    URGENCIES,
    Campaign,
    CampaignInput,
    CampaignStore,
    payload_size,
    validate_campaign,
)
from notifier.crypto import MAX_PLAINTEXT
from notifier.delivery import Delivery
from notifier.errors import Conflict, NotFound, NotifierError, PayloadTooLarge, ValidationError
from notifier.users import ROLES, User, UserStore
from web.auth import bp as login_bp
from web.auth import current_user, error_page, require_role
from web.context import ctx
from web.errors import json_error
from workers.queues import batch_enqueuer, launch

bp = Blueprint("editor", __name__, url_prefix="/newsroom")

#: Soft display limits the counters warn at (characters). Browsers cut longer text, they do not refuse it:
#: Chrome on Android shows about 50 characters of the title and ~120 of the body in the expanded
#: notification (one line of each when collapsed); Windows' notification centre shows ~60 / ~150;
#: macOS banners show ~40 / ~90 (two body lines). 50 and 120 keep the headline whole on phones.
TITLE_SHOWN = 50
BODY_SHOWN = 120
#: Campaigns per page of the list.
PAGE_SIZE = 20
#: Article pages fetched for prefill: at most this many bytes, within this many seconds, this many redirects.
PREFILL_MAX_BYTES = 512 * 1024
PREFILL_TIMEOUT = 5.0
PREFILL_MAX_REDIRECTS = 3
#: TTL choices of the compose form (seconds); empty means the default (6 h breaking, 24 h otherwise).
TTL_CHOICES = (
    (3600, "1 jam"),
    (3 * 3600, "3 jam"),
    (6 * 3600, "6 jam"),
    (12 * 3600, "12 jam"),
    (86400, "1 hari"),
    (3 * 86400, "3 hari"),
    (7 * 86400, "7 hari"),
    (TTL_MAX, "28 hari"),
)


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


def _zone() -> ZoneInfo:
    return ZoneInfo(ctx().settings.timezone)


@bp.app_template_filter("newsroom_time")
def newsroom_time(ts: float | None) -> str:
    """A unix time in the newsroom's time zone, e.g. ``03 Mei 2025 14:05 WIB``."""
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, _zone()).strftime("%d-%m-%Y %H:%M %Z")


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return error_page(404, "Not Found", exc.message)


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> Response:
    return error_page(409, "Conflict", exc.message)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Response:
    return error_page(400, "Bad Request", exc.message)


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
    }


def local_to_iso(value: str) -> str:
    """``YYYY-MM-DDTHH:MM`` in the newsroom's time zone → ISO 8601 with its offset."""
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
    except ValueError as exc:
        raise ValidationError(
            f"waktu kirim tidak dikenali: {value[:40]!r} (format YYYY-MM-DD HH:MM)"
        ) from exc
    return moment.replace(tzinfo=_zone()).isoformat()


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
            raise ValidationError("'ttl' must be whole seconds") from exc
    if values["when"] == "later":
        if not values["send_at"]:
            raise ValidationError("pilih waktu kirim, atau pilih 'Kirim sekarang'")
        data["send_at"] = local_to_iso(values["send_at"])
    return data


def _render_compose(
    values: dict[str, Any], *, error: str = "", confirm: bool = False, status: int = 200
) -> Response:
    c = ctx()
    user = _user()
    now_local = datetime.fromtimestamp(time.time(), _zone())
    page = {
        "maxPlaintext": MAX_PLAINTEXT,
        "titleShown": TITLE_SHOWN,
        "bodyShown": BODY_SHOWN,
        "titleMax": TITLE_MAX,
        "siteName": c.settings.site_name,
        "audienceUrl": url_for("editor.audience"),
        "budgetUrl": url_for("editor.budget"),
        "prefillUrl": url_for("editor.prefill"),
        "prefillEnabled": bool(c.settings.site_domains),
    }
    html = render_template(
        "editor/compose.html",
        values=values,
        error=error,
        confirm=confirm,
        topics=c.topics,
        urgencies=URGENCIES,
        ttl_choices=TTL_CHOICES,
        timezone=c.settings.timezone,
        now_local=now_local.strftime("%Y-%m-%dT%H:%M"),
        zone_abbr=now_local.strftime("%Z"),
        page=page,
        own_subs=len(UserStore(c.redis, c.keys).own_subscriptions(user.email)),
        site_domains=c.settings.site_domains,
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("/compose")
@require_role("editor")
def compose() -> Response:
    """The compose form."""
    return _render_compose(_form_values({}))


@bp.post("/compose")
@require_role("editor")
def compose_submit() -> ResponseReturnValue:
    """Send now, schedule, save a draft, or send a test to the editor's own browsers."""
    c = ctx()
    user = _user()
    values = _form_values(request.form)
    action = request.form.get("action", "send")
    if action not in ("send", "draft", "test"):
        return _render_compose(values, error=f"aksi tidak dikenal: {action[:20]!r}", status=400)
    try:
        data = _campaign_data(values)
        if action == "test":
            data.pop("send_at", None)
            data["topics"] = []
        item = validate_campaign(
            data, topics=c.topics, source="test" if action == "test" else "editor", created_by=user.email
        )
    except PayloadTooLarge as exc:
        return _render_compose(values, error=exc.message, status=400)
    except ValidationError as exc:
        return _render_compose(values, error=exc.message, status=400)
    store = _store()
    if action == "test":
        return _send_test(item, user, values)
    if action == "draft":
        cid = store.create(item, state="draft")
        flash("Draf disimpan. Setujui untuk mengirim.", "ok")
        return redirect(url_for("editor.campaign", cid=cid))
    if not item.topics and not values["confirm_everyone"]:
        size = c.subscriptions.audience_size(())
        return _render_compose(
            values,
            confirm=True,
            status=409,
            error=f"Tanpa topik, notifikasi ini terkirim ke SEMUA {size} pelanggan. "
            "Centang konfirmasi lalu kirim lagi.",
        )
    cid = store.create(item)
    launch(c.raw_redis, cid, item.send_at)
    flash("Dijadwalkan." if item.send_at and item.send_at > time.time() + 1 else "Sedang dikirim.", "ok")
    return redirect(url_for("editor.campaign", cid=cid))


def _send_test(item: CampaignInput, user: User, values: dict[str, Any]) -> ResponseReturnValue:
    """A campaign (source ``test``) to exactly the editor's own subscriptions, batched directly."""
    c = ctx()
    sids = UserStore(c.redis, c.keys).own_subscriptions(user.email)
    if not sids:
        return _render_compose(
            values,
            status=400,
            error="Browser Anda belum berlangganan notifikasi. Buka halaman berlangganan situs saat masuk "
            "ke Newsroom, izinkan notifikasi, lalu coba lagi.",
        )
    store = _store()
    cid = store.create(item)
    c.redis.hset(c.keys.campaign(cid), "audience", f"test:{user.email}")
    delivery = Delivery(c)
    delivery.send_to(cid, sids, batch_enqueuer(c.raw_redis, cid))
    flash(f"Uji kirim ke {len(sids)} browser Anda.", "ok")
    return redirect(url_for("editor.campaign", cid=cid))


@bp.get("/audience.json")
@require_role("editor", "ops")
def audience() -> Response:
    """How many subscribers the chosen topics reach (none chosen: everyone)."""
    c = ctx()
    known = set(c.topic_slugs)
    chosen = [t for t in dict.fromkeys(request.args.getlist("topic")) if t]
    unknown = [t for t in chosen if t not in known]
    if unknown:
        return json_error(400, "unknown_topic", f"unknown topic(s): {', '.join(unknown)[:200]}")
    return jsonify({"topics": chosen, "everyone": not chosen, "size": c.subscriptions.audience_size(chosen)})


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


def _host_allowed(url: str, domains: tuple[str, ...]) -> bool:
    """True for an http(s) URL whose ``host[:port]`` is exactly one of the site's domains."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    allowed = {d.lower().rstrip("/") for d in domains}
    return netloc in allowed or (parts.port is None and host in allowed)


class _SameSiteRedirects(HTTPRedirectHandler):
    """Follows a redirect only to another page of the publisher's own domains, a few times at most."""

    max_redirections = PREFILL_MAX_REDIRECTS

    def __init__(self, domains: tuple[str, ...]) -> None:
        self.domains = domains

    def redirect_request(
        self, req: Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Request | None:
        if not _host_allowed(newurl, self.domains):
            raise ValidationError(
                f"the article redirects to {urlsplit(newurl).netloc[:80]!r}, not one of the site's domains"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_article_meta(url: str, domains: tuple[str, ...]) -> dict[str, str]:
    """``og:title``/``og:description``/``og:image`` of an article on the publisher's own site."""
    if not domains:
        raise ValidationError("prefill is off: set NOTIFIER_SITE_DOMAINS to the site's domains")
    if not _host_allowed(url, domains):
        raise ValidationError(f"only articles on {', '.join(domains)} can be read")
    opener: OpenerDirector = build_opener(_SameSiteRedirects(domains))
    req = Request(url, headers={"User-Agent": "notifier-newsroom/1 (prefill)", "Accept": "text/html"})  # noqa: S310
    try:
        with opener.open(req, timeout=PREFILL_TIMEOUT) as response:
            ctype = response.headers.get("Content-Type", "")
            if "html" not in ctype:
                raise ValidationError(f"the article answered {ctype or 'no content type'}, not HTML")
            raw = response.read(PREFILL_MAX_BYTES + 1)
            final_url = response.geturl()
            charset = response.headers.get_content_charset() or "utf-8"
    except HTTPError as exc:
        raise ValidationError(f"the article answered HTTP {exc.code}") from exc
    except (URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValidationError(f"the article could not be fetched: {str(reason)[:120]}") from exc
    parser = _OgParser()
    try:
        parser.feed(raw[:PREFILL_MAX_BYTES].decode(charset, errors="replace"))
    except LookupError:
        parser.feed(raw[:PREFILL_MAX_BYTES].decode("utf-8", errors="replace"))
    image = parser.og.get("og:image", "")
    if image:
        image = urljoin(final_url, image)
        if urlsplit(image).scheme not in ("http", "https"):
            image = ""
    return {
        "url": url,
        "title": " ".join((parser.og.get("og:title") or parser.title).split())[:TITLE_MAX],
        "body": " ".join(parser.og.get("og:description", "").split())[:500],
        "image": image[:2048],
        "truncated": "1" if len(raw) > PREFILL_MAX_BYTES else "",
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


@bp.get("/campaigns")
@require_role("editor", "ops")
def campaigns() -> Response:
    """Campaigns, newest first, paginated."""
    c = ctx()
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    total = int(c.redis.zcard(c.keys.campaigns))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    items = _store().list((page - 1) * PAGE_SIZE, PAGE_SIZE)
    html = render_template("editor/campaigns.html", campaigns=items, page=page, pages=pages, total=total)
    return Response(html, mimetype="text/html")


def _campaign_json(campaign: Campaign) -> dict[str, Any]:
    c = ctx()
    data = campaign.info()
    timeline: dict[str, dict[str, int]] = {}
    for field, count in c.redis.hgetall(c.keys.campaign_timeline(campaign.cid)).items():
        minute, _, counter = field.partition(":")
        timeline.setdefault(minute, {})[counter] = int(count)
    services: dict[str, dict[str, int]] = {}
    for field, count in c.redis.hgetall(c.keys.campaign_services(campaign.cid)).items():
        service, _, kind = field.rpartition(":")
        services.setdefault(service, {})[kind] = int(count)
    data["timeline"] = [{"t": int(m), **timeline[m]} for m in sorted(timeline, key=int)]
    data["services"] = services
    data["final"] = campaign.state in FINAL
    data["audience"] = c.redis.hget(c.keys.campaign(campaign.cid), "audience") or ""
    return data


@bp.get("/campaigns/<cid>")
@require_role("editor", "ops")
def campaign(cid: str) -> Response:
    """One campaign: state, live progress, counters, chart, outcomes by push service, actions."""
    item = _store().get(cid)
    c = ctx()
    html = render_template(
        "editor/campaign.html",
        c=item,
        data=_campaign_json(item),
        final=FINAL,
        audience_size=c.subscriptions.audience_size(item.topics) if item.state == "draft" else None,
        json_url=url_for("editor.campaign_json", cid=cid),
    )
    return Response(html, mimetype="text/html")


@bp.get("/campaigns/<cid>.json")
@require_role("editor", "ops")
def campaign_json(cid: str) -> Response:
    """State, counters, timeline and outcomes by service, polled by the campaign page."""
    try:
        return jsonify(_campaign_json(_store().get(cid)))
    except NotFound as exc:
        return json_error(404, "not_found", exc.message)


@bp.post("/campaigns/<cid>/cancel")
@require_role("editor", "ops")
def cancel(cid: str) -> ResponseReturnValue:
    """Stop a campaign that has not finished (batches in flight stop within a second or two)."""
    _store().cancel(cid)
    flash("Kampanye dibatalkan.", "ok")
    return redirect(url_for("editor.campaign", cid=cid))


@bp.post("/campaigns/<cid>/duplicate")
@require_role("editor")
def duplicate(cid: str) -> ResponseReturnValue:
    """Copy a campaign into a new draft."""
    new = _store().duplicate(cid, created_by=_user().email)
    flash("Disalin menjadi draf baru.", "ok")
    return redirect(url_for("editor.campaign", cid=new))


@bp.post("/campaigns/<cid>/approve")
@require_role("editor")
def approve(cid: str) -> ResponseReturnValue:
    """Approve a draft: schedule it and start it now (or at its send time)."""
    c = ctx()
    store = _store()
    item = store.get(cid)
    if item.state != "draft":
        raise Conflict(f"kampanye ini berstatus {item.state}, bukan draf")
    if not item.topics and not request.form.get("confirm_everyone"):
        size = c.subscriptions.audience_size(())
        return error_page(
            409,
            "Conflict",
            f"Draf tanpa topik terkirim ke SEMUA {size} pelanggan: centang konfirmasi di halaman "
            "kampanye lalu setujui lagi.",
        )
    if not store.transition(cid, "scheduled", allowed_from=["draft"]):
        raise Conflict("draf ini baru saja disetujui atau dibatalkan orang lain")
    c.redis.hset(c.keys.campaign(cid), "approved_by", _user().email)
    send_at = item.send_at if item.send_at and item.send_at > time.time() else None
    launch(c.raw_redis, cid, send_at)
    flash("Draf disetujui dan dikirim." if send_at is None else "Draf disetujui dan dijadwalkan.", "ok")
    return redirect(url_for("editor.campaign", cid=cid))


# -- accounts (admin) ---------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@require_role("admin")
def user_admin() -> ResponseReturnValue:
    """List accounts; create one, or disable / re-enable one."""
    c = ctx()
    store = UserStore(c.redis, c.keys)
    error = ""
    status = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        email = request.form.get("email", "")
        try:
            if action == "create":
                store.create(email, request.form.get("password", ""), request.form.get("role", "editor"))
                flash(f"Akun {email.strip().lower()} dibuat.", "ok")
            elif action in ("disable", "enable"):
                if action == "disable" and email.strip().lower() == _user().email:
                    raise ValidationError("you cannot disable your own account")
                store.set_disabled(email, action == "disable")
                flash(
                    f"Akun {email.strip().lower()} "
                    f"{'dinonaktifkan' if action == 'disable' else 'diaktifkan'}.",
                    "ok",
                )
            else:
                raise ValidationError(f"unknown action {action[:20]!r}")
            return redirect(url_for("editor.user_admin"))
        except (ValidationError, Conflict, NotFound) as exc:
            error, status = exc.message, 400 if isinstance(exc, ValidationError) else 409
    html = render_template("editor/users.html", users=store.list(), roles=ROLES, error=error)
    return Response(html, status=status, mimetype="text/html")


def _domain_error_page(exc: NotifierError) -> Response:
    """Any other domain error as a page (never a 500 for bad input)."""
    return error_page(400, "Bad Request", exc.message)


bp.register_error_handler(NotifierError, _domain_error_page)
