"""What a connection (HTTP/1.1 or HTTP/2) calls back on the origin that owns it.

:class:`notifier.sending.pool.Origin` implements it; the connection modules name only this
Protocol, so they stand below the pool that imports them (no import circle, not even for types).
"""

from __future__ import annotations

from typing import Any, Protocol

from notifier.sending.exchange import Exchange


class ConnectionOwner(Protocol):
    """The origin a connection reports to: answers, losses, closes, and room for more streams."""

    #: The pool the origin belongs to (an HTTP/2 connection asks it to flush its writes soon).
    pool: Any

    def answered(
        self, conn: Any, exchange: Exchange, status: int, headers: dict[str, str], body: bytes, keep: bool
    ) -> None:
        """``exchange`` got its answer; ``keep``: the connection may carry the next one."""
        ...

    def lost(self, conn: Any, exchange: Exchange, error: BaseException) -> None:
        """The connection failed while ``exchange`` was on it."""
        ...

    def closed(self, conn: Any) -> None:
        """The connection is gone."""
        ...

    def replay(self, exchange: Exchange, *, refused: bool = False) -> None:
        """Send ``exchange`` again on another connection (it was not processed)."""
        ...

    def more_room(self, conn: Any) -> None:
        """An HTTP/2 connection can take more streams."""
        ...

    def going_away(self, conn: Any) -> None:
        """An HTTP/2 connection received GOAWAY: no new streams on it."""
        ...
