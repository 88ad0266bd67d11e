"""Log lines: JSON for machines, one readable tagged line on a terminal, RQ's bookkeeping demoted to debug."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from rich.console import Console
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from notifier.campaigns import Campaign
from notifier.context import Context
from notifier.settings import Settings
from web.logging import LOGGER, init_request_logging
from workers import jobs
from workers.logging import ConsoleHandler, setup_worker_logging, wants_json
from workers.queues import ALL_QUEUES, SEND_QUEUE, queue

ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: What RQ writes at info level around every job (the flood of `scripts/run` before).
RQ_CHATTER = ("cleaning registries", "Job OK", "result is kept", "Listening on", "subscribing to channel")


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as the one `notifier up` hands its children."""

    def isatty(self) -> bool:
        return True


def test_json_unless_a_development_terminal() -> None:
    assert wants_json(None, production=False, stream=Terminal()) is False
    assert wants_json(None, production=False, stream=io.StringIO()) is True  # a pipe, a file, journald
    assert wants_json(None, production=True, stream=Terminal()) is True  # production: always JSON
    assert wants_json(True, production=False, stream=Terminal()) is True  # NOTIFIER_LOG_JSON=1
    assert wants_json(False, production=True, stream=io.StringIO()) is False  # NOTIFIER_LOG_JSON=0
    assert Settings.from_env({}).log_json is None
    assert Settings.from_env({"NOTIFIER_LOG_JSON": "auto"}).log_json is None
    assert Settings.from_env({"NOTIFIER_LOG_JSON": "1"}).log_json is True
    assert Settings.from_env({"NOTIFIER_LOG_LEVEL": "DEBUG"}).log_level == "debug"


def _record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("workers.campaigns", level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_readable_line_has_time_tag_and_colours_on_a_terminal() -> None:
    stream = Terminal()
    handler = ConsoleHandler("worker-2", stream)
    handler.console = Console(file=stream, force_terminal=True, soft_wrap=True, highlight=False)
    handler.handle(_record("campaign %s done in %.1f s", "7", 3.25))
    handler.handle(_record("batch 3 of 7: Redis unreachable", level=logging.WARNING))
    out = stream.getvalue()
    assert ANSI.search(out), "no colour on a terminal"
    lines = ANSI.sub("", out).splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d worker-2  campaign 7 done in 3\.2 s", lines[0]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d worker-2  warn  batch 3 of 7: Redis unreachable", lines[1]), lines
    assert "{" not in out


def test_a_request_is_one_line_and_json_stays_for_production() -> None:
    from flask import Flask

    logger = logging.getLogger(LOGGER)
    saved = logger.handlers[:]
    try:
        for json_lines, want_json in ((None, False), (True, True)):
            logger.handlers = []
            stream = Terminal()
            app = Flask(__name__)
            app.add_url_rule("/newsroom/", "page", lambda: "ok")
            init_request_logging(app, json_lines=json_lines, stream=stream)
            app.test_client().get("/newsroom/", headers={"Cookie": "session=secret-value"})
            (line,) = ANSI.sub("", stream.getvalue()).splitlines()
            if want_json:
                data = json.loads(line)
                assert (
                    data["path"] == "/newsroom/" and data["status"] == 200 and len(data["request_id"]) == 32
                )
            else:
                assert re.fullmatch(r"\d\d:\d\d:\d\d site {6}GET /newsroom/ 200 \d+ ms", line), line
            assert "secret-value" not in line
    finally:
        logger.handlers = saved


def _burst(context: Context, json_lines: bool, level: int = logging.INFO) -> str:
    """A good job and a failing one through a real burst worker; returns what it logged."""
    q = queue(SEND_QUEUE, context.raw_redis)
    q.enqueue("os.getpid")
    q.enqueue(jobs.send_batch, "no-such-campaign", "b0", ["s1"], 1)
    worker = SimpleWorker(
        [queue(n, context.raw_redis) for n in ALL_QUEUES],
        connection=context.raw_redis,
        serializer=JSONSerializer,
    )
    stream = Terminal()
    setup_worker_logging(json_lines, stream=stream, level=level, tag="worker-1")
    try:
        worker.work(burst=True, with_scheduler=False, logging_level=logging.getLevelName(level))
    finally:
        for name in ("rq", "notifier", "workers"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
            logging.getLogger(name).setLevel(logging.NOTSET)
    return stream.getvalue()


def test_rq_chatter_is_demoted_and_a_failed_job_says_why(context: Context, job_env: None) -> None:
    out = ANSI.sub("", _burst(context, json_lines=False))
    assert not [line for line in out.splitlines() if any(c in line for c in RQ_CHATTER)], out
    (failure,) = [line for line in out.splitlines() if "error" in line]
    # One line: the job, and its cause with where it was raised; no traceback on an info-level terminal.
    assert " worker-1 " in failure
    assert "exception raised while executing (workers.jobs.send_batch)" in failure, failure
    assert re.search(
        r" — (notifier\.errors\.)?NotFound: .*no-such-campaign.* \(notifier/\S+\.py:\d+ in \w+\)$", failure
    ), failure
    assert "Traceback" not in out and "Worker " not in failure

    # At debug level RQ's lines come back, marked debug, and the error brings its traceback.
    debug = ANSI.sub("", _burst(context, json_lines=False, level=logging.DEBUG))
    assert any("debug" in line and "result is kept" in line for line in debug.splitlines()), debug
    assert "Traceback (most recent call last)" in debug

    # JSON lines (production, pipes): RQ's info lines are gone there too; the failure keeps its traceback.
    lines = [json.loads(line) for line in _burst(context, json_lines=True).splitlines()]
    assert not [d for d in lines if any(c in d["msg"] for c in RQ_CHATTER)], lines
    assert [d for d in lines if d["level"] == "error" and "Traceback" in d["msg"] and "NotFound" in d["msg"]]


def _campaign(state: str, **fields: object) -> Campaign:
    data = {
        "state": state,
        "title": "Gempa M6,1 di Cianjur",
        "created": "1000",
        "started": "1000",
        "total": "2007",
    }
    return Campaign.from_hash("7", {**data, **{k: str(v) for k, v in fields.items()}})


def test_two_workers_finishing_at_once_say_done_once(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker process has its own memory of what it said; the claim in Redis is shared."""
    from notifier.campaigns import CampaignStore

    store = CampaignStore(context.redis, context.keys)
    done = _campaign("done", sent=2007, finished=1020.5)
    said = []
    for _worker in range(2):
        monkeypatch.setattr(jobs, "_reported", {})  # a second process: nothing said yet
        said.append(jobs.report(done, now=1021, claim=lambda state: store.claim_telling("7", state)))
    assert said[0] == "campaign 7 done in 20.5 s: 2,007 of 2,007 sent" and said[1] is None
    # Without the shared claim, both would have said it (each line true, the terminal doubled).
    monkeypatch.setattr(jobs, "_reported", {})
    assert jobs.report(done, now=1021) is not None


def test_a_campaign_tells_its_start_progress_and_end_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_reported", {})
    # 5,000 waits of the 1,004 readers left: the line says how many are left, not the waits.
    sending = _campaign("sending", sent=1000, gone=3, deferred=5000)
    assert (
        jobs.report(sending, now=1010)
        == "campaign 7: 1,003 of 2,007 (50 %), 100/s, 1,004 still to send (a push service asked us to wait)"
    )
    assert jobs.report(sending, now=1011) is None  # at most one progress line every 2 s per worker
    assert jobs.report(sending, now=1012.5) is not None
    paused = _campaign("paused", reason="too many rejections from fcm")
    assert jobs.report(paused, now=1013) == "campaign 7 paused: too many rejections from fcm"
    assert jobs.report(paused, now=1014) is None
    done = _campaign("done", sent=2000, gone=7, finished=1020.5)
    assert jobs.report(done, now=1021) == "campaign 7 done in 20.5 s: 2,000 of 2,007 sent, 7 gone"
    assert jobs.report(done, now=1022) is None  # the next batch of this worker says nothing more


def test_a_failing_page_of_the_site_is_one_error_line_with_its_cause() -> None:
    from flask import Flask

    from web.logging import setup_site_logging

    stream = Terminal()
    setup_site_logging(False, stream=stream)
    try:
        app = Flask("web")  # the site's logger, as `notifier serve` has it

        @app.get("/boom")
        def boom() -> str:
            raise ValueError("feed URL has no host")

        assert app.test_client().get("/boom").status_code == 500
    finally:
        for name in ("web", "notifier", "werkzeug"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
            logging.getLogger(name).setLevel(logging.NOTSET)
    (line,) = ANSI.sub("", stream.getvalue()).splitlines()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d site      error Exception on /boom \[GET\] — ValueError: feed URL has no host "
        r"\(tests/workers/test_logging\.py:\d+ in boom\)",
        line,
    ), line
