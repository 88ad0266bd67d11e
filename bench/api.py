"""The subscribe API under gunicorn, loaded by wrk, beside a bare Flask endpoint under the same settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench.stack import ROOT, stop_process
from notifier.crypto import b64url_encode, generate_subscriber
from notifier.polling import wait_for
from notifier.redis_conn import free_port

WRK = "/usr/bin/wrk"
LUA = Path(__file__).with_name("subscribe.lua")


def available() -> bool:
    """True when wrk and gunicorn are installed."""
    return Path(WRK).exists() and bool(
        shutil.which("gunicorn") or Path(sys.executable).with_name("gunicorn").exists()
    )


def _gunicorn(
    app: str, env: dict[str, str], log: Path, workers: int, threads: int = 0
) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn serving ``app``: sync workers (as deployed) when ``threads`` is 0, else gthread."""
    port = free_port()
    exe = str(Path(sys.executable).with_name("gunicorn"))
    worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                exe,
                "--workers",
                str(workers),
                *worker_class,
                "--bind",
                f"127.0.0.1:{port}",
                "--keep-alive",
                "5",
                "--backlog",
                "2048",
                app,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn {app} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/topics", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # answering at all is enough (the bare app has no /topics)
        except OSError:
            return False
        return True

    wait_for(up, 60, message=f"gunicorn {app}", interval=0.1)
    return proc, port


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(port: int, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    """Run wrk with the subscribe script; requests/s, p50/p99 latency (ms), non-2xx count."""
    _, public, auth = generate_subscriber()
    out = subprocess.run(
        [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            b64url_encode(public),
            b64url_encode(auth),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {
        p: _seconds(v, u) * 1000
        for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    }
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": round(lat.get("50", 0.0), 2),
        "p99_ms": round(lat.get("99", 0.0), 2),
        "requests": requests,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def measure_api(
    env: dict[str, str],
    log_dir: Path,
    *,
    seconds: int,
    connections: int = 64,
    gunicorn_workers: int = 4,
    threads: int = 0,
    wrk_threads: int = 2,
    warmup_seconds: int = 2,
) -> dict[str, Any]:
    """Bare endpoint, then the subscribe API (fresh subscriptions each request), same gunicorn settings.

    The default is the deployed configuration (deploy/systemd/notifier-web.service, docs/deployment.md):
    4 sync workers. Each server first gets ``warmup_seconds`` of load that is not counted: the first
    request answered does not mean every worker has booted, and keep-alive connections opened while
    one worker is still importing the app stay on the others (a measured third of the rate).
    """
    out: dict[str, Any] = {
        "seconds": seconds,
        "connections": connections,
        "gunicorn_workers": gunicorn_workers,
        "gunicorn_threads": threads,
        "worker_class": "gthread" if threads else "sync",
    }
    for name, app in (("bare", "bench.bare_app:app"), ("subscribe", "web:create_app()")):
        proc, port = _gunicorn(app, env, log_dir / f"gunicorn-{name}.log", gunicorn_workers, threads)
        try:
            if warmup_seconds:
                run_wrk(port, warmup_seconds, connections, wrk_threads)
            out[name] = run_wrk(port, seconds, connections, wrk_threads)
        finally:
            stop_process(proc)
    out["ratio_to_bare"] = (
        round(out["subscribe"]["rps"] / out["bare"]["rps"], 3) if out["bare"]["rps"] else 0.0
    )
    return out
