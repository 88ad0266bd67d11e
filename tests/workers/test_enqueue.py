"""Jobs are enqueued by function object: every helper's job names a function that exists."""

from __future__ import annotations

from notifier.context import Context
from workers import jobs, periodic
from workers.queues import ALL_QUEUES, queue


def test_every_enqueue_helper_names_a_job_function_the_worker_can_import(context: Context) -> None:
    conn = context.raw_redis
    jobs.enqueue_plan(conn, "c1")
    jobs.enqueue_plan(conn, "c2", at=4_000_000_000)
    jobs.enqueue_test_send(conn, "c3", ["1", "2"])
    jobs.enqueue_resume(conn, "c4")
    enqueue = jobs.batch_enqueuer(conn, "c5")
    enqueue("b0", ["1"], [1], 0.0)
    enqueue("b1", ["2"], [2], 30.0)
    periodic._enqueue_tick(conn, "1", 0)
    found = {}
    for name in ALL_QUEUES:
        q = queue(name, conn)
        for job_id in [*q.job_ids, *q.scheduled_job_registry.get_job_ids()]:
            job = q.fetch_job(job_id)
            assert job is not None
            found[job.func_name] = job.func  # resolving func imports it, as the worker does
    assert found == {
        "workers.jobs.plan_campaign": jobs.plan_campaign,
        "workers.jobs.send_test": jobs.send_test,
        "workers.jobs.resume_campaign": jobs.resume_campaign,
        "workers.jobs.send_batch": jobs.send_batch,
        "workers.periodic.poll_feeds_tick": periodic.poll_feeds_tick,
    }
