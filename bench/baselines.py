"""Baselines beside the real stack: the naive pywebpush loop, pywebpush's async API, encryption alone, and
the npm ``web-push`` package (``node``: bench/node/peer.js, HTTPS only).

Each runs in its own process (``python -m bench.baselines MODE ...``, or ``node bench/node/peer.js ...``):
the parent starts ``procs`` of them, they load their inputs, wait for a common
start time, run for a message count or a number of seconds, and print one JSON
line. The rate is messages accepted over (last finish - first start).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.stack import SimulatorProcess

MODES = ("naive", "async", "encrypt")
#: The npm peer: ``web-push`` under Node.js (bench/node/; npm ci when node_modules is missing).
NODE_MODE = "node"
NODE_DIR = Path(__file__).resolve().parent / "node"


def node_available() -> bool:
    """Node.js and npm are on the PATH (the npm peer needs both; its packages come from bench/node's lock)."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node_modules(log: Callable[[str], None] = print) -> Path:
    """``npm ci`` in bench/node once; node_modules then carries a stamp of the lock file it came from.

    The bench installs it itself (not scripts/bootstrap) so a plain checkout's ``notifier bench`` and the
    smoke test both work; the first run shows npm's output, later runs find the stamp and skip it.
    """
    lock = NODE_DIR / "package-lock.json"
    stamp = NODE_DIR / "node_modules" / f".installed-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return NODE_DIR
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(f"the npm web-push peer needs Node.js and npm: {_INSTALL_NODE}")
    with open(NODE_DIR / ".npm-ci.lock", "w") as held:  # two runs in one checkout install once
        fcntl.flock(held, fcntl.LOCK_EX)
        if not stamp.exists():
            log(f"installing the npm peer's packages: npm ci --prefix {NODE_DIR} (once, kept)")
            # npm's own output is shown, not captured: a slow registry is visible.
            subprocess.run([npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"], check=True)
            stamp.touch()
    return NODE_DIR


_INSTALL_NODE = "install them (apt-get install nodejs npm), or run notifier bench --no-node"


def _load(path: str) -> tuple[list[dict[str, Any]], str, str, str]:
    data = json.loads(Path(path).read_text())
    return data["subscriptions"], data["payload"], data["vapid_key"], data["subject"]


def _wait_for_start(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)
    global _CPU_AT_START
    _CPU_AT_START = time.process_time()


_CPU_AT_START = 0.0


def run_naive(
    subs: list[dict[str, Any]],
    payload: str,
    key_file: str,
    subject: str,
    limit: int,
    seconds: float,
    at: float,
) -> dict[str, Any]:
    """``pywebpush.webpush()`` in a plain loop: one message after the other (requests, no session)."""
    from py_vapid import Vapid
    from pywebpush import WebPushException, webpush

    vapid = Vapid.from_file(key_file)
    claims: dict[str, str | int] = {"sub": subject}
    _wait_for_start(at)
    started = time.time()
    ok = errors = 0
    deadline = started + seconds
    for i in range(limit):
        sub = subs[i % len(subs)]
        try:
            webpush(sub, data=payload, vapid_private_key=vapid, vapid_claims=claims, ttl=3600, timeout=10)
            ok += 1
        except WebPushException:
            errors += 1
        if time.time() > deadline:
            break
    return {"ok": ok, "errors": errors, "started": started, "finished": time.time()}


async def _run_async(
    subs: list[dict[str, Any]],
    payload: str,
    key_file: str,
    subject: str,
    limit: int,
    seconds: float,
    at: float,
    lanes: int,
) -> dict[str, Any]:
    import aiohttp
    from py_vapid import Vapid
    from pywebpush import WebPushException, webpush_async

    vapid = Vapid.from_file(key_file)
    claims: dict[str, str | int] = {"sub": subject}
    context = ssl.create_default_context()
    ca = os.environ.get("NOTIFIER_CA_FILE")
    if ca:
        context.load_verify_locations(cafile=ca)
    connector = aiohttp.TCPConnector(limit=lanes, ssl=context, keepalive_timeout=60)
    ok = errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        _wait_for_start(at)
        started = time.time()
        deadline = started + seconds
        counter = iter(range(limit))

        async def lane() -> None:
            nonlocal ok, errors
            for i in counter:
                if time.time() > deadline:
                    return
                try:
                    await webpush_async(
                        subs[i % len(subs)],
                        data=payload,
                        vapid_private_key=vapid,
                        vapid_claims=dict(claims),
                        ttl=3600,
                        aiohttp_session=session,
                    )
                    ok += 1
                except (WebPushException, aiohttp.ClientError, OSError):
                    errors += 1

        await asyncio.gather(*(lane() for _ in range(lanes)))
        finished = time.time()
    return {"ok": ok, "errors": errors, "started": started, "finished": finished}


def run_encrypt(
    subs: list[dict[str, Any]], payload: str, limit: int, seconds: float, at: float
) -> dict[str, Any]:
    """``notifier.crypto.encrypt`` alone, with the keys decoded per message as the sender does."""
    from notifier.crypto import b64url_decode, encrypt

    body = payload.encode()
    _wait_for_start(at)
    started = time.time()
    deadline = started + seconds
    ok = 0
    for i in range(limit):
        sub = subs[i % len(subs)]
        encrypt(body, b64url_decode(sub["keys"]["p256dh"]), b64url_decode(sub["keys"]["auth"]))
        ok += 1
        if ok % 256 == 0 and time.time() > deadline:
            break
    return {"ok": ok, "errors": 0, "started": started, "finished": time.time()}


def _child_command(mode: str, args: list[str]) -> list[str]:
    if mode == NODE_MODE:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError(f"the npm web-push peer needs Node.js and npm: {_INSTALL_NODE}")
        # NOTIFIER_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles it (NODE_OPTIONS may not)
        extra = shlex.split(os.environ.get("NOTIFIER_BENCH_NODE_ARGS", ""))
        return [node, *extra, str(NODE_DIR / "peer.js"), *args]
    return [sys.executable, "-m", "bench.baselines", mode, *args]


def measure(
    mode: str,
    inputs: Path,
    procs: int,
    *,
    limit: int,
    seconds: float,
    env: dict[str, str],
    lanes: int = 256,
    simulator: SimulatorProcess | None = None,
) -> dict[str, Any]:
    """Run ``procs`` processes of ``mode`` at once; their combined rate and counts.

    With ``simulator``, what it saw of the run is reported too: the messages it accepted (they must equal
    ``ok``), the VAPID signatures it verified, and its CPU per accepted message (the peers sign a JWT per
    message and the simulator verifies each new one on the same two cores).
    """
    from bench.stack import ROOT, cpu_seconds

    if mode == NODE_MODE:
        ensure_node_modules()
        env = {**env}
        if env.get("NOTIFIER_CA_FILE"):
            env["NODE_EXTRA_CA_CERTS"] = env["NOTIFIER_CA_FILE"]
    # Time for every child to start and load its inputs (node starts in ~50 ms, Python imports take ~1 s).
    at = time.time() + (1.0 + 0.25 * procs if mode == NODE_MODE else 2.0 + 0.5 * procs)
    sim_before = simulator.stats() if simulator else {}
    sim_cpu_before = cpu_seconds(simulator.pid) if simulator else 0.0
    children = [
        subprocess.Popen(
            _child_command(
                mode,
                [
                    "--inputs",
                    str(inputs),
                    "--limit",
                    str(limit),
                    "--seconds",
                    str(seconds),
                    "--at",
                    repr(at),
                    "--offset",
                    str(i),
                    "--procs",
                    str(procs),
                    "--lanes",
                    str(lanes),
                ],
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for i in range(procs)
    ]
    results = []
    for child in children:
        stdout, stderr = child.communicate(timeout=seconds + 120)
        if child.returncode != 0:
            raise RuntimeError(f"baseline {mode} failed: {stderr.decode(errors='replace')[-2000:]}")
        results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    sim_cpu = cpu_seconds(simulator.pid) - sim_cpu_before if simulator else 0.0
    ok = sum(r["ok"] for r in results)
    elapsed = max(r["finished"] for r in results) - min(r["started"] for r in results)
    out: dict[str, Any] = {
        "mode": mode,
        "procs": procs,
        "ok": ok,
        "errors": sum(r["errors"] for r in results),
        "seconds": round(elapsed, 3),
        "rate": ok / elapsed if elapsed > 0 else 0.0,
        "cpu_us_per_msg": round(sum(r["cpu_s"] for r in results) / ok * 1e6, 1) if ok else 0.0,
    }
    if simulator:
        sim_after = simulator.stats()
        out["simulator_accepted"] = sim_after["received"] - sim_before["received"]
        out["simulator_vapid_verified"] = sim_after["vapid_verified"] - sim_before["vapid_verified"]
        out["simulator_cpu_us_per_msg"] = round(sim_cpu / ok * 1e6, 1) if ok else 0.0
        client, sim = out["cpu_us_per_msg"], out["simulator_cpu_us_per_msg"]
        if ok and mode != "encrypt":
            # What it would do with the machine to itself, as the campaigns' figure: CPU time, not wall. Each
            # process runs on one core at most (one event loop; the GIL), the simulator shares the rest.
            cores = os.cpu_count() or 1
            out["cpu_bound_rate"] = round(min(procs * 1e6 / client, cores * 1e6 / (client + sim)))
    first_errors = [r["first_error"] for r in results if r.get("first_error")]
    if first_errors:
        out["first_error"] = first_errors[0]
    if mode == NODE_MODE:
        out["runtime"] = f"node {results[0]['node']}, web-push {results[0]['web_push']}"
    return out


def main(argv: list[str] | None = None) -> None:
    """Child entry point: run one baseline and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--at", type=float, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=256)
    args = parser.parse_args(argv)
    subs, payload, key_file, subject = _load(args.inputs)
    # Each process takes its own slice so two processes never send to the same subscriber at once.
    subs = subs[args.offset :: args.procs] or subs
    limit = max(1, args.limit // args.procs)
    if args.mode == "naive":
        result = run_naive(subs, payload, key_file, subject, limit, args.seconds, args.at)
    elif args.mode == "async":
        result = asyncio.run(
            _run_async(subs, payload, key_file, subject, limit, args.seconds, args.at, args.lanes)
        )
    else:
        result = run_encrypt(subs, payload, limit, args.seconds, args.at)
    result["cpu_s"] = time.process_time() - _CPU_AT_START
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
