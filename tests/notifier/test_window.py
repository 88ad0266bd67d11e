"""The per-origin window: Little's law each interval, and slow start while it is the bottleneck."""

from __future__ import annotations

from notifier.sending.sender import WINDOW_INTERVAL, Window


def test_a_starved_window_widens_by_one_per_answer_up_to_its_ceiling() -> None:
    window = Window(8, 20)
    window.inflight = window.limit  # full: the feeder waits for room
    window.starved = True
    for _ in range(8):  # one round trip: every stream in flight answered
        window.answered(0.05, 0.0)
        window.inflight += 2  # the feeder refills the freed place and the new one
    assert window.limit == 16  # doubled in one round trip
    for _ in range(10):
        window.answered(0.05, 0.0)
    assert window.limit == 20  # never above the ceiling


def test_a_window_nobody_waits_for_keeps_its_size_between_sizings() -> None:
    window = Window(8, 1000)
    window.inflight = 5
    for _ in range(5):
        window.answered(0.05, 0.0)  # the CPU, not the window, is the bottleneck: no growth
    assert window.limit == 8 and window.inflight == 0


def test_each_interval_sizes_the_window_by_littles_law() -> None:
    window = Window(8, 10_000)
    now = 1.0
    window.answered(0.1, now)  # the first answer starts the first interval
    window.inflight = 1000
    for i in range(200):  # 2,000 answers a second, each after 100 ms
        window.answered(0.1, now + i * WINDOW_INTERVAL / 200)
    window.answered(0.1, now + WINDOW_INTERVAL)
    # in flight = rate x latency (200 in flight) x the headroom of 2, plus the floor
    assert abs(window.latency - 0.1) < 1e-9 and 400 <= window.limit <= 420, window.limit
    assert window.inflight == 1000 - 201


def test_a_waiting_feeder_is_woken_once_a_chunk_of_room_is_free() -> None:
    import asyncio

    async def scenario() -> list[int]:
        window = Window(64, 64)
        window.inflight = 64
        woken: list[int] = []
        waiter = window.waiter = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda _f: woken.append(window.inflight))
        for _ in range(8):  # a chunk's worth: 64 >> 3 places free
            window.answered(0.05, 0.0)
        await asyncio.sleep(0)
        return woken

    # Not at the first free place: a feeder woken per answer would start one message per wake-up.
    assert asyncio.run(scenario()) == [56]


def test_a_tiny_window_wakes_its_feeder_at_the_first_free_place() -> None:
    import asyncio

    async def scenario() -> bool:
        window = Window(2, 4)
        window.inflight = window.limit = 4
        waiter = window.waiter = asyncio.get_running_loop().create_future()
        window.answered(0.05, 0.0)
        return waiter.done()

    assert asyncio.run(scenario())


def test_a_new_origins_window_starts_at_its_initial_size_within_the_bounds() -> None:
    assert Window(64, 2048, 256).limit == 256
    assert Window(64, 100, 256).limit == 100  # never above the ceiling
    assert Window(64, 2048).limit == 64  # nothing asked: the floor
