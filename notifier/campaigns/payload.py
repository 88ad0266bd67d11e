"""A campaign's push payload (a Declarative Web Push message): serialised once per campaign, finished
per subscriber; its size."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from notifier.crypto import b64url_encode
from notifier.declarative import WEB_PUSH

# A receipt token and a subscription id are fixed-length; the budget check
# builds the payload with these sizes so every real message fits too.
_SID_LEN = 16
_RT_LEN = 22


def campaign_payload_prefix(
    title: str, body: str, url: str, image: str, icon: str, tag: str, cid: str
) -> str:
    """The declarative push message up to the subscriber's own fields, serialised once per campaign.

    The message is the Declarative Web Push format (:mod:`notifier.declarative`) with ``mutable: true``:
    Safari shows it by itself, and every service worker (ours in every browser, Safari's included)
    renders it and reports the receipt. The text ends inside ``notification.data``, right after the
    campaign id, so :func:`message_payload` only appends the subscription id, the receipt token and
    the timestamp.
    """
    note: dict[str, Any] = {"title": title, "body": body, "navigate": url}
    if image:
        note["image"] = image
    if icon:
        note["icon"] = icon
    note["tag"] = tag
    note["renotify"] = True
    note["data"] = {"cid": cid}
    message = {"web_push": WEB_PUSH, "mutable": True, "notification": note}
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    # The text ends with the "}" of data, of the notification and of the message: reopen data.
    return text[:-3] + ","


def message_payload(prefix: str, sid: str, receipt: str, ts_ms: int) -> bytes:
    """The complete payload of one message: the shared prefix plus the subscriber's fields.

    ``ts_ms`` is the notification's ``timestamp`` (milliseconds since the epoch).
    """
    return f'{prefix}"sid":"{sid}","rt":"{receipt}"}},"timestamp":{ts_ms}}}}}'.encode()


def payload_size(
    title: str, body: str, url: str, image: str = "", icon: str = "", tag: str = "x" * 24
) -> int:
    """Bytes of the largest plaintext a message of this content produces."""
    prefix = campaign_payload_prefix(title, body, url, image, icon, tag or "x" * 24, "c" * 20)
    return len(message_payload(prefix, "s" * _SID_LEN, "r" * _RT_LEN, 10**13))


def receipt_token(key: bytes, cid: str, sid: str) -> str:
    """Token binding a receipt to one campaign and one subscription (HMAC-SHA256, 128 bits)."""
    return b64url_encode(hmac.new(key, f"{cid}:{sid}".encode(), hashlib.sha256).digest()[:16])


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_SHA256_BLOCK = 64


class ReceiptSigner:
    """:func:`receipt_token` of one key and campaign, for the many subscriptions of a batch.

    The same HMAC-SHA256 (RFC 2104), with its two keyed pads and the ``"{cid}:"`` prefix hashed
    once: each token then costs two SHA-256 state copies and finishes, ~1 µs instead of ~3 µs
    for a new ``hmac`` object per message (once per message sent).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, cid: str) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD) + f"{cid}:".encode())
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __call__(self, sid: str) -> str:
        """The token of subscription ``sid`` (equal to ``receipt_token(key, cid, sid)``)."""
        inner = self._inner.copy()
        inner.update(sid.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return b64url_encode(outer.digest()[:16])
