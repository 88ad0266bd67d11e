"""The whole app mounted under a path prefix behind a publisher's proxy (web/prefix.py)."""

from __future__ import annotations

from pathlib import Path

import redis

from notifier.context import Context
from notifier.settings import Settings
from tests.factories import TWO_SITES, make_sub, write_sites


def app_for(env: dict[str, str], r: redis.Redis, **extra: str):  # type: ignore[no-untyped-def]
    from web import create_app

    context = Context.build(Settings.from_env({**env, **extra}), client=r)
    return create_app({"TESTING": True}, context=context), context


def test_a_public_url_with_a_path_mounts_every_route_and_link_under_it(
    settings_env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    sites = write_sites(tmp_path / "sites", TWO_SITES)
    app, context = app_for(
        settings_env,
        r,
        NOTIFIER_PUBLIC_URL="https://www.kabarkini.example/push",
        NOTIFIER_SITES_FILE=str(sites),
    )
    client = app.test_client()
    origin = {"Origin": "https://www.kabarkini.example"}
    # The proxy forwards the full path (Caddy's reverse_proxy): the prefix is taken off before routing.
    script = client.get("/push/embed.js", base_url="https://www.kabarkini.example")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    config = client.get(
        "/push/embed/config?site=kabar", base_url="https://www.kabarkini.example", headers=origin
    )
    api = config.get_json()["api"]
    assert api["subscriptions"] == "https://www.kabarkini.example/push/api/v1/subscriptions?site=kabar"
    loader = client.get("/push/sw/kabar.js", base_url="https://www.kabarkini.example").get_data(as_text=True)
    assert 'importScripts("https://www.kabarkini.example/push/sw/worker.' in loader
    # The subscribe fast path too, same-origin from the publisher's page.
    made = client.post("/push/api/v1/subscriptions", json=make_sub(), base_url="https://www.kabarkini.example",
                       headers=origin)  # fmt: skip
    assert made.status_code == 201 and context.subscriptions.site_of(made.get_json()["id"]) == "kabar"
    page = client.get("/push/langganan", base_url="https://www.kabarkini.example").get_data(as_text=True)
    assert 'href="/push/static/css/' in page and '"sw": "/push/sw.js"' in page.replace('"sw":"', '"sw": "')
    assert '"scope": "/push/"' in page.replace('"scope":"', '"scope": "')


def test_x_forwarded_prefix_from_a_trusted_proxy_that_strips_the_path(
    settings_env: dict[str, str], r: redis.Redis
) -> None:
    app, _ = app_for(settings_env, r, NOTIFIER_TRUSTED_PROXIES="1")
    client = app.test_client()
    # nginx: location /push/ { proxy_pass http://notifier/; proxy_set_header X-Forwarded-Prefix /push; }
    headers = {
        "X-Forwarded-Prefix": "/push",
        "X-Forwarded-Host": "www.kabarkini.example",
        "X-Forwarded-Proto": "https",
    }
    loader = client.get("/sw.js", headers=headers).get_data(as_text=True)
    assert 'importScripts("/push/sw/worker.' in loader
    config = client.get("/embed/config?site=default", headers=headers).get_json()
    assert (
        config["api"]["vapidKey"] == "https://www.kabarkini.example/push/api/v1/vapid-public-key?site=default"
    )
    # Without a trusted proxy the header is anyone's: ignored.
    plain, _ = app_for(settings_env, r)
    assert 'importScripts("/sw/worker.' in plain.test_client().get("/sw.js", headers=headers).get_data(
        as_text=True
    )
