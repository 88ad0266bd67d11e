"""The CMS webhook: HMAC over timestamp + body, replay window, dedupe across paths, refusals with reasons."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from notifier.campaigns import CampaignStore
from notifier.settings import Settings
from web.cms import sign

SECRET = "webhook-test-secret"


def article(**fields: Any) -> dict[str, Any]:
    """A CMS article body."""
    return {
        "guid": "kk-2024-0001",
        "title": "Banjir rendam 3 kecamatan di Bekasi",
        "summary": "<p>Hujan deras sejak <b>Senin</b> malam membuat ribuan warga mengungsi.</p>",
        "url": "https://kabarkini.example/nasional/banjir-bekasi",
        "image": "https://kabarkini.example/img/banjir.jpg",
        "categories": ["Nasional"],
        "breaking": False,
        "published_at": "2024-11-04T07:00:00+07:00",
        **fields,
    }


def post(
    client,
    body: Any,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
):  # type: ignore[no-untyped-def]
    """POST a signed webhook request (the body may be raw bytes or a JSON-able object)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    all_headers = {
        "X-Notifier-Timestamp": stamp,
        "X-Notifier-Signature": signature if signature is not None else sign(secret, stamp, raw),
    }
    all_headers.update(headers or {})
    return client.post("/api/v1/articles", data=raw, headers=all_headers, content_type=content_type)


def campaigns(context) -> list:  # type: ignore[no-untyped-def]
    return CampaignStore(context.redis, context.keys).list(0, 100)


def test_signed_article_creates_and_launches_a_campaign(client, context) -> None:  # type: ignore[no-untyped-def]
    response = post(client, article())
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["status"] == "created" and data["state"] == "scheduled"
    campaign = CampaignStore(context.redis, context.keys).get(data["campaign"])
    assert campaign.title == "Banjir rendam 3 kecamatan di Bekasi"
    assert campaign.body == "Hujan deras sejak Senin malam membuat ribuan warga mengungsi."
    assert campaign.url == "https://kabarkini.example/nasional/banjir-bekasi"
    assert campaign.image == "https://kabarkini.example/img/banjir.jpg"
    assert campaign.topics == ("nasional",)
    assert campaign.source == "webhook" and campaign.article_guid == "kk-2024-0001"
    assert campaign.urgency == "normal" and campaign.ttl == 24 * 3600 and not campaign.breaking
    # Launched: its planning job is on the plan queue.
    assert context.raw_redis.exists(f"rq:job:plan-{data['campaign']}")


def test_breaking_article_is_high_urgency_six_hours(client, context) -> None:  # type: ignore[no-untyped-def]
    response = post(client, article(breaking=True, image="javascript:alert(1)"))
    assert response.status_code == 201
    campaign = CampaignStore(context.redis, context.keys).get(response.get_json()["campaign"])
    assert campaign.breaking and campaign.urgency == "high" and campaign.ttl == 6 * 3600
    assert campaign.image == ""  # only http(s) images travel
    assert set(campaign.topics) == {"nasional", "breaking"}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"signature": "sha256=" + "0" * 64}, "bad_signature"),
        ({"secret": "not-the-secret"}, "bad_signature"),
        ({"signature": "md5=abc"}, "bad_signature"),
        ({"signature": ""}, "missing_signature"),
        ({"headers": {"X-Notifier-Timestamp": ""}}, "missing_timestamp"),
        ({"headers": {"X-Notifier-Timestamp": "yesterday"}}, "bad_timestamp"),
    ],
)
def test_bad_or_missing_signature_is_401(client, context, kwargs: dict[str, Any], reason: str) -> None:  # type: ignore[no-untyped-def]
    response = post(client, article(), **kwargs)
    assert response.status_code == 401
    assert response.get_json()["error"] == reason and response.get_json()["message"]
    assert campaigns(context) == []


def test_signature_covers_the_timestamp(client, context) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(article()).encode()
    old = int(time.time()) - 3600
    signature = sign(SECRET, str(old), raw)
    # Re-dating a captured request to "now" breaks the signature.
    response = post(client, raw, signature=signature)
    assert response.status_code == 401 and response.get_json()["error"] == "bad_signature"


def test_old_timestamp_is_refused_with_a_reason(client, context) -> None:  # type: ignore[no-untyped-def]
    response = post(client, article(), ts=int(time.time()) - 301)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == "stale_timestamp" and "300 s" in body["message"]
    assert post(client, article(), ts=int(time.time()) + 400).get_json()["error"] == "stale_timestamp"
    assert campaigns(context) == []


def test_replay_inside_the_window_does_not_push_twice(client, context) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(article()).encode()
    stamp = str(int(time.time()))
    headers = {"X-Notifier-Timestamp": stamp, "X-Notifier-Signature": sign(SECRET, stamp, raw)}
    first = client.post("/api/v1/articles", data=raw, headers=headers, content_type="application/json")
    again = client.post("/api/v1/articles", data=raw, headers=headers, content_type="application/json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate", "campaign": first.get_json()["campaign"]}
    assert len(campaigns(context)) == 1


def test_same_url_with_another_guid_is_a_duplicate(client, context) -> None:  # type: ignore[no-untyped-def]
    assert post(client, article()).status_code == 201
    response = post(
        client,
        article(
            guid="kk-other",
            url="HTTPS://KabarKini.example/nasional/banjir-bekasi"
            "?utm_source=twitter&utm_medium=social#komentar",
        ),
    )
    assert response.status_code == 200 and response.get_json()["status"] == "duplicate"
    assert len(campaigns(context)) == 1
    # A genuinely different article still goes out.
    response = post(
        client, article(guid="kk-2", url="https://kabarkini.example/nasional/banjir-bekasi?page=2")
    )
    assert response.status_code == 201
    assert len(campaigns(context)) == 2


def test_concurrent_arrivals_make_one_campaign(app, context) -> None:  # type: ignore[no-untyped-def]
    n = 12
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def arrive(i: int) -> None:
        client = app.test_client()
        body = article(
            guid=f"concurrent-{i}" if i % 2 else "concurrent", url="https://kabarkini.example/x/sama"
        )
        raw = json.dumps(body).encode()
        stamp = str(int(time.time()))
        barrier.wait()
        response = client.post(
            "/api/v1/articles",
            data=raw,
            content_type="application/json",
            headers={"X-Notifier-Timestamp": stamp, "X-Notifier-Signature": sign(SECRET, stamp, raw)},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * (n - 1) + [201]
    assert len(campaigns(context)) == 1


@pytest.mark.parametrize(
    ("body", "error", "needle"),
    [
        (b"{not json", "malformed_json", "not valid JSON"),
        (b"[1, 2]", "invalid", "JSON object"),
        ({"title": "x", "url": "https://kabarkini.example/a"}, "missing_field", "guid"),
        (article(title=""), "missing_field", "title"),
        (article(url="ftp://kabarkini.example/a"), "invalid", "http(s)"),
        (article(url=None), "missing_field", "url"),
        (article(breaking="yes"), "invalid", "breaking"),
        (article(categories="Nasional"), "invalid", "categories"),
        (article(published_at="kemarin"), "invalid", "published_at"),
        (article(image=42), "invalid", "image"),
        (
            b'{"guid": "\\ud800", "title": "x", "url": "https://kabarkini.example/a"}',
            "invalid_unicode",
            "surrogate",
        ),
        (b"[" * 5000 + b"]" * 5000, "malformed_json", "deeply"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(client, context, body: Any, error: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    response = post(client, body)
    assert response.status_code == 400, response.get_json()
    data = response.get_json()
    assert data["error"] == error and needle in data["message"]
    assert campaigns(context) == []


def test_wrong_content_type_and_oversized_body(client) -> None:  # type: ignore[no-untyped-def]
    response = post(client, b"guid=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "application/json" in response.get_json()["message"]
    response = post(client, article(summary="x" * 40_000))
    assert response.status_code == 413 and response.get_json()["error"] == "too_large"


def test_long_summary_is_trimmed_to_fit(client, context) -> None:  # type: ignore[no-untyped-def]
    long_url = "https://kabarkini.example/" + "a" * 1800
    response = post(client, article(summary="Kata " * 3000, url=long_url, image=long_url[:1900] + ".jpg"))
    assert response.status_code == 201, response.get_json()
    campaign = CampaignStore(context.redis, context.keys).get(response.get_json()["campaign"])
    assert campaign.body.endswith("…") and 10 < len(campaign.body) < 500
    assert campaign.image.endswith(".jpg")
    # URLs so long that no text fits beside them: the image is dropped before the text.
    response = post(
        client, article(guid="g2", summary="Kata " * 300, url=long_url + "b" * 200, image=long_url + ".jpg")
    )
    assert response.status_code == 201, response.get_json()
    campaign = CampaignStore(context.redis, context.keys).get(response.get_json()["campaign"])
    assert campaign.image == "" and campaign.body.endswith("…")


def test_no_secret_configured_is_503(settings_env, r) -> None:  # type: ignore[no-untyped-def]
    from notifier.context import Context
    from web import create_app

    settings = Settings.from_env({**settings_env, "NOTIFIER_WEBHOOK_SECRET": ""})
    client = create_app({"TESTING": True}, context=Context.build(settings, client=r)).test_client()
    response = post(client, article())
    assert response.status_code == 503
    assert "NOTIFIER_WEBHOOK_SECRET" in response.get_json()["message"]


def test_review_mode_creates_a_draft_and_does_not_launch(settings_env, r) -> None:  # type: ignore[no-untyped-def]
    from notifier.context import Context
    from web import create_app

    context = Context.build(Settings.from_env({**settings_env, "NOTIFIER_WEBHOOK_MODE": "review"}), client=r)
    client = create_app({"TESTING": True}, context=context).test_client()
    response = post(client, article())
    assert response.status_code == 201 and response.get_json()["state"] == "draft"
    cid = response.get_json()["campaign"]
    assert CampaignStore(context.redis, context.keys).get(cid).state == "draft"
    assert not context.raw_redis.exists(f"rq:job:plan-{cid}")
    # Even as a draft the article is claimed: a replay does not make a second draft.
    assert post(client, article()).get_json()["status"] == "duplicate"
