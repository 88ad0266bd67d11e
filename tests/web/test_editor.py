"""Newsroom pages against the real app and Redis: compose, send, test send, campaigns, prefill, CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from notifier.campaigns import CampaignInput, CampaignStore, receipt_token, record_receipt, validate_campaign
from notifier.crypto import MAX_PLAINTEXT
from notifier.errors import AuthError
from notifier.subscriptions import validate_subscription
from notifier.users import UserStore
from tests.factories import run_queued
from workers.queues import PLAN_QUEUE, SEND_QUEUE, queue

FORM = {
    "title": "Gempa M6,1 guncang Cianjur",
    "body": "BMKG: tidak berpotensi tsunami.",
    "url": "https://kabarkini.example/nasional/gempa-cianjur",
    "topics": ["breaking"],
    "when": "now",
    "action": "send",
}


def add_subs(context, n: int, topics=("breaking",), prefix: str = "s") -> list[str]:  # type: ignore[no-untyped-def]
    """Store ``n`` subscriptions on a simulator-like host; returns their ids."""
    host = context.settings.push_hosts[0]
    sids = []
    for i in range(n):
        item = validate_subscription(
            {
                "endpoint": f"http://{host}/push/{prefix}{i}",
                "keys": {
                    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                    "auth": "tBHItJI5svbpez7KI4CCXg",
                },
                "topics": list(topics),
            },
            policy=context.policy,
            topics=context.topics,
        )
        sids.append(context.subscriptions.upsert(item)[0])
    return sids


def newest(context):  # type: ignore[no-untyped-def]
    return CampaignStore(context.redis, context.keys).list(0, 1)[0]


def test_compose_page_has_no_inline_script_and_escapes(client, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    html = client.get("/newsroom/compose").get_data(as_text=True)
    assert "<script>" not in html and "<script src=" in html
    assert 'type="application/json" id="compose-config"' in html
    config = json.loads(html.split('id="compose-config">', 1)[1].split("</script>", 1)[0])
    assert config["maxPlaintext"] == MAX_PLAINTEXT and config["titleShown"] == 50


def test_send_creates_a_campaign_and_enqueues_its_plan_job(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    email = login_as("editor")
    response = auth.post("/newsroom/compose", FORM)
    assert response.status_code == 302
    campaign = newest(context)
    assert response.headers["Location"] == f"/newsroom/campaigns/{campaign.cid}"
    assert campaign.state == "scheduled" and campaign.topics == ("breaking",)
    assert campaign.source == "editor" and campaign.created_by == email
    plan = queue(PLAN_QUEUE, context.raw_redis)
    assert f"plan-{campaign.cid}" in plan.job_ids
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Gempa M6,1 guncang Cianjur" in page and 'id="progress-bar"' in page


def test_scheduled_send_reads_the_newsroom_time_zone(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    login_as("editor")
    local = (datetime.now(ZoneInfo("Asia/Jakarta")) + timedelta(hours=2)).replace(second=0, microsecond=0)
    response = auth.post(
        "/newsroom/compose", {**FORM, "when": "later", "send_at": local.strftime("%Y-%m-%dT%H:%M")}
    )
    assert response.status_code == 302
    campaign = newest(context)
    assert campaign.send_at == local.timestamp()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert local.strftime("%H:%M WIB") in page
    # The plan job waits in RQ's scheduled registry, not the queue.
    plan = queue(PLAN_QUEUE, context.raw_redis)
    assert f"plan-{campaign.cid}" not in plan.job_ids
    assert f"plan-{campaign.cid}" in plan.scheduled_job_registry.get_job_ids()


def test_validation_errors_are_shown_on_the_page(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    missing = auth.post("/newsroom/compose", {**FORM, "title": ""})
    assert missing.status_code == 400
    html = missing.get_data(as_text=True)
    # Said next to the field, in the page's language, and listed at the top with a link to the field.
    assert '<p class="nr-field-error" id="err-title">Tulis judulnya' in html
    assert 'aria-invalid="true" aria-describedby="err-title"' in html
    assert '<a href="#f-title">Tulis judulnya' in html
    english = auth.post("/newsroom/compose?lang=en", {**FORM, "title": "", "url": "ftp://x"})
    html = english.get_data(as_text=True)
    assert "Write a title" in html and "Use a full address that starts with https://." in html
    assert "Tulis" not in html and '<html lang="en">' in html
    client.get("/newsroom/compose?lang=id")
    big = auth.post(
        "/newsroom/compose",
        {
            **FORM,
            "body": "é" * 500,
            "title": "x" * 120,
            "image": "https://kabarkini.example/" + "i" * 1900,
            "url": "https://kabarkini.example/" + "u" * 1900,
        },
    )
    assert big.status_code == 400
    html = big.get_data(as_text=True)
    assert "Terlalu panjang untuk dikirim" in html and f"{MAX_PLAINTEXT:,}".replace(",", ".") in html
    # The form keeps what the editor typed.
    assert "x" * 120 in html
    bad_time = auth.post("/newsroom/compose", {**FORM, "when": "later", "send_at": "besok"})
    assert bad_time.status_code == 400 and "bukan tanggal dan jam" in bad_time.get_data(as_text=True)
    assert context.redis.zcard(context.keys.campaigns) == 0


def test_editor_text_is_escaped(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    auth.post("/newsroom/compose", {**FORM, "title": "<img src=x onerror=alert(1)>"})
    cid = newest(context).cid
    for path in (f"/newsroom/campaigns/{cid}", "/newsroom/campaigns"):
        html = client.get(path).get_data(as_text=True)
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_sending_to_everyone_needs_confirmation(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    add_subs(context, 3)
    everyone = {k: v for k, v in FORM.items() if k != "topics"}
    response = auth.post("/newsroom/compose", everyone)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    # A review of what goes out to whom, with one button that says it.
    assert 'id="review"' in html and "Periksa sebelum dikirim ke SEMUA 3 pelanggan" in html
    assert (
        'value="send-everyone" class="nr-btn nr-btn-danger" id="confirm-everyone-button">Kirim ke semua 3 pelanggan'
        in html
    )
    assert context.redis.zcard(context.keys.campaigns) == 0
    assert auth.post("/newsroom/compose", {**everyone, "action": "send-everyone"}).status_code == 302
    assert newest(context).topics == ()
    assert auth.post("/newsroom/compose", {**everyone, "confirm_everyone": "1"}).status_code == 302
    assert newest(context).topics == ()


def test_audience_size_endpoint(client, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    first = add_subs(context, 4, ("breaking",), "a")
    add_subs(context, 2, ("ekonomi", "breaking"), "b")
    add_subs(context, 3, ("olahraga",), "c")
    assert client.get("/newsroom/audience.json").get_json() == {
        "topics": [], "everyone": True, "size": 9, "total": 9, "reached": 9, "unreachable": 0, "over_budget": 0
    }  # fmt: skip
    assert client.get("/newsroom/audience.json?topic=breaking").get_json()["size"] == 6
    assert client.get("/newsroom/audience.json?topic=breaking&topic=ekonomi").get_json()["size"] == 6
    assert client.get("/newsroom/audience.json?topic=olahraga&topic=ekonomi").get_json()["size"] == 5
    # Readers whose browser never showed the last pushes (unreachable) count apart: only urgent alerts
    # reach them, so the audience of an ordinary campaign leaves them out.
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent(first[:2], pipe, unreachable_after=1, budget=0, now=1_800_000_000)
    pipe.execute()
    data = client.get("/newsroom/audience.json").get_json()
    assert (data["size"], data["reached"], data["unreachable"], data["over_budget"]) == (9, 7, 2, 0)
    page = client.get("/newsroom/compose").get_data(as_text=True)
    assert "2 pelanggan lagi hanya menerima peringatan mendesak" in page
    assert "2 tak terjangkau" in page
    bad = client.get("/newsroom/audience.json?topic=nope")
    assert bad.status_code == 400 and bad.get_json()["error"] == "unknown_topic"


def test_budget_endpoint_matches_payload_size(client, login_as) -> None:  # type: ignore[no-untyped-def]
    from notifier.campaigns import payload_size

    login_as("editor")
    data = client.get(
        "/newsroom/budget.json",
        query_string={"title": "Judul", "body": "Isi é", "url": "https://a.example/x"},
    ).get_json()
    assert data["size"] == payload_size("Judul", "Isi é", "https://a.example/x")
    assert data["left"] == MAX_PLAINTEXT - data["size"]


def test_cancel_duplicate_and_approve(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    email = login_as("editor")
    store = CampaignStore(context.redis, context.keys)
    auth.post("/newsroom/compose", FORM)
    cid = newest(context).cid
    assert auth.post(f"/newsroom/campaigns/{cid}/cancel").status_code == 302
    assert store.get(cid).state == "cancelled"
    again = auth.post(f"/newsroom/campaigns/{cid}/cancel")
    assert again.status_code == 409 and "sudah dibatalkan" in again.get_data(as_text=True)

    response = auth.post(f"/newsroom/campaigns/{cid}/duplicate")
    assert response.status_code == 302
    draft = newest(context)
    assert draft.cid != cid and draft.state == "draft" and draft.title == FORM["title"]
    assert draft.created_by == email
    assert f"plan-{draft.cid}" not in queue(PLAN_QUEUE, context.raw_redis).job_ids

    # A draft from the CMS in review mode (no topics): approving needs the "everyone" confirmation.
    cms = validate_campaign({**FORM, "topics": None}, topics=context.topics, source="feed")
    cms_cid = store.create(cms, state="draft")
    page = client.get(f"/newsroom/campaigns/{cms_cid}").get_data(as_text=True)
    assert 'id="approve-form"' in page and "SEMUA 0 pelanggan" in page
    refused = auth.post(f"/newsroom/campaigns/{cms_cid}/approve")
    assert refused.status_code == 409 and store.get(cms_cid).state == "draft"
    assert auth.post(f"/newsroom/campaigns/{cms_cid}/approve", {"confirm_everyone": "1"}).status_code == 302
    assert store.get(cms_cid).state == "scheduled"
    assert f"plan-{cms_cid}" in queue(PLAN_QUEUE, context.raw_redis).job_ids
    assert context.redis.hget(context.keys.campaign(cms_cid), "approved_by") == email
    # Approving twice is a conflict page, not a second send.
    assert auth.post(f"/newsroom/campaigns/{cms_cid}/approve", {"confirm_everyone": "1"}).status_code == 409

    assert auth.post(f"/newsroom/campaigns/{draft.cid}/approve").status_code == 302
    assert store.get(draft.cid).state == "scheduled"


def test_missing_campaign_is_a_404_page(client, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    assert client.get("/newsroom/campaigns/nope").status_code == 404
    assert client.get("/newsroom/campaigns/nope.json").status_code == 404


def test_campaign_json_has_counters_timeline_and_services(client, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("ops")
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(validate_campaign(FORM | {"topics": ["breaking"]}, topics=context.topics))
    context.redis.hset(
        context.keys.campaign(cid),
        mapping={
            "total": 10,
            "sent": 6,
            "gone": 1,
            "clicked": 3,
            "first_sent": 1700000035,
            "finished": 1700000110,
        },
    )
    context.redis.hset(
        context.keys.campaign_timeline(cid),
        mapping={"1700000040:sent": 5, "1700000050:sent": 1, "1700000100:clicked": 3},
    )
    context.redis.hset(
        context.keys.campaign_services(cid), mapping={"fcm:sent": 4, "fcm:gone": 1, "mozilla:sent": 2}
    )
    context.redis.hset(
        context.keys.campaign_browsers(cid),
        mapping={"chrome-android:sent": 3, "chrome-android:gone": 1, "edge:sent": 1, "firefox:sent": 2},
    )
    data = client.get(f"/newsroom/campaigns/{cid}.json").get_json()
    assert data["counters"]["sent"] == 6 and data["progress"] == 0.7 and data["ctr"] == 0.5
    # A 75-second send: 10-second bars (a per-minute chart would be one bar).
    assert data["step"] == 10
    assert data["timeline"] == [
        {"t": 1700000040, "sent": 5},
        {"t": 1700000050, "sent": 1},
        {"t": 1700000100, "clicked": 3},
    ]
    assert data["services"] == {"fcm": {"sent": 4, "gone": 1}, "mozilla": {"sent": 2}}
    # Services named as ops names them, in the page's language (Indonesian here).
    assert data["service_names"]["mozilla"] == "Mozilla (Firefox)"
    assert data["service_names"]["fcm"].startswith("FCM (Google")
    # Browsers: counted per reader's browser family, not guessed from the service.
    assert data["browsers"] == {
        "chrome-android": {"sent": 3, "gone": 1},
        "edge": {"sent": 1},
        "firefox": {"sent": 2},
    }
    assert data["browser_names"]["chrome-android"] == "Chrome (Android)"
    assert data["final"] is False and data["state_name"] == "terjadwal"
    # The same campaign over an hour: bars of a minute.
    context.redis.hset(context.keys.campaign(cid), "finished", 1700003600)
    data = client.get(f"/newsroom/campaigns/{cid}.json").get_json()
    assert data["step"] == 60
    assert data["timeline"] == [{"t": 1700000040, "sent": 6}, {"t": 1700000100, "clicked": 3}]


def test_campaign_list_is_newest_first_and_paginated(client, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    store = CampaignStore(context.redis, context.keys)
    for i in range(25):
        store.create(
            validate_campaign({**FORM, "title": f"Kabar nomor {i:02d}"}, topics=context.topics),
            now=1_700_000_000 + i,
        )
    first = client.get("/newsroom/campaigns").get_data(as_text=True)
    assert first.index("Kabar nomor 24") < first.index("Kabar nomor 05")
    assert "Kabar nomor 04" not in first and "Halaman 1 dari 2" in first
    second = client.get("/newsroom/campaigns?page=2").get_data(as_text=True)
    assert "Kabar nomor 04" in second and "Kabar nomor 00" in second and "Kabar nomor 05" not in second


def test_test_send_goes_only_to_the_editors_own_subscriptions(
    client, auth, login_as, context, job_env
) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    add_subs(context, 5, ("breaking",), "reader")
    refused = auth.post("/newsroom/compose", {**FORM, "action": "test"})
    assert refused.status_code == 400 and "belum berlangganan" in refused.get_data(as_text=True)

    # The editor's browser subscribes while logged in: the API links it to the account.
    host = context.settings.push_hosts[0]
    sub = {
        "endpoint": f"http://{host}/push/editor-own",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
    created = client.post("/api/v1/subscriptions", json=sub)
    assert created.status_code == 201
    own = created.get_json()["id"]
    assert UserStore(context.redis, context.keys).own_subscriptions("editor@newsroom.test") == [own]

    response = auth.post("/newsroom/compose", {**FORM, "action": "test"})
    assert response.status_code == 302
    run_queued(context.raw_redis, PLAN_QUEUE)  # a worker batches it, not the request
    campaign = newest(context)
    assert campaign.source == "test" and campaign.state == "sending" and campaign.topics == ()
    assert campaign.counters["total"] == 1 and campaign.pending == 1
    send = queue(SEND_QUEUE, context.raw_redis)
    jobs = [send.fetch_job(j) for j in send.job_ids]
    assert [j.args[2] for j in jobs if j.args[0] == campaign.cid] == [[own]]
    assert f"plan-{campaign.cid}" not in queue(PLAN_QUEUE, context.raw_redis).job_ids


def test_anonymous_subscription_is_not_linked(client, context) -> None:  # type: ignore[no-untyped-def]
    host = context.settings.push_hosts[0]
    sub = {
        "endpoint": f"http://{host}/push/anon",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
    assert client.post("/api/v1/subscriptions", json=sub).status_code == 201
    assert not context.redis.keys(context.keys.user_subs("*"))


# -- prefill ------------------------------------------------------------------------------------

ARTICLE = b"""<!doctype html><html><head><title>Fallback</title>
<meta property="og:title" content="Banjir rendam   Jakarta Utara">
<meta property="og:description" content="Ribuan warga mengungsi &amp; BPBD siaga.">
<meta property="og:image" content="/img/banjir.jpg">
</head><body>x</body></html>"""


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/away":
            self.send_response(302)
            self.send_header("Location", "http://evil.example/steal")
            self.end_headers()
            return
        if self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/berita/banjir")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(ARTICLE)))
        self.end_headers()
        self.wfile.write(ARTICLE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def site_client(settings, r, site):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from notifier.context import Context
    from web import create_app

    context = Context.build(replace(settings, site_domains=(site,)), client=r)
    return create_app({"TESTING": True}, context=context).test_client(), context


def test_prefill_reads_og_tags_from_the_sites_own_domain(site_client, site) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import AuthActions

    client, context = site_client
    actions = AuthActions(client, context)
    actions.create("editor@newsroom.test")
    actions.login("editor@newsroom.test")
    data = client.get(
        "/newsroom/prefill.json", query_string={"url": f"http://{site}/berita/banjir"}
    ).get_json()
    assert data["title"] == "Banjir rendam Jakarta Utara"
    assert data["body"] == "Ribuan warga mengungsi & BPBD siaga."
    assert data["image"] == f"http://{site}/img/banjir.jpg"
    # A redirect within the site is followed.
    moved = client.get("/newsroom/prefill.json", query_string={"url": f"http://{site}/moved"})
    assert moved.status_code == 200 and moved.get_json()["title"] == "Banjir rendam Jakarta Utara"


def test_prefill_refuses_foreign_hosts_and_redirects_away(site_client, site) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import AuthActions

    client, context = site_client
    actions = AuthActions(client, context)
    actions.create("editor@newsroom.test")
    actions.login("editor@newsroom.test")
    port = site.split(":")[1]
    for url in (
        f"http://localhost:{port}/berita",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        f"http://user@{site}/x",
        f"http://127.0.0.1:{int(port) + 1}/x",
    ):
        response = client.get("/newsroom/prefill.json", query_string={"url": url})
        assert response.status_code == 400, url
        assert response.get_json()["error"] == "prefill_refused"
    away = client.get("/newsroom/prefill.json", query_string={"url": f"http://{site}/away"})
    assert away.status_code == 400 and "evil.example" in away.get_json()["message"]


def test_prefill_of_a_host_that_does_not_resolve_says_so_in_words(settings, r, site) -> None:  # type: ignore[no-untyped-def]
    """A name under ``.invalid`` never resolves (RFC 6761): the editor reads that the name was not found,
    in the page's language, with no errno text ("[Errno -2] Name or service not known")."""
    from dataclasses import replace

    from notifier.context import Context
    from tests.factories import AuthActions
    from web import create_app

    context = Context.build(replace(settings, site_domains=(site, "kabar-lama.invalid")), client=r)
    client = create_app({"TESTING": True}, context=context).test_client()
    actions = AuthActions(client, context)
    actions.login(actions.create("editor@newsroom.test"))
    messages = {}
    for lang in ("id", "en"):
        response = client.get(
            "/newsroom/prefill.json",
            query_string={"url": "http://kabar-lama.invalid/berita/banjir", "lang": lang},
        )
        assert response.status_code == 400 and response.get_json()["error"] == "prefill_refused"
        messages[lang] = response.get_json()["message"]
    assert "DNS" in messages["en"] and "could not be found" in messages["en"], messages
    assert messages["id"] != messages["en"] and "DNS" in messages["id"], messages
    for text in messages.values():
        assert "Errno" not in text and "not known" not in text and "-2" not in text and "gaierror" not in text


def test_prefill_is_off_without_site_domains(client, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    response = client.get("/newsroom/prefill.json", query_string={"url": "https://kabarkini.example/a"})
    assert response.status_code == 400 and "NOTIFIER_SITE_DOMAINS" in response.get_json()["message"]


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_users_create_list_disable(settings_env, context) -> None:  # type: ignore[no-untyped-def]
    from notifier_cli import main

    runner = CliRunner(env=settings_env)
    created = runner.invoke(
        main,
        ["users", "create", "Ayu@Kabarkini.example", "--role", "admin"],
        input="rahasia-sekali-1\nrahasia-sekali-1\n",
    )
    assert created.exit_code == 0, created.output
    assert "created ayu@kabarkini.example (admin)" in created.output
    mismatch = runner.invoke(
        main,
        ["users", "create", "b@kabarkini.example"],
        input="rahasia-sekali-1\nbeda-sekali-22\nrahasia-sekali-1\nrahasia-sekali-1\n",
    )
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output
    scripted = runner.invoke(
        main,
        ["users", "create", "c@kabarkini.example", "--role", "ops", "--password-stdin"],
        input="rahasia-sekali-3\n",
    )
    assert scripted.exit_code == 0, scripted.output
    short = runner.invoke(
        main, ["users", "create", "d@kabarkini.example", "--password-stdin"], input="pendek\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    listed = runner.invoke(main, ["users", "list"])
    assert listed.output.splitlines() == [
        "ayu@kabarkini.example\tadmin\tactive",
        "b@kabarkini.example\teditor\tactive",
        "c@kabarkini.example\tops\tactive",
    ]
    assert runner.invoke(main, ["users", "disable", "c@kabarkini.example"]).exit_code == 0
    assert "c@kabarkini.example\tops\tdisabled" in runner.invoke(main, ["users", "list"]).output
    assert runner.invoke(main, ["users", "disable", "zz@kabarkini.example"]).exit_code == 1
    store = UserStore(context.redis, context.keys)
    with pytest.raises(AuthError):
        store.authenticate("c@kabarkini.example", "rahasia-sekali-3", "cli")
    assert store.authenticate("ayu@kabarkini.example", "rahasia-sekali-1", "cli").role == "admin"


def test_delivery_send_to_books_pending_like_plan(context) -> None:  # type: ignore[no-untyped-def]
    from notifier.delivery import Delivery

    store = CampaignStore(context.redis, context.keys)
    cid = store.create(validate_campaign(FORM, topics=context.topics, source="test"))
    sids = add_subs(context, 120, ("ekonomi",), "t")
    handed: list[tuple[str, list[str]]] = []
    delivery = Delivery(context)
    batches = delivery.send_to(cid, [*sids, sids[0]], lambda b, s, a, d: handed.append((b, s)))
    assert batches == 3  # NOTIFIER_BATCH_SIZE=50 in tests; the repeated id counts once
    assert [len(s) for _, s in handed] == [50, 50, 20] and handed[0][1] == sids[:50]
    campaign = store.get(cid)
    assert campaign.state == "sending" and campaign.counters["total"] == 120 and campaign.pending == 3
    assert delivery.send_to(cid, sids, lambda *a: handed.append(a)) == 0  # not scheduled any more
    empty = store.create(validate_campaign(FORM, topics=context.topics, source="test"))
    assert delivery.send_to(empty, [], lambda *a: None) == 0
    assert store.get(empty).state == "done"


def test_the_reader_health_page_shows_the_panel_and_the_policy(client, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    sids = add_subs(context, 5, ("breaking",), "h")
    now = time.time()
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent(sids, pipe, unreachable_after=10, budget=1, now=now)
    pipe.hincrby(context.keys.sent_daily("default"), time.strftime("%Y-%m-%d", time.gmtime(now)), 5)
    pipe.execute()
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(CampaignInput(title="Banjir rob", body="b", url="https://kabarkini.example/rob"))
    for sid in sids[:2]:
        data = {"cid": cid, "sid": sid, "rt": receipt_token(context.receipt_key, cid, sid)}
        record_receipt(context.redis, context.keys, context.receipt_key, {"type": "clicked", **data})
    page = client.get("/newsroom/readers?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'aria-current="page">Readers' in html
    assert 'id="per-reader-default">1<' in html  # 5 pushes to 5 readers today
    assert 'id="clicked-default">40%' in html and "(2 readers)" in html
    assert 'id="over-budget-default">3<' in html  # a budget of 1 push: the three who did not click
    assert "NOTIFIER_READER_BUDGET" in html
    assert "Kesehatan pembaca" in client.get("/newsroom/readers?lang=id").get_data(as_text=True)


def test_no_click_rate_is_shown_before_any_receipt_could_arrive(  # type: ignore[no-untyped-def]
    client, login_as, context, simulator, job_env
) -> None:
    """A campaign just sent (accepted by the push service, no ``shown`` or ``clicked`` receipt yet) has no
    click-through rate: not 0.0 in the campaign JSON, the API or the reader-health panel. The first
    receipt makes it a real figure."""
    from tests.factories import create, store_minted

    store_minted(context, simulator.mint(3))
    cid = create(context)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    campaign = CampaignStore(context.redis, context.keys).get(cid)
    assert campaign.counters["sent"] == 3 and campaign.counters["shown"] == 0
    login_as("editor")
    assert client.get(f"/newsroom/campaigns/{cid}.json").get_json()["ctr"] is None
    page = client.get("/newsroom/readers").get_data(as_text=True)
    row = page[page.index(f'data-cid="{cid}"') :].split("</tr>", 1)[0]
    assert "0.0" not in row and row.endswith('<td class="num">–</td>'), row

    received = simulator.received()[0]
    data = json.loads(received.payload or b"{}")["notification"]["data"]
    receipt = {"cid": cid, "sid": data["sid"], "rt": data["rt"]}
    assert client.post("/api/v1/events", json={"type": "shown", **receipt}).status_code == 202
    assert client.get(f"/newsroom/campaigns/{cid}.json").get_json()["ctr"] == 0.0
    assert client.post("/api/v1/events", json={"type": "clicked", **receipt}).status_code == 202
    assert client.get(f"/newsroom/campaigns/{cid}.json").get_json()["ctr"] == 1.0
    page = client.get("/newsroom/readers").get_data(as_text=True)
    row = page[page.index(f'data-cid="{cid}"') :].split("</tr>", 1)[0]
    assert row.endswith('<td class="num">100.0%</td>'), row
