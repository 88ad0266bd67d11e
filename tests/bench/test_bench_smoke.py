"""Smoke run of ``notifier bench``: every phase runs, the JSON result is complete, the counters are exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

from click.testing import CliRunner

from bench.audience import TOPIC, store_pipelined, store_upsert
from notifier.settings import Settings
from notifier_cli import main

SIZE = 1000
HTTPS_SIZE = 300
NODE_LIMIT = 300  # the npm web-push peer's messages, per process count
LATENCY_SIZE = 1000
LATENCY_MS = 20
PLANNING = 12_000
BATCH = Settings.from_env().batch_size


def test_smoke_run_is_complete_and_exact(tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    args = [
        "bench",
        "--sizes",
        str(SIZE),
        "--workers",
        "1,2",
        "--https-size",
        str(HTTPS_SIZE),
        "--planning-size",
        str(PLANNING),
        "--wrk-seconds",
        "0",
        "--naive-seconds",
        "0.5",
        "--naive-https-limit",
        "10",
        "--async-seconds",
        "0.5",
        "--encrypt-seconds",
        "0.3",
        "--node-limit",
        str(NODE_LIMIT),
        "--node-seconds",
        "60",
        # The latency section over HTTPS (HTTP/2 by ALPN) only, at 0 (always run) and 20 ms with a tail.
        "--latency-size",
        str(LATENCY_SIZE),
        "--latency-ms",
        str(LATENCY_MS),
        "--latency-schemes",
        "https",
        "--latency-tail",
        "0.05",
        "--output",
        str(output),
        "--no-readme",
        "--quiet",
    ]
    outcome = CliRunner().invoke(main, args, catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip() == str(output)
    result = json.loads(output.read_text())

    assert result["machine"]["nproc"] >= 1 and result["machine"]["cpu_model"] and result["machine"]["python"]
    http = result["http"]
    assert set(http["baselines"]) == {"naive_1p", "async_1p", "async_2p", "encrypt_1p", "encrypt_2p"}
    for item in http["baselines"].values():
        assert item["ok"] > 0 and item["errors"] == 0 and item["rate"] > 0 and item["cpu_us_per_msg"] > 0, (
            item
        )
    assert http["verify_fraction"] == 0.02
    assert http["endpoint_chars"] > 140  # realistic endpoint length (FCM's are ~150-180)
    assert http["distinct_keys"] == 1  # one mint chunk of 1000: one key pair
    assert http["redis_bytes_per_sub_upsert"] > 0
    assert "cpu_encrypt_over_sender" in result["ratios"]

    assert [(c["size"], c["workers"]) for c in http["campaigns"]] == [(SIZE, 1), (SIZE, 2)]
    for campaign in http["campaigns"]:
        k = campaign["counters"]
        assert campaign["state"] == "done"
        assert k["total"] == SIZE and k["sent"] == SIZE, k
        assert k["failed"] == k["rejected"] == k["gone"] == k["retried"] == k["skipped"] == 0, k
        assert campaign["simulator_accepted"] == SIZE
        assert campaign["batches"] == math.ceil(SIZE / BATCH)
        assert 0 < campaign["first_accepted_after_create_s"] <= campaign["last_accepted_after_create_s"]
        assert campaign["rate"] > 0 and campaign["rate_campaign_hash"] > 0
        assert len(campaign["worker_peak_rss_mb"]) == campaign["workers"]
        assert all(mb > 10 for mb in campaign["worker_peak_rss_mb"])
        assert set(campaign["cpu_us_per_msg"]) == {"workers", "simulator", "redis"}
        assert campaign["cpu_us_per_msg"]["workers"] > 0 and campaign["cpu_bound_rate"] > 0
    stats = http["simulator_stats"]
    assert stats["by_status"] == {"201": stats["requests"]}
    assert stats["decrypt_failed"] == 0 and stats["decrypted"] > 0  # a sample was really decrypted

    https = result["https"]
    assert set(https["baselines"]) == {"naive_1p", "async_1p", "async_2p", "node_1p", "node_2p"}
    # The naive loop stops at its limit (10) or after --naive-seconds, whichever comes first: a busy machine
    # may get fewer through in 0.5 s. Exactness is what the simulator accepted (checked below).
    assert 0 < https["baselines"]["naive_1p"]["ok"] <= 10
    for scheme in (http, https):
        for name, item in scheme["baselines"].items():
            if item["mode"] != "encrypt":  # every sender's count is what the simulator accepted
                assert item["simulator_accepted"] == item["ok"] and item["errors"] == 0, (name, item)
    for procs in (1, 2):
        peer = https["baselines"][f"node_{procs}p"]
        assert peer["ok"] == NODE_LIMIT and peer["procs"] == procs, peer
        assert peer["runtime"].startswith("node v") and "web-push 3." in peer["runtime"], peer
        # web-push signs a fresh VAPID JWT per message: the simulator verified every one of them.
        assert peer["simulator_vapid_verified"] == NODE_LIMIT, peer
        assert peer["cpu_us_per_msg"] > 0 and peer["simulator_cpu_us_per_msg"] > 0, peer
    [secure] = https["campaigns"]
    assert secure["counters"]["sent"] == secure["simulator_accepted"] == HTTPS_SIZE and secure["workers"] == 2

    section = result["latency"]
    assert (section["size"], section["workers"], section["latencies_ms"]) == (
        LATENCY_SIZE,
        2,
        [0, LATENCY_MS],
    )
    assert (section["tail_fraction"], section["tail_factor"]) == (0.05, 8)
    assert list(section["schemes"]) == ["https"]
    part = section["schemes"]["https"]
    assert [run["latency_ms"] for run in part["runs"]] == [0, LATENCY_MS]
    for run in part["runs"]:
        k = run["counters"]
        assert run["state"] == "done" and k["total"] == k["sent"] == LATENCY_SIZE, k
        assert k["failed"] == k["rejected"] == k["gone"] == k["retried"] == k["skipped"] == 0, k
        assert run["simulator_accepted"] == LATENCY_SIZE
        # Every message went on an HTTP/2 stream (ALPN chose h2), over a few connections.
        assert run["h2_streams"] == LATENCY_SIZE and 1 <= run["h2_connections"] <= 2 * 16, run
        assert run["rate"] > 0 and run["rate_received"] > 0 and run["cpu_bound_rate"] > 0
        assert 0 < run["first_accepted_after_create_s"] <= run["done_after_create_s"]
    assert part["runs"][0]["ratio_to_zero"] == 1.0
    held = part["runs"][1]
    assert held["ratio_to_zero"] == result["ratios"][f"latency_https_{LATENCY_MS}ms_over_0ms"] > 0
    # The simulator really held answers: 20 ms for most, 160 ms for its tail, so the campaign took longer
    # than the latency of one answer (a property of the run, not a speed figure).
    assert held["done_after_create_s"] - held["first_accepted_after_create_s"] >= 8 * LATENCY_MS / 1000
    assert part["simulator_stats"]["by_status"] == {"201": part["simulator_stats"]["requests"]}
    assert result["options"]["output"] == str(output)  # outside the repository: as given

    planning = result["planning"]
    assert planning["total"] == PLANNING
    assert planning["jobs_queued"] == planning["batches"] >= math.ceil(PLANNING / BATCH)

    assert {
        "e2e_over_naive",
        "e2e_over_async_same_procs",
        "e2e_over_encrypt_bound_same_procs",
        "https_e2e_over_naive",
        "https_e2e_over_node_same_procs",
        "https_e2e_over_async_same_procs",
    } <= set(result["ratios"])
    assert all({"value", "goal", "met"} == set(t) for t in result["targets"].values())
    assert any(name.startswith("plan ") for name in result["targets"])
    assert any(name.endswith("vs npm web-push x2p") for name in result["targets"])
    assert any(name.endswith("vs webpush_async x2p") for name in result["targets"])


def test_pipelined_store_writes_what_upsert_writes(context, simulator) -> None:  # type: ignore[no-untyped-def]
    a, b = simulator.mint(2)
    store_upsert(context, [a], lambda n: None)
    store_pipelined(context, [b], lambda n: None)
    via_api = context.subscriptions.get_by_endpoint(a["endpoint"])
    via_pipe = context.subscriptions.get_by_endpoint(b["endpoint"])
    for name in ("topics", "lang", "browser", "failures", "key_id", "expiration_time"):
        assert getattr(via_api, name) == getattr(via_pipe, name), name
    assert abs(via_api.created - via_pipe.created) <= 5 and via_pipe.seen == via_pipe.created
    assert via_pipe.p256dh == b["keys"]["p256dh"].rstrip("=") and via_pipe.auth == b["keys"]["auth"].rstrip(
        "="
    )
    assert context.subscriptions.count() == 2 and context.subscriptions.count(TOPIC) == 2
    assert [int(via_api.sid), int(via_pipe.sid)] == [0, 1]


def test_lean_http_client_reads_every_answer_framing(context) -> None:  # type: ignore[no-untyped-def]
    """The sender's HTTP/1.1 client (the benchmark's hot path): length, chunked, close-delimited, keep-alive."""
    import asyncio
    import ssl

    from notifier.endpoints import EndpointPolicy
    from notifier.sending import PushPool, SafeResolver

    answers = [
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: /m/1\r\n\r\n",
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nslow \r\n5;x=1\r\ndown!\r\n0\r\n\r\n",
        b"HTTP/1.1 410 Gone\r\nContent-Type: text/plain\r\n\r\nexpired",  # no length: ends at close
    ]
    seen: list[bytes] = []

    async def scenario() -> list[tuple[int, dict[str, str], bytes]]:
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.startswith(b"Content-Length")
                    )
                )
                seen.append(head + await reader.readexactly(length))
                answer = answers.pop(0)
                writer.write(answer)
                if b"Content-Length" not in answer and b"chunked" not in answer:
                    writer.close()
                    return
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = PushPool(SafeResolver(EndpointPolicy([f"127.0.0.1:{port}"])), ssl.create_default_context())
        endpoint = f"http://127.0.0.1:{port}/wpush/abc?x=1"
        origin = f"http://127.0.0.1:{port}"
        try:
            out = [await pool.post(endpoint, origin, b"body-%d" % i, {"TTL": "60"}) for i in range(3)]
            try:
                await pool.post(endpoint, origin, b"x", {"Topic": "bad\r\nInjected: 1"})
                raise AssertionError("a header with a line break was sent")
            except ValueError:
                pass
        finally:
            await pool.close()
            server.close()
            await server.wait_closed()
        assert connections == 1  # the first two answers kept the connection alive
        return out

    (s1, h1, b1), (s2, h2, b2), (s3, _, b3) = asyncio.run(scenario())
    assert (s1, h1["location"], b1) == (201, "/m/1", b"")
    assert (s2, h2["retry-after"], b2) == (429, "7", b"slow down!")
    assert (s3, b3) == (410, b"expired")
    assert seen[0].startswith(b"POST /wpush/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:") and seen[0].endswith(
        b"\r\n\r\nbody-0"
    )
    assert b"TTL: 60\r\n" in seen[0]
