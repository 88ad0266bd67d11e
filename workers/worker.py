"""Worker entry point: ``notifier worker`` or ``python -m workers``.

Runs RQ's :class:`SimpleWorker` (no fork per job) so that the process keeps one
pooled keep-alive HTTP client and its signed VAPID JWTs across batches; the
scheduler runs inside the worker for ``send_at`` campaigns and delayed retries.
"""

from __future__ import annotations

import contextvars
import ctypes
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from typing import Any

import redis
from redis.client import Pipeline
from rq import SimpleWorker, worker_registration
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from notifier.campaigns import DELIVERING, PLAN_UNIT, SCHEDULED
from notifier.upgrade import upgrade
from workers.inspect import attach_recorder
from workers.jobs import probe_breakers, release_due_holds, runtime, set_release
from workers.logging import setup_worker_logging
from workers.periodic import start_feed_polling
from workers.queues import ALL_QUEUES, PLAN_QUEUE, SEND_QUEUE, queue

#: Linux prctl option: signal this process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a forked child (RQ's scheduler), ask Linux for SIGTERM when the worker dies.

    Without it a SIGKILLed worker leaves its scheduler running as an orphan that
    holds the scheduler lock; with it the scheduler stops and releases the lock,
    and a surviving or new worker's scheduler takes over delayed retries.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class HeartbeatWorker(SimpleWorker):
    """A :class:`SimpleWorker` that keeps the pipe full: the next batch starts before the last one ends.

    Each job runs on a thread of its own (``perform_job``: RQ's whole bookkeeping, and a
    heartbeat thread that renews its registration), so the work loop can take the next
    job while the previous one waits for its last answers. A batch job *releases* the
    loop once every message of it is started (``workers.jobs.send_batch`` passes the
    release to the delivery); any other job releases it when it ends. At most
    ``batches_in_flight`` jobs are in progress: with 1 this is RQ's one job at a time.
    The sending itself happens on the delivery's event-loop thread, shared by all of
    them (``notifier.delivery.Delivery.run_batch``).

    Registration: SimpleWorker registers a running job in the StartedJobRegistry for
    ``job_timeout + 60`` seconds (360 s for a batch) and never renews it, so a batch lost
    with a SIGKILLed worker would wait six minutes before RQ's abandoned-job cleanup re-runs
    it. Here the registration lasts ``worker_ttl`` seconds and each job's heartbeat thread
    renews it every third of that while the job runs, so a dead worker's batches are
    retried (``Retry(max=3)``) within ``worker_ttl`` plus one maintenance interval.

    A job's timeout is enforced in its own thread (``TimerDeathPenalty``: SIGALRM only
    reaches the main thread). A warm shutdown waits for every job in progress.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, batches_in_flight: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_in_flight = max(1, batches_in_flight)
        self._jobs: dict[threading.Thread, threading.Event] = {}
        self._job_ended = threading.Condition()
        self._dequeueing = False

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat; outside a pipeline it also puts back a registration Redis lost meanwhile.

        Outside a pipeline RQ's heartbeat is three round trips and the registration check one more;
        RQ's loop beats three times a job: here the writes and the check go in one round trip.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            self._check_registered(pipe)
            *_, member, born = pipe.execute()
        if not (member and born):
            self._register_again(timeout)

    def ensure_registered(self, timeout: int | None = None) -> None:
        """Register this live worker again when Redis lost its registration.

        RQ's worker key carries a TTL (3 s at the start of a job here, until the first job heartbeat);
        a heartbeat only renews or updates it, and maintenance drops a worker whose key is gone. A
        Sentinel failover that outlasts the TTL (measured: the key expired on the new primary while the
        batch's commit waited for it) thus left a working worker called gone by RQ, ``/ops``,
        ``notifier status`` and ``/readyz``.
        """
        with self.connection.pipeline(transaction=False) as pipe:
            self._check_registered(pipe)
            if all(pipe.execute()):
                return
        self._register_again(timeout)

    def _check_registered(self, pipe: Pipeline) -> None:
        """Queue the two reads that tell whether RQ still knows this worker (both true: it does)."""
        pipe.sismember(self.redis_workers_keys, self.key)
        pipe.hexists(self.key, "birth")

    def _register_again(self, timeout: int | None) -> None:
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, timeout or self.worker_ttl + 60)
            pipe.execute()
        self.log.warning("worker %s registered again: Redis had lost its registration", self.name)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Seconds a running job stays registered without a heartbeat."""
        return max(3, int(self.worker_ttl))

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Start the job on its own thread; return once it released the loop and there is room for another."""
        execution = self.prepare_execution(job)
        released = threading.Event()
        # The thread runs in a copy of this context: the job's log context (job, campaign) goes along.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run,
            args=(self._run_job, job, queue, execution, released),
            name=f"job-{job.id}"[:60],
            daemon=True,
        )
        with self._job_ended:
            self._jobs[thread] = released
        thread.start()
        while not released.wait(0.5):
            pass
        with self._job_ended:
            while len(self._jobs) >= self.batches_in_flight:
                self._job_ended.wait(0.5)

    def _run_job(self, job: Job, queue: Queue, execution: Execution, released: threading.Event) -> None:
        stop = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job, execution, stop), name="job-heartbeat", daemon=True
        )
        beat.start()
        set_release(released.set)
        try:
            self.perform_job(job, queue, execution)
        finally:
            set_release(None)
            stop.set()
            beat.join()
            released.set()
            with self._job_ended:
                self._jobs.pop(threading.current_thread(), None)
                last = not self._jobs
                self._job_ended.notify_all()
            if last and self._dequeueing:
                # The loop set "busy" when it began waiting for the next job while this one still ran;
                # nothing else runs now, so say "idle" (ops and /metrics read it) instead of staying busy
                # until the next job arrives.
                self.set_state(WorkerStatus.IDLE)

    def jobs_in_progress(self) -> int:
        """Jobs this worker is running now."""
        with self._job_ended:
            return len(self._jobs)

    def wait_for_jobs(self) -> None:
        """Block until every job in progress has ended (a warm shutdown)."""
        with self._job_ended:
            while self._jobs:
                self._job_ended.wait(0.5)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """RQ's dequeue; while it blocks, a stop request interrupts it even with jobs in progress."""
        self._dequeueing = True
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        finally:
            self._dequeueing = False

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Busy while any job runs, even when the loop waits for the next one."""
        if state == WorkerStatus.IDLE and self.jobs_in_progress():
            state = WorkerStatus.BUSY
        super().set_state(state, pipeline=pipeline)

    def _shutdown(self) -> None:
        if self._dequeueing:
            # Waiting for the next job: stop taking jobs now; teardown waits for those in progress.
            self._stop_requested = True
            self.set_shutdown_requested_date()
            raise StopRequested()
        super()._shutdown()

    def teardown(self) -> None:
        """Let the jobs in progress end (a warm shutdown), then RQ's own teardown."""
        self.wait_for_jobs()
        super().teardown()

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance, after freeing the locks of this worker's scheduler if its process died."""
        release_dead_scheduler(self)
        super().run_maintenance_tasks()
        try:
            requeue_lost_jobs(self.connection, older_than=self.worker_ttl)
        except redis.RedisError as exc:
            self.log.warning("cannot look for lost jobs yet: %s", exc)
        try:
            release_due_holds()
        except redis.RedisError as exc:
            self.log.warning("cannot release push-service holds yet: %s", exc)
        try:
            probe_breakers()
        except redis.RedisError as exc:
            self.log.warning("cannot try open push-service breakers yet: %s", exc)

    def _beat(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        ttl = self.get_heartbeat_ttl(job)
        while not stop.wait(ttl / 3):
            try:
                with self.connection.pipeline() as pipe:
                    self.heartbeat(ttl + 60, pipeline=pipe)
                    # xx: a job that finished meanwhile is not registered again.
                    execution.heartbeat(job.started_job_registry, ttl, pipeline=pipe)
                    pipe.execute()
                self.ensure_registered(ttl + 60)
                # The batch's lease (notifier.delivery) lives as long as this registration: renewed together,
                # expired together, so the batch goes to another worker only once this one lost both.
                runtime().renew_lease()
            except redis.RedisError as exc:
                # Redis away for a moment: the next beat tries again; the job itself decides its fate.
                self.log.warning("job heartbeat of %s failed: %s", job.id, exc)


def requeue_lost_jobs(conn: redis.Redis, *, older_than: float) -> list[str]:
    """Put back campaign jobs a worker popped but never started; returns their ids.

    A worker listening to several queues dequeues with BLPOP: if it (or Redis) dies between the
    pop and registering the job as started, the job is in no queue and no registry, and RQ never
    runs it again. The campaign still counts the batch as pending, so it would never finish. Its
    reserved-but-not-done batch ids name the jobs to look for; one still ``queued`` but absent from
    its queue (checked only once that queue has drained, so this stays cheap) is pushed back.
    """
    delivery = runtime()
    queues = {PLAN_QUEUE: queue(PLAN_QUEUE, conn), SEND_QUEUE: queue(SEND_QUEUE, conn)}
    if any(q.count for q in queues.values()):
        return []
    cutoff = time.time() - older_than
    candidates: list[tuple[str, str]] = []
    for campaign in delivery.campaigns.list(0, 200):
        cid = campaign.cid
        # A test send is batched by its own job (the editor's browsers, not the topics' audience).
        plan_job = f"test-{cid}" if campaign.source == "test" else f"plan-{cid}"
        if campaign.state == SCHEDULED and (campaign.send_at or campaign.created) < cutoff:
            candidates.append((PLAN_QUEUE, plan_job))
        elif campaign.state in DELIVERING and campaign.pending > 0:
            for batch_id in sorted(delivery.campaigns.owed_batches(cid)):
                if batch_id == PLAN_UNIT:
                    candidates.append((PLAN_QUEUE, plan_job))
                else:
                    candidates.append((SEND_QUEUE, f"send-{cid}-{batch_id}"))
    requeued: list[str] = []
    for name, job_id in candidates:
        status = conn.hget(Job.key_for(job_id), "status")
        enqueued = conn.hget(Job.key_for(job_id), "enqueued_at")
        if status != b"queued" or not enqueued or conn.lpos(queues[name].key, job_id) is not None:
            continue
        if datetime.fromisoformat(enqueued.decode().replace("Z", "+00:00")).timestamp() > cutoff:
            continue
        queues[name].push_job_id(job_id)
        requeued.append(job_id)
        logging.getLogger("notifier.worker").warning("requeued %s: popped by a worker that was lost", job_id)
    return requeued


def release_dead_scheduler(worker: SimpleWorker) -> None:
    """Release the scheduler locks of a worker whose scheduler process is gone.

    RQ's scheduler process exits on a Redis error without releasing its locks,
    which then block every scheduler (delayed retries, ``send_at``) for their
    61 s TTL. The locks hold the scheduler's name, known to the parent too.
    """
    scheduler = getattr(worker, "scheduler", None)
    process = getattr(scheduler, "_process", None)
    if scheduler is None or process is None or process.is_alive():
        return
    try:
        scheduler.release_locks()
    except redis.RedisError as exc:
        logging.getLogger("notifier.worker").warning("cannot release dead scheduler locks yet: %s", exc)


def stop_pubsub(worker: SimpleWorker) -> None:
    """Stop the loop's command-channel thread, which RQ's teardown leaves running when Redis failed.

    RQ unsubscribes last in its teardown, after steps that raise while Redis is away; the thread of
    a dead loop then goes on retrying (and logging) every 2 s for the life of the process, one more
    per restart, still listening on the dead loop's channel. Stopped, it leaves at its next wake-up
    (within 2 s while Redis fails, at most a minute otherwise) and closes its own connection.
    """
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        thread.stop()
        worker.pubsub_thread = None


#: Open files a worker keeps beside its push connections (Redis, logs, its own modules).
OPEN_FILES_SPARE = 256


def raise_open_files(concurrency: int, log: logging.Logger) -> int:
    """Raise the soft open-file limit to ``concurrency`` + spare (within the hard limit); return it.

    Over HTTP/1.1 each message in flight holds a connection, and a worker keeps up to
    ``NOTIFIER_CONCURRENCY`` in flight at internet latency; systemd's and most shells' default
    soft limit (1,024) would turn the rest into "Too many open files" connection errors.
    """
    import resource

    needed = concurrency + OPEN_FILES_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if wanted > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        if soft < needed:
            log.warning(
                "open-file limit %d is below NOTIFIER_CONCURRENCY + %d = %d: raise the hard limit "
                "(LimitNOFILE in the systemd unit) or lower NOTIFIER_CONCURRENCY",
                soft,
                OPEN_FILES_SPARE,
                needed,
            )
    return int(soft)


def build_worker(*, name: str | None = None) -> HeartbeatWorker:
    """A worker on every queue, bound to the configured Redis (the VAPID key is loaded now: fail fast)."""
    delivery = runtime()
    # RQ stores job payloads as bytes; it needs its own undecoded connection.
    conn = delivery.c.raw_redis
    queues = [queue(n, conn) for n in ALL_QUEUES]
    return HeartbeatWorker(
        queues,
        connection=conn,
        serializer=JSONSerializer,
        name=name or f"{socket.gethostname()}.{os.getpid()}",
        maintenance_interval=delivery.settings.worker_maintenance,
        worker_ttl=delivery.settings.worker_ttl,
        batches_in_flight=delivery.settings.batches_in_flight,
    )


#: Longest wait between two restarts of a worker loop that ended on its own (seconds).
RESTART_MAX_DELAY = 30.0


def main(burst: bool = False, with_scheduler: bool = True, name: str | None = None) -> bool:
    """Run a worker until stopped (or until the queues are empty with ``burst``).

    RQ's work loop quits on an error it cannot handle, such as Redis going away
    while a job is being finished. Unless a stop was asked for, the worker waits
    for Redis with backoff and starts a fresh loop in the same process, so a
    Redis restart needs no manual action; its interrupted job is re-run by the
    abandoned-job cleanup.
    """
    os.register_at_fork(after_in_child=_die_with_parent)
    settings = runtime().settings
    level = logging.getLevelName(settings.log_level.upper())
    setup_worker_logging(
        settings.log_json, level=level, production=settings.production, tag=settings.log_tag or "worker"
    )
    log = logging.getLogger("notifier.worker")
    raise_open_files(settings.concurrency, log)
    delay = 1.0
    upgraded = upgrade(runtime().c)
    for line in upgraded.lines(runtime().c.sites.default_id):
        log.info("%s", line)
    if not burst:  # one feed-polling chain across all workers (workers/periodic.py)
        start_feed_polling(runtime().c.raw_redis, runtime().settings)
    try:
        for run in itertools.count():
            # A loop that died with Redis left its registration behind: a restarted one needs a new name.
            base = name or f"{socket.gethostname()}.{os.getpid()}"
            worker = build_worker(name=base if run == 0 else f"{base}.{run}")
            attach_recorder(worker, runtime().c.keys)
            began = time.monotonic()
            log.info(
                "worker up: %s on %s%s",
                worker.name,
                ", ".join(worker.queue_names()),
                ", with the scheduler" if with_scheduler else "",
            )
            try:
                worked = worker.work(
                    burst=burst, with_scheduler=with_scheduler, logging_level=logging.getLevelName(level)
                )
            except redis.RedisError as exc:  # from RQ's own teardown while Redis is away
                log.error("worker loop ended on a Redis error: %s", exc, exc_info=True)
                worked = False
            finally:
                stop_pubsub(worker)
            if burst or worker._shutdown_requested_date is not None:
                log.info("worker down: %s stopped%s", worker.name, " (queues empty)" if burst else "")
                return worked
            if time.monotonic() - began > 60:
                delay = 1.0
            log.error("worker loop ended without a stop request; restart once Redis answers (%.0f s)", delay)
            if not _wait_for_redis(worker.connection, delay):
                log.info("worker down: %s stopped while waiting for Redis", worker.name)
                return worked
            release_dead_scheduler(worker)
            delay = min(delay * 2, RESTART_MAX_DELAY)
        raise AssertionError("unreachable")
    finally:
        runtime().close()


def _wait_for_redis(connection: redis.Redis, delay: float) -> bool:
    """Wait ``delay`` seconds, then until Redis answers PING (backing off up to RESTART_MAX_DELAY).

    False when SIGTERM or SIGINT came meanwhile: RQ's own handlers, still installed, would write the stop
    request to the Redis that is not there and raise out of the wait.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(delay):
            try:
                if connection.ping():
                    return True
            except redis.RedisError:
                delay = min(delay * 2, RESTART_MAX_DELAY)
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
