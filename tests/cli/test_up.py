"""`notifier up` (what `scripts/run` calls): embedded Redis, generated VAPID key, site and worker; data survives a restart."""

from __future__ import annotations

import http.cookiejar
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis

from notifier.redis_conn import free_port
from tests.factories import as_on_a_terminal, make_sub, wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: RQ's bookkeeping that used to flood the terminal, a dozen lines per job.
RQ_CHATTER = ("cleaning registries", "Job OK", "result is kept", "Listening on", "subscribing to channel")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "VAPID_", "NOTIFIER_"))}
    env.update(
        {"NOTIFIER_DATA_DIR": str(tmp_path / "var"), "NOTIFIER_RATE_LIMITS": "0", "PYTHONUNBUFFERED": "1"}
    )
    env.update(extra)
    return env


def _start(tmp_path: Path, port: int, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "notifier_cli", "up", "--embedded-redis", "--port", str(port)],
            env=_env(tmp_path, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=as_on_a_terminal,
        )


class OnTerminal:
    """`notifier up` on a pseudo-terminal, as `scripts/run` in a newcomer's terminal: what it shows, read live."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notifier_cli", "up", "--embedded-redis", "--port", str(port)],
            env=_env(tmp_path, TERM="xterm-256color", COLUMNS="160"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=as_on_a_terminal,
        )
        os.close(slave)
        self.raw = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the last writer closed the terminal
                return
            if not chunk:
                return
            self.raw += chunk

    @property
    def text(self) -> str:
        """What the person sees, without the colour codes."""
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def close(self) -> None:
        self.reader.join(timeout=5)
        os.close(self.master)


def _login(base: str, email: str, password: str) -> tuple[int, str]:
    """Sign in through the real login form (CSRF token and all); returns the status and URL of /ops/."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/login?next=/ops/", timeout=5) as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', resp.read().decode()).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode(
        {"csrf_token": token, "next": "/ops/", "email": email, "password": password}
    )
    try:
        with opener.open(f"{base}/login", data=form.encode(), timeout=5) as resp:  # follows the redirect
            return resp.status, resp.url
    except urllib.error.HTTPError as exc:
        return exc.code, exc.url


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"notifier up did not stop within 30 s of {signal.Signals(sig).name}")


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
    import psutil

    proc = _start(tmp_path, port, log)
    children: list[psutil.Process] = []
    try:
        wait_for(
            lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200, timeout=60, message="the site after restart"
        )
        redis_url = re.findall(r"embedded Redis at (\S+)", log.read_text())[-1]
        client = redis.Redis.from_url(redis_url)
        wait_for(lambda: client.scard("rq:workers") >= 1, timeout=30, message="the worker after restart")
        client.close()
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert [c for c in commands if "notifier_cli worker" in c], commands
        assert [c for c in commands if "notifier_cli serve" in c], commands
        assert [c for c in commands if "redis-server" in c], commands
        assert json.loads(_get(f"http://127.0.0.1:{port}/api/v1/vapid-public-key")[1])["publicKey"] == key
        endpoint = json.loads(body)["endpoint"]
        status, data = _get(
            f"http://127.0.0.1:{port}/api/v1/subscriptions?endpoint={urllib.parse.quote(endpoint, safe='')}"
        )
        assert status == 200, log.read_text()[-2000:]
        assert json.loads(data)["lang"] == "id"
    finally:
        # Stopped the way systemd or Docker stop it: the site (a child) stops too.
        _stop(proc, signal.SIGTERM)
    assert proc.returncode in (0, 1, -signal.SIGTERM)
    wait_for(
        lambda: _get(f"http://127.0.0.1:{port}/")[0] == 0, timeout=20, message="the site stopped with up"
    )
    # Every process it had started (the worker, the site, the embedded Redis) is gone, not only the site.
    _, alive = psutil.wait_procs(children, timeout=20)
    left = [" ".join(p.cmdline()) for p in alive]
    for process in alive:
        process.kill()
    assert not left, left


@pytest.mark.slow
def test_the_first_start_on_a_terminal_reads_well_and_gives_a_way_in_once(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    term = OnTerminal(tmp_path, port)
    try:
        wait_for(lambda: "password" in term.text, timeout=60, message="the welcome")
        password = re.search(r"^  password +(\S+)$", term.text, re.M).group(1)  # type: ignore[union-attr]
        for name, path in (("site", "/"), ("newsroom", "/newsroom/"), ("ops", "/ops/")):
            assert re.search(rf"^  {name} +{re.escape(base + path)}$", term.text, re.M), term.text
        assert "admin@notifier.localhost" in term.text
        # The printed login works through the real site: the login form, then the ops page.
        assert _login(base, "admin@notifier.localhost", password) == (200, f"{base}/ops/")
        assert _login(base, "admin@notifier.localhost", "not the password")[0] == 401
        wait_for(lambda: "POST /login 401" in term.text, timeout=5, message="the refused login's line")
        lines = term.text.splitlines()
        # One readable line per event, each with its process's tag; no JSON, none of RQ's bookkeeping.
        assert [
            line for line in lines if re.fullmatch(r"\d\d:\d\d:\d\d site {6}POST /login 302 \d+ ms", line)
        ]
        assert [line for line in lines if re.fullmatch(r"\d\d:\d\d:\d\d worker-1  worker up: .*", line)]
        assert not [line for line in lines if line.lstrip().startswith("{")], term.text
        assert not [line for line in lines if any(c in line for c in RQ_CHATTER)], term.text
        assert "Running on" not in term.text and "Serving Flask app" not in term.text  # no werkzeug banner
        assert b"\x1b[" in term.raw  # coloured
    finally:
        _stop(term.proc)
        term.close()
    assert "worker-1  worker down" in term.text

    # Started again (not on a terminal now: JSON lines): nothing is created, no password is shown.
    log = tmp_path / "again.log"
    proc = _start(tmp_path, port, log)
    try:
        wait_for(
            lambda: "sign in as admin@notifier.localhost" in log.read_text(), timeout=60, message="welcome"
        )
        assert _login(base, "admin@notifier.localhost", password) == (200, f"{base}/ops/")
        text = log.read_text()
        assert password not in text and "first start" not in text and "1 account;" in text
        requests = [line for line in text.splitlines() if "/login" in line and "status" in line]
        assert requests and all(json.loads(line)["component"] == "web" for line in requests), text
    finally:
        _stop(proc)


@pytest.mark.slow
def test_production_creates_no_account_and_prints_no_secret(tmp_path: Path, vapid_key_file: Path) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    secret = "s3cret-session-key-of-production"
    proc = _start(
        tmp_path,
        port,
        log,
        NOTIFIER_ENV="production",
        SECRET_KEY=secret,
        VAPID_PRIVATE_KEY_FILE=str(vapid_key_file),
    )
    try:
        wait_for(lambda: "notifier is running" in log.read_text(), timeout=60, message="the site")
        redis_url = re.search(r"embedded Redis at (\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        client = redis.Redis.from_url(redis_url)
        assert client.keys("*user*") == []
        client.close()
        assert _get(f"http://127.0.0.1:{port}/ops/")[0] == 200  # the login page it leads to
        wait_for(lambda: '"path": "/login"' in log.read_text(), timeout=5, message="the JSON request line")
        text = log.read_text()
        assert "password" not in text and "admin@" not in text and secret not in text
        assert f"  ops        http://127.0.0.1:{port}/ops/" in text
    finally:
        _stop(proc)


def _redis_pid(tmp_path: Path) -> int:
    """The embedded redis-server's pid, from the data folder's lock file."""
    text = (tmp_path / "var" / "redis" / "redis.lock").read_text()
    return int(re.match(r"pid (\d+)", text).group(1))  # type: ignore[union-attr]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_up_stops_everything_when_its_terminal_closes_and_never_runs_two_redis_on_one_folder(
    tmp_path: Path,
) -> None:
    import psutil

    port, other = free_port(), free_port()
    log = tmp_path / "up.log"
    proc = _start(tmp_path, port, log)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200, timeout=60, message="the site")
        redis_pid = _redis_pid(tmp_path)
        # A second `notifier up` on the same data folder refuses to start another Redis on its AOF files.
        second = subprocess.run(
            [sys.executable, "-m", "notifier_cli", "up", "--embedded-redis", "--port", str(other)],
            env=_env(tmp_path), capture_output=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1, second.stdout + second.stderr
        assert b"in use by an embedded Redis already" in second.stdout + second.stderr
        assert _get(f"http://127.0.0.1:{other}/")[0] == 0 and _get(f"http://127.0.0.1:{port}/")[0] == 200
        assert _alive(redis_pid)
    finally:
        _stop(proc, signal.SIGHUP)  # the terminal was closed
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 0, timeout=20, message="the site stopped")
    wait_for(lambda: not _alive(redis_pid), timeout=20, message="the embedded Redis stopped")

    # Killed outright (nothing can be handled): whatever it left running keeps the folder locked, so the
    # next start says so instead of opening the same AOF files a second time.
    proc = _start(tmp_path, port, log)
    orphans: list[psutil.Process] = []
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 200, timeout=60, message="the site again")
        orphans = psutil.Process(proc.pid).children(recursive=True)
        redis_pid = _redis_pid(tmp_path)
        proc.kill()
        proc.wait(timeout=10)
        again = subprocess.run(
            [sys.executable, "-m", "notifier_cli", "up", "--embedded-redis", "--port", str(other)],
            env=_env(tmp_path), capture_output=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 1 and f"pid {redis_pid}".encode() in again.stdout + again.stderr
    finally:
        for child in orphans:
            if child.is_running():
                child.terminate()
        _, alive = psutil.wait_procs(orphans, timeout=15)
        # An orphan still up after SIGTERM must not outlive the test run (it would retry its gone Redis
        # forever beside the next tests); a worker doing so was seen twice and not reproduced since.
        for child in alive:
            child.kill()
