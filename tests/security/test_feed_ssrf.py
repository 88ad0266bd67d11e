"""The feed poller reads the site's own domains only, through the one guarded fetcher prefill uses.

Other spellings of loopback, a feed that redirects into the network, impossible ports: refused when
the feed is added or recorded on the feed when it is polled, and a loopback listener sees no
connection. One bad feed or item (garbage answers, a link with port 99999) never stops the poll of
the others.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.articles import ArticleIngest
from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.feeds import FeedPoller, FeedStore, feed_fetcher
from notifier.fetcher import FetchRefused
from notifier.settings import Settings
from notifier_cli import main as cli


class Listener:
    """A loopback TCP port that only counts the connections it gets (the target of the SSRF)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class Garbage(Listener):
    """Answers every connection with bytes that are not HTTP."""

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                conn.recv(4096)
                conn.sendall(b"\x00\x01 not http at all \xff\r\n\r\n")
            finally:
                conn.close()


def rss(*items: tuple[str, str]) -> bytes:
    """An RSS document with (title, link) items published now."""
    stamp = format_datetime(datetime.fromtimestamp(time.time() + 5, UTC))
    body = "".join(
        f"<item><guid>{link}</guid><title>{title}</title><link>{link}</link><pubDate>{stamp}</pubDate></item>"
        for title, link in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


@pytest.fixture
def target() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def garbage() -> Iterator[Garbage]:
    server = Garbage()
    yield server
    server.close()


@pytest.fixture
def site(target: Listener) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """The publisher's own site: a feed, a feed with a bad item, and a feed that redirects to ``target``."""
    docs: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{target.port}/internal")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = docs.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host = f"127.0.0.1:{httpd.server_address[1]}"
    docs["/good"] = rss(("Banjir di Bekasi", "https://kabarkini.example/banjir-bekasi"))
    docs["/mixed"] = rss(
        ("Tautan rusak", "https://kabarkini.example:99999/rusak"),
        ("Gempa di Garut", "https://kabarkini.example/gempa-garut"),
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, host
    httpd.shutdown()
    httpd.server_close()


def test_feeds_outside_the_sites_domains_are_refused_and_one_bad_feed_stops_no_other(  # type: ignore[no-untyped-def]
    settings_env, r, target, garbage, site
) -> None:
    _, host = site
    env = {**settings_env, "NOTIFIER_SITE_DOMAINS": f"kabarkini.example,{host},127.0.0.1:{garbage.port}"}
    runner = CliRunner(env=env)
    p = target.port
    for url in (
        f"http://2130706433:{p}/",
        f"http://0x7f.1:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://127.1:{p}/",
        f"http://localhost:{p}/",
        f"http://127.0.0.1:{p}/",  # loopback, but not a declared domain
        "http://127.0.0.1:99999/rss",
        "http://127.0.0.1:abc/rss",
        "http://user:pw@kabarkini.example/rss",
    ):
        result = runner.invoke(cli, ["feeds", "add", url])
        assert result.exit_code == 1, (url, result.output)
        assert "Error:" in result.output, result.output
    context = Context.build(Settings.from_env(env), client=r)
    store = FeedStore(context.redis, context.keys)
    assert store.list() == []

    # Feeds on the site's own domains: one redirects into the network, one answers garbage, one holds a
    # broken item next to a good one, one is fine.
    for path in ("/redirect", "/mixed", "/good"):
        assert runner.invoke(cli, ["feeds", "add", f"http://{host}{path}"]).exit_code == 0
    assert runner.invoke(cli, ["feeds", "add", f"http://127.0.0.1:{garbage.port}/rss"]).exit_code == 0
    ingest = ArticleIngest(context.redis, context.keys, context.topics, lambda cid, at: None)
    results = {res.url.rsplit("/", 1)[1]: res for res in FeedPoller(context, ingest).poll_all()}
    assert results["redirect"].status == "error" and "redirects" in results["redirect"].error
    assert results["rss"].status == "error" and "could not be read" in results["rss"].error
    assert (results["mixed"].status, results["mixed"].pushed, results["mixed"].invalid) == ("ok", 1, 1)
    assert (results["good"].status, results["good"].pushed) == ("ok", 1)
    assert target.connections == 0, "a redirect reached the loopback listener"
    titles = sorted(c.title for c in CampaignStore(context.redis, context.keys).list(0, 10))
    assert titles == ["Banjir di Bekasi", "Gempa di Garut"]
    listed = runner.invoke(cli, ["feeds", "list"]).output
    assert "redirects" in listed and "could not be read" in listed
    # The guarded fetcher is the prefill's: it refuses the same way (no request made).
    fetcher = feed_fetcher(context.settings, context.fetch_domains())
    with pytest.raises(FetchRefused, match="is not one of the site"):
        fetcher.fetch(f"http://2130706433:{p}/")
    assert target.connections == 0
