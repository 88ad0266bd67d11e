"""The embed's two answers: the script a publisher's tag loads, and the widget's configuration per site."""

from __future__ import annotations

import gzip

import pytest

from notifier.context import Context
from web import embed, serviceworker

WARTA = "https://warta.example"
KABAR = "https://www.kabarkini.example"

#: The widget's weight budget, gzipped (docs/embed.md states the measured figure).
GZIP_BUDGET = 11 * 1024


@pytest.fixture
def sites_client(sites_context: Context):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app({"TESTING": True}, context=sites_context).test_client()


def test_the_script_is_one_small_cached_file_that_leaves_no_globals(sites_client) -> None:  # type: ignore[no-untyped-def]
    resp = sites_client.get("/embed.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == f"public, max-age={embed.EMBED_MAX_AGE}"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = resp.get_data()
    assert len(gzip.compress(body, 9)) < GZIP_BUDGET
    text = body.decode()
    # One function around everything: the helpers export into NOTIFIER_SCOPE, never the page's window.
    assert text.splitlines()[1].startswith("(function(){var NOTIFIER_SCOPE={};")
    assert "window.NotifierPush" not in text and "NOTIFIER_SCOPE" in text
    again = sites_client.get("/embed.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()


def test_the_configuration_follows_the_pages_origin_and_language(sites_client, sites_context) -> None:  # type: ignore[no-untyped-def]
    resp = sites_client.get("/embed/config?site=warta", headers={"Origin": WARTA})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == WARTA and "Origin" in resp.headers["Vary"]
    config = resp.get_json()
    assert config["site"] == {
        "id": "warta",
        "name": "Warta Timur",
        "lang": "en",
        "url": "https://warta.example/",
    }
    assert config["lang"] == "en"  # the site's language when the page asks for none
    assert [t["slug"] for t in config["topics"]] == ["nasional", "ekonomi", "sepakbola"]
    assert config["topics"][2]["name"] == "Football"
    assert config["api"]["subscriptions"] == "http://localhost/api/v1/subscriptions?site=warta"
    assert config["worker"] == {"file": "/notifier-sw.js", "version": serviceworker.current_version()}
    assert set(config["steps"]) == set(config["browsers"]) == set(config["browserNames"])
    assert any("%(origin)s" in step for step in config["steps"]["chrome-desktop"]["main"])

    indonesian = sites_client.get("/embed/config?site=warta&lang=id", headers={"Origin": WARTA}).get_json()
    assert indonesian["lang"] == "id" and indonesian["topics"][2]["name"] == "Sepak bola"
    assert indonesian["catalog"]["messages"]["Turn on notifications"] == "Aktifkan notifikasi"
    assert indonesian["browserNames"]["chrome-desktop"] == "Chrome (komputer)"
    # Only the languages the widget offers; anything else falls back to the site's.
    assert (
        sites_client.get("/embed/config?site=warta&lang=jv", headers={"Origin": WARTA}).get_json()["lang"]
        == "en"
    )
    assert [lang["code"] for lang in config["langs"]] == ["id", "en"]


def test_the_configuration_is_refused_to_other_origins_and_sites(sites_client) -> None:  # type: ignore[no-untyped-def]
    refused = sites_client.get("/embed/config?site=warta", headers={"Origin": "https://copycat.example"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    wrong = sites_client.get("/embed/config?site=warta", headers={"Origin": KABAR})
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "wrong_site"
    unknown = sites_client.get("/embed/config?site=nope")
    assert unknown.status_code == 404
    preflight = sites_client.options(
        "/embed/config?site=warta", headers={"Origin": WARTA, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == WARTA
