"""RFC 8291 encryption: the RFC's worked example, and interop with http_ece and pywebpush."""

from __future__ import annotations

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher

from notifier.crypto import (
    HEADER_SIZE,
    MAX_PLAINTEXT,
    RECORD_SIZE,
    PlaintextTooLarge,
    b64url_decode,
    b64url_encode,
    decrypt,
    encrypt,
    generate_subscriber,
    public_key_bytes,
)
from notifier.errors import PayloadTooLarge

# RFC 8291 section 5 (and appendix A), copied from the RFC text.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
RFC_AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _private(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def test_rfc8291_example_byte_for_byte() -> None:
    as_key = _private(RFC_AS_PRIVATE)
    assert public_key_bytes(as_key) == b64url_decode(RFC_AS_PUBLIC)
    body = encrypt(
        RFC_PLAINTEXT,
        b64url_decode(RFC_UA_PUBLIC),
        b64url_decode(RFC_AUTH_SECRET),
        salt=b64url_decode(RFC_SALT),
        as_private_key=as_key,
    )
    assert body == b64url_decode(RFC_BODY)
    assert b64url_encode(body) == RFC_BODY
    # Header: salt, rs = 4096, idlen = 65, keyid = the sender's public key.
    assert body[:16] == b64url_decode(RFC_SALT)
    assert body[16:20] == (4096).to_bytes(4, "big")
    assert body[20] == 65
    assert body[21:HEADER_SIZE] == b64url_decode(RFC_AS_PUBLIC)


def test_rfc8291_example_decrypts_with_ua_key() -> None:
    ua_key = _private(RFC_UA_PRIVATE)
    assert public_key_bytes(ua_key) == b64url_decode(RFC_UA_PUBLIC)
    assert decrypt(b64url_decode(RFC_BODY), ua_key, b64url_decode(RFC_AUTH_SECRET)) == RFC_PLAINTEXT


def test_constants_arithmetic() -> None:
    assert RECORD_SIZE == 4096
    assert HEADER_SIZE == 16 + 4 + 1 + 65 == 86
    assert MAX_PLAINTEXT == 4096 - 86 - 16 - 1 == 3993


@pytest.mark.parametrize("size", [0, 1, 300, MAX_PLAINTEXT])
def test_round_trip(size: int) -> None:
    private, public, auth = generate_subscriber()
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    body = encrypt(plaintext, public, auth)
    assert len(body) == HEADER_SIZE + size + 1 + 16
    assert decrypt(body, private, auth) == plaintext
    assert decrypt(body, private, auth, ua_public=public) == plaintext


def test_largest_plaintext_fills_exactly_4096_bytes() -> None:
    _, public, auth = generate_subscriber()
    assert len(encrypt(b"a" * MAX_PLAINTEXT, public, auth)) == 4096


def test_too_large_names_size_and_limit() -> None:
    _, public, auth = generate_subscriber()
    with pytest.raises(ValueError, match=r"3994 bytes.*3993") as info:
        encrypt(b"a" * (MAX_PLAINTEXT + 1), public, auth)
    assert isinstance(info.value, PlaintextTooLarge)
    assert isinstance(info.value, PayloadTooLarge)


def test_fresh_salt_and_ephemeral_key_per_call() -> None:
    _, public, auth = generate_subscriber()
    bodies = [encrypt(b"same message", public, auth) for _ in range(20)]
    assert len({b[:16] for b in bodies}) == 20
    assert len({b[21:HEADER_SIZE] for b in bodies}) == 20
    assert len(set(bodies)) == 20


def test_http_ece_decrypts_our_output() -> None:
    private, public, auth = generate_subscriber()
    body = encrypt(b'{"title":"Breaking"}', public, auth)
    plain = http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm")
    assert plain == b'{"title":"Breaking"}'


def test_we_decrypt_pywebpush_output() -> None:
    private, public, auth = generate_subscriber()
    subscription = {
        "endpoint": "https://push.example.net/wpush/abc",
        "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
    }
    data = b"x" * 1000
    encoded = WebPusher(subscription).encode(data, content_encoding="aes128gcm")
    assert decrypt(encoded["body"], private, auth) == data


def test_we_decrypt_http_ece_output() -> None:
    private, public, auth = generate_subscriber()
    sender = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        b"hello",
        private_key=sender,
        dh=public,
        auth_secret=auth,
        version="aes128gcm",
    )
    assert decrypt(body, private, auth) == b"hello"


def test_decrypt_rejects_multi_record_bodies() -> None:
    private, public, auth = generate_subscriber()
    sender = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        b"y" * 200,
        private_key=sender,
        dh=public,
        auth_secret=auth,
        rs=64,
        version="aes128gcm",
    )
    with pytest.raises(ValueError, match="multi-record"):
        decrypt(body, private, auth)


def test_decrypt_rejects_tampering_and_wrong_keys() -> None:
    private, public, auth = generate_subscriber()
    body = bytearray(encrypt(b"payload", public, auth))
    body[-1] ^= 1
    with pytest.raises(ValueError, match="authentication failed"):
        decrypt(bytes(body), private, auth)
    other, _, _ = generate_subscriber()
    with pytest.raises(ValueError, match="authentication failed"):
        decrypt(encrypt(b"payload", public, auth), other, auth)
    with pytest.raises(ValueError, match="authentication failed"):
        decrypt(encrypt(b"payload", public, auth), private, bytes(16))


def test_decrypt_validates_header() -> None:
    private, public, auth = generate_subscriber()
    body = encrypt(b"payload", public, auth)
    with pytest.raises(ValueError, match="shorter than the 86-byte header"):
        decrypt(body[:50], private, auth)
    with pytest.raises(ValueError, match="keyid length is 64"):
        decrypt(body[:20] + b"\x40" + body[21:], private, auth)
    with pytest.raises(ValueError, match="record size 17"):
        decrypt(body[:16] + (17).to_bytes(4, "big") + body[20:], private, auth)
    with pytest.raises(ValueError, match="too short"):
        decrypt(body[: HEADER_SIZE + 10], private, auth)
    with pytest.raises(ValueError, match="not a point on P-256"):
        decrypt(body[:22] + bytes(64) + body[HEADER_SIZE:], private, auth)


def test_encrypt_validates_inputs() -> None:
    _, public, auth = generate_subscriber()
    with pytest.raises(ValueError, match="65-byte uncompressed"):
        encrypt(b"x", public[:33], auth)
    with pytest.raises(ValueError, match="not a point on P-256"):
        encrypt(b"x", b"\x04" + bytes(64), auth)
    with pytest.raises(ValueError, match="auth secret must be 16 bytes"):
        encrypt(b"x", public, auth[:8])
    with pytest.raises(ValueError, match="salt must be 16 bytes"):
        encrypt(b"x", public, auth, salt=b"short")


def test_b64url() -> None:
    assert b64url_encode(b"\xfb\xff\xfe") == "-__-"
    assert b64url_encode(b"a") == "YQ"
    assert b64url_decode("YQ") == b"a"
    assert b64url_decode("YQ==") == b"a"
    assert b64url_decode(b"-__-") == b"\xfb\xff\xfe"
    for garbage in ["Y", "YQ!", "a b", "+/+/", "é", "YQ=x"]:
        with pytest.raises(ValueError):
            b64url_decode(garbage)
