"""Ops against real RQ: failed jobs listed, requeued and deleted; live workers shown; a killed worker flagged dead."""

from __future__ import annotations

import io
import json
import logging
import signal

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from notifier.context import Context
from tests.factories import login, wait_for
from workers import inspect
from workers.jobs import send_batch
from workers.logging import setup_worker_logging
from workers.queues import ALL_QUEUES, SEND_QUEUE, queue


def burst(context: Context) -> list[dict]:  # type: ignore[type-arg]
    """Run a burst worker in this process with the ops hooks; returns its JSON log lines."""
    worker = SimpleWorker(
        [queue(n, context.raw_redis) for n in ALL_QUEUES],
        connection=context.raw_redis,
        serializer=JSONSerializer,
    )
    inspect.attach_recorder(worker, context.keys)
    stream = io.StringIO()
    setup_worker_logging(True, stream=stream)
    try:
        worker.work(burst=True, with_scheduler=False)
    finally:
        for name in ("rq", "notifier", "workers"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def fail_one(context: Context) -> str:
    """Enqueue a batch for a campaign that does not exist and let a burst worker fail it."""
    job = queue(SEND_QUEUE, context.raw_redis).enqueue(send_batch, "no-such-campaign", "b0", ["s1"], 1)
    lines = burst(context)
    tagged = [line for line in lines if line.get("job_id") == job.id]
    assert tagged and all(line["campaign_id"] == "no-such-campaign" for line in tagged)
    assert any("NotFound" in line.get("exc", "") + line["msg"] for line in tagged)
    return str(job.id)


def test_a_failed_job_is_listed_requeued_and_deleted(app, client, context: Context, job_env) -> None:  # type: ignore[no-untyped-def]
    job_id = fail_one(context)
    token = login(app, client, "ops")
    d = client.get("/ops/summary.json").get_json()
    assert d["failed"]["count"] == 1
    job = d["failed"]["jobs"][0]
    assert job["id"] == job_id and job["queue"] == SEND_QUEUE and job["campaign"] == "no-such-campaign"
    assert "NotFound" in job["exception"] and "Traceback" in job["traceback"]
    send = next(q for q in d["queues"] if q["name"] == SEND_QUEUE)
    assert send["failed"] == 1 and send["depth"] == 0
    # The burst worker stopped cleanly: recorded, but not dead.
    assert [w["state"] for w in d["workers"]] == []

    answer = client.post(
        f"/ops/failed/{job_id}/requeue", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert answer.status_code == 200 and answer.get_json()["requeued"] == 1
    d = client.get("/ops/summary.json").get_json()
    send = next(q for q in d["queues"] if q["name"] == SEND_QUEUE)
    assert d["failed"]["count"] == 0 and send["depth"] == 1 and send["oldest_age"] is not None

    # It fails again; this time it is deleted.
    assert any(line.get("job_id") == job_id for line in burst(context))
    assert client.get("/ops/summary.json").get_json()["failed"]["count"] == 1
    gone = client.post(f"/ops/failed/{job_id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert client.get("/ops/summary.json").get_json()["failed"]["count"] == 0
    assert not context.raw_redis.exists(f"rq:job:{job_id}")


def test_requeue_all(app, client, context: Context, job_env) -> None:  # type: ignore[no-untyped-def]
    fail_one(context)
    fail_one(context)
    token = login(app, client, "admin")
    answer = client.post(
        "/ops/failed/requeue-all", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert answer.get_json()["requeued"] == 2
    d = client.get("/ops/summary.json").get_json()
    assert d["failed"]["count"] == 0 and next(q for q in d["queues"] if q["name"] == SEND_QUEUE)["depth"] == 2


def test_live_workers_make_readyz_pass_and_a_killed_one_is_flagged_dead(
    app, client, context: Context, workers
) -> None:  # type: ignore[no-untyped-def]
    # A short TTL so the missed heartbeat shows within seconds (production: 60 s).
    victim, survivor = workers.start(2, NOTIFIER_WORKER_TTL="3")
    login(app, client, "ops")

    def rows():  # type: ignore[no-untyped-def]
        return client.get("/ops/summary.json").get_json()["workers"]

    live = wait_for(lambda: len(r := rows()) == 2 and r, timeout=30, message="two workers registered")
    assert {w["pid"] for w in live} == {victim.pid, survivor.pid}
    assert all(w["state"] != "dead" and not w["dead"] and w["host"] for w in live), live
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["workers_alive"] == 2

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    dead = wait_for(
        lambda: [w for w in rows() if w["dead"]], timeout=20, message="the killed worker flagged dead"
    )
    assert len(dead) == 1 and dead[0]["pid"] == victim.pid and dead[0]["state"] == "dead"
    assert next(w for w in rows() if w["pid"] == survivor.pid)["dead"] is False
    assert client.get("/readyz").get_json()["checks"]["workers_alive"] == 1

    # A clean stop (SIGTERM) is not a death.
    survivor.send_signal(signal.SIGTERM)
    survivor.wait(timeout=15)
    after = rows()
    assert [w["pid"] for w in after] == [victim.pid]
    assert client.get("/readyz").status_code == 503


def test_notifier_status_prints_the_tables(settings_env: dict[str, str], context: Context, job_env) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from notifier_cli import main

    fail_one(context)
    context.redis.setbit(context.keys.subs_live, 3, 1)
    context.redis.setbit(context.keys.subs_live, 40, 1)
    result = CliRunner().invoke(main, ["status"], env={**settings_env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for heading in ("Queues", "Workers", "Campaigns in flight", "Subscribers: 2"):
        assert heading in result.output
    assert "notifier-send" in result.output and "1 failed jobs" in result.output
