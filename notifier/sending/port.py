"""The seam between the fan-out and the network: what :class:`notifier.delivery.Delivery` needs of a sender.

:class:`notifier.sending.Sender` is the real one (RFC 8291 encryption, VAPID, HTTP/2 or HTTP/1.1);
:class:`notifier.sending.recording.RecordingSender` answers in memory, for tests of the fan-out's
bookkeeping that need no sockets. ``tests/notifier/test_sender_contract.py`` holds both to the same
contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from notifier.sending.outcomes import Outcome
from notifier.sending.sender import Message


class PushSender(Protocol):
    """Sends a batch's messages and says what became of each one."""

    async def send_all(
        self,
        messages: Sequence[Message],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        on_started: Callable[[], Any] | None = None,
        keep_back: Callable[[str], bool] | None = None,
    ) -> tuple[list[Outcome], list[Message]]:
        """Send every message; return one outcome per message started and the messages not started.

        ``should_stop`` is asked before each message starts (a cancel or pause ends the batch);
        ``keep_back(origin)`` too, per message (its push service is held: the message stays unsent);
        ``on_outcome`` hears each outcome as it arrives; ``on_started`` is called once, when no
        message waits to be started any more, and before this returns: while answers may still be
        outstanding (a worker then starts its next batch). It never raises for a push service's answer:
        every answer, timeout and refused endpoint is an :class:`Outcome`, classified by
        :func:`notifier.sending.classify`. After a 429, later messages to the same origin are
        ``deferred`` (never sent) for the time it asked.
        """
        ...

    async def close(self) -> None:
        """Release connections; the sender may be used again afterwards (it reconnects)."""
        ...
