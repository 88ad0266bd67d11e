"""The campaign record: its states and the moves between them, its counters, and the stored hash read back."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from notifier.campaigns.payload import campaign_payload_prefix
from notifier.sites import DEFAULT_SITE_ID

#: A campaign's TTL when its hash has none (kept equal to :data:`notifier.campaigns.validation.TTL_DEFAULT`).
DEFAULT_TTL = 24 * 3600


class CampaignState(StrEnum):
    """Where a campaign is in its life. A ``StrEnum``: equal to its value, the string stored in Redis."""

    DRAFT = "draft"  # waiting for an editor's approval (CMS/feeds in review mode, duplicates)
    SCHEDULED = "scheduled"  # approved; planned now or at ``send_at``
    PLANNING = "planning"  # the audience is being split into batches
    SENDING = "sending"  # every batch handed out; batches running
    PAUSED = "paused"  # push services rejected our key: waiting for ``notifier campaigns resume``
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # planning crashed, or nothing could be delivered


DRAFT, SCHEDULED, PLANNING, SENDING, PAUSED, DONE, CANCELLED, FAILED = CampaignState
STATES: tuple[CampaignState, ...] = tuple(CampaignState)
ACTIVE = (SCHEDULED, PLANNING, SENDING, PAUSED)
FINAL = (DONE, CANCELLED, FAILED)
#: States in which batches are delivered (a batch that finds any other stops and holds or drops its messages).
DELIVERING = (PLANNING, SENDING)
#: Time field stamped (once) when a campaign enters a state.
STAMPS: dict[CampaignState, str] = {
    PLANNING: "started",
    DONE: "finished",
    CANCELLED: "finished",
    FAILED: "finished",
}

#: Allowed state changes; anything else is a :class:`Conflict`.
TRANSITIONS: dict[CampaignState, tuple[CampaignState, ...]] = {
    DRAFT: (SCHEDULED, CANCELLED),
    SCHEDULED: (PLANNING, CANCELLED, FAILED),
    PLANNING: (SENDING, DONE, CANCELLED, FAILED),
    SENDING: (DONE, PAUSED, CANCELLED, FAILED),
    PAUSED: (SENDING, CANCELLED, FAILED),
    # Re-opened only to send again what a push-service incident made some readers miss (a restore).
    DONE: (SENDING,),
    CANCELLED: (),
    FAILED: (),
}

COUNTERS = (
    "total",
    "sent",
    "gone",
    "rejected",
    "failed",
    "retried",
    "deferred",
    "skipped",
    "shown",
    "clicked",
    "unreachable",
    "over_budget",
)


@dataclass
class Campaign:
    """A stored campaign with its counters."""

    cid: str
    title: str
    body: str
    url: str
    image: str
    icon: str
    topics: tuple[str, ...]
    ttl: int
    urgency: str
    breaking: bool
    story: str
    state: CampaignState
    source: str
    created_by: str
    created: float
    send_at: float | None
    started: float | None
    first_sent: float | None
    last_sent: float | None
    finished: float | None
    batches: int
    pending: int
    reason: str
    article_guid: str
    audience: str = ""
    approved_by: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    #: The site whose readers it goes to (campaigns of before sites were given to the default site).
    site: str = DEFAULT_SITE_ID

    @classmethod
    def from_hash(cls, cid: str, h: Mapping[str, str]) -> Campaign:
        """Build from the stored hash."""

        def opt(name: str) -> float | None:
            value = h.get(name)
            return float(value) if value not in (None, "") else None

        return cls(
            cid=cid,
            title=h.get("title", ""),
            body=h.get("body", ""),
            url=h.get("url", ""),
            image=h.get("image", ""),
            icon=h.get("icon", ""),
            topics=tuple(t for t in h.get("topics", "").split(",") if t),
            ttl=int(h.get("ttl", DEFAULT_TTL)),
            urgency=h.get("urgency", "normal"),
            breaking=h.get("breaking") == "1",
            story=h.get("story", ""),
            state=CampaignState(h.get("state") or DRAFT),
            source=h.get("source", ""),
            created_by=h.get("created_by", ""),
            created=float(h.get("created", 0)),
            send_at=opt("send_at"),
            started=opt("started"),
            first_sent=opt("first_sent"),
            last_sent=opt("last_sent"),
            finished=opt("finished"),
            batches=int(h.get("batches", 0)),
            pending=int(h.get("pending", 0)),
            reason=h.get("reason", ""),
            article_guid=h.get("article_guid", ""),
            audience=h.get("audience", ""),
            approved_by=h.get("approved_by", ""),
            counters={name: int(h.get(name, 0)) for name in COUNTERS},
            site=h.get("site") or DEFAULT_SITE_ID,
        )

    @property
    def done_count(self) -> int:
        """Messages that reached a final outcome."""
        c = self.counters
        return c["sent"] + c["gone"] + c["rejected"] + c["failed"] + c["skipped"]

    @property
    def progress(self) -> float:
        """Share of the audience with a final outcome, 0..1."""
        total = self.counters["total"]
        if self.state == DONE:
            return 1.0
        return min(1.0, self.done_count / total) if total else 0.0

    @property
    def click_through_rate(self) -> float | None:
        """Clicks per notification shown (or per sent, when clicks came but no shown receipts).

        None until a receipt arrived: right after a send none can have yet, and a rate of 0 would
        read as "nobody clicked".
        """
        shown, clicked, sent = self.counters["shown"], self.counters["clicked"], self.counters["sent"]
        if shown:
            return clicked / shown
        return clicked / sent if clicked and sent else None

    def info(self) -> dict[str, Any]:
        """JSON view for the API and CLI."""
        data = asdict(self)
        data["id"] = data.pop("cid")
        data["topics"] = list(self.topics)
        data["progress"] = round(self.progress, 4)
        data["ctr"] = self.click_through_rate
        return data

    def payload_prefix(self) -> str:
        """The JSON payload up to the per-subscriber fields, serialised once per campaign."""
        return campaign_payload_prefix(
            self.title, self.body, self.url, self.image, self.icon, self.tag, self.cid
        )

    @property
    def tag(self) -> str:
        """Notification tag: one per story, so updates replace each other on the device."""
        return self.story or self.cid


#: What :func:`new_campaign_id` makes: lowercase letters and digits. Anything else (``cid:timeline`` would
#: name another key of the campaign) is no campaign, refused before a key is built from it.
CAMPAIGN_ID = re.compile(r"[0-9a-z]{8,40}")


def is_campaign_id(value: object) -> bool:
    """True for a string shaped like a campaign id (whether or not such a campaign exists)."""
    return isinstance(value, str) and CAMPAIGN_ID.fullmatch(value) is not None


def new_campaign_id(now: float | None = None) -> str:
    """Time-ordered, unguessable id: milliseconds in base 36 plus 48 random bits."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{_base36(ms)}{os.urandom(6).hex()}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, rem = divmod(n, 36)
        out = digits[rem] + out
    return out or "0"
