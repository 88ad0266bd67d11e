"""RFC 8291 message encryption for web push (``aes128gcm``, RFC 8188), on ``cryptography`` directly.

This is the sender's hot path: every message costs one fresh P-256 key pair, one
ECDH and five HMAC-SHA256 calls, so HKDF is written out as the HMACs it is
(extract = one HMAC; expand to <= 32 bytes = one HMAC) and every constant
``info`` string is built once at import time.

Body layout (RFC 8188 section 2.1, with RFC 8291 section 4 choices)::

    salt (16) | rs (4, big-endian) | idlen (1) = 65 | keyid = sender public key (65) | record

The single record is ``AES-128-GCM(plaintext || 0x02)``: the plaintext, the
0x02 "last record" padding delimiter, and the 16-byte GCM tag.
"""

from __future__ import annotations

import binascii
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from notifier.errors import PayloadTooLarge

__all__ = [
    "AUTH_SECRET_SIZE",
    "HEADER_SIZE",
    "MAX_PLAINTEXT",
    "PUBLIC_KEY_SIZE",
    "RECORD_SIZE",
    "SALT_SIZE",
    "PlaintextTooLarge",
    "b64url_decode",
    "b64url_encode",
    "decrypt",
    "encrypt",
    "generate_subscriber",
    "public_key_bytes",
]

#: Record size announced in the header, in bytes. Push services accept bodies of at
#: most 4096 bytes (RFC 8030 section 7.2 lets them refuse more), so we send a single
#: record and make the whole body, header included, fit that size.
RECORD_SIZE = 4096
SALT_SIZE = 16
#: An uncompressed P-256 point: 0x04 || X (32) || Y (32).
PUBLIC_KEY_SIZE = 65
AUTH_SECRET_SIZE = 16
#: salt (16) + rs (4) + idlen (1) + keyid (65, the sender's ephemeral public key).
HEADER_SIZE = SALT_SIZE + 4 + 1 + PUBLIC_KEY_SIZE
_TAG_SIZE = 16
_DELIMITER_SIZE = 1
#: Largest plaintext that fits: 4096 - 86 (header) - 16 (GCM tag) - 1 (0x02 delimiter) = 3993 bytes.
MAX_PLAINTEXT = RECORD_SIZE - HEADER_SIZE - _TAG_SIZE - _DELIMITER_SIZE

_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_SHA256 = "sha256"
# HKDF info strings with the expand counter byte 0x01 already appended (RFC 5869:
# T(1) = HMAC(PRK, info || 0x01), and every output here is at most 32 bytes).
_KEY_INFO_PREFIX = b"WebPush: info\x00"
_KEY_INFO_COUNTER = b"\x01"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_RS_IDLEN = RECORD_SIZE.to_bytes(4, "big") + bytes((PUBLIC_KEY_SIZE,))
_LAST_RECORD = b"\x02"
_B64URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_STD_TO_B64URL = bytes.maketrans(b"+/", b"-_")
_B64URL_STRICT = bytes.maketrans(b"-_+/", b"+/**")
#: The ``=`` padding a base64 text of length ``n`` needs, by ``n % 4`` (1 never decodes).
_PADDING = (b"", b"===", b"==", b"=")


class PlaintextTooLarge(PayloadTooLarge, ValueError):
    """The plaintext does not fit one 4096-byte aes128gcm body (also a ``ValueError``)."""


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding (the web push wire form)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_STD_TO_B64URL).decode("ascii")


def b64url_decode(s: str | bytes) -> bytes:
    """Decode base64url with or without padding; raise ``ValueError`` on anything else."""
    if type(s) is str and s.isascii():
        # Fast path (twice per message sent): '+' and '/' become '*', which strict mode rejects like
        # any other character outside the alphabet; anything it rejects gets its exact error below.
        raw = s.encode("ascii").rstrip(b"=")
        try:
            padded = raw.translate(_B64URL_STRICT) + _PADDING[len(raw) & 3]
            return binascii.a2b_base64(padded, strict_mode=True)
        except binascii.Error:
            pass
    return _b64url_decode_checked(s)


def _b64url_decode_checked(s: str | bytes) -> bytes:
    if isinstance(s, str):
        try:
            raw = s.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("not base64url: non-ASCII characters") from None
    else:
        raw = bytes(s)
    raw = raw.rstrip(b"=")
    if b"+" in raw or b"/" in raw:
        raise ValueError("not base64url: '+' or '/' found (standard base64 alphabet)")
    if len(raw) % 4 == 1:
        raise ValueError(f"not base64url: impossible length {len(raw)}")
    try:
        return binascii.a2b_base64(raw.translate(_B64URL_TO_STD) + b"=" * (-len(raw) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from None


def public_key_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """Return the 65-byte uncompressed point of a P-256 key (private keys give their public half)."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _load_point(point: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(point) != PUBLIC_KEY_SIZE or point[0] != 4:
        raise ValueError(f"{what} must be a 65-byte uncompressed P-256 point, got {len(point)} bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, point)
    except ValueError:
        raise ValueError(f"{what} is not a point on P-256") from None


def _derive(
    shared: bytes, auth_secret: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    """RFC 8291 section 3.4 then RFC 8188 section 2.2: return (content encryption key, nonce)."""
    prk_key = hmac.digest(auth_secret, shared, _SHA256)
    ikm = hmac.digest(prk_key, _KEY_INFO_PREFIX + ua_public + as_public + _KEY_INFO_COUNTER, _SHA256)
    prk = hmac.digest(salt, ikm, _SHA256)
    return hmac.digest(prk, _CEK_INFO, _SHA256)[:16], hmac.digest(prk, _NONCE_INFO, _SHA256)[:12]


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes | None = None,
    as_private_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Encrypt one push message for a subscriber; return the whole aes128gcm request body."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise PlaintextTooLarge(
            f"payload is {len(plaintext)} bytes; at most {MAX_PLAINTEXT} bytes fit one "
            f"{RECORD_SIZE}-byte aes128gcm message"
        )
    if len(auth_secret) != AUTH_SECRET_SIZE:
        raise ValueError(f"auth secret must be {AUTH_SECRET_SIZE} bytes, got {len(auth_secret)}")
    ua_key = _load_point(ua_public, "subscriber key (p256dh)")
    if salt is None:
        salt = os.urandom(SALT_SIZE)
    elif len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    if as_private_key is None:
        as_private_key = ec.generate_private_key(_CURVE)
    as_public = as_private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    cek, nonce = _derive(as_private_key.exchange(_ECDH, ua_key), auth_secret, ua_public, as_public, salt)
    record = AESGCM(cek).encrypt(nonce, plaintext + _LAST_RECORD, None)
    return b"".join((salt, _RS_IDLEN, as_public, record))


def decrypt(
    body: bytes,
    ua_private: ec.EllipticCurvePrivateKey,
    auth_secret: bytes,
    *,
    ua_public: bytes | None = None,
) -> bytes:
    """Decrypt a single-record aes128gcm body as the user agent would; ``ValueError`` says why it fails."""
    if len(body) < HEADER_SIZE:
        raise ValueError(f"body is {len(body)} bytes, shorter than the {HEADER_SIZE}-byte header")
    rs = int.from_bytes(body[16:20], "big")
    if rs < _TAG_SIZE + _DELIMITER_SIZE + 1:
        raise ValueError(f"record size {rs} is below the minimum of 18")
    idlen = body[20]
    if idlen != PUBLIC_KEY_SIZE:
        raise ValueError(f"keyid length is {idlen}; RFC 8291 requires the 65-byte sender public key")
    record = body[HEADER_SIZE:]
    if len(record) < _TAG_SIZE + _DELIMITER_SIZE:
        raise ValueError(f"record is {len(record)} bytes, too short for a GCM tag and a delimiter")
    if len(record) > rs:
        raise ValueError(
            f"record of {len(record)} bytes exceeds rs={rs}: multi-record messages are not supported"
        )
    if len(auth_secret) != AUTH_SECRET_SIZE:
        raise ValueError(f"auth secret must be {AUTH_SECRET_SIZE} bytes, got {len(auth_secret)}")
    as_public = body[21:HEADER_SIZE]
    as_key = _load_point(as_public, "sender key (keyid)")
    if ua_public is None:
        ua_public = public_key_bytes(ua_private)
    cek, nonce = _derive(ua_private.exchange(_ECDH, as_key), auth_secret, ua_public, as_public, body[:16])
    try:
        padded = AESGCM(cek).decrypt(nonce, record, None)
    except InvalidTag:
        raise ValueError("authentication failed: wrong key or auth secret, or a corrupted body") from None
    end = len(padded.rstrip(b"\x00"))
    if end == 0:
        raise ValueError("record holds only padding, no delimiter")
    if padded[end - 1] != 2:
        raise ValueError(f"padding delimiter is 0x{padded[end - 1]:02x}; the last record must use 0x02")
    return padded[: end - 1]


def generate_subscriber() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    """Make a synthetic subscriber: (private key, 65-byte public key, 16-byte auth secret)."""
    private = ec.generate_private_key(_CURVE)
    return private, public_key_bytes(private), os.urandom(AUTH_SECRET_SIZE)
