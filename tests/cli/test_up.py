"""`notifier up` (what `scripts/run` calls): embedded Redis, generated VAPID key, site and worker; data survives a restart."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from notifier.redis_conn import free_port
from tests.conftest import wait_for
from tests.web.test_api_subscriptions import make_sub


def _start(tmp_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "VAPID_", "NOTIFIER_"))}
    env.update(
        {"NOTIFIER_DATA_DIR": str(tmp_path / "var"), "NOTIFIER_RATE_LIMITS": "0", "PYTHONUNBUFFERED": "1"}
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "notifier_cli", "up", "--embedded-redis", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("notifier up did not stop within 30 s of Ctrl-C")


@pytest.mark.slow
def test_up_runs_the_whole_stack_and_keeps_subscriptions_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    proc = _start(tmp_path, port, log)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200, timeout=60, message="the site")
        key = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/vapid-public-key")[1])["publicKey"]
        assert (tmp_path / "var" / "vapid_private.pem").exists()
        redis_url = re.search(r"embedded Redis at (\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        client = redis.Redis.from_url(redis_url)
        wait_for(lambda: client.scard("rq:workers") >= 1, timeout=30, message="a worker registered")
        # A reader subscribes through the site (the development push hosts are the real services).
        body = json.dumps(make_sub()).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/subscriptions",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            assert resp.status == 201
            request_id = resp.headers["X-Request-ID"]
        client.close()
        # Logged once, by the site's JSON request log; the development server adds no access line of its own.
        wait_for(lambda: request_id in log.read_text(), timeout=5, message="the subscribe's log line")
        logged = [line for line in log.read_text().splitlines() if "/api/v1/subscriptions" in line]
        assert len([line for line in logged if request_id in line]) == 1
        assert all(line.startswith("{") for line in logged), logged
    finally:
        _stop(proc)
    assert proc.returncode in (0, 1, -signal.SIGINT)

    # Started again: same key, the subscription is still there.
    proc = _start(tmp_path, port, log)
    try:
        wait_for(
            lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200, timeout=60, message="the site after restart"
        )
        assert json.loads(_get(f"http://127.0.0.1:{port}/api/v1/vapid-public-key")[1])["publicKey"] == key
        endpoint = json.loads(body)["endpoint"]
        status, data = _get(
            f"http://127.0.0.1:{port}/api/v1/subscriptions?endpoint={urllib.parse.quote(endpoint, safe='')}"
        )
        assert status == 200, log.read_text()[-2000:]
        assert json.loads(data)["lang"] == "id"
    finally:
        _stop(proc)
