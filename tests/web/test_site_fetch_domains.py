"""What the server fetches for a site (compose prefill, the site's feeds) is on that site's domains only.

Two sites of one deployment, each a real HTTP server on its own loopback port (an origin is
``scheme://host:port``, so the two are as distinct as two publishers' hosts). Site A's compose page
cannot read site B's article, site A's feed cannot be B's feed nor redirect to B, and the default site
keeps the deployment's ``NOTIFIER_SITE_DOMAINS``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.articles import ArticleIngest
from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.feeds import FeedPoller, feed_fetcher
from notifier.fetcher import FetchRefused
from notifier.settings import Settings
from notifier_cli import main as cli
from tests.factories import PASSWORD, AuthActions, write_sites


class Publisher:
    """One publisher's web server: an article, a feed, and a page that redirects to ``redirect_to``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.redirect_to = ""
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                if self.path == "/pindah" and owner.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", owner.redirect_to)
                    self.end_headers()
                    return
                if self.path == "/rss":
                    body, kind = owner.feed().encode(), "application/rss+xml"
                else:
                    body, kind = owner.article().encode(), "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def article(self) -> str:
        return (
            f'<!doctype html><html><head><meta property="og:title" content="{self.name}: jembatan putus">'
            "</head><body>...</body></html>"
        )

    def feed(self) -> str:
        when = format_datetime(datetime.now(UTC))
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
            f"<item><title>{self.name}: gempa</title><link>{self.origin}/gempa</link>"
            f"<guid>{self.origin}/gempa</guid><pubDate>{when}</pubDate></item></channel></rss>"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def publishers() -> Iterator[tuple[Publisher, Publisher]]:
    a, b = Publisher("Kabar"), Publisher("Warta")
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def two_sites_env(settings_env: dict[str, str], tmp_path: Path, publishers: Any) -> dict[str, str]:
    a, b = publishers
    document = {
        "default": "kabar",
        "sites": [
            {"id": "kabar", "name": "Kabar Kini", "origins": [a.origin], "lang": "id"},
            {"id": "warta", "name": "Warta Timur", "origins": [b.origin], "lang": "en"},
        ],
    }
    path = write_sites(tmp_path / "sites", document)
    # The deployment-wide list: the default site's fallback, never warta's.
    return {
        **settings_env,
        "NOTIFIER_SITES_FILE": str(path),
        "NOTIFIER_SITE_DOMAINS": "cdn.kabarkini.example",
    }


@pytest.fixture
def two_sites(two_sites_env: dict[str, str], r: Any) -> Iterator[Context]:
    context = Context.build(Settings.from_env(two_sites_env), client=r)
    yield context
    context.close()


def test_prefill_on_a_sites_compose_page_reads_that_sites_articles_only(
    two_sites: Context, publishers: Any
) -> None:
    from web import create_app

    a, b = publishers
    newsroom = AuthActions(create_app({"TESTING": True}, context=two_sites).test_client(), two_sites)
    two_sites.users.create("redaksi@grup.example", PASSWORD, "editor", sites=["kabar", "warta"])
    assert newsroom.login("redaksi@grup.example").status_code == 302
    client = newsroom.client

    def prefill(site: str, url: str, lang: str = "en") -> Any:
        return client.get("/newsroom/prefill.json", query_string={"site": site, "url": url, "lang": lang})

    assert prefill("kabar", f"{a.origin}/berita").get_json()["title"] == "Kabar: jembatan putus"
    assert prefill("warta", f"{b.origin}/news").get_json()["title"] == "Warta: jembatan putus"
    b.paths.clear()
    english = prefill("kabar", f"{b.origin}/news")
    assert english.status_code == 400 and english.get_json()["error"] == "prefill_refused"
    message = english.get_json()["message"]
    assert "not on Kabar Kini" in message and a.origin.split("//")[1] in message, message
    assert "cdn.kabarkini.example" in message  # the default site keeps the deployment's list
    indonesian = prefill("kabar", f"{b.origin}/news", lang="id").get_json()["message"]
    assert "bukan milik Kabar Kini" in indonesian, indonesian
    assert b.paths == [], "the other site's server was fetched"
    # A redirect from A's article to B is re-checked against A's domains.
    a.redirect_to = f"{b.origin}/news"
    moved = prefill("kabar", f"{a.origin}/pindah")
    assert moved.status_code == 400 and b.origin.split("//")[1] in moved.get_json()["message"]
    assert b.paths == []
    # The compose page says which domains it reads, for its own site.
    page = client.get("/newsroom/compose?site=warta&lang=en").get_data(as_text=True)
    assert b.origin.split("//")[1] in page and a.origin.split("//")[1] not in page

    # An editor of A alone cannot use B's domains through B's site id.
    two_sites.users.create("kabar@grup.example", PASSWORD, "editor", sites=["kabar"])
    newsroom.logout()
    assert newsroom.login("kabar@grup.example").status_code == 302
    refused = prefill("warta", f"{b.origin}/news")
    assert refused.status_code == 404 and refused.get_json()["error"] == "not_found"
    assert b.paths == []


def test_a_sites_feed_is_read_from_its_own_domains_redirects_included(
    two_sites_env: dict[str, str], two_sites: Context, publishers: Any
) -> None:
    a, b = publishers
    runner = CliRunner(env=two_sites_env)
    refused = runner.invoke(cli, ["feeds", "add", "--site", "kabar", f"{b.origin}/rss"])
    assert refused.exit_code == 1 and "is not one of the site's domains" in refused.output, refused.output
    assert runner.invoke(cli, ["feeds", "add", "--site", "warta", f"{b.origin}/rss"]).exit_code == 0
    assert runner.invoke(cli, ["feeds", "add", "--site", "kabar", f"{a.origin}/pindah"]).exit_code == 0
    with pytest.raises(FetchRefused, match="not one of the site's domains"):
        feed_fetcher(two_sites.settings, two_sites.fetch_domains("warta")).check(f"{a.origin}/rss")

    a.redirect_to = f"{b.origin}/rss"  # A's feed URL now redirects to B's feed
    b.paths.clear()
    ingest = ArticleIngest(two_sites.redis, two_sites.keys, two_sites.topics, lambda cid, at: None)
    results = {res.url: res for res in FeedPoller(two_sites, ingest).poll_all()}
    moved = results[f"{a.origin}/pindah"]
    assert moved.status == "error" and b.origin.split("//")[1] in moved.error, moved
    assert results[f"{b.origin}/rss"].pushed == 1
    assert b.paths == ["/rss"], "only warta's own feed reached warta's server"
    campaigns = CampaignStore(two_sites.redis, two_sites.keys).list(0, 10)
    assert [(c.title, c.site) for c in campaigns] == [("Warta: gempa", "warta")]
    listed = runner.invoke(cli, ["feeds", "list"]).output
    assert "redirects to" in listed


def test_fetch_domains_per_site(two_sites: Context, publishers: Any, tmp_path: Path) -> None:
    a, b = publishers
    sites = two_sites.sites
    settings = two_sites.settings
    assert sites.fetch_domains(sites.get("kabar"), settings) == (a.origin[7:], "cdn.kabarkini.example")
    assert sites.fetch_domains(sites.get("warta"), settings) == (b.origin[7:],)
    # Extra domains of an entry; notifier's own origin only when listed; a bad domain is refused.
    from notifier.errors import ConfigError
    from notifier.sites import parse_sites

    own = {"id": "own", "name": "Own", "origins": ["http://127.0.0.1:5000", "https://www.x.example"]}
    parsed = parse_sites(
        {"sites": [{**own, "domains": ["Feeds.X.example", "img.x.example:8443"]}]},
        settings=settings,
        base=tmp_path,
        source=tmp_path / "s.json",
    )
    assert parsed.fetch_domains(parsed.default, settings) == (
        "www.x.example",
        "feeds.x.example",
        "img.x.example:8443",
        "cdn.kabarkini.example",
    )
    for bad in (["https://x.example"], ["x.example/rss"], ["x.example:99999"], "x.example"):
        with pytest.raises(ConfigError, match="'domains'"):
            parse_sites({"sites": [{**own, "domains": bad}]}, settings=settings, base=tmp_path)
