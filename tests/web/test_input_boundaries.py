"""Input that used to reach storage or a 500, refused at the boundary (issue 11's list, one by one).

``send_at: NaN``; campaign ids that name another key (``<cid>:timeline``, ``:held``, ``:services``);
URLs with port 99999 or ``:abc`` in the webhook and prefill; one device's endpoint in six spellings;
``expirationTime`` (in the past refused, later honoured); ``campaigns resume NO-SUCH-ID``; one
article over http and https or with a trailing slash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.settings import Settings
from notifier.tokens import TokenStore
from notifier_cli import main as cli
from tests.factories import wait_for
from web.cms import sign

CAMPAIGN = {
    "title": "Gempa M5,2 di Sukabumi",
    "body": "Tidak berpotensi tsunami.",
    "url": "https://kabarkini.example/nasional/gempa",
    "topics": ["breaking"],
}


def bearer(context: Context) -> dict[str, str]:
    """An API token's header (a fresh token each call)."""
    name = f"boundaries-{time.monotonic_ns()}"
    return {"Authorization": f"Bearer {TokenStore(context.redis, context.keys).create(name)}"}


def webhook(client, body: dict[str, Any], secret: str = "webhook-test-secret"):  # type: ignore[no-untyped-def]  # noqa: S107
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    headers = {"X-Notifier-Timestamp": stamp, "X-Notifier-Signature": sign(secret, stamp, raw)}
    return client.post("/api/v1/articles", data=raw, headers=headers, content_type="application/json")


@pytest.mark.parametrize("send_at", ["NaN", "Infinity", "-Infinity", "1e400", "-1", "1e30"])
def test_send_at_that_is_no_time_is_refused_and_nothing_is_stored(client, context, send_at: str) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(CAMPAIGN)[:-1] + f', "send_at": {send_at}}}'
    response = client.post(
        "/api/v1/campaigns", data=raw, content_type="application/json", headers=bearer(context)
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] in ("malformed_json", "invalid")
    assert CampaignStore(context.redis, context.keys).count() == 0


def test_campaign_ids_never_name_another_key(client, context, auth, login_as) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(context)
    created = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=headers)
    cid = created.get_json()["id"]
    store = CampaignStore(context.redis, context.keys)
    # The campaign has these keys beside its hash: each must be no campaign to the API and the newsroom.
    context.redis.hset(context.keys.campaign_timeline(cid), "1:sent", 1)
    context.redis.rpush(context.keys.campaign_held(cid), "1")
    context.redis.hset(context.keys.campaign_services(cid), "fcm:sent", 1)
    for suffix in (":timeline", ":held", ":services", ":batches:done", "/../x", " "):
        assert client.get(f"/api/v1/campaigns/{cid}{suffix}", headers=headers).status_code == 404, suffix
        assert client.post(f"/api/v1/campaigns/{cid}{suffix}/cancel", headers=headers).status_code in (
            404,
            405,
        )
    login_as("editor")
    before = store.count()
    duplicated = auth.post(f"/newsroom/campaigns/{cid}:services/duplicate")
    assert duplicated.status_code == 404
    assert store.count() == before, "a key of the campaign was copied into a new draft"
    assert auth.client.get(f"/newsroom/campaigns/{cid}:held").status_code == 404
    assert auth.client.get(f"/newsroom/campaigns/{cid}:timeline.json").status_code == 404


@pytest.mark.parametrize("url", ["https://kabarkini.example:99999/a", "https://kabarkini.example:abc/a"])
def test_urls_with_impossible_ports_are_400_in_the_webhook_api_and_prefill(  # type: ignore[no-untyped-def]
    client, context, login_as, url: str
) -> None:
    body = {"guid": "kk-port", "title": "Judul", "url": url, "categories": []}
    response = webhook(client, body)
    assert response.status_code == 400 and "url" in response.get_json()["message"]
    response = client.post("/api/v1/campaigns", json={**CAMPAIGN, "url": url}, headers=bearer(context))
    assert response.status_code == 400
    response = client.post(
        "/api/v1/campaigns", json={**CAMPAIGN, "image": url.replace("/a", "/i.jpg")}, headers=bearer(context)
    )
    assert response.status_code == 400
    login_as("editor")
    prefill = client.get("/newsroom/prefill.json", query_string={"url": url})
    assert prefill.status_code == 400 and prefill.get_json()["error"] == "prefill_refused"
    assert CampaignStore(context.redis, context.keys).count() == 0


def test_one_article_over_http_and_https_or_a_trailing_slash_is_one_campaign(client, context) -> None:  # type: ignore[no-untyped-def]
    first = webhook(client, {"guid": "kk-1", "title": "Banjir", "url": "https://kabarkini.example/banjir"})
    assert first.status_code == 201
    for n, url in enumerate(
        (
            "http://kabarkini.example/banjir",
            "https://kabarkini.example/banjir/",
            "HTTP://KabarKini.Example:80/banjir#x",
        )
    ):
        again = webhook(client, {"guid": f"kk-other-{n}", "title": "Banjir", "url": url})
        assert again.status_code == 200 and again.get_json()["status"] == "duplicate", url
    assert CampaignStore(context.redis, context.keys).count() == 1


def test_cli_resume_of_an_unknown_or_running_campaign_says_so(settings_env, context) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner(env=settings_env)
    for cid in ("NO-SUCH-ID", "abcdefghij0123456789", "x:timeline"):
        result = runner.invoke(cli, ["campaigns", "resume", cid])
        assert result.exit_code == 1 and "no campaign" in result.output, result.output
    draft = CampaignStore(context.redis, context.keys)
    from notifier.campaigns import validate_campaign

    cid = draft.create(validate_campaign(CAMPAIGN, topics=context.topics))
    result = runner.invoke(cli, ["campaigns", "resume", cid])
    assert result.exit_code == 1 and "is scheduled" in result.output and "queued" not in result.output


def spellings(endpoint: str) -> list[str]:
    """Six spellings of one push endpoint, each of which used to be stored as its own subscription."""
    scheme, rest = endpoint.split("://", 1)
    host, path = rest.split("/", 1)
    return [
        endpoint,
        endpoint + "#fragment",
        scheme.upper() + "://" + rest,
        f"{scheme}://{host}/./{path}",
        f"{scheme}://{host}/x/../{path}",
        endpoint + "\n",
    ]


def test_one_device_in_many_spellings_is_one_subscription_and_gets_one_alert(  # type: ignore[no-untyped-def]
    client, context, simulator, workers
) -> None:
    sub = simulator.mint(1)[0]
    ids = set()
    for n, spelling in enumerate(spellings(sub["endpoint"])):
        response = client.post(
            "/api/v1/subscriptions", json={**sub, "endpoint": spelling, "topics": ["breaking"]}
        )
        assert response.status_code == (201 if n == 0 else 200), (spelling, response.get_data(as_text=True))
        ids.add(response.get_json()["id"])
    assert len(ids) == 1 and context.subscriptions.count() == 1
    assert context.subscriptions.get(ids.pop()).endpoint == sub["endpoint"]
    # FCM-shaped spellings: the default port and an upper-case host.
    fcm = "https://fcm.googleapis.com/fcm/send/device-123:APA91b"
    for spelling in (
        fcm,
        "https://FCM.GoogleAPIs.com/fcm/send/device-123:APA91b",
        fcm.replace(".com/", ".com:443/"),
    ):
        assert client.post("/api/v1/subscriptions", json={**sub, "endpoint": spelling}).status_code in (
            200,
            201,
        )
    assert context.subscriptions.count() == 2
    # Unsubscribing in yet another spelling finds it too.
    other = "HTTPS://FCM.googleapis.com:443/fcm/send/device-123:APA91b#x"
    assert client.delete("/api/v1/subscriptions", json={"endpoint": other}).status_code == 204
    assert context.subscriptions.count() == 1

    workers.start(1)
    cid = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=bearer(context)).get_json()["id"]
    store = CampaignStore(context.redis, context.keys)
    wait_for(lambda: store.get(cid).state == "done", timeout=30, message="campaign done")
    assert len(simulator.received(sub["endpoint"])) == 1, "one device, one alert"


def test_expiration_time_in_the_past_is_refused_and_a_later_one_is_honoured(  # type: ignore[no-untyped-def]
    client, context, simulator, workers
) -> None:
    expired, expiring, lasting = simulator.mint(3)
    now_ms = int(time.time() * 1000)
    response = client.post("/api/v1/subscriptions", json={**expired, "expirationTime": now_ms - 1000})
    assert response.status_code == 400 and response.get_json()["error"] == "expired"
    for sub, exp in ((expiring, now_ms + 1500), (lasting, now_ms + 3_600_000)):
        body = {**sub, "expirationTime": exp, "topics": ["breaking"]}
        assert client.post("/api/v1/subscriptions", json=body).status_code == 201
    assert context.subscriptions.count() == 2
    time.sleep(1.6)  # the first one's expirationTime passes
    workers.start(1)
    cid = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=bearer(context)).get_json()["id"]
    store = CampaignStore(context.redis, context.keys)
    campaign = wait_for(lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="done")
    assert campaign.counters["sent"] == 1 and campaign.counters["skipped"] == 1
    assert (
        simulator.received(expiring["endpoint"]) == [] and len(simulator.received(lasting["endpoint"])) == 1
    )


def test_settings_refuse_an_impossible_number_of_proxies(settings_env) -> None:  # type: ignore[no-untyped-def]
    from notifier.errors import ConfigError

    for value in ("-1", "6", "many"):
        with pytest.raises(ConfigError, match="NOTIFIER_TRUSTED_PROXIES"):
            Settings.from_env({**settings_env, "NOTIFIER_TRUSTED_PROXIES": value})


def test_the_vapid_aud_of_an_odd_spelling_is_the_canonical_origin(  # type: ignore[no-untyped-def]
    settings_env, r, simulator, tmp_path
) -> None:
    """An upper-case host with ``:443`` and an ``HTTP://`` scheme, posted through the API, are stored and
    signed as the canonical origin: each simulator checks the JWT's signature and that its ``aud`` is its
    own origin exactly (``https://localhost``, ``http://127.0.0.1:<port>``), and refuses anything else."""
    from notifier_simulator import SimulatorServer
    from tests.factories import Workers
    from web import create_app

    try:
        secure = SimulatorServer(host="127.0.0.1", port=443, tls=True).start()
    except OSError as exc:  # CI runs as root; a developer's unprivileged run cannot bind 443
        pytest.skip(f"cannot listen on 127.0.0.1:443 for the default-port case: {exc}")
    try:
        secure.simulator.set_origin("https://localhost")  # what a sender must sign: no port, lower case
        plain_host = simulator.origin.split("://", 1)[1]
        env = {
            **settings_env,
            "NOTIFIER_PUSH_HOSTS": f"localhost,{plain_host}",
            "NOTIFIER_CA_FILE": str(secure.ca_file),
        }
        context = Context.build(Settings.from_env(env), client=r)
        client = create_app({"TESTING": True}, context=context).test_client()
        odd_tls, odd_plain = secure.mint(1)[0], simulator.mint(1)[0]
        assert odd_tls["endpoint"].startswith("https://localhost/wpush/")
        spelled = {
            odd_tls["endpoint"]: odd_tls["endpoint"].replace("https://localhost/", "HTTPS://LocalHost:443/"),
            odd_plain["endpoint"]: "HTTP://" + odd_plain["endpoint"].split("://", 1)[1],
        }
        for sub in (odd_tls, odd_plain):
            body = {**sub, "endpoint": spelled[sub["endpoint"]], "topics": ["breaking"]}
            response = client.post("/api/v1/subscriptions", json=body)
            assert response.status_code == 201, response.get_data(as_text=True)
            stored = context.subscriptions.get(response.get_json()["id"])
            assert stored.endpoint == sub["endpoint"], "stored as typed, not canonically"
        group = Workers(env, tmp_path)
        group.start(1)
        try:
            cid = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=bearer(context)).get_json()["id"]
            store = CampaignStore(context.redis, context.keys)
            campaign = wait_for(
                lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="done"
            )
        finally:
            group.stop()
        assert campaign.counters["sent"] == 2, (campaign.counters, group.logs()[-3000:])
        for sim, sub in ((secure, odd_tls), (simulator, odd_plain)):
            assert len(sim.received(sub["endpoint"])) == 1
            stats = sim.stats()
            assert stats["vapid_verified"] >= 1 and stats["by_status"].get("403", 0) == 0, stats
        context.close()
    finally:
        secure.stop()
