"""The ops dashboard: access by role, its JSON figures read from Redis, alerts, health checks, request logs."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from notifier import stats
from notifier.campaigns import CampaignInput, CampaignStore
from notifier.context import Context
from notifier.redis_conn import connect, free_port
from notifier.subscriptions import SubscriptionInput
from tests.factories import login


def test_dashboard_needs_ops_or_admin(app, client) -> None:  # type: ignore[no-untyped-def]
    anonymous = client.get("/ops/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert client.get("/ops/summary.json").status_code == 401
    login(app, client, "editor")
    assert client.get("/ops/").status_code == 403
    assert client.get("/ops/summary.json").status_code == 403
    login(app, client, "ops")
    page = client.get("/ops/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-summary="/ops/summary.json"' in html and "/static/ops/ops.js" in html
    assert "<script>" not in html  # no inline scripts (CSP script-src 'self')
    login(app, client, "admin")
    assert client.get("/ops/summary.json").status_code == 200


def test_summary_reads_every_figure_from_redis(app, client, context: Context) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    # Subscribers first: the throughput figures below are relative to the time of the request.
    now = time.time()
    slug = context.topic_slugs[0]
    store = context.subscriptions
    for endpoint, browser, lang, seen, topics in (
        ("https://fcm.googleapis.com/fcm/send/a", "chrome-desktop", "id", now, (slug,)),
        ("https://updates.push.services.mozilla.com/wpush/v2/b", "firefox", "en", now - 40 * 86400, (slug,)),
        ("https://fcm.googleapis.com/fcm/send/c", "chrome-desktop", "id", now, ()),
    ):
        item = SubscriptionInput(endpoint, "B" + "A" * 86, "A" * 22, topics, lang)
        store.upsert(item, browser=browser, now=seen)
    r.delete(keys.subs_daily("added"))
    login(app, client, "ops")
    now = time.time()
    minute = int(now // 60) * 60
    # 30 messages inside the rate window (whole 10 s buckets, the last 60 s), 10 just before it.
    end = stats.rate_window_end(now)
    for second, n in ((end - 15, 30), (end - 75, 10)):
        r.hincrby(keys.throughput_minute(second // 60 * 60), str(second), n)
    r.hset(keys.throughput_minute(minute - 600), str(minute - 600 + 5), 7)
    r.hset(keys.outcomes_total, mapping={"fcm:sent": 30, "fcm:gone": 4, "mozilla:sent": 6})
    r.hset(keys.statuses_total, mapping={"fcm:201": 30, "fcm:410": 4, "mozilla:201": 6})
    r.hset(keys.latency, mapping={"0.05": 3, "0.1": 2, "+Inf": 1, "sum": 12.5, "count": 6})
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    r.hset(keys.subs_daily("added"), today, 3)
    r.hset(keys.subs_daily("removed"), today, 1)
    d = client.get("/ops/summary.json").get_json()
    assert d["throughput"]["rate"] == 0.5 and d["throughput"]["rate_window"] == 60  # 30 in 60 s
    assert d["throughput"]["now_per_second"] == 0.5 and d["throughput"]["last_minute"] == 30
    assert d["throughput"]["last_hour"] == 47
    assert len(d["throughput"]["minutes"]) == 60 and len(d["throughput"]["seconds"]) == 120
    assert d["push"]["by_service"] == {"fcm": {"sent": 30, "gone": 4}, "mozilla": {"sent": 6}}
    assert d["push"]["by_status"]["fcm"] == {"201": 30, "410": 4}
    assert d["latency"]["buckets"][3] == ["0.05", 3] and d["latency"]["buckets"][-1] == ["+Inf", 6]
    s = d["subscribers"]
    assert s["total"] == 3 and s["by_topic"][slug] == 2
    assert s["sample"]["by_browser"] == {"chrome-desktop": 2, "firefox": 1}
    assert s["sample"]["by_lang"] == {"id": 2, "en": 1}
    assert s["sample"]["stale"] == 1 and s["sample"]["exact"] is True
    assert s["daily"][-1] == {"day": today, "added": 3, "removed": 1}
    assert [q["name"] for q in d["queues"]] == ["notifier-plan", "notifier-send", "notifier-default"]
    assert d["workers"] == [] and d["failed"]["count"] == 0 and d["push"]["alerts"] == []


def test_spikes_and_a_paused_campaign_raise_banners_naming_the_cause(app, client, context: Context) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    now = time.time()
    minute = int(now // 60) * 60
    r.hset(
        keys.status_minute(minute),
        mapping={"fcm:201": 100, "fcm:403": 60, "mozilla:201": 50, "mozilla:429": 25},
    )
    r.hset(keys.status_minute(minute - 3600), "apple:401", 500)  # an hour ago: not a current spike
    login(app, client, "ops")
    alerts = client.get("/ops/summary.json").get_json()["push"]["alerts"]
    by_service = {a["service"]: a for a in alerts}
    assert set(by_service) == {"fcm", "mozilla"}
    assert by_service["fcm"]["count"] == 60 and "VAPID" in by_service["fcm"]["cause"]
    assert by_service["mozilla"]["kind"] == "429" and "Retry-After" in by_service["mozilla"]["cause"]
    assert "Mozilla (Firefox): 25" in by_service["mozilla"]["message"]
    r.hset(keys.alerts, "config", f"{int(now)}|c123|403|paused: push services rejected 50 messages")
    alerts = client.get("/ops/summary.json").get_json()["push"]["alerts"]
    paused = [a for a in alerts if a["kind"] == "paused"]
    assert paused and paused[0]["campaign"] == "c123" and "VAPID_SUBJECT" in paused[0]["cause"]


def _sending_campaign(context: Context) -> str:
    """A campaign created and moved to ``sending`` (its counters and times are the test's to write)."""
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(CampaignInput("Gempa", "BMKG", "https://kabarkini.example/a"))
    assert store.transition(cid, "planning") and store.transition(cid, "sending")
    return cid


def test_the_campaign_rate_and_the_throughput_panel_are_the_same_figure(
    app, client, context: Context
) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    cid = _sending_campaign(context)
    now = time.time()
    end = stats.rate_window_end(now)
    first = end - 300
    r.hset(keys.campaign(cid), mapping={"first_sent": repr(first), "sent": 900, "gone": 30, "total": 2000})
    # What delivery writes for each batch: the campaign's 10 s timeline and the per-second throughput.
    for second, sent, gone, retried in ((end - 55, 120, 3, 40), (end - 25, 60, 0, 0), (end - 95, 500, 9, 0)):
        r.hincrby(keys.campaign_timeline(cid), f"{second // 10 * 10}:sent", sent)
        r.hincrby(keys.campaign_timeline(cid), f"{second // 10 * 10}:gone", gone)
        r.hincrby(keys.campaign_timeline(cid), f"{second // 10 * 10}:retried", retried)
        r.hincrby(keys.throughput_minute(second // 60 * 60), str(second), sent + gone)
    login(app, client, "ops")
    d = client.get("/ops/summary.json").get_json()
    (row,) = d["campaigns"]["in_flight"]
    assert row["rate"] == d["throughput"]["rate"] == round(183 / 60, 1)
    assert row["rate_window"] == d["throughput"]["rate_window"] == 60
    # The whole-send average is a separate, named figure: 930 finished since the first send.
    assert row["average_rate"] == round(930 / (now - first), 1) or abs(row["average_rate"] - 930 / 300) < 0.2
    html = client.get("/ops/?lang=en").get_data(as_text=True)
    assert "Rate (last 60 s)" in html and "messages/s, average of the last 60 s" in html
    # The campaign page shows the same two figures (one definition, notifier.stats).
    page = client.get(f"/newsroom/campaigns/{cid}.json").get_json()
    assert page["rate"] == row["rate"] and page["rate_window"] == 60
    assert abs(page["average_rate"] - row["average_rate"]) <= 0.1
    assert "Rate (last 60 s)" in client.get(f"/newsroom/campaigns/{cid}?lang=en").get_data(as_text=True)


def test_a_rate_limiting_push_service_raises_a_banner_naming_it_and_until_when(
    app, client, context: Context
) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    now = time.time()
    until = now + 90
    r.hset(
        keys.push_holds,
        mapping={"fcm": f"{until!r}|429|90.0|{now!r}", "mozilla": f"{now - 5!r}|429|5|{now - 10!r}"},
    )
    minute = int(now // 60) * 60
    r.hset(keys.status_minute(minute), mapping={"fcm:201": 50, "fcm:429": 40})
    login(app, client, "ops")
    alerts = client.get("/ops/summary.json?lang=en").get_json()["push"]["alerts"]
    # One banner for FCM (its 429 spike is the hold's banner); Mozilla's hold has ended and is dropped.
    assert [(a["kind"], a["service"]) for a in alerts] == [("hold", "fcm")]
    hold = alerts[0]
    assert hold["until"] == until and hold["status"] == 429 and hold["seconds"] == 90.0
    wib = time.strftime("%H:%M:%S", time.gmtime(until + 7 * 3600))
    assert hold["message"].startswith(
        "FCM (Google: Chrome, Edge, Samsung Internet) is rate-limiting us (HTTP 429)"
    )
    assert f"until {wib} WIB" in hold["message"] and "90 s" in hold["message"]
    assert r.hkeys(keys.push_holds) == ["fcm"]
    indonesian = client.get("/ops/summary.json?lang=id").get_json()["push"]["alerts"][0]["message"]
    assert "membatasi laju" in indonesian and f"sampai {wib} WIB" in indonesian


def test_a_campaign_waiting_out_a_long_hold_raises_a_banner_naming_the_service_and_the_day(
    app, client, context: Context
) -> None:  # type: ignore[no-untyped-def]
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(CampaignInput(title="Gempa M5,2", body="b", url="https://kabarkini.example/g"))
    until = time.time() + 3 * 86400
    pipe = context.redis.pipeline()
    store.hold_service(cid, "fcm", "fcm asked to wait", ["1", "2", "3"], force=True, follow_up="x", pipe=pipe)
    store.hold_until(cid, "fcm", until=until, status=429, seconds=3 * 86400, release_id="L1_fcm", pipe=pipe)
    pipe.execute()
    login(app, client, "ops")
    [banner] = [
        a
        for a in client.get("/ops/summary.json?lang=en").get_json()["push"]["alerts"]
        if a["kind"] == "campaign-hold"
    ]
    day = time.strftime("%-d %b %Y", time.gmtime(until + 7 * 3600))
    assert banner["message"] == (
        f"FCM (Google: Chrome, Edge, Samsung Internet) limits this site (HTTP 429): campaign “Gempa M5,2” holds 3 "
        f"messages to it until {day} {time.strftime('%H:%M', time.gmtime(until + 7 * 3600))} WIB and sends them "
        "then, if they have not expired."
    )
    assert "1 to 14 days" in banner["cause"]
    indonesian = client.get("/ops/summary.json?lang=id").get_json()["push"]["alerts"]
    assert any(a["kind"] == "campaign-hold" and "Gempa M5,2" in a["message"] for a in indonesian)


def test_status_zero_is_named_held_back_or_no_answer(app, client, context: Context) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    r.hset(keys.outcomes_total, mapping={"fcm:sent": 30, "fcm:deferred": 12, "fcm:retry": 5})
    r.hset(keys.statuses_total, mapping={"fcm:201": 30, "fcm:0": 17, "fcm:429": 3})
    login(app, client, "ops")
    (fcm,) = client.get("/ops/summary.json?lang=en").get_json()["push"]["services"]
    assert fcm["id"] == "fcm" and fcm["name"].startswith("FCM")
    assert fcm["statuses"] == [
        {"code": "0", "label": "held back", "count": 12},
        {"code": "0", "label": "no answer", "count": 5},
        {"code": "201", "label": "accepted", "count": 30},
        {"code": "429", "label": "too many requests", "count": 3},
    ]
    (fcm,) = client.get("/ops/summary.json?lang=id").get_json()["push"]["services"]
    assert [s["label"] for s in fcm["statuses"]][:2] == ["ditahan", "tanpa jawaban"]


def test_the_page_speaks_one_language_with_a_heading(app, client) -> None:  # type: ignore[no-untyped-def]
    login(app, client, "ops")
    indonesian = client.get("/ops/?lang=id").get_data(as_text=True)
    assert '<html lang="id">' in indonesian and "<h1>Dasbor ops</h1>" in indonesian
    assert "Antrean" in indonesian and "Queues" not in indonesian and 'data-zone="Asia/Jakarta"' in indonesian
    assert "2 menit terakhir (WIB)" in indonesian
    english = client.get("/ops/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "<h1>Ops dashboard</h1>" in english and "Antrean" not in english
    # Every table scrolls inside its own labelled box (phones), and every section has a heading.
    assert english.count('class="ops-scroll" role="region" tabindex="0"') == english.count("<table")
    assert english.count('<section id="') == english.count("<h2 id=")


def test_actions_need_csrf_and_unknown_jobs_answer_404(app, client) -> None:  # type: ignore[no-untyped-def]
    token = login(app, client, "ops")
    assert client.post("/ops/failed/requeue-all").status_code == 400
    assert client.post("/ops/failed/requeue-all", data={"csrf_token": "wrong"}).status_code == 403
    missing = client.post(
        "/ops/failed/nope/requeue", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    page = client.post("/ops/failed/nope/delete?lang=en", data={"csrf_token": token})
    assert page.status_code == 404 and "not in a failed-job registry" in page.get_data(as_text=True)
    done = client.post("/ops/failed/requeue-all", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith("/ops/#failed")


def test_healthz_and_readyz_without_workers(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["checks"]["redis"] == "ok" and body["checks"]["vapid_key"] == "ok"
    assert "no worker was seen recently" in body["message"]


def test_readyz_is_503_when_redis_is_down(settings) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    url = f"redis://127.0.0.1:{free_port()}/0"
    down = Context.build(settings, client=connect(url, socket_connect_timeout=0.5, socket_timeout=0.5))
    app = create_app({"TESTING": True}, context=down)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["error"] == "not_ready" and body["checks"]["redis"] == "unreachable"
    assert "Redis does not answer" in body["message"]


def test_every_request_is_logged_as_json_without_secrets(app, client) -> None:  # type: ignore[no-untyped-def]
    from web.logging import LOGGER, RequestJsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RequestJsonFormatter())
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        response = client.get(
            "/healthz?token=s3cr3t-query",
            headers={
                "Authorization": "Bearer s3cr3t-token",
                "Cookie": "session=s3cr3t-c",
                "X-Request-ID": "req-12345678",
            },
        )
        client.get("/ops/summary.json")
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-12345678"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["method"] == "GET" and lines[0]["path"] == "/healthz" and lines[0]["status"] == 200
    assert lines[0]["request_id"] == "req-12345678" and lines[0]["duration_ms"] >= 0
    assert lines[1]["status"] == 401 and len(lines[1]["request_id"]) == 32
    assert "s3cr3t" not in stream.getvalue()


@pytest.mark.parametrize(
    ("url", "hosts", "service", "db", "password"),
    [
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/2",
            [("10.0.0.1", 26379), ("10.0.0.2", 26380)],
            "mymaster",
            2,
            None,
        ),
        (
            "redis+sentinel://:pa%40ss@sentinel.internal/cache",
            [("sentinel.internal", 26379)],
            "cache",
            0,
            "pa@ss",
        ),
    ],
)
def test_sentinel_urls_are_parsed(url: str, hosts, service: str, db: int, password) -> None:  # type: ignore[no-untyped-def]
    client = connect(url)
    pool = client.connection_pool
    assert pool.service_name == service
    assert pool.connection_kwargs["db"] == db and pool.connection_kwargs.get("password") == password
    found = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ]
    assert found == hosts


def test_a_sentinel_url_without_a_service_is_refused() -> None:
    from notifier.errors import ConfigError

    with pytest.raises(ConfigError, match="must name the service"):
        connect("redis+sentinel://10.0.0.1:26379")


def test_first_to_last_send_is_the_span_the_campaign_page_calls_elapsed(
    app, client, context: Context
) -> None:  # type: ignore[no-untyped-def]
    r, keys = context.redis, context.keys
    cid = _sending_campaign(context)
    # Planning took 3 s before the first message was accepted; the last one 200 s after the first.
    now = time.time()
    r.hset(
        keys.campaign(cid),
        mapping={"started": repr(now - 503), "first_sent": repr(now - 500), "last_sent": repr(now - 300)},
    )
    assert CampaignStore(r, keys).transition(cid, "done")
    login(app, client, "ops")
    (row,) = client.get("/ops/summary.json").get_json()["campaigns"]["recent"]
    assert row["latency"] == 200.0  # not 203: planning is not sending
    page = client.get(f"/newsroom/campaigns/{cid}.json").get_json()
    assert page["last_sent"] - page["first_sent"] == pytest.approx(row["latency"])
