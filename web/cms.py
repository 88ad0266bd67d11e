"""``POST /api/v1/articles``: the CMS webhook that turns a published article into a push.

Authentication (see ``docs/cms-webhook.md``)::

    X-Notifier-Timestamp: <unix seconds>
    X-Notifier-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

The secret is the site's own (``webhook_secret_file`` in its entry of the sites file) or the
deployment's ``NOTIFIER_WEBHOOK_SECRET``. **The signature decides the site**: a request signed with
site A's secret is A's (a body naming another site is a 403 ``wrong_site``); the deployment's secret
signs for the sites without a secret of their own (the default site of a single-site deployment), never
for a site that has one.

The timestamp is inside the signed message, so a captured request cannot be
re-dated; a timestamp further than ``NOTIFIER_WEBHOOK_WINDOW`` seconds from now
is refused, and a replay inside the window is absorbed by the article dedupe
(the same guid or URL never pushes twice: ``200 {"status": "duplicate"}``).

Answers: ``201 {"status": "created", "campaign", "state"}``; ``200`` duplicate;
``400`` malformed body or fields; ``401`` bad, missing or stale signature;
``403`` the body names a site the secret does not sign for; ``404`` unknown site; ``413`` too large;
``415`` not JSON; ``503`` no secret configured.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Blueprint, Response, jsonify, request

from notifier.articles import ArticleIngest, map_topics, parse_article
from notifier.errors import NotifierError
from web.context import ctx
from web.errors import BodyRefused, json_error, parse_json_bytes, status_for
from workers.jobs import launch

bp = Blueprint("cms", __name__, url_prefix="/api/v1")

#: An article with a long summary is a few KiB; the summary is cut to 500 characters anyway.
ARTICLE_BODY_LIMIT = 32 * 1024
SIGNATURE_HEADER = "X-Notifier-Signature"
TIMESTAMP_HEADER = "X-Notifier-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Notifier-Signature`` value for a body sent at ``timestamp`` (what the CMS computes)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@bp.errorhandler(NotifierError)
def _domain_error(exc: NotifierError) -> Response:
    return json_error(status_for(exc), exc.code, exc.message)


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> Response:
    return json_error(413, "too_large", f"the body is larger than {ARTICLE_BODY_LIMIT} bytes")


def _signer(timestamp: str, raw: bytes, signature: str) -> tuple[bool, str | None]:
    """Whose secret signed ``timestamp.raw``: ``(True, site id)``, ``(True, None)`` for the deployment's,
    ``(False, None)`` for nobody's. Every configured secret is tried (compare_digest each)."""
    c = ctx()
    given = signature.lower().encode()
    for site in c.sites:
        if site.webhook_secret and hmac.compare_digest(
            sign(site.webhook_secret, timestamp, raw).encode(), given
        ):
            return True, site.id
    secret = c.settings.webhook_secret
    if secret and hmac.compare_digest(sign(secret, timestamp, raw).encode(), given):
        return True, None
    return False, None


def _unauthorized(reason: str, message: str) -> Response:
    response = json_error(401, reason, message)
    response.headers["WWW-Authenticate"] = 'HMAC-SHA256 realm="notifier-webhook"'
    return response


@bp.post("/articles")
def article_webhook() -> Response | tuple[Response, int]:
    """Verify the CMS signature, then create (and in auto mode send) the article's campaign once."""
    c = ctx()
    settings = c.settings
    if not settings.webhook_secret and not any(site.webhook_secret for site in c.sites):
        return json_error(
            503,
            "webhook_disabled",
            "NOTIFIER_WEBHOOK_SECRET is not set and no site has a webhook secret: the webhook is disabled",
        )
    length = request.content_length
    if length is not None and length > ARTICLE_BODY_LIMIT:
        return json_error(413, "too_large", f"the body is {length} bytes; at most {ARTICLE_BODY_LIMIT}")
    raw = request.stream.read(ARTICLE_BODY_LIMIT + 1)
    if len(raw) > ARTICLE_BODY_LIMIT:
        return json_error(413, "too_large", f"the body is larger than {ARTICLE_BODY_LIMIT} bytes")

    timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    signature = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not signature:
        return _unauthorized("missing_signature", f"the {SIGNATURE_HEADER} header is required")
    if not timestamp:
        return _unauthorized("missing_timestamp", f"the {TIMESTAMP_HEADER} header (unix seconds) is required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        return _unauthorized("bad_timestamp", f"{TIMESTAMP_HEADER} must be whole unix seconds")
    if not signature.startswith("sha256="):
        return _unauthorized("bad_signature", f"{SIGNATURE_HEADER} must look like sha256=<hex>")
    known, signed_for = _signer(timestamp, raw, signature)
    if not known:
        return _unauthorized(
            "bad_signature", "the signature does not match timestamp + '.' + body under any webhook secret"
        )
    skew = abs(time.time() - int(timestamp))
    if skew > settings.webhook_window:
        return _unauthorized(
            "stale_timestamp",
            f"{TIMESTAMP_HEADER} is {int(skew)} s away from the server's clock; at most "
            f"{settings.webhook_window} s is accepted (replay protection; check the CMS clock)",
        )

    if request.mimetype != "application/json":
        return json_error(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, not {request.mimetype or 'missing'}",
        )
    try:
        data = parse_json_bytes(raw)
    except BodyRefused as refused:
        return refused.response
    article = parse_article(data)
    asked = data.get("site") if isinstance(data, dict) else None
    if asked is not None and not isinstance(asked, str):
        return json_error(400, "invalid", "'site' must be a site id")
    if signed_for is not None:
        if asked and asked != signed_for:
            return json_error(
                403,
                "wrong_site",
                f"signed with site {signed_for!r}'s webhook secret, but the body names site "
                f"{asked[:40]!r}: each site's CMS signs with that site's own secret",
            )
        site = c.sites.get(signed_for)
    else:
        site = c.sites.get(asked or None)  # NotFound (404) names the sites
        if site.webhook_secret:
            return json_error(
                403,
                "wrong_site",
                f"site {site.id!r} has a webhook secret of its own: sign with it (NOTIFIER_WEBHOOK_SECRET "
                "signs only for sites without one)",
            )
    slugs = site.topic_slugs
    topics = list(map_topics(article.categories, slugs, fallback=list(site.default_topics(settings))))
    if article.breaking and "breaking" in slugs and topics and "breaking" not in topics:
        topics.append("breaking")
    ingest = ArticleIngest(
        c.redis,
        c.keys,
        c.topics,
        lambda cid, at: launch(c.raw_redis, cid, at),
        default_site=c.sites.default_id,
    )
    result = ingest.ingest(
        article, topics=topics, mode=settings.webhook_mode, source="webhook", created_by="cms", site=site
    )
    if result.status == "duplicate":
        return jsonify({"status": "duplicate", "campaign": result.cid or None}), 200
    return jsonify({"status": "created", "campaign": result.cid, "state": result.state, "site": site.id}), 201
