"""The ops dashboard in Debian's Chromium: charts render as inline SVG and figures update while a campaign sends."""

from __future__ import annotations

import secrets

import pytest

from notifier.campaigns import CampaignStore
from notifier.crypto import b64url_encode, generate_subscriber
from notifier.subscriptions import validate_subscription
from notifier.users import UserStore
from tests.factories import create, store_minted, wait_for

pytestmark = pytest.mark.browser


def test_dashboard_updates_live_while_a_campaign_sends(  # type: ignore[no-untyped-def]
    context, live_server, chromium_context, simulator, workers
) -> None:
    UserStore(context.redis, context.keys).create(
        "ops@kabarkini.example", "correct horse battery staple", "ops"
    )
    subs = simulator.mint(120)
    store_minted(context, subs)
    for sub in subs[:40]:
        # Rate limited once for 5 s: the campaign stays in flight across a couple of polls.
        simulator.add_rule(429, endpoint=sub["endpoint"], count=1, retry_after=5)
    for sub in subs[40:45]:
        simulator.add_rule(410, endpoint=sub["endpoint"])
    errors: list[str] = []
    page = chromium_context.new_page()
    # Console "failed to load" lines do not name the URL; responses do (the browser's own favicon probe is fine).
    page.on(
        "response",
        lambda res: (
            errors.append(f"{res.status} {res.url}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(live_server.url + "/ops/")
    page.fill("input[name=email]", "ops@kabarkini.example")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/ops/")
    page.wait_for_selector("#chart-minutes svg")
    assert page.locator("#chart-minutes svg rect").count() == 60
    assert page.locator("#chart-seconds svg rect").count() == 120
    assert page.locator("#chart-daily svg rect").count() >= 30
    assert page.text_content("#subs-total") == "120"
    assert page.text_content("#tp-hour") == "0"
    assert page.locator("#workers-table tbody tr[data-worker]").count() == 0
    assert "notifier worker" in page.inner_text("#workers-table")  # the empty table says what to do
    first_update = page.get_attribute("#ops-updated", "data-now")

    workers.start(1)
    page.wait_for_selector("#workers-table tbody tr[data-state]", timeout=20_000)
    cid = create(context)
    # While it sends: the in-flight table shows it with a progress bar.
    page.wait_for_selector("#campaigns-table tbody tr progress", timeout=20_000)
    # The 429s (Retry-After 5 s): a banner names the service and until when, and the worker waits for
    # its scheduled retry batch instead of showing idle.
    banner = page.wait_for_selector("#ops-alerts [data-kind=hold]", timeout=20_000)
    assert "HTTP 429" in banner.inner_text() and "WIB" in banner.inner_text()
    page.wait_for_selector("#workers-table tbody tr[data-state=waiting]", timeout=20_000)
    assert "scheduled retr" in page.inner_text("#workers-table")
    store = CampaignStore(context.redis, context.keys)
    wait_for(lambda: store.get(cid).state == "done", timeout=60, message="campaign done")
    wait_for(lambda: page.text_content("#tp-hour") == "120", timeout=10, message="throughput figure updated")
    assert page.get_attribute("#ops-updated", "data-now") != first_update
    assert page.text_content("#subs-total") == "115"  # the five 410s were pruned, without a reload
    assert int(page.get_attribute("#chart-minutes", "data-max") or 0) >= 1
    wait_for(
        lambda: page.locator("#campaigns-table tbody tr[data-campaign]").count() == 0,
        timeout=10,
        message="no campaign in flight",
    )
    assert "done" in page.text_content("#recent-table")
    assert (
        "fcm" in page.text_content("#services-table") or page.locator("#services-table tbody tr").count() >= 1
    )
    assert errors == []


def test_the_per_service_view_counts_unreachable_subscriptions_apart(  # type: ignore[no-untyped-def]
    context, live_server, chromium_context, tmp_path
) -> None:
    UserStore(context.redis, context.keys).create(
        "ops@kabarkini.example", "correct horse battery staple", "ops"
    )
    # 6 Safari and 4 Chrome readers; 4 of the Safari ones and 1 Chrome one showed none of their last pushes.
    sids = {"apple": [], "fcm": []}
    for service, host, n in (
        ("apple", "https://web.push.apple.com/", 6),
        ("fcm", "https://fcm.googleapis.com/fcm/send/", 4),
    ):
        for _ in range(n):
            _, public, auth = generate_subscriber()
            item = validate_subscription(
                {
                    "endpoint": host + b64url_encode(secrets.token_bytes(60)),
                    "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
                    "topics": ["breaking"],
                },
                policy=context.policy,
                topics=context.topics,
            )
            sids[service].append(context.subscriptions.upsert(item)[0])
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent(
        sids["apple"][:4] + sids["fcm"][:1], pipe, unreachable_after=1, budget=0, now=1.8e9
    )
    pipe.execute()

    page = chromium_context.new_page()
    page.goto(live_server.url + "/ops/")
    page.fill("input[name=email]", "ops@kabarkini.example")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/ops/")
    page.wait_for_selector("#by-service-table tbody tr[data-service=apple]")
    assert page.text_content("#subs-total") == "10"
    assert page.text_content("#subs-unreachable") == "5"
    apple = page.locator("#by-service-table tbody tr[data-service=apple] td").all_inner_texts()
    decimal = "," if page.get_attribute("html", "lang") == "id" else "."
    assert apple[1:] == ["6", "4", f"66{decimal}7%"]
    assert page.get_attribute("#by-service-table tbody tr[data-service=apple]", "class") == "ops-bad"
    fcm = page.locator("#by-service-table tbody tr[data-service=fcm] td").all_inner_texts()
    assert fcm[1:] == ["4", "1", "25%"]
    for width in (390, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#subscribers").screenshot(path=str(tmp_path / f"ops-subscribers-{width}.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
