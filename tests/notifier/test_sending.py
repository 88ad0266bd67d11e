"""Outcome classification at the HTTP boundary, Retry-After parsing, and the pool's request deadlines."""

from __future__ import annotations

import asyncio
import ssl
import time
from email.utils import formatdate

import pytest

from notifier.endpoints import EndpointPolicy
from notifier.sending import Http1Pool, SafeResolver, classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (201, "sent"),
        (202, "sent"),
        (404, "gone"),
        (410, "gone"),
        (413, "rejected"),
        (400, "rejected"),
        (401, "rejected"),
        (403, "rejected"),
        (429, "retry"),
        (503, "retry"),
        (500, "retry"),
        (502, "retry"),
    ],
)
def test_classify(status: int, kind: str) -> None:
    assert classify(status)[0] == kind


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert classify(429, "3") == ("retry", 3.0)


def test_pool_deadline_watchdog_fails_only_late_requests() -> None:
    """One watchdog timer per pool: a request past its deadline gets TimeoutError, the others their answer."""

    async def scenario() -> tuple[list[object], float]:
        writers: list[asyncio.StreamWriter] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                    if body != b"hang":
                        await asyncio.sleep(0.3 if body == b"slow" else 0)
                        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                        await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Pool(SafeResolver(EndpointPolicy([f"127.0.0.1:{port}"])), ssl.create_default_context())
        origin = f"http://127.0.0.1:{port}"

        async def post(body: bytes, timeout: float) -> object:
            try:
                return (await pool.post(origin + "/wpush/x", origin, body, {"TTL": "60"}, timeout=timeout))[0]
            except TimeoutError:
                return "timeout"

        started = time.monotonic()
        try:
            # The 10 s request is watched first; the 0.2 s one must still time out at ~0.2 s.
            results = await asyncio.gather(post(b"slow", 10.0), post(b"hang", 0.2), post(b"ok", 10.0))
            elapsed = time.monotonic() - started
            results.append(await post(b"ok", 1.0))  # the pool still works after a timeout
        finally:
            await pool.close()
            server.close()
            for writer in writers:
                writer.close()
            await asyncio.sleep(0.05)
        return results, elapsed

    results, elapsed = asyncio.run(scenario())
    assert results == [201, "timeout", 201, 201]
    assert elapsed < 5
