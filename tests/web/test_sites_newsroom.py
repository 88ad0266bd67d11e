"""Two sites in the newsroom, ops and the token API: each account and token acts on its own sites only."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from notifier.tokens import TokenStore
from tests.factories import PASSWORD, AuthActions

FORM = {
    "title": "Banjir rob di pesisir utara",
    "body": "Warga diminta menjauhi tanggul.",
    "url": "https://www.kabarkini.example/nasional/banjir-rob",
    "topics": ["nasional"],
    "when": "now",
    "action": "send",
}


@pytest.fixture
def sites_app(sites_context: Context):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app({"TESTING": True}, context=sites_context)


@pytest.fixture
def newsroom(sites_app, sites_context: Context) -> AuthActions:  # type: ignore[no-untyped-def]
    return AuthActions(sites_app.test_client(), sites_context)


def readers(context: Context, site: str, n: int, topics: list[str]) -> None:
    host = context.settings.push_hosts[0]
    for i in range(n):
        item = validate_subscription(
            {
                "endpoint": f"http://{host}/push/{site}-{i}",
                "keys": {
                    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                    "auth": "tBHItJI5svbpez7KI4CCXg",
                },
                "topics": topics,
            },
            policy=context.policy,
            topics=context.site(site).topics,
        )
        context.subscriptions.upsert(item, site=site)


def campaign_of(context: Context, site: str, title: str) -> str:
    data = {"title": title, "body": "b", "url": "https://warta.example/x", "topics": ["nasional"]}
    item = validate_campaign(data, topics=context.site(site).topics, site=site)
    return CampaignStore(context.redis, context.keys).create(item)


def login(newsroom: AuthActions, email: str, role: str, sites: list[str]) -> None:
    newsroom.context.users.create(email, PASSWORD, role, sites=sites)
    assert newsroom.login(email).status_code == 302


def test_an_editor_of_one_site_neither_sees_nor_sends_to_another(
    newsroom: AuthActions, sites_context: Context
) -> None:
    c = sites_context
    readers(c, "kabar", 4, ["nasional"])
    readers(c, "warta", 3, ["nasional"])
    warta_cid = campaign_of(c, "warta", "Warta: pasar ikan")
    kabar_cid = campaign_of(c, "kabar", "Kabar: jalan tol")
    login(newsroom, "redaksi@kabarkini.example", "editor", ["kabar"])
    client = newsroom.client

    listing = client.get("/newsroom/campaigns").get_data(as_text=True)
    assert "Kabar: jalan tol" in listing and "Warta: pasar ikan" not in listing
    for path in (f"/newsroom/campaigns/{warta_cid}", f"/newsroom/campaigns/{warta_cid}.json"):
        assert client.get(path).status_code == 404
    assert newsroom.post(f"/newsroom/campaigns/{warta_cid}/cancel").status_code == 404
    assert newsroom.post(f"/newsroom/campaigns/{warta_cid}/duplicate").status_code == 404
    assert client.get(f"/newsroom/campaigns/{kabar_cid}").status_code == 200

    # Composing: only its own site, whose readers the audience counts.
    assert client.get("/newsroom/compose?site=warta").status_code == 404
    assert client.get("/newsroom/audience.json?site=warta&topic=nasional").status_code == 404
    audience = client.get("/newsroom/audience.json?site=kabar&topic=nasional").get_json()
    assert audience["size"] == 4
    assert 'id="f-site-switch"' not in client.get("/newsroom/compose").get_data(as_text=True)
    before = CampaignStore(c.redis, c.keys).count()
    refused = newsroom.post("/newsroom/compose", {**FORM, "site": "warta"})
    assert refused.status_code == 404 and CampaignStore(c.redis, c.keys).count() == before
    sent = newsroom.post("/newsroom/compose", {**FORM, "site": "kabar"})
    assert sent.status_code == 302
    newest = CampaignStore(c.redis, c.keys).list(0, 1)[0]
    assert newest.site == "kabar" and newest.title == FORM["title"]


def test_an_editor_of_two_sites_and_an_admin_choose_the_site(
    newsroom: AuthActions, sites_context: Context
) -> None:
    c = sites_context
    readers(c, "warta", 2, ["sepakbola"])
    login(newsroom, "meja@media.example", "editor", ["kabar", "warta"])
    page = newsroom.client.get("/newsroom/compose?site=warta").get_data(as_text=True)
    assert 'id="f-site-switch"' in page and '<option value="warta" selected>' in page
    assert "Sepak bola" in page  # warta's own topic
    sent = newsroom.post(
        "/newsroom/compose",
        {**FORM, "site": "warta", "topics": ["sepakbola"], "url": "https://warta.example/bola"},
    )
    assert sent.status_code == 302
    assert CampaignStore(c.redis, c.keys).list(0, 1)[0].site == "warta"
    # kabar has no "sepakbola" topic: refused for that site.
    refused = newsroom.post("/newsroom/compose", {**FORM, "site": "kabar", "topics": ["sepakbola"]})
    assert refused.status_code == 400
    newsroom.logout()

    login(newsroom, "admin@media.example", "admin", [])
    listing = newsroom.client.get("/newsroom/campaigns").get_data(as_text=True)
    assert "Warta Timur" in listing  # the site column, shown when there are several sites
    accounts = newsroom.client.get("/newsroom/users").get_data(as_text=True)
    assert "Kabar Kini (editor), Warta Timur (editor)" in accounts
    granted = newsroom.post(
        "/newsroom/users", {"action": "revoke", "email": "meja@media.example", "site": "kabar"}
    )
    assert granted.status_code == 302
    assert c.users.get("meja@media.example").site_roles == {"warta": "editor"}


def test_ops_sees_its_sites_figures_and_metrics_are_labelled_per_site(
    newsroom: AuthActions, sites_context: Context
) -> None:
    c = sites_context
    readers(c, "kabar", 5, ["nasional"])
    readers(c, "warta", 2, ["nasional"])
    login(newsroom, "ops@kabarkini.example", "ops", ["kabar"])
    summary = newsroom.client.get("/ops/summary.json").get_json()
    assert summary["site"] == "kabar" and summary["subscribers"]["total"] == 5
    assert [s["id"] for s in summary["sites"]] == ["kabar"]
    assert newsroom.client.get("/ops/summary.json?site=warta").status_code == 404
    newsroom.logout()
    login(newsroom, "admin@media.example", "admin", [])
    summary = newsroom.client.get("/ops/summary.json").get_json()
    assert summary["subscribers"]["total"] == 7
    assert {s["id"]: s["subscribers"] for s in summary["sites"]} == {"kabar": 5, "warta": 2}
    assert newsroom.client.get("/ops/summary.json?site=warta").get_json()["subscribers"]["total"] == 2
    assert 'id="sites-table"' in newsroom.client.get("/ops/").get_data(as_text=True)

    metrics = newsroom.client.get("/metrics").get_data(as_text=True)
    assert 'notifier_site_subscribers{site="kabar"} 5.0' in metrics
    assert 'notifier_site_subscribers{site="warta"} 2.0' in metrics
    assert 'notifier_site_topic_subscribers{site="warta",topic="nasional"} 2.0' in metrics
    assert "notifier_subscribers 7.0" in metrics


def test_a_token_for_one_site_creates_and_reads_only_that_sites_campaigns(
    newsroom: AuthActions, sites_context: Context
) -> None:
    c = sites_context
    token = TokenStore(c.redis, c.keys).create("cms-warta", sites=["warta"])
    everywhere = TokenStore(c.redis, c.keys).create("cms-group")
    client = newsroom.client
    body: dict[str, Any] = {"title": "T", "body": "B", "url": "https://warta.example/a"}

    def post(tok: str, data: dict[str, Any]) -> Any:
        return client.post("/api/v1/campaigns", json=data, headers={"Authorization": f"Bearer {tok}"})

    made = post(token, body)
    assert made.status_code == 202 and made.get_json()["site"] == "warta"
    refused = post(token, {**body, "site": "kabar"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "wrong_site"
    kabar = post(everywhere, {**body, "site": "kabar"})
    assert kabar.status_code == 202 and kabar.get_json()["site"] == "kabar"
    assert post(everywhere, body).get_json()["site"] == "kabar"  # no site named: the default site
    assert post(everywhere, {**body, "site": "nope"}).status_code == 404
    hidden = client.get(
        f"/api/v1/campaigns/{kabar.get_json()['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert hidden.status_code == 404
    shown = client.get(
        f"/api/v1/campaigns/{made.get_json()['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert shown.status_code == 200 and shown.get_json()["site"] == "warta"


def test_times_are_entered_and_shown_in_the_campaigns_sites_time_zone(
    settings_env: dict[str, str], r: Any, tmp_path: Any
) -> None:
    """warta is in Makassar (WITA, UTC+8), the deployment in Jakarta (WIB, UTC+7): 08:00 is warta's 08:00."""
    import copy
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from notifier.settings import Settings
    from tests.factories import TWO_SITES, write_sites
    from web import create_app

    document = copy.deepcopy(TWO_SITES)
    document["sites"][1]["timezone"] = "Asia/Makassar"
    env = {**settings_env, "NOTIFIER_SITES_FILE": str(write_sites(tmp_path / "tz", document))}
    context = Context.build(Settings.from_env(env), client=r)
    newsroom = AuthActions(create_app({"TESTING": True}, context=context).test_client(), context)
    login(newsroom, "meja@media.example", "editor", ["kabar", "warta"])
    store = CampaignStore(context.redis, context.keys)
    day = (datetime.now(ZoneInfo("Asia/Makassar")) + timedelta(days=2)).strftime("%Y-%m-%d")

    page = newsroom.client.get("/newsroom/compose?site=warta&lang=en").get_data(as_text=True)
    assert "Date and time (Asia/Makassar, WITA)" in page
    assert "Date and time (Asia/Jakarta, WIB)" in newsroom.client.get(
        "/newsroom/compose?site=kabar"
    ).get_data(as_text=True)
    at = {"when": "later", "send_at": f"{day}T08:00"}
    warta = newsroom.post(
        "/newsroom/compose", {**FORM, **at, "site": "warta", "url": "https://warta.example/pagi"}
    )
    assert warta.status_code == 302
    kabar = newsroom.post("/newsroom/compose", {**FORM, **at, "site": "kabar", "title": "Kabar pagi"})
    assert kabar.status_code == 302
    by_site = {c.site: c for c in store.list(0, 5)}
    expected = datetime.fromisoformat(f"{day}T08:00").replace(tzinfo=ZoneInfo("Asia/Makassar")).timestamp()
    assert by_site["warta"].send_at == expected
    assert by_site["kabar"].send_at == expected + 3600  # 08:00 WIB is an hour after 08:00 WITA

    flashed = newsroom.client.get(warta.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Times are in Asia/Makassar, WITA, the time zone of the campaign's site." in flashed
    assert "08:00 WITA" in flashed and "WIB" not in flashed.split('id="campaign-zone"')[1]
    assert 'data-zone="Asia/Makassar"' in flashed
    kabar_page = newsroom.client.get(kabar.headers["Location"] + "?lang=id").get_data(as_text=True)
    assert "Waktu dalam Asia/Jakarta, WIB" in kabar_page and "08:00 WIB" in kabar_page
    listing = newsroom.client.get("/newsroom/campaigns?lang=id").get_data(as_text=True)
    assert "pada " in listing and "08:00 WITA" in listing and "08:00 WIB" in listing
    context.close()
