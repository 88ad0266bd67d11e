"""What the sender's HTTP/2 client costs per push, measured alone: ``python -m bench.h2client``.

No socket, no TLS, no encryption: :class:`notifier.sending.http2.Http2Connection` opens streams
for push requests shaped like a campaign's (a 150-character path, the VAPID header, a 420-byte
body) and is fed the simulator's own answer bytes (a 201 in one HEADERS frame, from
:mod:`notifier_simulator.http2`'s pieces) in bursts of 64, as a connection on loopback sees them.
It prints the client's CPU per stream (process time, the answers' and requests' own making
subtracted), so a change to the framing path can be compared on one machine.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from notifier.sending.exchange import Exchange, HeadFields
from notifier.sending.http2 import Http2Connection
from notifier_simulator import http2 as sim

BURST = 64
AUTHORITY = b"push.example:8443"
HEAD = HeadFields(
    [
        ("TTL", "2419200"),
        ("Urgency", "high"),
        ("Content-Encoding", "aes128gcm"),
        ("Content-Type", "application/octet-stream"),
        ("Authorization", "vapid t=" + "j" * 380 + ", k=" + "k" * 87),
        ("Topic", "gempa-cianjur"),
    ]
)
BODY = os.urandom(420)


class _Transport:
    """Takes what the connection writes (and drops it)."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


class _Pool:
    def flush_soon(self, conn: Http2Connection) -> None:
        pass


class _Origin:
    """The connection's owner: counts answers; anything else would be a failure of the run."""

    def __init__(self) -> None:
        self.pool = _Pool()
        self.answers = 0

    def answered(
        self, conn: Any, exchange: Exchange, status: int, headers: Any, body: bytes, keep: bool
    ) -> None:
        if status != 201:
            raise AssertionError(f"stream {exchange.stream_id} answered {status}")
        self.answers += 1

    def lost(self, conn: Any, exchange: Exchange, error: BaseException) -> None:
        raise AssertionError(f"lost: {error}")

    def closed(self, conn: Any) -> None:
        pass

    def replay(self, exchange: Exchange, *, refused: bool = False) -> None:
        raise AssertionError("a stream was sent again")

    def more_room(self, conn: Any) -> None:
        pass

    def going_away(self, conn: Any) -> None:
        raise AssertionError("GOAWAY")


def _answer(stream_id: int) -> bytes:
    """The simulator's 201 for ``stream_id``: its literals, its date and server fields."""
    location = b"https://push.example/m/%012d" % stream_id
    block = sim._CREATED + sim._literal(sim._LOCATION, location) + sim._Date.get() + sim._SERVER_FIELD
    return sim._frame(sim.HEADERS, sim.END_HEADERS | sim.END_STREAM, stream_id, block)


def _exchange(n: int) -> Exchange:
    return Exchange(f"/wpush/{'a' * 140}{n:08d}", HEAD, BODY, lambda exchange: None)


def run(streams: int) -> dict[str, float]:
    """Open ``streams`` streams in bursts and answer each; CPU µs per stream, and the answers counted."""
    origin = _Origin()
    conn = Http2Connection(origin, 256)  # type: ignore[arg-type]
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    settings = sim._frame(sim.SETTINGS, 0, 0, b"\x00\x03\x00\x00\x01\x00")  # 256 streams
    window = sim._frame(sim.WINDOW_UPDATE, 0, 0, ((1 << 31) - 1 - 65535).to_bytes(4, "big"))
    conn.data_received(settings + window + sim._frame(sim.SETTINGS, sim.ACK, 0))
    answers: list[bytes] = []
    exchanges: list[list[Exchange]] = []
    for start in range(0, streams, BURST):  # made before the clock starts: not the client's cost
        burst = [_exchange(n) for n in range(start, min(start + BURST, streams))]
        exchanges.append(burst)
        answers.append(b"".join(_answer(1 + 2 * n) for n in range(start, start + len(burst))))
    began = time.process_time()
    for burst, answer in zip(exchanges, answers, strict=True):
        for exchange in burst:
            conn.start(exchange, AUTHORITY)
        conn.flush()
        conn.data_received(answer)
        conn.flush()
    used = time.process_time() - began
    if origin.answers != streams:
        raise AssertionError(f"{origin.answers} answers for {streams} streams")
    return {"streams": streams, "answers": origin.answers, "us_per_stream": round(used / streams * 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=20_000, help="streams per run (default 20,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3; the minimum is the figure)")
    args = parser.parse_args()
    figures = [run(args.streams)["us_per_stream"] for _ in range(args.runs)]
    print(f"HTTP/2 client, CPU per stream: {min(figures)} µs (runs: {', '.join(map(str, figures))})")


if __name__ == "__main__":
    main()
