"""The service worker for publishers' origins: a per-site loader (no-cache) importing versioned worker code."""

from __future__ import annotations

import hashlib

import pytest

from notifier.context import Context
from tests.factories import loader_parts
from web import serviceworker


@pytest.fixture
def sites_client(sites_context: Context):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app({"TESTING": True}, context=sites_context).test_client()


def test_a_site_loader_names_its_site_with_absolute_urls(sites_client, sites_context: Context) -> None:  # type: ignore[no-untyped-def]
    resp = sites_client.get("/sw/warta.js", base_url="https://push.example.com")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    config, code_url = loader_parts(resp.get_data(as_text=True))
    assert config["site"] == {"id": "warta", "name": "Warta Timur", "url": "https://warta.example/"}
    assert config["defaultLang"] == "en"
    assert config["api"] == {
        "vapidKey": "https://push.example.com/api/v1/vapid-public-key?site=warta",
        "subscriptions": "https://push.example.com/api/v1/subscriptions?site=warta",
        "events": "https://push.example.com/api/v1/events",
    }
    assert config["icon"] == "https://push.example.com/static/icons/icon-192.png"
    assert code_url == f"https://push.example.com/sw/worker.{config['version']}.js"
    assert sites_client.get("/sw/nowhere.js").status_code == 404


def test_the_worker_code_is_versioned_by_its_content(sites_client) -> None:  # type: ignore[no-untyped-def]
    version, text = serviceworker.worker_code()
    parts = "".join(p.read_text("utf-8") for p in serviceworker.WORKER_PARTS)
    assert text == parts and version == hashlib.sha256(parts.encode()).hexdigest()[:12]
    current = sites_client.get(f"/sw/worker.{version}.js")
    assert current.status_code == 200 and current.get_data(as_text=True) == text
    assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert current.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    # Another version is not this release's code: refused rather than served under the wrong name.
    assert sites_client.get("/sw/worker.0123456789ab.js").status_code == 404
    # Both loaders import the same code.
    for path in ("/sw.js", "/sw/kabar.js", "/sw/warta.js"):
        config, code_url = loader_parts(sites_client.get(path).get_data(as_text=True))
        assert config["version"] == version and code_url.endswith(f"/sw/worker.{version}.js")


def test_changed_code_changes_every_loader(sites_client, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = sites_client.get("/sw/warta.js").get_data(as_text=True)
    extra = tmp_path / "patch.js"
    extra.write_text("/* a new release */\n")
    monkeypatch.setattr(serviceworker, "WORKER_PARTS", (*serviceworker.WORKER_PARTS, extra))
    after = sites_client.get("/sw/warta.js").get_data(as_text=True)
    assert after != before
    _, code_url = loader_parts(after)
    assert sites_client.get(code_url).get_data(as_text=True).endswith("/* a new release */\n")


def test_a_worker_for_an_unknown_site_says_why_it_cannot_load(sites_client) -> None:  # type: ignore[no-untyped-def]
    resp = sites_client.get("/sw.js?site=nope")
    assert resp.status_code == 404 and resp.mimetype == "text/javascript"
    assert resp.get_data(as_text=True).startswith("// no site 'nope'")
    refused = sites_client.get("/sw.js", headers={"Origin": "https://copycat.example"})
    assert refused.status_code == 403
