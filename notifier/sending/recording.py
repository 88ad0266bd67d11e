"""A :class:`~notifier.sending.port.PushSender` that answers from rules in memory and records what it got.

For tests of the fan-out's bookkeeping (counters, retries, deletions, pauses) that need no
sockets and no push service: each message gets the answer its endpoint's rule gives (201 by
default), classified by the same :func:`~notifier.sending.outcomes.classify` the real sender
uses. It encrypts nothing; ``sent`` keeps each message with its plaintext payload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from notifier.sending.outcomes import RETRY_AFTER_MAX, Outcome, OutcomeKind, classify
from notifier.sending.sender import Message, origin_of


class RecordingSender:
    """Answers each message by rule: ``answers[endpoint] = (status, Retry-After or None)``, else 201."""

    def __init__(self, answers: dict[str, tuple[int, str | None]] | None = None) -> None:
        self.answers: dict[str, tuple[int, str | None]] = dict(answers or {})
        #: Every message that reached the (pretend) push service, in order.
        self.sent: list[Message] = []
        self._held_until: dict[str, float] = {}
        self.closed = 0

    def answer(self, endpoint: str, status: int, retry_after: str | None = None) -> None:
        """From now on, answer ``status`` (and ``Retry-After``) to messages for ``endpoint``."""
        self.answers[endpoint] = (status, retry_after)

    def _send(self, message: Message) -> Outcome:
        origin = origin_of(message.endpoint)
        held = self._held_until.get(origin, 0.0) - time.monotonic()
        if held > 0:
            return Outcome(
                message.sid,
                OutcomeKind.DEFERRED,
                0,
                retry_after=held,
                detail="origin rate limited",
                origin=origin,
            )
        self.sent.append(message)
        status, retry_after = self.answers.get(message.endpoint, (201, None))
        kind, wait = classify(status, retry_after)
        if status == 429:
            hold = wait if wait is not None else 1.0
            self._held_until[origin] = time.monotonic() + min(hold, RETRY_AFTER_MAX)
        return Outcome(message.sid, kind, status, wait, "", 0.001, origin, time.time())

    async def send_all(
        self,
        messages: Sequence[Message],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        on_started: Callable[[], Any] | None = None,
        keep_back: Callable[[str], bool] | None = None,
    ) -> tuple[list[Outcome], list[Message]]:
        """See :meth:`notifier.sending.port.PushSender.send_all` (one message at a time, in order)."""
        outcomes: list[Outcome] = []
        unsent: list[Message] = []
        stopped = False
        for message in messages:
            if stopped or (should_stop is not None and should_stop()):
                stopped = True
                unsent.append(message)
                continue
            if keep_back is not None and keep_back(origin_of(message.endpoint)):
                unsent.append(message)
                continue
            outcome = self._send(message)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        if on_started is not None:
            on_started()  # answers come at once here: everything is started (and answered)
        return outcomes, unsent

    async def close(self) -> None:
        """Nothing to release; counted, so a test can see the engine closed it."""
        self.closed += 1
