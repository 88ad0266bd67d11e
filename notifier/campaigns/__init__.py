"""Campaigns: one alert to an audience, validated, stored in Redis, and moved through its states.

States (:class:`CampaignState`; every move is checked against :data:`TRANSITIONS`, in Python
and in the Lua scripts alike)::

    draft ──approve──> scheduled ──(send_at reached)──> planning ──> sending ──> done
                           │                                  │  └─> paused ──resume──> sending
                           └───────────── cancel ─────────────┴────> cancelled
    (any active state) ──> failed   (planning crashed, or nothing could be delivered)

Counters (``HINCRBY`` from the batch pipelines): ``total``, ``sent``, ``gone``,
``rejected``, ``failed``, ``retried`` (a push service asked us to try again),
``deferred`` (held back locally while its push service rate-limits us),
``skipped`` (quarantined, capped or vanished), ``shown``, ``clicked``; ``unreachable`` and
``over_budget``: readers a non-breaking campaign left out at planning (not in ``total``);
``pending`` is the number of batch jobs not finished yet.

The rooms: :mod:`~notifier.campaigns.model` (states, the transition table, the record),
:mod:`~notifier.campaigns.validation` (checking an alert), :mod:`~notifier.campaigns.payload`
(the push payload and its size), :mod:`~notifier.campaigns.store` (the one writer of every
``campaign:{cid}`` key) with its Lua in :mod:`~notifier.campaigns.scripts`.
"""

from __future__ import annotations

from notifier.campaigns.model import (
    ACTIVE,
    CANCELLED,
    COUNTERS,
    DELIVERING,
    DONE,
    DRAFT,
    FAILED,
    FINAL,
    PAUSED,
    PLANNING,
    SCHEDULED,
    SENDING,
    STAMPS,
    STATES,
    TRANSITIONS,
    Campaign,
    CampaignState,
    is_campaign_id,
    new_campaign_id,
)
from notifier.campaigns.payload import (
    ReceiptSigner,
    campaign_payload_prefix,
    message_payload,
    payload_size,
    receipt_token,
)
from notifier.campaigns.store import (
    PLAN_UNIT,
    RECEIPT_KINDS,
    CampaignStore,
    PlanProgress,
    Receipt,
    ReceiptCount,
    count_receipt,
    migrate_campaign_sites,
    parse_receipt,
    record_receipt,
)
from notifier.campaigns.validation import (
    BIDI_CONTROLS,
    BODY_MAX,
    TITLE_MAX,
    TTL_BREAKING,
    TTL_DEFAULT,
    TTL_MAX,
    URGENCIES,
    URL_MAX,
    CampaignInput,
    check_url,
    parse_time,
    validate_campaign,
)

__all__ = [
    "ACTIVE",
    "BIDI_CONTROLS",
    "BODY_MAX",
    "CANCELLED",
    "COUNTERS",
    "DELIVERING",
    "DONE",
    "DRAFT",
    "FAILED",
    "FINAL",
    "PAUSED",
    "PLANNING",
    "PLAN_UNIT",
    "RECEIPT_KINDS",
    "SCHEDULED",
    "SENDING",
    "STAMPS",
    "STATES",
    "TITLE_MAX",
    "TRANSITIONS",
    "TTL_BREAKING",
    "TTL_DEFAULT",
    "TTL_MAX",
    "URGENCIES",
    "URL_MAX",
    "Campaign",
    "CampaignInput",
    "CampaignState",
    "CampaignStore",
    "PlanProgress",
    "Receipt",
    "ReceiptCount",
    "ReceiptSigner",
    "campaign_payload_prefix",
    "check_url",
    "count_receipt",
    "is_campaign_id",
    "message_payload",
    "migrate_campaign_sites",
    "new_campaign_id",
    "parse_receipt",
    "parse_time",
    "payload_size",
    "receipt_token",
    "record_receipt",
    "validate_campaign",
]
