"""A campaign's push payload: JSON serialised once per campaign, finished per subscriber; its size."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from notifier.crypto import b64url_encode

# A receipt token and a subscription id are fixed-length; the budget check
# builds the payload with these sizes so every real message fits too.
_SID_LEN = 16
_RT_LEN = 22


def campaign_payload_prefix(
    title: str, body: str, url: str, image: str, icon: str, tag: str, cid: str
) -> str:
    """Serialise the shared part of the push payload (ends with a comma, ready for ``sid``)."""
    data: dict[str, Any] = {"title": title, "body": body, "url": url}
    if image:
        data["image"] = image
    if icon:
        data["icon"] = icon
    data["tag"] = tag
    data["renotify"] = True
    data["cid"] = cid
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))[:-1] + ","


def message_payload(prefix: str, sid: str, receipt: str, ts: int) -> bytes:
    """The complete payload of one message: the shared prefix plus the subscriber's fields."""
    return f'{prefix}"sid":"{sid}","rt":"{receipt}","ts":{ts}}}'.encode()


def payload_size(
    title: str, body: str, url: str, image: str = "", icon: str = "", tag: str = "x" * 24
) -> int:
    """Bytes of the largest plaintext a message of this content produces."""
    prefix = campaign_payload_prefix(title, body, url, image, icon, tag or "x" * 24, "c" * 20)
    return len(message_payload(prefix, "s" * _SID_LEN, "r" * _RT_LEN, 10**10))


def receipt_token(key: bytes, cid: str, sid: str) -> str:
    """Token binding a receipt to one campaign and one subscription (HMAC-SHA256, 128 bits)."""
    return b64url_encode(hmac.new(key, f"{cid}:{sid}".encode(), hashlib.sha256).digest()[:16])
