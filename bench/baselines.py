"""Baselines beside the real stack: the naive pywebpush loop, pywebpush's async API, encryption alone.

Each runs in its own process (``python -m bench.baselines MODE ...``): the
parent starts ``procs`` of them, they load their inputs, wait for a common
start time, run for a message count or a number of seconds, and print one JSON
line. The rate is messages accepted over (last finish - first start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODES = ("naive", "async", "encrypt")


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


def measure(
    mode: str, inputs: Path, procs: int, *, limit: int, seconds: float, env: dict[str, str], lanes: int = 256
) -> dict[str, Any]:
    """Run ``procs`` processes of ``mode`` at once; their combined rate and counts."""
    from bench.stack import ROOT

    at = time.time() + 2.0 + 0.5 * procs  # time for every child to import and load its inputs
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.baselines",
                mode,
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
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for i in range(procs)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=seconds + 120)
        if child.returncode != 0:
            raise RuntimeError(f"baseline {mode} failed: {err.decode(errors='replace')[-2000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    ok = sum(r["ok"] for r in results)
    elapsed = max(r["finished"] for r in results) - min(r["started"] for r in results)
    return {
        "mode": mode,
        "procs": procs,
        "ok": ok,
        "errors": sum(r["errors"] for r in results),
        "seconds": round(elapsed, 3),
        "rate": ok / elapsed if elapsed > 0 else 0.0,
        "cpu_us_per_msg": round(sum(r["cpu_s"] for r in results) / ok * 1e6, 1) if ok else 0.0,
    }


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
