"""The JSON API under ``/api/v1``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, session
from limits import parse_many

from notifier.browsers import detect_browser
from notifier.campaigns import CampaignStore, count_receipt, parse_receipt, validate_campaign
from notifier.errors import AuthError, Forbidden, NotFound, NotifierError, ValidationError
from notifier.sites import Site
from notifier.subscriptions import validate_subscription, validate_topics
from notifier.tokens import TokenStore, token_sites
from web.auth import link_own_subscription
from web.context import ctx
from web.errors import BodyRefused, json_error, json_response, read_json_body, status_for
from web.security import RateLimited, check_refused_receipt, client_address, client_network, subscribe_limit
from web.sites import request_site
from web.subscribe import store_subscription, subscribed_key_id
from workers.jobs import launch

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: A ``PushSubscription.toJSON()`` with topics is a few hundred bytes; 4 KiB is generous.
SUBSCRIPTION_BODY_LIMIT = 4096
CAMPAIGN_BODY_LIMIT = 16 * 1024
EVENT_BODY_LIMIT = 1024
#: The longest endpoint URL accepted in ``replaces`` (real ones are a few hundred characters).
ENDPOINT_MAX = 2048


@bp.errorhandler(BodyRefused)
def _body_refused(exc: BodyRefused) -> Response:
    return exc.response


@bp.errorhandler(NotifierError)
def _domain_error(exc: NotifierError) -> Response:
    return json_error(status_for(exc), exc.code, exc.message)


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> Response:
    return json_error(404, "not_found", f"no API route {request.method} {request.path}")


@bp.errorhandler(405)
def _method(_exc: Exception) -> Response:
    return json_error(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}")


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> Response:
    return json_error(413, "too_large", "the request body is too large")


@bp.get("/vapid-public-key")
def vapid_public_key() -> Response:
    """The VAPID public key of the request's site (the default site's unless it names or comes from one)."""
    return jsonify({"publicKey": ctx().vapid_for(request_site().id).public_key_b64})


@bp.get("/topics")
def topics() -> Response:
    """The request's site's topics with their names in both languages."""
    site = request_site()
    return jsonify({"topics": [{"slug": t.slug, "id": t.name_id, "en": t.name_en} for t in site.topics]})


@bp.post("/subscriptions")
def subscribe() -> Response:
    """Store (or update) the browser's subscription under the request's site: 201 when new, 200 when known.

    With ``"replaces": <old endpoint>`` (the service worker after ``pushsubscriptionchange``, a page that
    moved the browser to a new VAPID key), the new subscription takes the old one's place: same id,
    topics, language and site, never both stored (200, ``"replaced": true``). When the old one is not
    stored, the new one is stored as usual.
    """
    c = ctx()
    site = request_site()
    data = read_json_body(SUBSCRIPTION_BODY_LIMIT)
    sub = validate_subscription(data, policy=c.policy, topics=site.topics, default_lang=site.lang)
    replaces = data.get("replaces")
    if replaces is not None:
        if not isinstance(replaces, str) or not replaces or len(replaces) > ENDPOINT_MAX:
            raise ValidationError("'replaces' must be the endpoint URL of the subscription this one replaces")
        done = c.subscriptions.replace(
            replaces,
            sub,
            site=site.id,
            browser=detect_browser(request.headers.get("User-Agent", "")),
            key_id=subscribed_key_id(c, site.id, data),
        )
        if done is not None:
            kept = c.subscriptions.get(done[0])
            if session.get("user"):
                link_own_subscription(kept.sid)
            body = {"id": kept.sid, "topics": list(kept.topics), "lang": kept.lang, "replaced": True}
            return json_response(body, 200)
    limit = subscribe_limit()
    network = client_network(client_address())
    if limit is not None:
        refused = limit.refusal(network)
        if refused is not None and c.subscriptions.sid_of(sub.endpoint) is None:
            raise refused  # a new subscription over the limit; a known endpoint is always re-posted
    user_agent = request.headers.get("User-Agent", "")
    key_id = subscribed_key_id(c, site.id, data)
    stored = store_subscription(c, sub, site.id, user_agent, limit, network, key_id)
    if session.get("user"):  # newsroom: an editor's own browser, for "send a test to me" (web/auth.py)
        link_own_subscription(stored.sid)
    return Response(stored.body, status=stored.status, mimetype="application/json")


@bp.get("/subscriptions")
def subscription_status() -> Response:
    """The stored topics and language of the subscription for ``?endpoint=``."""
    site = request_site()
    endpoint = request.args.get("endpoint", "")
    if not endpoint:
        return json_error(400, "missing_field", "query parameter 'endpoint' is required")
    sub = ctx().subscriptions.get_by_endpoint(endpoint, site=site.id)
    return jsonify({"id": sub.sid, "topics": list(sub.topics), "lang": sub.lang})


@bp.patch("/subscriptions")
def change_topics() -> Response:
    """Change the topics of a stored subscription: ``{"endpoint", "topics"}``."""
    c = ctx()
    site = request_site()
    data = read_json_body(SUBSCRIPTION_BODY_LIMIT)
    if not isinstance(data, dict) or not isinstance(data.get("endpoint"), str):
        return json_error(400, "missing_field", "the body must be an object with 'endpoint' and 'topics'")
    if "topics" not in data:
        return json_error(400, "missing_field", "missing field 'topics'")
    chosen = validate_topics(data["topics"], site.topics)
    sub = c.subscriptions.set_topics(data["endpoint"], chosen, site=site.id)
    return jsonify({"id": sub.sid, "topics": list(sub.topics), "lang": sub.lang})


@bp.delete("/subscriptions")
def unsubscribe() -> Response | tuple[str, int]:
    """Forget the subscription for ``{"endpoint"}``: 204 (also when none, or another site's, was stored)."""
    site = request_site()
    data = read_json_body(SUBSCRIPTION_BODY_LIMIT)
    if not isinstance(data, dict) or not isinstance(data.get("endpoint"), str) or not data["endpoint"]:
        return json_error(400, "missing_field", "the body must be an object with a string 'endpoint'")
    ctx().subscriptions.delete_by_endpoint(data["endpoint"], site=site.id)
    return "", 204


def _bearer() -> dict[str, str]:
    """The API token's record, or raise AuthError."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "send an API token: Authorization: Bearer <token> (create one with `notifier token create NAME`)"
        )
    record = TokenStore(ctx().redis, ctx().keys).check(token.strip())
    if record is None:
        raise AuthError("the API token is not valid")
    return record


def _token_site(record: dict[str, str], asked: Any) -> Site:
    """The site a token's request acts on: ``asked`` (the body's ``site``), else the token's only site or the
    default one. A site the token is not for is refused (403), an unknown one is 404."""
    c = ctx()
    allowed = token_sites(record)
    if asked is not None and not isinstance(asked, str):
        raise ValidationError("'site' must be a site id")
    if not asked:
        asked = allowed[0] if allowed and len(allowed) == 1 else None
    site = c.sites.get(asked)
    if allowed is not None and site.id not in allowed:
        raise Forbidden(f"the token {record['name']!r} is not for site {site.id!r}", code="wrong_site")
    return site


def _token_campaign(record: dict[str, str], cid: str) -> CampaignStore:
    """The campaign store, once the campaign ``cid`` is of a site the token may act on (else 404)."""
    c = ctx()
    store = CampaignStore(c.redis, c.keys)
    allowed = token_sites(record)
    if allowed is not None and store.get(cid).site not in allowed:
        raise NotFound(f"no campaign {cid}")
    return store


@bp.post("/campaigns")
def create_campaign() -> tuple[Response, int]:
    """Create a campaign for a site (``site``: the token's, or the default) and start it: 202 with its id."""
    record = _bearer()
    c = ctx()
    data = read_json_body(CAMPAIGN_BODY_LIMIT)
    site = _token_site(record, data.get("site") if isinstance(data, dict) else None)
    item = validate_campaign(
        data, topics=site.topics, source="api", created_by=f"token:{record['name']}", site=site.id
    )
    cid = CampaignStore(c.redis, c.keys).create(item)
    launch(c.raw_redis, cid, item.send_at)
    return jsonify({"id": cid, "state": "scheduled", "send_at": item.send_at, "site": site.id}), 202


@bp.get("/campaigns/<cid>")
def show_campaign(cid: str) -> Response:
    """State, counters and progress of a campaign."""
    return jsonify(_token_campaign(_bearer(), cid).get(cid).info())


@bp.post("/campaigns/<cid>/cancel")
def cancel_campaign(cid: str) -> Response:
    """Cancel a campaign that has not finished."""
    return jsonify(_token_campaign(_bearer(), cid).cancel(cid).info())


@bp.post("/events")
def events() -> tuple[Response, int]:
    """Receipts from the service worker: ``{"type": "shown"|"clicked", "cid", "sid", "rt"}``.

    Never limited per address (a crowd behind one NAT shares it): a genuine receipt counts once, by
    its token; repeats of one token are limited per token, refused receipts per client network.
    """
    c = ctx()
    request_site()  # a worker on an origin no site declares is refused
    data = read_json_body(EVENT_BODY_LIMIT)
    try:
        receipt = parse_receipt(c.receipt_key, data)
    except ValidationError:
        check_refused_receipt()
        raise
    per_token = _repeat_limit(c.settings.rate_events) if c.settings.rate_limits else None
    result = count_receipt(c.redis, c.keys, receipt, repeat_window=per_token[1] if per_token else 60)
    if per_token and result.repeats > per_token[0]:
        description = f"{per_token[0]} repeats of one receipt per {per_token[1]} s"
        raise RateLimited(description, max(1, result.window_left))
    return jsonify({"counted": result.counted}), 202


def _repeat_limit(spec: str) -> tuple[int, int]:
    """(repeats allowed, window seconds) of ``NOTIFIER_RATE_EVENTS`` (its first limit)."""
    item = parse_many(spec)[0]
    return item.amount, item.get_expiry()
