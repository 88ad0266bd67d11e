"""Prefill the compose form from one of the publisher's own articles (its og: tags), never another site's."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

from flask import Response, jsonify, request
from flask_babel import gettext as _

from notifier.campaigns import (
    TITLE_MAX,
    check_url,
)
from notifier.errors import Forbidden, NotFound, ValidationError
from notifier.fetcher import FetchRefused, GuardedFetcher
from web.auth import require_role
from web.context import ctx
from web.errors import json_error
from web.i18n import number
from web.newsroom.common import site_for

#: Article pages fetched for prefill: at most this many bytes, within this many seconds (and at most
#: notifier.fetcher.MAX_REDIRECTS redirects, each on the site's domains).
PREFILL_MAX_BYTES = 512 * 1024


PREFILL_TIMEOUT = 5.0


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


def fetch_problem(exc: FetchRefused, domains: tuple[str, ...], site_name: str = "") -> str:
    """Why an article could not be read, said for an editor (the fetcher's reason, never errno text)."""
    reason = exc.reason
    if reason == "off":
        return _(
            "Filling from an article is off for this site: declare its domains in the sites file "
            "(its origins or 'domains'), or NOTIFIER_SITE_DOMAINS for the default site."
        )
    if reason == "not_allowed" and site_name:
        return _(
            "This address is not on %(site)s: only its articles (%(domains)s) can be read here. "
            "An article of another site is filled in on that site's compose page.",
            site=site_name,
            domains=", ".join(domains),
        )
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


def fetch_article_meta(url: str, domains: tuple[str, ...], site_name: str = "") -> dict[str, str]:
    """``og:title``/``og:description``/``og:image`` of an article on the publisher's own site.

    Read with the domain's one guarded fetcher (:mod:`notifier.fetcher`, the one feeds use too):
    the compose page's site's declared domains only (``domains``), every redirect re-checked, a
    timeout and a size cap.
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
        raise ValidationError(fetch_problem(exc, domains, site_name)) from exc
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


@require_role("editor")
def prefill() -> Response:
    """Title, description and image of an article of the compose page's site (``?site=``), never another's.

    An editor without a role on the site named gets the 404 an unknown site gets.
    """
    url = request.args.get("url", "").strip()
    try:
        site = site_for(request.args.get("site") or None, "editor")
    except (NotFound, Forbidden) as exc:
        return json_error(404 if isinstance(exc, NotFound) else 403, exc.code, exc.message)
    try:
        return jsonify(fetch_article_meta(url, ctx().fetch_domains(site), site.name))
    except ValidationError as exc:
        return json_error(400, "prefill_refused", exc.message)
