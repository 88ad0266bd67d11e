"""Reader health on ``/metrics``, per site: the readers page's figures (pushes per reader per day, share of
readers who clicked in 30 days, readers over budget, unreachable readers per push service), computed at
scrape time from bitmaps and counters, so a scrape costs the same Redis work for 10 readers or 1,000."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import redis

from notifier import stats
from notifier.campaigns import CampaignStore, receipt_token, record_receipt, validate_campaign
from notifier.context import Context
from notifier.crypto import b64url_encode, generate_subscriber
from notifier.subscriptions import validate_subscription
from tests.factories import TWO_SITES, by, scrape, write_sites

HOSTS = {"apple": "https://web.push.apple.com/", "fcm": "https://fcm.googleapis.com/fcm/send/"}


@pytest.fixture
def settings_env(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**settings_env, "NOTIFIER_SITES_FILE": str(write_sites(tmp_path / "sites", TWO_SITES))}


def readers(context: Context, site: str, service: str, n: int) -> list[str]:
    sids = []
    for _ in range(n):
        _, public, auth = generate_subscriber()
        item = validate_subscription(
            {
                "endpoint": HOSTS[service] + b64url_encode(secrets.token_bytes(40)),
                "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
                "topics": ["nasional"],
            },
            policy=context.policy,
            topics=context.site(site).topics,
        )
        sids.append(context.subscriptions.upsert(item, site=site)[0])
    return sids


def sent(
    context: Context, site: str, sids: list[str], *, unreachable_after: int = 0, budget: int = 0
) -> None:
    """Pushes accepted for ``sids`` today, recorded as a batch's commit records them."""
    now = time.time()
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent(sids, pipe, unreachable_after=unreachable_after, budget=budget, now=now)
    pipe.hincrby(context.keys.sent_daily(site), time.strftime("%Y-%m-%d", time.gmtime(now)), len(sids))
    pipe.execute()


def test_reader_health_is_on_metrics_per_site_as_the_readers_page_shows_it(client, context: Context) -> None:  # type: ignore[no-untyped-def]
    kabar_apple = readers(context, "kabar", "apple", 3)
    kabar_fcm = readers(context, "kabar", "fcm", 2)
    warta_fcm = readers(context, "warta", "fcm", 4)
    sent(context, "kabar", kabar_apple[:2], unreachable_after=1)  # showed nothing: unreachable
    sent(context, "kabar", kabar_fcm, budget=1)  # clicked nothing: over their budget
    sent(context, "kabar", kabar_apple[2:])
    sent(context, "warta", warta_fcm)
    sent(context, "warta", warta_fcm[:2])  # two of them got a second push today
    item = validate_campaign(
        {"title": "t", "body": "b", "url": "https://warta.example/a", "topics": ["nasional"]},
        topics=context.site("warta").topics,
        site="warta",
    )
    cid = CampaignStore(context.redis, context.keys).create(item)
    token = receipt_token(context.receipt_key, cid, warta_fcm[0])
    receipt = {"type": "clicked", "cid": cid, "sid": warta_fcm[0], "rt": token}
    assert record_receipt(context.redis, context.keys, context.receipt_key, receipt)

    m = scrape(client)
    per_reader = {
        dict(k)["site"] + "/" + dict(k)["period"]: v for k, v in m["notifier_site_pushes_per_reader"].items()
    }
    assert per_reader == {"kabar/today": 1.0, "kabar/14d": 1.0, "warta/today": 1.5, "warta/14d": 1.5}
    assert by(m["notifier_site_readers_clicked"], "site") == {"kabar": 0, "warta": 1}
    assert by(m["notifier_site_readers_clicked_ratio"], "site") == {"kabar": 0.0, "warta": 0.25}
    assert by(m["notifier_site_subscribers_over_budget"], "site") == {"kabar": 2, "warta": 0}
    assert by(m["notifier_site_subscribers_unreachable"], "site") == {"kabar": 2, "warta": 0}
    services = {
        (dict(k)["site"], dict(k)["service"], dict(k)["standing"]): v
        for k, v in m["notifier_site_push_service_subscribers"].items()
        if v
    }
    assert services == {
        ("kabar", "apple", "all"): 3,
        ("kabar", "apple", "unreachable"): 2,
        ("kabar", "fcm", "all"): 2,
        ("warta", "fcm", "all"): 4,
    }
    # The same figures as the readers page, and the sites add up to the deployment's families.
    for site in ("kabar", "warta"):
        page = stats.reader_health(context.redis, context.keys, site=site)
        assert per_reader[f"{site}/14d"] == page["per_reader_average"]
        assert by(m["notifier_site_readers_clicked_ratio"], "site")[site] == page["clicked"]["share"]
        assert by(m["notifier_site_subscribers_over_budget"], "site")[site] == page["over_budget"]
    deployment = {
        (dict(k)["service"], dict(k)["standing"]): v
        for k, v in m["notifier_push_service_subscribers"].items()
    }
    for (service, standing), n in deployment.items():
        assert n == sum(v for (_, s, st), v in services.items() if (s, st) == (service, standing))
    assert m["notifier_subscribers_unreachable"][()] == 2 and m["notifier_subscribers_over_budget"][()] == 2


def test_a_scrape_costs_the_same_redis_work_for_many_more_readers(
    client, context: Context, r: redis.Redis
) -> None:  # type: ignore[no-untyped-def]
    def calls_of_one_scrape() -> int:
        r.config_resetstat()
        scrape(client)
        commands = r.info("commandstats")
        return sum(
            v["calls"] for name, v in commands.items() if name not in ("cmdstat_config", "cmdstat_info")
        )

    sent(context, "kabar", readers(context, "kabar", "fcm", 5), budget=1)
    scrape(client)  # the first one also loads the Lua scripts
    few = calls_of_one_scrape()
    sent(context, "kabar", readers(context, "kabar", "apple", 300), unreachable_after=1)
    sent(context, "warta", readers(context, "warta", "fcm", 300), budget=1)
    assert calls_of_one_scrape() == few
