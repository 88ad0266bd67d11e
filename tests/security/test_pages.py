"""Editor and feed text never runs as script: autoescaping, CSP, no inline script, http(s)-only URLs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask

from notifier.articles import parse_article
from notifier.campaigns import check_url
from notifier.context import Context
from notifier.errors import ValidationError
from notifier.users import UserStore
from web.security import CONTENT_SECURITY_POLICY

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.I | re.S)
DATA_BLOCK = re.compile(r"^\{\{\s*[\w.]+\s*\|\s*tojson\s*\}\}$")


def templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) >= 6
    return found


def test_templates_have_no_inline_script_handlers_or_unescaped_output() -> None:
    problems: list[str] = []
    for path in templates():
        text = path.read_text()
        name = path.relative_to(TEMPLATES)
        for attrs, body in SCRIPT.findall(text):
            if not body.strip():
                if "src=" not in attrs:
                    problems.append(f"{name}: empty <script> without src")
                continue
            # The only body allowed is a JSON data block filled by |tojson (never executed).
            if 'type="application/json"' not in attrs or not DATA_BLOCK.match(body.strip()):
                problems.append(f"{name}: inline script body {body.strip()[:60]!r}")
        if EVENT_HANDLER.search(text):
            problems.append(f"{name}: inline event handler {EVENT_HANDLER.search(text).group(0)[-40:]!r}")  # type: ignore[union-attr]
        for pattern, what in (
            (r"\|\s*safe\b", "|safe"),
            (r"autoescape\s+false", "autoescape false"),
            (r"javascript:", "javascript: URL"),
            (r"\sstyle\s*=", "inline style attribute"),
            (r"<style\b", "<style> block"),
        ):
            if re.search(pattern, text, re.I):
                problems.append(f"{name}: {what}")
    assert problems == []


def test_the_scanner_catches_what_it_looks_for() -> None:
    bad = '<script>alert(1)</script><a href="#" onclick="x()">a</a>{{ t | safe }}'
    good = '<script type="application/json" id="d">{{ data | tojson }}</script><script src="/s.js"></script>'
    assert any(body.strip() for _, body in SCRIPT.findall(bad))
    assert EVENT_HANDLER.search(bad)
    for _attrs, body in SCRIPT.findall(good):
        assert not body.strip() or DATA_BLOCK.match(body.strip())
    assert not EVENT_HANDLER.search(good)


def test_autoescape_is_on_for_every_template(app: Flask) -> None:
    for path in templates():
        assert app.jinja_env.autoescape is True or app.jinja_env.autoescape(str(path.name))  # type: ignore[operator]


EVIL = '<img src=x onerror=alert(1)><script>alert("t")</script>'


def test_hostile_campaign_text_is_escaped_in_the_newsroom(
    app: Flask, context: Context, api_token: str
) -> None:
    client = app.test_client()
    # Scheduled an hour ahead: it stays on the pages as typed, nothing is sent.
    resp = client.post(
        "/api/v1/campaigns",
        headers={"Authorization": f"Bearer {api_token}"},
        data=json.dumps(
            {
                "title": EVIL[:100],
                "body": EVIL,
                "url": "https://kabarkini.example/x",
                "send_at": time.time() + 3600,
            }
        ),
        content_type="application/json",
    )
    assert resp.status_code == 202, resp.get_json()
    cid = resp.get_json()["id"]
    UserStore(context.redis, context.keys).create(
        "editor@kabarkini.example", "correct horse battery staple 9"
    )
    app.config["CSRF_DISABLED"] = True
    login = client.post(
        "/login", data={"email": "editor@kabarkini.example", "password": "correct horse battery staple 9"}
    )
    assert login.status_code == 302, login.get_data(as_text=True)[:300]
    for path in ("/newsroom/campaigns", f"/newsroom/campaigns/{cid}"):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert "<img src=x" not in html and '<script>alert("t")' not in html, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in html or "\\u003cimg" in html, path
        assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_reflected_query_text_is_escaped_on_public_pages(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/", "/subscribe", "/preferences", "/artikel/nope"):
        resp = client.get(path, query_string={"lang": EVIL, "next": EVIL, "q": EVIL})
        assert resp.status_code in (200, 404)
        assert "<img src=x" not in resp.get_data(as_text=True), path


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "\x00javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "javascript\t:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DATA:image/svg+xml,<svg onload=alert(1)>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative/path",
        "https://",
        "https:evil.example",
        'https://a.example/"><script>alert(1)</script>',
        "https://a.example/\x00",
        "https://a.example/x y",
        "https://a.example/\r\nSet-Cookie: a=b",
    ],
)
def test_script_and_data_urls_are_refused_for_articles_and_images(url: str) -> None:
    for name in ("url", "image"):
        with pytest.raises(ValidationError):
            check_url(url, name, required=True)
    with pytest.raises(ValidationError):
        parse_article({"guid": "g1", "title": "t", "url": url})
    # An unusable image is dropped from a feed article, never kept.
    assert parse_article({"guid": "g1", "title": "t", "url": "https://a.example/x", "image": url}).image == ""


def test_http_and_https_urls_are_kept() -> None:
    assert (
        check_url("https://kabarkini.example/a?b=1#c", "url", required=True)
        == "https://kabarkini.example/a?b=1#c"
    )
    assert check_url("HTTP://kabarkini.example/", "url", required=True) == "HTTP://kabarkini.example/"


def test_campaign_api_refuses_script_urls(client, r: redis.Redis, api_token: str) -> None:  # type: ignore[no-untyped-def]
    for field in ("url", "image", "icon"):
        body = {"title": "t", "body": "b", "url": "https://kabarkini.example/x", field: "javascript:alert(1)"}
        resp = client.post(
            "/api/v1/campaigns",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {api_token}"},
        )
        assert resp.status_code == 400, field
    assert not list(r.scan_iter(match="*campaign:*"))


# -- headers and cookies ---------------------------------------------------------------------------------

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


def test_csp_is_the_documented_policy() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe" not in CONTENT_SECURITY_POLICY
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


@pytest.mark.parametrize(
    "path", ["/", "/subscribe", "/sw.js", "/api/v1/topics", "/api/v1/nope", "/login", "/healthz"]
)
def test_security_headers_on_every_kind_of_response(client, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(path)
    for name, value in HEADERS.items():
        assert resp.headers.get(name) == value, (path, name)
    assert "Strict-Transport-Security" not in resp.headers  # the test site is plain http


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


def test_https_site_sends_hsts_and_secure_cookies(make_app: Callable[..., Flask], context: Context) -> None:
    app = make_app(NOTIFIER_PUBLIC_URL="https://kabarkini.example")
    client = app.test_client()
    resp = client.get("/?lang=en", base_url="https://kabarkini.example")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    cookies = resp.headers.getlist("Set-Cookie")
    assert cookies
    for cookie in cookies:
        assert {"secure", "httponly", "samesite"} <= cookie_attributes(cookie), cookie
    UserStore(context.redis, context.keys).create("ed@kabarkini.example", "correct horse battery staple 9")
    app.config["CSRF_DISABLED"] = True
    login = client.post(
        "/login",
        data={"email": "ed@kabarkini.example", "password": "correct horse battery staple 9"},
        base_url="https://kabarkini.example",
    )
    session_cookies = login.headers.getlist("Set-Cookie")
    assert session_cookies
    for cookie in session_cookies:
        assert {"secure", "httponly", "samesite"} <= cookie_attributes(cookie), cookie


def test_http_site_cookies_are_httponly_and_samesite(client) -> None:  # type: ignore[no-untyped-def]
    cookies = client.get("/?lang=en").headers.getlist("Set-Cookie")
    assert cookies
    for cookie in cookies:
        assert {"httponly", "samesite"} <= cookie_attributes(cookie), cookie
