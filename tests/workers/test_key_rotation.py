"""VAPID key rotation end to end in this process: the CLI, sending with each reader's own key, retiring.

The simulator binds each subscription to the key it was made with (``applicationServerKey``) and answers
403 to a push signed with any other, as every push service does.
"""

from __future__ import annotations

from click.testing import CliRunner

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier_cli import main
from notifier_simulator import SimulatorServer
from tests.factories import run_queued
from workers.jobs import launch, runtime
from workers.queues import PLAN_QUEUE, SEND_QUEUE


def subscribe(client, simulator: SimulatorServer, key: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``n`` readers whose browsers subscribed with public key ``key``, posted through the API."""
    endpoints = []
    for sub in simulator.mint(n, application_server_key=key):
        body = {**sub, "topics": ["breaking"], "applicationServerKey": key}
        assert client.post("/api/v1/subscriptions", json=body).status_code == 201
        endpoints.append(sub["endpoint"])
    return endpoints


def send(context: Context) -> dict[str, int]:
    item = validate_campaign(
        {"title": "Kunci baru", "body": "b", "url": "https://kabarkini.example/k", "breaking": True},
        topics=context.topics,
    )
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, None)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    return CampaignStore(context.redis, context.keys).get(cid).counters


def test_rotate_sends_with_each_readers_own_key_and_retire_is_refused_while_readers_use_it(
    context: Context,
    simulator: SimulatorServer,
    client,
    settings_env,
    job_env,  # type: ignore[no-untyped-def]
) -> None:
    cli = CliRunner()
    first = context.vapid_for("default")
    old_readers = subscribe(client, simulator, first.public_key_b64, 3)

    rotated = cli.invoke(main, ["vapid", "rotate"], env=settings_env)
    assert rotated.exit_code == 0, rotated.output
    context.keyring.reload()  # every process sees it within 5 s; this one now
    new = context.vapid_for("default")
    assert new.key_id != first.key_id and f"new current VAPID key {new.key_id}" in rotated.output
    assert client.get("/api/v1/vapid-public-key").get_json() == {"publicKey": new.public_key_b64}
    new_readers = subscribe(client, simulator, new.public_key_b64, 2)
    # A page that subscribed with the old key just before the rotation is still bound to the old key.
    late = subscribe(client, simulator, first.public_key_b64, 1)
    assert context.subscriptions.count_by_key([first.key_id, new.key_id]) == {first.key_id: 4, new.key_id: 2}

    listed = cli.invoke(main, ["vapid", "list"], env=settings_env)
    assert f"{first.key_id}  signing for its readers" in listed.output and "4 readers" in listed.output
    assert f"{new.key_id}  current" in listed.output and "2 readers" in listed.output

    # Every reader is reached, each signed with its own key (any other would get 403).
    counters = send(context)
    assert counters["sent"] == 6 and counters["rejected"] == 0
    signed = {r.endpoint: r.vapid_key for r in simulator.received()}
    assert {signed[e] for e in old_readers + late} == {first.public_key_b64}
    assert {signed[e] for e in new_readers} == {new.public_key_b64}

    refused = cli.invoke(main, ["vapid", "retire", first.key_id], env=settings_env)
    assert refused.exit_code != 0 and "4 readers of site default are still bound to" in refused.output
    current = cli.invoke(main, ["vapid", "retire", new.key_id, "--force"], env=settings_env)
    assert current.exit_code != 0 and "current key" in current.output
    forced = cli.invoke(main, ["vapid", "retire", first.key_id, "--force"], env=settings_env)
    assert (
        forced.exit_code == 0 and "4 readers bound to it get nothing until their next visit" in forced.output
    )
    # Nothing signs for them now: they are skipped (never sent with a wrong key), the others are reached.
    runtime().c.keyring.reload()
    after = send(context)
    assert after["sent"] == 2 and after["skipped"] == 4 and after["rejected"] == 0
    assert f"{first.key_id}  retired" in cli.invoke(main, ["vapid", "list"], env=settings_env).output


def test_the_ops_keys_panel_and_metrics_count_each_keys_readers_after_a_rotation(
    context: Context,
    simulator: SimulatorServer,
    client,
    app,
    settings_env,  # type: ignore[no-untyped-def]
) -> None:
    """After ``notifier vapid rotate``, the ops "VAPID keys" panel (``/ops/summary.json``'s ``vapid``) and
    ``/metrics`` ``notifier_vapid_key_subscribers`` say how many readers each key still holds, and follow a
    reader who moves to the new key on a revisit."""
    from tests.factories import login, scrape

    first = context.vapid_for("default")
    old_readers = subscribe(client, simulator, first.public_key_b64, 3)
    rotated = CliRunner().invoke(main, ["vapid", "rotate"], env=settings_env)
    assert rotated.exit_code == 0, rotated.output
    context.keyring.reload()
    new = context.vapid_for("default")
    subscribe(client, simulator, new.public_key_b64, 2)
    subscribe(client, simulator, first.public_key_b64, 1)  # a page that still had the old key
    # One old reader revisits: the page unsubscribes and posts the subscription made with the new key.
    assert client.delete("/api/v1/subscriptions", json={"endpoint": old_readers[0]}).status_code == 204
    subscribe(client, simulator, new.public_key_b64, 1)
    # One stored by a tool that names no key (as before key ids were kept): the current key signs it.
    from notifier.subscriptions import SubscriptionInput

    sub = simulator.mint(1)[0]
    item = SubscriptionInput(sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], ("breaking",), "id")
    context.subscriptions.upsert(item, browser="firefox", key_id="")
    expected = {first.key_id: (3, "old"), new.key_id: (4, "current")}

    login(app, client, "ops")
    summary = client.get("/ops/summary.json")
    assert summary.status_code == 200
    (site,) = summary.get_json()["vapid"]
    panel = {row["key_id"]: (row["readers"], "current" if row["current"] else "old") for row in site["keys"]}
    assert site["site"] == "default" and panel == expected
    assert [row["key_id"] for row in site["keys"]] == [new.key_id, first.key_id]  # current first
    samples = scrape(client)["notifier_vapid_key_subscribers"]
    metrics = {dict(labels)["key"]: (value, dict(labels)["state"]) for labels, value in samples.items()}
    assert metrics == expected
    assert {dict(labels)["site"] for labels in samples} == {"default"}
