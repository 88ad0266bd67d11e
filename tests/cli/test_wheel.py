"""The package as a release ships it: ``python -m build`` makes a wheel; installed into a fresh virtualenv
(away from the checkout), ``notifier up`` runs the whole site from it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

import notifier
from notifier.redis_conn import free_port
from tests.factories import as_on_a_terminal, make_sub, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _source_copy(dest: Path) -> Path:
    """The files a clone has (tracked, plus new ones not ignored), without this checkout's build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read()
    except OSError:
        return 0, b""


@pytest.mark.slow
def test_a_built_wheel_installed_in_a_fresh_virtualenv_runs_notifier_up(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("notifier-*.whl")
    assert wheel.name.startswith(f"notifier-{notifier.__version__}-")  # the one version, from the package

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run([bin_dir / "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True)

    run_dir = tmp_path / "elsewhere"  # not the checkout: nothing may come from the source tree
    run_dir.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(run_dir),
        "NOTIFIER_DATA_DIR": str(run_dir / "var"),
        "NOTIFIER_RATE_LIMITS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    version = subprocess.run(
        [bin_dir / "notifier", "--version"], cwd=run_dir, env=env, capture_output=True, text=True, check=True
    )
    assert notifier.__version__ in version.stdout
    bench = subprocess.run(
        [bin_dir / "notifier", "bench"], cwd=run_dir, env=env, capture_output=True, text=True
    )
    assert bench.returncode != 0 and "runs from a source checkout" in bench.stderr

    port = free_port()
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [bin_dir / "notifier", "up", "--embedded-redis", "--port", str(port)],
            cwd=run_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=as_on_a_terminal,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/")[0] == 200, timeout=90, message="the site from the wheel")
        # Templates and translations: the reader's page in English.
        status, page = _get(f"{base}/?lang=en")
        assert status == 200 and b"<html" in page
        # Static files and the service worker.
        assert _get(f"{base}/sw.js")[0] == 200
        status, topics = _get(f"{base}/api/v1/topics")
        assert status == 200 and {t["slug"] for t in json.loads(topics)["topics"]} >= {"breaking", "nasional"}
        # A subscribe runs the upsert's Lua in the embedded Redis.
        request = urllib.request.Request(  # noqa: S310 - loopback test server
            f"{base}/api/v1/subscriptions",
            data=json.dumps(make_sub()).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback test server
            assert resp.status == 201 and json.loads(resp.read())["id"] == "0"
        installed = subprocess.run(
            [bin_dir / "python", "-c", "import web, notifier; print(web.__file__, notifier.__file__)"],
            cwd=run_dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert str(ROOT) not in installed and str(env_dir) in installed
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    assert up.returncode == 0, (tmp_path / "up.log").read_text(errors="replace")[-3000:]
