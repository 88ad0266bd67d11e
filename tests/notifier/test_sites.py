"""Sites: the sites file and its checks, and every subscription, count and audience kept per site."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from notifier.campaigns import CampaignStore, migrate_campaign_sites, validate_campaign
from notifier.context import Context
from notifier.errors import ConfigError, NotFound
from notifier.settings import Settings
from notifier.sites import DEFAULT_SITE_ID, load_sites, normalize_origin, parse_sites
from notifier.subscriptions import SubscriptionStore, iter_audience, migrate_sites, validate_subscription
from notifier.upgrade import upgrade
from notifier_simulator import SimulatorServer
from tests.factories import TWO_SITES, write_sites


def test_without_a_sites_file_there_is_one_default_site_made_of_the_settings(settings: Settings) -> None:
    sites = load_sites(settings)
    assert sites.ids == (DEFAULT_SITE_ID,)
    site = sites.default
    assert site.name == settings.site_name
    assert site.origins == ("http://127.0.0.1:5000",)
    assert [t.slug for t in site.topics][:2] == ["breaking", "nasional"]
    assert site.vapid_key_file is None and site.lang == "id"


def test_origins_are_normalised_and_only_secure_ones_accepted() -> None:
    assert normalize_origin("HTTPS://WWW.Medcom.ID:443/") == "https://www.medcom.id"
    assert normalize_origin("https://m.medcom.id:8443") == "https://m.medcom.id:8443"
    assert normalize_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_origin("http://localhost") == "http://localhost"
    for bad, why in (
        ("http://www.medcom.id", "secure contexts"),
        ("https://www.medcom.id/berita", "no path"),
        ("www.medcom.id", "https://"),
        ("ftp://medcom.id", "https://"),
    ):
        with pytest.raises(Exception, match=why):
            normalize_origin(bad)


def test_the_sites_file_is_checked_whole_with_every_problem_named(settings: Settings, tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "default": "nowhere",
        "sites": [
            {"id": "medcom", "name": "Medcom", "origins": ["https://m.medcom.id"]},
            {"id": "Bad Id", "name": "x", "origins": []},
            {"id": "metro", "name": "Metro", "origins": ["https://M.medcom.id/"]},
            {"id": "plain", "name": "Plain", "origins": ["http://metro.example"], "lang": "fr"},
            {"id": "kabar", "name": "", "origins": ["https://kabar.example"], "colour": "red"},
            {"id": "own", "name": "Own", "origins": ["https://own.example"], "vapid_key_file": "missing.pem"},
            {"id": "quiet", "name": "Q", "origins": ["https://q.example"], "quiet_hours": "25-3"},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_sites(document, settings=settings, base=tmp_path)
    message = caught.value.message
    for needle in (
        "'lang' must be one of id, en, not 'fr'",
        "sites[1].id must be 1-32 lower-case letters",
        "origin https://m.medcom.id is declared by sites 'medcom' and 'metro'",
        "'http://metro.example' uses http",
        "site 'kabar': 'name' must be a non-empty string",
        "unknown field(s) colour",
        "VAPID key file",
        "quiet hours",
        "'default' names 'nowhere'",
    ):
        assert needle in message, (needle, message)


def test_a_sites_file_gives_each_site_its_origins_topics_language_and_key(sites_context: Context) -> None:
    sites = sites_context.sites
    assert sites.ids == ("kabar", "warta") and sites.default_id == "kabar"
    warta = sites.get("warta")
    assert warta.lang == "en" and warta.topic_slugs == ("nasional", "ekonomi", "sepakbola")
    assert sites.by_origin("https://WARTA.example:443") is warta
    assert sites.by_origin("https://m.kabarkini.example") is sites.get("kabar")
    assert sites.by_origin("https://elsewhere.example") is None
    with pytest.raises(NotFound, match="no site 'nope'; sites: kabar, warta"):
        sites.get("nope")
    # warta signs with its own key, kabar with the deployment's.
    assert sites_context.vapid_for("kabar") is sites_context.vapid
    assert sites_context.vapid_for("warta").public_key_b64 != sites_context.vapid.public_key_b64
    assert sites_context.topics == sites.default.topics
    assert warta.freq_cap(sites_context.settings) == 0
    assert sites.get("kabar").freq_cap(sites_context.settings) == sites_context.settings.freq_cap_per_hour


def test_a_broken_sites_file_stops_the_process_at_start_up(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "sites.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        Context.build(Settings.from_env({**settings_env, "NOTIFIER_SITES_FILE": str(path)}))
    with pytest.raises(ConfigError, match="does not exist"):
        Context.build(Settings.from_env({**settings_env, "NOTIFIER_SITES_FILE": str(tmp_path / "none.json")}))


def _store(context: Context, minted: list[dict[str, Any]], site: str, topics: list[str]) -> list[str]:
    ids = []
    for sub in minted:
        item = validate_subscription(
            {**sub, "topics": topics}, policy=context.policy, topics=context.site(site).topics
        )
        ids.append(context.subscriptions.upsert(item, site=site)[0])
    return ids


def test_subscriptions_counts_and_audiences_are_per_site(
    sites_context: Context, simulator: SimulatorServer
) -> None:
    c = sites_context
    store = c.subscriptions
    kabar = _store(c, simulator.mint(5), "kabar", ["nasional", "breaking"])
    warta = _store(c, simulator.mint(3), "warta", ["nasional", "sepakbola"])
    kabar_only = _store(c, simulator.mint(2), "kabar", ["ekonomi"])

    assert store.count() == 10
    assert store.count(site="kabar") == 7 and store.count(site="warta") == 3
    assert store.count_by_site(["kabar", "warta"]) == {"kabar": 7, "warta": 3}
    # Both sites have a "nasional" topic: its bitmap is shared, each site's count is its own.
    assert store.count("nasional") == 8
    assert store.count("nasional", site="kabar") == 5 and store.count("nasional", site="warta") == 3
    assert store.audience_size(["nasional", "ekonomi"], site="kabar") == 7
    assert store.audience_size(["nasional", "ekonomi"], site="warta") == 3
    assert store.audience_size([], site="warta") == 3
    pages = [sid for page in iter_audience(c.redis, c.keys, ["nasional"], site="warta") for sid in page]
    assert sorted(pages, key=int) == warta
    assert sorted(p for page in store.scan_ids(site="kabar") for p in page) == sorted(kabar + kabar_only)
    assert {s.sid for s in store.sample(100, site="warta")} == set(warta)
    assert store.site_of(warta[0]) == "warta" and store.site_of(kabar[0]) == "kabar"

    # A site sees only its own readers.
    endpoint = store.get(warta[0]).endpoint
    assert store.get_by_endpoint(endpoint, site="warta").sid == warta[0]
    with pytest.raises(NotFound):
        store.get_by_endpoint(endpoint, site="kabar")
    assert not store.delete_by_endpoint(endpoint, site="kabar")
    with pytest.raises(NotFound):
        store.set_topics(endpoint, ["ekonomi"], site="kabar")
    assert store.count(site="warta") == 3

    # Deleting clears the site's bit too, and counts the removal for the site.
    assert store.delete_by_endpoint(endpoint, site="warta")
    assert store.count(site="warta") == 2 and store.site_of(warta[0]) is None
    assert sum(int(v) for v in c.redis.hvals(c.keys.subs_daily_site("removed", "warta"))) == 1
    assert sum(int(v) for v in c.redis.hvals(c.keys.subs_daily_site("added", "kabar"))) == 7


def test_an_endpoint_stored_again_under_another_site_moves_there(
    sites_context: Context, simulator: SimulatorServer
) -> None:
    c = sites_context
    minted = simulator.mint(1)
    [sid] = _store(c, minted, "kabar", ["nasional"])
    [again] = _store(c, minted, "warta", ["sepakbola"])
    assert again == sid
    assert c.subscriptions.site_of(sid) == "warta"
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 0, "warta": 1}
    assert c.subscriptions.count("nasional") == 0  # its old site's topics went with the move


def test_data_of_before_sites_moves_to_the_default_site_once(
    context: Context, r: redis.Redis, simulator: SimulatorServer, sites_env: dict[str, str]
) -> None:
    # A release without sites stored subscriptions and campaigns: no site bitmaps, no site fields.
    old = SubscriptionStore(r, context.keys)
    old_ids = _store(context, simulator.mint(1200), DEFAULT_SITE_ID, ["nasional"])
    r.delete(context.keys.subs_site(DEFAULT_SITE_ID), context.keys.sites)
    cid = CampaignStore(r, context.keys).create(
        validate_campaign(
            {"title": "Lama", "body": "b", "url": "https://kabarkini.example/a"}, topics=context.topics
        )
    )
    r.hdel(context.keys.campaign(cid), "site")
    r.delete(context.keys.campaigns_of_site(DEFAULT_SITE_ID))
    assert old.count() == 1200

    # The new release declares two sites; a web process stores a warta reader before any worker starts.
    c = Context.build(Settings.from_env(sites_env), client=r)
    [warta] = _store(c, simulator.mint(1), "warta", ["sepakbola"])
    done = upgrade(c)
    assert done.campaigns_to_site == 1 and done.subscriptions_to_site == 1200
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 1200, "warta": 1}
    assert c.subscriptions.site_of(old_ids[-1]) == "kabar" and c.subscriptions.site_of(warta) == "warta"
    campaign = CampaignStore(r, c.keys).get(cid)
    assert campaign.site == "kabar"
    assert [x.cid for x in CampaignStore(r, c.keys).list(sites=["kabar"])] == [cid]
    # Another worker starting does nothing more.
    assert migrate_sites(c.subscriptions) == -1
    assert migrate_campaign_sites(r, c.keys, "kabar") == 0
    assert upgrade(c).subscriptions_to_site == -1
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 1200, "warta": 1}


def test_campaigns_are_listed_per_site(sites_context: Context) -> None:
    store = CampaignStore(sites_context.redis, sites_context.keys, sites_context.sites.default_id)
    data = {"title": "T", "body": "b", "url": "https://warta.example/a"}
    ids = {}
    for n, site in enumerate(["kabar", "warta", "kabar", "warta", "warta"]):
        topics = sites_context.site(site).topics
        item = validate_campaign(data, topics=topics, site=site)
        ids[store.create(item, now=1_800_000_000 + n)] = site
    assert [c.site for c in store.list()] == ["warta", "warta", "kabar", "warta", "kabar"]
    assert {c.site for c in store.list(sites=["warta"])} == {"warta"}
    assert len(store.list(sites=["warta"])) == 3 and store.count(sites=["warta"]) == 3
    both = store.list(0, 3, sites=["kabar", "warta"])
    assert [c.cid for c in both] == [c.cid for c in store.list(0, 3)]
    assert store.count() == 5 and store.list(sites=[]) == []
    # Without a site the store's default is used.
    assert store.get(store.create(validate_campaign(data, topics=sites_context.topics))).site == "kabar"


def test_the_sites_fixture_matches_the_documented_shape(tmp_path: Path) -> None:
    path = write_sites(tmp_path, TWO_SITES)
    assert json.loads(path.read_text())["default"] == "kabar"
    assert (tmp_path / "warta-vapid.pem").exists()


def test_article_guards_of_before_sites_move_to_the_default_site(
    context: Context, r: redis.Redis, sites_env: dict[str, str]
) -> None:
    from notifier.articles import ArticleIngest, digest
    from notifier.upgrade import migrate_article_guards

    keys = context.keys
    old_guid = f"{keys.prefix}article:{digest('guid-1')}"
    old_url = f"{keys.prefix}article-url:{digest('https://kabarkini.example/a')}"
    r.set(old_guid, "c1", ex=3600)
    r.set(old_url, "c1", ex=3600)
    c = Context.build(Settings.from_env(sites_env), client=r)
    assert migrate_article_guards(c, "kabar") == 2
    assert r.get(keys.article(digest("guid-1"), "kabar")) == "c1"
    assert 0 < r.ttl(keys.article_url(digest("https://kabarkini.example/a"), "kabar")) <= 3600
    assert migrate_article_guards(c, "kabar") == 0
    ingest = ArticleIngest(r, keys, c.topics, lambda cid, at: None, default_site="kabar")
    assert ingest.guard_keys(ingest_article("guid-1"))[0] == keys.article(digest("guid-1"), "kabar")


def ingest_article(guid: str):  # type: ignore[no-untyped-def]
    from notifier.articles import parse_article

    return parse_article({"guid": guid, "title": "T", "url": "https://kabarkini.example/a"})


def test_export_and_import_keep_each_subscriptions_site(
    sites_context: Context, r: redis.Redis, simulator: SimulatorServer
) -> None:
    from notifier.transfer import export_lines, import_lines

    c = sites_context
    _store(c, simulator.mint(3), "kabar", ["nasional"])
    _store(c, simulator.mint(2), "warta", ["sepakbola"])
    lines = list(export_lines(c))
    assert sorted(json.loads(line)["site"] for line in lines) == ["kabar"] * 3 + ["warta"] * 2
    only = list(export_lines(c, site="warta"))
    assert len(only) == 2 and all(json.loads(line)["topics"] == ["sepakbola"] for line in only)

    r.flushdb()
    report = import_lines(c, lines)
    assert report.created == 5 and not report.refused
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 3, "warta": 2}
    # An import for one site refuses another site's lines, and a line naming a topic of no site it is for.
    report = import_lines(c, [lines[0], only[0]], site="warta")
    assert report.updated == 1 and len(report.refused) == 1 and "site 'kabar'" in report.refused[0][1]


def test_quiet_hours_time_zone_and_the_cap_are_each_sites(
    settings_env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from notifier.delivery import Delivery

    document = {
        "default": "kabar",
        "sites": [
            {"id": "kabar", "name": "Kabar", "origins": ["https://kabar.example"]},
            {"id": "papua", "name": "Papua", "origins": ["https://papua.example"], "timezone": "Asia/Jayapura",
             "quiet_hours": "22-6", "freq_cap_per_hour": 1},
        ],
    }  # fmt: skip
    env = {
        **settings_env,
        "NOTIFIER_SITES_FILE": str(write_sites(tmp_path, document)),
        "NOTIFIER_QUIET_HOURS": "",
    }
    c = Context.build(Settings.from_env(env), client=r)
    delivery = Delivery(c)
    store = CampaignStore(r, c.keys)
    data = {"title": "T", "body": "b", "url": "https://papua.example/a"}
    papua = store.get(store.create(validate_campaign(data, topics=c.site("papua").topics, site="papua")))
    kabar = store.get(store.create(validate_campaign(data, topics=c.topics, site="kabar")))
    # 23:30 in Jayapura (UTC+9) is inside papua's quiet hours; the deployment has none, so kabar sends.
    night = datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo("Asia/Jayapura")).timestamp()
    until = delivery.quiet_until(papua, now=night)
    assert until == datetime(2026, 3, 11, 6, 0, tzinfo=ZoneInfo("Asia/Jayapura")).timestamp()
    assert delivery.quiet_until(kabar, now=night) is None
    assert delivery._freq_cap(papua) == 1
    assert delivery._freq_cap(kabar) == c.settings.freq_cap_per_hour


def test_a_site_may_set_its_own_reader_standing_rules_checked_at_start_up(
    settings: Settings, settings_env: dict[str, str], tmp_path: Path
) -> None:
    own = {"id": "own", "name": "Own", "origins": ["https://own.example"]}
    document: dict[str, Any] = {
        "sites": [
            {**own, "unreachable_after": 0, "reader_budget": 12, "long_hold_after": 3600},
            {"id": "plain", "name": "Plain", "origins": ["https://plain.example"]},
        ]
    }
    sites = parse_sites(document, settings=settings, base=tmp_path)
    assert sites.get("own").standing_rules(settings) == {
        "unreachable_after": 0,
        "reader_budget": 12,
        "long_hold_after": 3600,
    }
    assert sites.get("plain").standing_rules(settings) == {
        "unreachable_after": settings.unreachable_after,
        "reader_budget": settings.reader_budget,
        "long_hold_after": settings.long_hold_after,
    }
    # The entry written back (``notifier sites add``) keeps the overrides, and only them.
    assert (
        sites.get("own").entry()["reader_budget"] == 12 and sites.get("own").entry()["unreachable_after"] == 0
    )
    assert not {"unreachable_after", "reader_budget", "long_hold_after"} & set(sites.get("plain").entry())

    broken = {
        "sites": [
            {**own, "unreachable_after": 256, "reader_budget": "30", "long_hold_after": -1},
            {"id": "flag", "name": "F", "origins": ["https://f.example"], "reader_budget": True},
        ]
    }
    path = tmp_path / "sites.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ConfigError) as caught:
        Context.build(Settings.from_env({**settings_env, "NOTIFIER_SITES_FILE": str(path)}))
    message = caught.value.message
    for needle in (
        "site 'own': 'unreachable_after' must be a number of pushes from 0 (off) to 255, got 256 "
        "(leave it out to use the deployment's NOTIFIER_UNREACHABLE_AFTER)",
        "site 'own': 'reader_budget' must be a number of pushes from 0 (off) to 255, got '30'",
        "site 'own': 'long_hold_after' must be 0 (off) or more seconds, got -1",
        "site 'flag': 'reader_budget' must be a number of pushes from 0 (off) to 255, got True",
    ):
        assert needle in message, (needle, message)
