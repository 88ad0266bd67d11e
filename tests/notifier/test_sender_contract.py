"""The sender contract: the real Sender (against the push service simulator) and the in-memory
RecordingSender answer the fan-out alike, so tests of the bookkeeping may use either."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from notifier.context import Context
from notifier.sending import Message, Outcome, OutcomeKind, PushSender, Sender, origin_of
from notifier.sending.recording import RecordingSender
from notifier_simulator import SimulatorServer


@dataclass
class Arrangement:
    """A sender under test, with subscriptions it can send to and a way to set each one's answer."""

    sender: PushSender
    subscriptions: list[dict[str, object]]
    answer: Callable[[str, int, str | None], None]


@pytest.fixture(params=["real", "recording"])
def arranged(
    request: pytest.FixtureRequest, context: Context, simulator: SimulatorServer
) -> Iterator[Arrangement]:
    subscriptions = simulator.mint(8, shared_keys=True)
    if request.param == "real":
        sender: PushSender = Sender(context.settings, context.vapid, context.policy)

        def answer(endpoint: str, status: int, retry_after: str | None) -> None:
            simulator.add_rule(status, endpoint=endpoint, retry_after=retry_after)

    else:
        recording = RecordingSender()
        sender = recording

        def answer(endpoint: str, status: int, retry_after: str | None) -> None:
            recording.answer(endpoint, status, retry_after)

    yield Arrangement(sender, subscriptions, answer)


def messages(subscriptions: list[dict[str, object]]) -> list[Message]:
    out = []
    for i, sub in enumerate(subscriptions):
        keys = sub["keys"]
        assert isinstance(keys, dict)
        out.append(
            Message(
                str(i),
                str(sub["endpoint"]),
                keys["p256dh"],
                keys["auth"],
                b'{"title":"t"}',
                60,
                "normal",
                "s",
            )
        )
    return out


def run(sender: PushSender, batch: list[Message], **options: object) -> tuple[list[Outcome], list[Message]]:
    async def go() -> tuple[list[Outcome], list[Message]]:
        try:
            return await sender.send_all(batch, **options)  # type: ignore[arg-type]
        finally:
            await sender.close()

    return asyncio.run(go())


def test_every_answer_is_one_classified_outcome_per_message(arranged: Arrangement) -> None:
    batch = messages(arranged.subscriptions[:6])
    for message, status in zip(batch[1:], (410, 404, 413, 403, 500), strict=True):
        arranged.answer(message.endpoint, status, None)
    heard: list[Outcome] = []
    outcomes, unsent = run(arranged.sender, batch, on_outcome=heard.append)
    assert unsent == [] and heard == outcomes
    got = {o.sid: (o.kind, o.status) for o in outcomes}
    assert got == {
        "0": (OutcomeKind.SENT, 201),
        "1": (OutcomeKind.GONE, 410),
        "2": (OutcomeKind.GONE, 404),
        "3": (OutcomeKind.REJECTED, 413),
        "4": (OutcomeKind.REJECTED, 403),
        "5": (OutcomeKind.RETRY, 500),
    }
    assert all(o.origin and o.at > 0 for o in outcomes)


def test_a_429_holds_back_the_rest_of_its_origin_for_the_time_it_asked(arranged: Arrangement) -> None:
    first, *rest = messages(arranged.subscriptions[:4])
    arranged.answer(first.endpoint, 429, "30")
    outcomes, _ = run(arranged.sender, [first])
    assert (outcomes[0].kind, outcomes[0].status, outcomes[0].retry_after) == (OutcomeKind.RETRY, 429, 30.0)
    later, unsent = run(arranged.sender, rest)
    assert unsent == [] and {o.kind for o in later} == {OutcomeKind.DEFERRED}
    assert all(o.status == 0 and 25 < (o.retry_after or 0) <= 30 for o in later)


def test_should_stop_is_asked_before_each_start_and_leaves_the_rest_unsent(arranged: Arrangement) -> None:
    batch = messages(arranged.subscriptions)
    asked = itertools.count()
    outcomes, unsent = run(arranged.sender, batch, should_stop=lambda: next(asked) >= 3)
    assert len(outcomes) == 3 and len(unsent) == len(batch) - 3
    assert {o.sid for o in outcomes} | {m.sid for m in unsent} == {m.sid for m in batch}


def test_keep_back_leaves_a_held_origins_messages_unsent_and_sends_the_rest(arranged: Arrangement) -> None:
    batch = messages(arranged.subscriptions[:4])
    held_origin = origin_of(batch[0].endpoint)
    asked: list[str] = []

    def keep_back(origin: str) -> bool:
        asked.append(origin)
        return len(asked) % 2 == 0  # every other message's push service is held by then

    outcomes, unsent = run(arranged.sender, batch, keep_back=keep_back)
    assert sorted(o.sid for o in outcomes) == ["0", "2"] and sorted(m.sid for m in unsent) == ["1", "3"]
    assert set(asked) == {held_origin}


def test_on_started_is_called_once_before_send_all_returns(arranged: Arrangement) -> None:
    batch = messages(arranged.subscriptions[:5])
    arranged.answer(batch[2].endpoint, 503, None)
    calls: list[int] = []
    heard: list[Outcome] = []
    outcomes, unsent = run(
        arranged.sender, batch, on_outcome=heard.append, on_started=lambda: calls.append(len(heard))
    )
    assert len(calls) == 1 and calls[0] <= len(batch)  # answers may still be outstanding at that moment
    assert unsent == [] and len(outcomes) == len(batch)
    # A batch stopped before its end is "started" too: nothing waits to be started any more.
    stopped: list[int] = []
    run(arranged.sender, batch, should_stop=lambda: True, on_started=lambda: stopped.append(1))
    assert stopped == [1]
