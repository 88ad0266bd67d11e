"""The reader API across sites: the site comes from the request's origin, CORS only for declared origins."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.context import Context
from tests.factories import count_view_calls, make_sub

KABAR = "https://www.kabarkini.example"
WARTA = "https://warta.example"
ELSEWHERE = "https://copycat.example"


@pytest.fixture
def sites_app(sites_context: Context):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app({"TESTING": True}, context=sites_context)


@pytest.fixture
def api(sites_app):  # type: ignore[no-untyped-def]
    return sites_app.test_client()


def test_each_site_gets_its_own_key_and_topics(api, sites_context: Context) -> None:  # type: ignore[no-untyped-def]
    warta_key = sites_context.vapid_for("warta").public_key_b64
    answer = api.get("/api/v1/vapid-public-key", headers={"Origin": WARTA})
    assert answer.json == {"publicKey": warta_key}
    assert answer.headers["Access-Control-Allow-Origin"] == WARTA
    assert "Origin" in answer.headers["Vary"]
    # The same key when a server names the site, the default site's when nothing says which.
    assert api.get("/api/v1/vapid-public-key?site=warta").json == {"publicKey": warta_key}
    default = api.get("/api/v1/vapid-public-key")
    assert default.json == {"publicKey": sites_context.vapid.public_key_b64}
    assert "Access-Control-Allow-Origin" not in default.headers
    topics = api.get("/api/v1/topics", headers={"Origin": WARTA}).json["topics"]
    assert [t["slug"] for t in topics] == ["nasional", "ekonomi", "sepakbola"]
    assert api.get("/api/v1/topics?site=nope").status_code == 404


def test_preflight_is_answered_for_declared_origins_only(api) -> None:  # type: ignore[no-untyped-def]
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = api.options("/api/v1/subscriptions", headers={"Origin": "https://m.kabarkini.example", **asked})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://m.kabarkini.example"
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert ok.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(ok.headers["Access-Control-Max-Age"]) > 0
    refused = api.options("/api/v1/subscriptions", headers={"Origin": ELSEWHERE, **asked})
    assert refused.status_code == 403 and refused.json["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers
    # The campaign API takes tokens: no page may call it cross-origin.
    token_route = api.options("/api/v1/campaigns", headers={"Origin": KABAR, **asked})
    assert "Access-Control-Allow-Origin" not in token_route.headers


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "flask"])
def test_a_subscription_lands_in_the_site_of_its_origin(
    api, sites_app, sites_context: Context, fast: bool
) -> None:  # type: ignore[no-untyped-def]
    calls = count_view_calls(sites_app, "api.subscribe")
    if not fast:
        api.set_cookie("unrelated", "1")  # any cookie goes through Flask
    body = make_sub(topics=["sepakbola"])
    created = api.post("/api/v1/subscriptions", json=body, headers={"Origin": WARTA})
    assert created.status_code == 201, created.json
    assert calls == ([] if fast else [1])
    assert created.headers["Access-Control-Allow-Origin"] == WARTA
    assert created.json["lang"] == "en"  # the site's language when the page sends none
    store = sites_context.subscriptions
    assert store.site_of(created.json["id"]) == "warta"
    assert store.get(created.json["id"]).key_id == sites_context.vapid_for("warta").key_id

    # Origin A naming site B is refused, whatever the body says; nothing is stored.
    other = make_sub(topics=["nasional"])
    wrong = api.post("/api/v1/subscriptions?site=warta", json=other, headers={"Origin": KABAR})
    assert wrong.status_code == 403 and wrong.json["error"] == "wrong_site"
    undeclared = api.post("/api/v1/subscriptions", json=other, headers={"Origin": ELSEWHERE})
    assert undeclared.status_code == 403 and undeclared.json["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in undeclared.headers
    # A topic of another site is unknown here.
    unknown = api.post(
        "/api/v1/subscriptions", json=make_sub(topics=["sepakbola"]), headers={"Origin": KABAR}
    )
    assert unknown.status_code == 400 and unknown.json["error"] == "unknown_topic"
    assert store.count() == 1


def test_the_fast_path_answers_a_cross_origin_subscribe_as_flask_does(api, sites_app) -> None:  # type: ignore[no-untyped-def]
    calls = count_view_calls(sites_app, "api.subscribe")
    fast = api.post("/api/v1/subscriptions", json=make_sub(topics=["ekonomi"]), headers={"Origin": WARTA})
    api.set_cookie("unrelated", "1")
    slow = api.post("/api/v1/subscriptions", json=make_sub(topics=["ekonomi"]), headers={"Origin": WARTA})
    assert calls == [1] and fast.status_code == slow.status_code == 201

    def comparable(response: Any) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in response.headers if k not in ("X-Request-ID", "Content-Length"))

    assert comparable(fast) == comparable(slow)


def test_reading_changing_and_deleting_stay_within_the_site(api, sites_context: Context) -> None:  # type: ignore[no-untyped-def]
    body = make_sub(topics=["nasional"])
    sid = api.post("/api/v1/subscriptions", json=body, headers={"Origin": WARTA}).json["id"]
    endpoint = body["endpoint"]
    query = f"/api/v1/subscriptions?endpoint={endpoint}"
    assert api.get(query, headers={"Origin": WARTA}).json["topics"] == ["nasional"]
    assert api.get(query, headers={"Origin": KABAR}).status_code == 404
    changed = api.patch(
        "/api/v1/subscriptions",
        json={"endpoint": endpoint, "topics": ["sepakbola"]},
        headers={"Origin": KABAR},
    )
    assert changed.status_code == 400  # sepakbola is not one of kabar's topics
    changed = api.patch(
        "/api/v1/subscriptions",
        json={"endpoint": endpoint, "topics": ["nasional"]},
        headers={"Origin": KABAR},
    )
    assert changed.status_code == 404
    # Another site's DELETE answers 204 (it holds nothing for this endpoint) and removes nothing.
    assert (
        api.delete(
            "/api/v1/subscriptions", json={"endpoint": endpoint}, headers={"Origin": KABAR}
        ).status_code
        == 204
    )
    assert sites_context.subscriptions.site_of(sid) == "warta"
    gone = api.delete("/api/v1/subscriptions", json={"endpoint": endpoint}, headers={"Origin": WARTA})
    assert gone.status_code == 204 and gone.headers["Access-Control-Allow-Origin"] == WARTA
    assert sites_context.subscriptions.site_of(sid) is None


def test_notifier_s_own_pages_use_the_default_site(api, sites_context: Context) -> None:  # type: ignore[no-untyped-def]
    # The test client's requests come from http://localhost: notifier's own origin.
    own = api.post("/api/v1/subscriptions", json=make_sub(), headers={"Origin": "http://localhost"})
    assert own.status_code == 201
    assert sites_context.subscriptions.site_of(own.json["id"]) == "kabar"
    named = api.post("/api/v1/subscriptions?site=warta", json=make_sub(topics=["ekonomi"]))
    assert named.status_code == 201
    assert sites_context.subscriptions.site_of(named.json["id"]) == "warta"


def signed(api: Any, secret: str, body: dict[str, Any]) -> Any:
    import json
    import time

    from web.cms import sign

    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    headers = {"X-Notifier-Timestamp": stamp, "X-Notifier-Signature": sign(secret, stamp, raw)}
    return api.post("/api/v1/articles", data=raw, headers={**headers, "Content-Type": "application/json"})


def test_the_cms_webhook_names_the_site_and_each_site_pushes_an_article_once(
    api, sites_context: Context
) -> None:  # type: ignore[no-untyped-def]
    from notifier.campaigns import CampaignStore

    secret = sites_context.settings.webhook_secret
    article = {"guid": "cms-12345", "title": "Laga final", "url": "https://warta.example/final",
               "categories": ["Sepakbola"]}  # fmt: skip
    warta = signed(api, secret, {**article, "site": "warta"})
    assert warta.status_code == 201 and warta.json["site"] == "warta"
    campaign = CampaignStore(sites_context.redis, sites_context.keys).get(warta.json["campaign"])
    assert campaign.site == "warta" and campaign.topics == ("sepakbola",)
    assert signed(api, secret, {**article, "site": "warta"}).json["status"] == "duplicate"
    # The same CMS id on the other site is another article: guards are per site.
    kabar = signed(api, secret, {**article, "url": "https://www.kabarkini.example/final"})
    assert kabar.status_code == 201 and kabar.json["site"] == "kabar"
    unknown = signed(api, secret, {**article, "site": "nope"})
    assert unknown.status_code == 404 and "sites: kabar, warta" in unknown.json["message"]
