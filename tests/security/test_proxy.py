"""Behind a proxy every reader is still themselves: the site under a real gunicorn, with forwarded headers.

With ``NOTIFIER_TRUSTED_PROXIES=1`` (nginx in front, as docs/deployment.md deploys it) the client is
the address the proxy appended to ``X-Forwarded-For``: each reader has their own subscribe limit and
login lockout, and an address a client writes into the header itself changes nothing. With the
default 0 the header is ignored: a client cannot pick an address by sending one.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.api import _gunicorn
from bench.stack import stop_process
from notifier.context import Context
from notifier.crypto import b64url_encode, generate_subscriber
from notifier.users import MAX_FAILURES, UserStore

PASSWORD = "kata-sandi-redaksi-2026"


def new_subscription() -> dict[str, Any]:
    """A browser-shaped subscription to FCM with real keys (never seen before)."""
    _, public, auth = generate_subscriber()
    return {
        "endpoint": "https://fcm.googleapis.com/fcm/send/proxytest:" + b64url_encode(os.urandom(24)),
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
        "topics": ["breaking"],
    }


class Browser:
    """One client of the gunicorn site, behind the proxy at ``forwarded_for`` (its own cookies)."""

    def __init__(self, port: int, forwarded_for: str | None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.forwarded_for = forwarded_for
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(self, path: str, data: bytes | None = None, content_type: str = "") -> tuple[int, str]:
        headers = {"Content-Type": content_type} if content_type else {}
        if self.forwarded_for is not None:
            headers["X-Forwarded-For"] = self.forwarded_for
        req = urllib.request.Request(self.base + path, data=data, headers=headers)  # noqa: S310 - loopback
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def subscribe(self) -> int:
        body = json.dumps(new_subscription()).encode()
        return self.request("/api/v1/subscriptions", body, "application/json")[0]

    def login(self, email: str, password: str) -> int:
        _, page = self.request("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:500]
        form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token.group(1)})
        return self.request("/login", form.encode(), "application/x-www-form-urlencoded")[0]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect (a successful login answers 302) instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def site(settings_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """``site(trusted_proxies)`` → the port of a gunicorn serving the app with rate limits on."""
    started: list[Any] = []

    def start(trusted_proxies: int) -> int:
        env = {
            **os.environ,
            **settings_env,
            "NOTIFIER_RATE_LIMITS": "1",
            "NOTIFIER_RATE_SUBSCRIBE": "3/minute",
            "NOTIFIER_TRUSTED_PROXIES": str(trusted_proxies),
        }
        proc, port = _gunicorn(
            "web:create_app()", env, tmp_path / f"gunicorn-{trusted_proxies}.log", workers=2
        )
        started.append(proc)
        return port

    yield start
    for proc in started:
        stop_process(proc)


def test_each_reader_behind_the_proxy_has_their_own_limits(site, context: Context) -> None:  # type: ignore[no-untyped-def]
    port = site(1)
    one, two = Browser(port, "198.51.100.1"), Browser(port, "198.51.100.2")
    assert [one.subscribe() for _ in range(3)] == [201, 201, 201]
    assert one.subscribe() == 429  # this reader's limit ...
    assert two.subscribe() == 201  # ... not the next reader's
    # An address the client writes in front of the proxy's own changes nothing: the proxy's hop counts.
    spoofing = Browser(port, "198.51.100.2, 198.51.100.1")
    assert spoofing.subscribe() == 429

    # Logins: someone guessing from one address locks out that address only.
    users = UserStore(context.redis, context.keys)
    email = users.create("redaksi@kabarkini.example", PASSWORD, "editor").email
    owner = Browser(port, "198.51.100.7")
    assert owner.login(email, PASSWORD) == 302
    guesser = Browser(port, "203.0.113.5")
    for _ in range(MAX_FAILURES):
        context.redis.hset(context.keys.login_throttle(email), "next", 0)  # waiting out the account's backoff
        assert guesser.login(email, "wrong-password-123") == 401
    assert guesser.login(email, PASSWORD) == 429
    assert Browser(port, "198.51.100.7").login(email, PASSWORD) == 302, "the owner must not be locked out"
    assert context.redis.get(context.keys.login_failures("addr:203.0.113.5")) == str(MAX_FAILURES)
    assert context.redis.get(context.keys.login_failures("addr:198.51.100.7")) is None


def test_without_trusted_proxies_the_forwarded_header_is_ignored(site) -> None:  # type: ignore[no-untyped-def]
    port = site(0)
    # The same peer (127.0.0.1) whatever address it claims: one limit for all of them.
    statuses = [Browser(port, f"198.51.100.{i}").subscribe() for i in range(1, 5)]
    assert statuses == [201, 201, 201, 429]
