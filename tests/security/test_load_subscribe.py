"""Load: the subscribe API under gunicorn, hammered by wrk at 64 connections while a campaign sends.

Zero socket errors and zero non-2xx answers, every subscription stored, the campaign completes.
CI runs 8 s (``NOTIFIER_LOAD_SECONDS``); the figures in docs/security.md are from a 30 s run:

    NOTIFIER_LOAD_SECONDS=30 .venv/bin/pytest -q -s -m slow tests/security/test_load_subscribe.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.api import _gunicorn, available, run_wrk
from bench.stack import stop_process
from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from tests.factories import wait_for
from workers.jobs import launch

SECONDS = int(os.environ.get("NOTIFIER_LOAD_SECONDS", "8"))
CONNECTIONS = 64
AUDIENCE = 3000


@pytest.mark.slow
def test_subscribe_under_load_while_a_campaign_sends(  # type: ignore[no-untyped-def]
    context: Context, settings_env: dict[str, str], simulator, workers, tmp_path: Path
) -> None:
    if not available():
        pytest.skip("wrk or gunicorn is not installed")
    for sub in simulator.mint(AUDIENCE):
        item = validate_subscription(
            {**sub, "topics": ["breaking"]}, policy=context.policy, topics=context.topics
        )
        context.subscriptions.upsert(item, browser="chrome-desktop")
    before = context.subscriptions.count()
    assert before == AUDIENCE
    env = {**os.environ, **settings_env, "NOTIFIER_LOG_JSON": "1"}
    proc, port = _gunicorn("web:create_app()", env, tmp_path / "gunicorn.log", workers=2, threads=8)
    workers.start(1)
    try:
        # Only the simulator's subscribers follow "breaking"; wrk's new ones follow nasional/olahraga.
        data = {
            "title": "Uji beban",
            "body": "Kampanye selama uji beban.",
            "url": "https://kabarkini.example/beban",
            "topics": ["breaking"],
            "breaking": True,
        }
        item = validate_campaign(data, topics=context.topics)
        store = CampaignStore(context.redis, context.keys)
        cid = store.create(item)
        started = time.monotonic()
        launch(context.raw_redis, cid, item.send_at)
        figures = run_wrk(port, SECONDS, CONNECTIONS, 2)
        campaign = wait_for(
            lambda: (c := store.get(cid)).state == "done" and c, timeout=120, message="campaign done"
        )
        elapsed = time.monotonic() - started
    finally:
        stop_process(proc)
    log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    stored = context.subscriptions.count() - before
    print(
        f"\nLOAD {SECONDS}s c={CONNECTIONS}: {figures}; stored={stored}; "
        f"campaign {campaign.counters['sent']}/{campaign.counters['total']} sent, done after {elapsed:.1f}s"
    )
    assert figures["requests"] > 0
    assert figures["non_2xx"] == 0, figures
    assert figures["socket_errors"] == "", figures
    assert '"status": 5' not in log and "Traceback" not in log, log[-3000:]
    # wrk counts completed responses; a request cut off at the deadline may still have been stored.
    assert figures["requests"] <= stored <= figures["requests"] + CONNECTIONS, (figures, stored)
    assert campaign.counters["total"] == AUDIENCE
    assert campaign.counters["sent"] == AUDIENCE, campaign.counters
