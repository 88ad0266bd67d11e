"""The newsroom in Debian's Chromium: log in, compose with a live preview, send, watch real workers finish."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from notifier.campaigns import CampaignStore, payload_size
from notifier.crypto import MAX_PLAINTEXT
from notifier.users import UserStore
from tests.factories import store_minted, wait_for

pytestmark = pytest.mark.browser

PASSWORD = "kata-sandi-rahasia-123"


def test_editor_composes_sends_and_watches_progress(  # type: ignore[no-untyped-def]
    context, live_server, chromium_context, simulator, workers
) -> None:
    workers.start(1)
    store_minted(context, simulator.mint(50), topics=("breaking",))
    store_minted(context, simulator.mint(7), topics=("olahraga",))
    UserStore(context.redis, context.keys).create("redaksi@kabarkini.example", PASSWORD, "editor")
    page = chromium_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Every script and stylesheet loads, and every JSON call succeeds (the browser's own favicon probe aside).
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith(("/favicon.ico", "/nope.png"))
            else None
        ),
    )

    # The newsroom speaks the browser's language; this editor picks Indonesian once (remembered).
    page.goto(live_server.url + "/newsroom/compose?lang=id")
    assert "/login" in page.url
    page.fill("input[name=email]", "redaksi@kabarkini.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/newsroom/compose(\?lang=id)?$"))

    # Nothing chosen: the whole audience, said on the line and on the button.
    expect(page.locator("#audience-line")).to_have_attribute("data-size", "57")
    assert "SEMUA 57 pelanggan" in page.inner_text("#audience-line")
    expect(page.locator("#send-button")).to_have_text("Kirim ke semua 57 pelanggan")
    # The urgent flag is not a topic: ticking it alone still reaches everyone, and the page says so.
    page.check("#f-breaking")
    assert page.is_visible("#urgent-everyone")
    page.uncheck("#f-breaking")

    title = "Gempa M6,1 guncang Cianjur, warga diminta tetap tenang dan menjauhi bangunan"
    body = "BMKG: tidak berpotensi tsunami."
    url = "https://kabarkini.example/nasional/gempa-cianjur"
    page.fill("#f-url", url)
    page.fill("#f-title", title)
    page.fill("#f-body", body)
    page.check("input[name=topics][value=breaking]")
    expect(page.locator("#audience-line")).to_have_attribute("data-size", "50")
    expect(page.locator("#send-button")).to_have_text("Kirim ke 50 pelanggan")

    # Previews cut as each device cuts: Android expanded at 50, collapsed at one line, Windows at 60.
    phone_title = page.text_content("#preview-phone [data-p=title]")
    assert phone_title is not None and len(phone_title) <= 50 and phone_title.endswith("…")
    assert len(page.text_content("#preview-android-collapsed [data-p=title]") or "") <= 38
    windows_title = page.text_content("#preview-desktop [data-p=title]") or ""
    assert len(windows_title) <= 60 and windows_title.endswith("…")
    assert page.text_content("#preview-phone [data-p=body]") == body
    assert "terpotong" in (page.text_content("#title-counter") or "")
    # One device at a time; the picker switches.
    assert page.is_visible("#preview-phone") and not page.is_visible("#preview-ios")
    page.get_by_label("iPhone").check()
    assert page.is_visible("#preview-ios") and not page.is_visible("#preview-phone")
    # An image that does not load is flagged before sending.
    page.fill("#f-image", live_server.url + "/static/icons/nope.png")
    expect(page.locator("#image-warning")).to_be_visible()
    page.fill("#f-image", "")
    # The page's payload budget is the server's.
    left = int((page.text_content("#budget-left") or "0").replace(".", ""))
    assert left == MAX_PLAINTEXT - payload_size(title, body, url)

    page.click("#send-button")
    page.wait_for_url(re.compile(r"/newsroom/campaigns/[0-9a-z]+$"))
    cid = page.url.rsplit("/", 1)[1]
    expect(page.locator("#campaign-state")).to_have_attribute("data-state", "done", timeout=60_000)
    expect(page.locator("#campaign-state")).to_have_text("selesai")
    expect(page.locator("#progress-text")).to_have_text("100%")
    # Finished without a reload: no cancel button, no "sending" note, both times filled in.
    assert page.locator("#cancel-form").count() == 0 and not page.is_visible("#live-note")
    assert "WIB" in page.inner_text("#finished") and page.inner_text("#eta") == "—"
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert page.text_content("[data-counter=sent]") == "50"
    # No browser has shown it (no receipt can have come): no click rate, not a 0 % that reads "nobody".
    assert page.text_content("#ctr") == "menunggu tanda terima"
    wait_for(lambda: page.locator("#chart rect[data-series=sent]").count() >= 1, message="chart bars")
    assert page.text_content("#services tbody td[data-kind=sent]") == "50"

    campaign = CampaignStore(context.redis, context.keys).get(cid)
    assert campaign.state == "done" and campaign.counters["sent"] == 50
    assert campaign.created_by == "redaksi@kabarkini.example"
    assert len({r.endpoint for r in simulator.received()}) == 50
    assert not errors, errors
