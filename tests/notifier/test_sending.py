"""Outcome classification at the HTTP boundary, Retry-After parsing, and the pool's request deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate

import pytest

from notifier.endpoints import EndpointPolicy
from notifier.sending import Exchange, HeadFields, PushPool, SafeResolver, classify, parse_retry_after
from notifier.sending.exchange import Deadlines


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


@contextlib.asynccontextmanager
async def push_server(answer: Callable[[bytes], Awaitable[bool]]) -> AsyncIterator[int]:
    """A minimal HTTP/1.1 keep-alive server on 127.0.0.1 (yields its port): 201 when ``answer(body)`` is true."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if await answer(await reader.readexactly(length)):
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0.05)


def test_pool_deadline_watchdog_fails_only_late_requests() -> None:
    """One watchdog timer per pool: a request past its deadline gets TimeoutError, the others their answer."""

    async def scenario() -> tuple[list[object], float]:
        async def answer(body: bytes) -> bool:
            if body == b"hang":
                return False
            await asyncio.sleep(0.3 if body == b"slow" else 0)
            return True

        async with push_server(answer) as port:
            pool = PushPool(SafeResolver(EndpointPolicy([f"127.0.0.1:{port}"])), ssl.create_default_context())
            origin = f"http://127.0.0.1:{port}"

            async def post(body: bytes, timeout: float) -> object:
                try:
                    return (
                        await pool.post(origin + "/wpush/x", origin, body, {"TTL": "60"}, timeout=timeout)
                    )[0]
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
        return results, elapsed

    results, elapsed = asyncio.run(scenario())
    assert results == [201, "timeout", 201, 201]
    assert elapsed < 5


def test_deadlines_forget_answered_exchanges_as_new_ones_come() -> None:
    """The watchdog holds about what is in flight, not every exchange of the last timeout (a worker's RSS)."""

    async def scenario() -> tuple[int, int, list[str]]:
        loop = asyncio.get_running_loop()
        expired: list[str] = []
        deadlines = Deadlines(lambda exchange: expired.append(exchange.target))
        head = HeadFields({"TTL": "60"})
        late = Exchange("/late", head, b"", lambda exchange: None, timeout=0.05)
        deadlines.watch(late, loop, loop.time())  # never answered: it must still time out
        most = 0
        for i in range(2000):
            exchange = Exchange(f"/m{i}", head, b"x" * 500, lambda exchange: None, timeout=10.0)
            deadlines.watch(exchange, loop, loop.time())
            most = max(most, len(deadlines))
            exchange.finish(201, {}, b"")
        await asyncio.sleep(0.2)
        left = len(deadlines)
        deadlines.close()
        return most, left, expired

    most, left, expired = asyncio.run(scenario())
    assert most <= 3
    assert left <= 1
    assert expired == ["/late"]


def test_pool_writes_queued_requests_in_bursts_and_skips_cancelled_ones() -> None:
    """Requests of one loop turn are written together; one cancelled before its write is never sent."""

    async def scenario() -> tuple[list[object], list[bytes], bool]:
        bodies: list[bytes] = []

        async def answer(body: bytes) -> bool:
            bodies.append(body)
            return True

        made: list[ssl.SSLContext] = []
        async with push_server(answer) as port:
            pool = PushPool(
                SafeResolver(EndpointPolicy([f"127.0.0.1:{port}"])),
                lambda: made.append(ssl.create_default_context()) or made[-1],
            )
            origin = f"http://127.0.0.1:{port}"

            async def post(body: bytes) -> object:
                return (await pool.post(origin + "/wpush/x", origin, body, {"TTL": "60"}, timeout=5.0))[0]

            try:
                results: list[object] = list(await asyncio.gather(*(post(b"m%d" % i) for i in range(20))))
                # Both start and queue their request in this turn; one is cancelled before the flush runs.
                kept = asyncio.ensure_future(post(b"kept"))
                dropped = asyncio.ensure_future(post(b"dropped"))
                await asyncio.sleep(0)  # both tasks reach their await on the answer
                assert len(pool._unsent) == 2
                dropped.cancel()
                results.append(await kept)
                with pytest.raises(asyncio.CancelledError):
                    await dropped
                results.append(await post(b"after"))  # the pool still works
            finally:
                await pool.close()
        return results, bodies, bool(made)

    results, bodies, made_ssl = asyncio.run(scenario())
    assert results == [201] * 22
    assert sorted(bodies) == sorted([b"m%d" % i for i in range(20)] + [b"kept", b"after"])
    assert not made_ssl  # plain HTTP never loads the CA store


@pytest.mark.parametrize(
    "text",
    ["", "QQ", "QUI", "QUJD", "QUJD=", "QQ==", "Q", "ab+c", "ab/c", "a-_b", "a b", "é", "AA==AA", "A*BC"],
)
def test_b64url_decode_fast_path_matches_the_checked_one(text: str) -> None:
    from notifier.crypto import _b64url_decode_checked, b64url_decode

    def outcome(decode: object, value: str | bytes) -> tuple[str, object]:
        try:
            return "ok", decode(value)  # type: ignore[operator]
        except ValueError as exc:
            return "error", str(exc)

    for value in (text, text.encode("utf-8")):
        assert outcome(b64url_decode, value) == outcome(_b64url_decode_checked, value)
