"""RQ's side of ops: queues, registries, workers (live and dead), failed jobs, and the worker hook.

RQ deletes a worker's key when its TTL runs out, so a killed worker would simply
vanish from ``Worker.all``. :func:`attach_recorder` therefore also records every
heartbeat in our own keys (``Keys.workers_seen`` / ``Keys.workers_info``) with the
deadline of the next one; a worker past its deadline, or gone from RQ without a
clean shutdown, is reported dead instead of disappearing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from notifier import stats
from notifier.keys import Keys
from workers.logging import job_log_context
from workers.queues import ALL_QUEUES, queue

#: Seconds of slack RQ adds to every heartbeat's key expiry; the next heartbeat is due before the rest.
RQ_HEARTBEAT_SLACK = 60
#: Extra seconds allowed past a heartbeat deadline before a worker is called dead.
DEAD_GRACE = 2.0
#: Records of workers that stopped or died are dropped after this many seconds.
FORGET_AFTER = 86400
#: Registries shown per queue, by label.
REGISTRIES = {
    "started": StartedJobRegistry,
    "finished": FinishedJobRegistry,
    "failed": FailedJobRegistry,
    "scheduled": ScheduledJobRegistry,
    "deferred": DeferredJobRegistry,
}


def _ts(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class WorkerRecorder:
    """Keeps our record of one RQ worker's heartbeats and runs its jobs under a job/campaign log context.

    Attached to a built worker (any RQ worker class) by wrapping its methods on the
    instance, so it composes with whatever worker subclass ``workers.worker`` uses.
    """

    def __init__(self, worker: BaseWorker, keys: Keys) -> None:
        self.worker = worker
        self.keys = keys
        self.job_id = ""

    def record(self, timeout: int | None, pipeline: Any = None, *, stopped: bool = False) -> None:
        """Write the heartbeat time and the deadline of the next one (``timeout`` as RQ passes it)."""
        w = self.worker
        now = time.time()
        expiry = timeout or w.worker_ttl + RQ_HEARTBEAT_SLACK
        due = expiry - RQ_HEARTBEAT_SLACK if expiry > RQ_HEARTBEAT_SLACK else expiry
        info = {
            "host": w.hostname or socket.gethostname(),
            "pid": os.getpid(),
            "ttl": w.worker_ttl,
            "queues": [q.name for q in w.queues],
            "deadline": now + max(1, due),
            "stopped": now if stopped else 0,
            "last_job": self.job_id,
        }
        # Outside a pipeline (RQ's loop beats three times a job) both writes still go in one round trip.
        conn = pipeline if pipeline is not None else w.connection.pipeline(transaction=False)
        conn.zadd(self.keys.workers_seen, {w.name: now})
        conn.hset(self.keys.workers_info, w.name, json.dumps(info))
        if pipeline is None:
            conn.execute()

    def forget_old(self) -> None:
        """Drop records of workers not heard of for a day."""
        conn = self.worker.connection
        old = conn.zrangebyscore(self.keys.workers_seen, "-inf", time.time() - FORGET_AFTER)
        if old:
            conn.zrem(self.keys.workers_seen, *old)
            conn.hdel(self.keys.workers_info, *old)


def attach_recorder(worker: BaseWorker, keys: Keys) -> WorkerRecorder:
    """Record ``worker``'s birth, heartbeats and clean death in our keys; log its jobs with their ids."""
    recorder = WorkerRecorder(worker, keys)
    birth, death, heartbeat, execute = (
        worker.register_birth,
        worker.register_death,
        worker.heartbeat,
        worker.execute_job,
    )

    def register_birth() -> None:
        birth()
        recorder.record(None)
        recorder.forget_old()

    def register_death() -> None:
        # A clean shutdown: the record says stopped, so the worker is not reported dead.
        recorder.record(None, stopped=True)
        death()

    def beat(timeout: int | None = None, pipeline: Any = None) -> None:
        heartbeat(timeout, pipeline=pipeline)
        recorder.record(timeout, pipeline)

    def execute_job(job: Job, queue: Queue) -> Any:
        recorder.job_id = job.id
        try:
            with job_log_context(job.id, _campaign_of(job)):
                return execute(job, queue)
        finally:
            recorder.job_id = ""

    worker.register_birth = register_birth  # type: ignore[method-assign]
    worker.register_death = register_death  # type: ignore[method-assign]
    worker.heartbeat = beat  # type: ignore[method-assign]
    worker.execute_job = execute_job  # type: ignore[method-assign]
    return recorder


def _campaign_of(job: Job) -> str:
    """Our jobs all take the campaign id first."""
    with suppress(Exception):
        if job.func_name.startswith("workers.jobs.") and job.args and isinstance(job.args[0], str):
            return job.args[0]
    return ""


# -- queues -------------------------------------------------------------------------------------------


def queue_stats(conn: redis.Redis, *, now: float | None = None) -> list[dict[str, Any]]:
    """Per queue: waiting jobs, age of the oldest waiting one, and the size of each registry."""
    now = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    for name in ALL_QUEUES:
        q = queue(name, conn)
        oldest_age: float | None = None
        first = q.get_job_ids(0, 1)
        if first:
            with suppress(NoSuchJobError):
                job = Job.fetch(first[0], connection=conn, serializer=JSONSerializer)
                enqueued = _ts(job.enqueued_at)
                if enqueued is not None:
                    oldest_age = round(max(0.0, now - enqueued), 3)
        row: dict[str, Any] = {"name": name, "depth": q.count, "oldest_age": oldest_age}
        for label, registry in REGISTRIES.items():
            row[label] = registry(queue=q).count
        first_due = conn.zrange(ScheduledJobRegistry(queue=q).key, 0, 0, withscores=True)
        row["next_scheduled"] = float(first_due[0][1]) if first_due else None
        rows.append(row)
    return rows


def scheduled_jobs(conn: redis.Redis, *, limit: int = 500) -> list[dict[str, Any]]:
    """Jobs waiting in the scheduled registries (retry batches after a 429 or an error), soonest first.

    Each row: job id, queue, campaign (our jobs take it first), and the unix time it is due.
    """
    rows: list[dict[str, Any]] = []
    for name in ALL_QUEUES:
        registry = ScheduledJobRegistry(queue=queue(name, conn))
        due = conn.zrange(registry.key, 0, limit - 1, withscores=True)
        if not due:
            continue
        ids = [job_id.decode() if isinstance(job_id, bytes) else str(job_id) for job_id, _ in due]
        jobs = Job.fetch_many(ids, connection=conn, serializer=JSONSerializer)
        for job_id, (_, at), job in zip(ids, due, jobs, strict=True):
            rows.append(
                {
                    "id": job_id,
                    "queue": name,
                    "campaign": _campaign_of(job) if job is not None else "",
                    "at": float(at),
                }
            )
    rows.sort(key=lambda row: row["at"])
    return rows[:limit]


# -- workers ------------------------------------------------------------------------------------------


def worker_rows(
    conn: redis.Redis,
    r: redis.Redis,
    keys: Keys,
    *,
    now: float | None = None,
    scheduled: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Live workers from RQ (``conn``: RQ's bytes client) merged with our records (``r``: decoded client).

    A live worker with no job but jobs scheduled on its queues (retry batches waiting out a
    Retry-After or a backoff) is ``waiting``, not ``idle``: ``retries_scheduled`` says how many and
    ``next_retry`` when the first is due. ``scheduled`` is :func:`scheduled_jobs` when already read.
    """
    now = time.time() if now is None else now
    scheduled = scheduled_jobs(conn) if scheduled is None else scheduled
    seen = {w["name"]: w for w in stats.seen_workers(r, keys, since=now - FORGET_AFTER)}
    rows: dict[str, dict[str, Any]] = {}
    for w in BaseWorker.all(connection=conn, serializer=JSONSerializer):
        record = seen.get(w.name, {})
        beat = _ts(w.last_heartbeat)
        deadline = record.get("deadline")
        dead = deadline is not None and now > deadline + DEAD_GRACE
        rows[w.name] = {
            "name": w.name,
            "host": w.hostname or record.get("host"),
            "pid": w.pid or record.get("pid"),
            "state": "dead" if dead else w.get_state(),
            "dead": dead,
            "reason": "no heartbeat since its deadline" if dead else "",
            "current_job": w.get_current_job_id(),
            "last_heartbeat": max(filter(None, [beat, record.get("last_heartbeat")]), default=None),
            "deadline": deadline,
            "ttl": w.worker_ttl,
            "successful": w.successful_job_count,
            "failed": w.failed_job_count,
            "working_time": round(float(w.total_working_time or 0), 3),
            "birth": _ts(w.birth_date),
            "queues": w.queue_names(),
        }
        mine = [job for job in scheduled if job["queue"] in rows[w.name]["queues"]]
        rows[w.name]["retries_scheduled"] = len(mine)
        rows[w.name]["next_retry"] = mine[0]["at"] if mine else None
        if mine and rows[w.name]["state"] == "idle":
            rows[w.name]["state"] = "waiting"
    for name, record in seen.items():
        if name in rows or record.get("stopped"):
            continue
        rows[name] = {
            "name": name,
            "host": record.get("host"),
            "pid": record.get("pid"),
            "state": "dead",
            "dead": True,
            "reason": "gone from RQ without a clean shutdown (killed?)",
            "current_job": record.get("last_job") or None,
            "last_heartbeat": record.get("last_heartbeat"),
            "deadline": record.get("deadline"),
            "ttl": record.get("ttl"),
            "successful": None,
            "failed": None,
            "working_time": None,
            "birth": None,
            "queues": record.get("queues", []),
            "retries_scheduled": 0,
            "next_retry": None,
        }
    return sorted(rows.values(), key=lambda row: (row["dead"], row["name"]))


def alive_workers(conn: redis.Redis, r: redis.Redis, keys: Keys, *, now: float | None = None) -> int:
    """Workers whose heartbeat is on time."""
    return sum(1 for w in worker_rows(conn, r, keys, now=now) if not w["dead"])


# -- failed jobs --------------------------------------------------------------------------------------


def _failed_registries(conn: redis.Redis) -> Iterator[tuple[str, FailedJobRegistry]]:
    for name in ALL_QUEUES:
        yield name, FailedJobRegistry(queue=queue(name, conn))


def failed_count(conn: redis.Redis) -> int:
    """Jobs in every queue's failed registry."""
    return sum(reg.count for _, reg in _failed_registries(conn))


def failed_jobs(conn: redis.Redis, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest failed jobs of every queue, with exception and traceback."""
    rows: list[dict[str, Any]] = []
    for name, registry in _failed_registries(conn):
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        for job_id, job in zip(
            ids, Job.fetch_many(ids, connection=conn, serializer=JSONSerializer), strict=True
        ):
            if job is None:
                continue
            result = job.latest_result()
            trace = result.exc_string if result is not None and result.exc_string else ""
            last_line = next((line for line in reversed(trace.strip().splitlines()) if line.strip()), "")
            rows.append(
                {
                    "id": job_id,
                    "queue": name,
                    "func": job.func_name,
                    "description": job.description,
                    "campaign": _campaign_of(job),
                    "exception": last_line,
                    "traceback": trace,
                    "enqueued_at": _ts(job.enqueued_at),
                    "ended_at": _ts(job.ended_at),
                }
            )
    rows.sort(key=lambda row: row["ended_at"] or 0, reverse=True)
    return rows[:limit]


def _find_failed(conn: redis.Redis, job_id: str) -> FailedJobRegistry | None:
    for _, registry in _failed_registries(conn):
        if registry.connection.zscore(registry.key, job_id) is not None:
            return registry
    return None


def requeue_failed(conn: redis.Redis, job_id: str) -> bool:
    """Put one failed job back on its queue; False when it is not in a failed registry."""
    registry = _find_failed(conn, job_id)
    if registry is None:
        return False
    try:
        registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        registry.remove(job_id)
        return False
    return True


def requeue_all_failed(conn: redis.Redis) -> int:
    """Requeue every failed job; returns how many went back on a queue."""
    n = 0
    for _, registry in _failed_registries(conn):
        for job_id in registry.get_job_ids():
            if requeue_failed(conn, job_id):
                n += 1
    return n


def delete_failed(conn: redis.Redis, job_id: str) -> bool:
    """Delete one failed job and its registry entry; False when it is not a failed job."""
    registry = _find_failed(conn, job_id)
    if registry is None:
        return False
    registry.remove(job_id, delete_job=True)
    return True
