"""Settings from the environment, and the VAPID key: generation, loading, failure at start-up, JWT reuse."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from notifier.crypto import b64url_decode, b64url_encode
from notifier.errors import ConfigError
from notifier.settings import Settings
from notifier.vapid import JWT_LIFETIME, JWT_RENEW_BEFORE, generate_private_key, load_vapid_key
from notifier_cli import main


def test_settings_coerce_and_refuse_bad_values() -> None:
    s = Settings.from_env(
        {
            "NOTIFIER_BATCH_SIZE": "250",
            "NOTIFIER_PUSH_HOSTS": "a.example, 127.0.0.1:9",
            "NOTIFIER_QUIET_HOURS": "22-6",
            "NOTIFIER_RATE_LIMITS": "off",
        }
    )
    assert s.batch_size == 250
    assert s.push_hosts == ("a.example", "127.0.0.1:9")
    assert s.quiet_hours == (22, 6)
    assert s.rate_limits is False
    with pytest.raises(ConfigError, match="NOTIFIER_BATCH_SIZE"):
        Settings.from_env({"NOTIFIER_BATCH_SIZE": "many"})
    with pytest.raises(ConfigError, match="VAPID_SUBJECT"):
        Settings.from_env({"VAPID_SUBJECT": "ops@example.com"})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"NOTIFIER_ENV": "production"})


@pytest.mark.parametrize(
    "subject",
    [
        "ops@example.com",
        "mailto:",
        "mailto:ops",
        "mailto:ops@localhost",
        "mailto:push@newsroom.local",
        "mailto:push@kabarkini.invalid",
        "mailto:push@server.localdomain",
        "mailto:a@b.example, c@d.example",
        "https:",
        "https://localhost/contact",
        "https://push.local/",
        "https://intranet/",
        "http://kabarkini.example/contact",
    ],
)
def test_a_vapid_subject_apple_would_refuse_stops_start_up(subject: str) -> None:
    # Apple answers 403 BadJwtToken for every push signed with such a ``sub``: better now than at a send.
    with pytest.raises(ConfigError, match="VAPID_SUBJECT"):
        Settings.from_env({"VAPID_SUBJECT": subject})


@pytest.mark.parametrize(
    "subject", ["mailto:push@kabarkini.example", "mailto:ops@example.com", "https://kabarkini.example/kontak"]
)
def test_a_reachable_vapid_subject_is_accepted(subject: str) -> None:
    assert Settings.from_env({"VAPID_SUBJECT": subject}).vapid_subject == subject
    with pytest.raises(ConfigError, match="quiet hours"):
        Settings.from_env({"NOTIFIER_QUIET_HOURS": "25-3"})


def test_vapid_generate_writes_a_0600_pem_and_prints_the_public_key(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "vapid.pem"
    runner = CliRunner()
    result = runner.invoke(main, ["vapid", "generate"], env={"VAPID_PRIVATE_KEY_FILE": str(key_path)})
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    public = result.output.split("public key: ")[1].strip()
    key = load_vapid_key(Settings.from_env({"VAPID_PRIVATE_KEY_FILE": str(key_path)}))
    assert key.public_key_b64 == public and len(b64url_decode(public)) == 65
    again = runner.invoke(main, ["vapid", "generate"], env={"VAPID_PRIVATE_KEY_FILE": str(key_path)})
    assert again.exit_code != 0 and "refusing to overwrite" in again.output


def test_missing_or_malformed_key_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no VAPID private key"):
        load_vapid_key(Settings.from_env({"VAPID_PRIVATE_KEY_FILE": str(tmp_path / "absent.pem")}))
    with pytest.raises(ConfigError, match="malformed"):
        load_vapid_key(
            Settings.from_env(
                {"VAPID_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}
            )
        )
    rsa_like = tmp_path / "bad.pem"
    rsa_like.write_text("garbage")
    with pytest.raises(ConfigError, match="malformed"):
        load_vapid_key(Settings.from_env({"VAPID_PRIVATE_KEY_FILE": str(rsa_like)}))
    # The site refuses to start on it (not at its first send).
    from web import create_app

    with pytest.raises(ConfigError):
        create_app({"SETTINGS": Settings.from_env({"VAPID_PRIVATE_KEY_FILE": str(rsa_like)})})
    # A raw 32-byte base64url key (the format web-push libraries print) is accepted.
    raw = generate_private_key().private_numbers().private_value.to_bytes(32, "big")
    assert (
        load_vapid_key(Settings.from_env({"VAPID_PRIVATE_KEY": b64url_encode(raw)})).public_key_bytes[0] == 4
    )


def test_jwt_is_signed_once_per_origin_and_renewed_before_expiry() -> None:
    key = load_vapid_key(
        Settings.from_env(
            {
                "VAPID_PRIVATE_KEY": b64url_encode(
                    generate_private_key().private_numbers().private_value.to_bytes(32, "big")
                )
            }
        )
    )
    t0 = 1_800_000_000.0
    a = key.jwt_for("https://fcm.googleapis.com/fcm/send/abc", now=t0)
    assert key.jwt_for("https://fcm.googleapis.com/fcm/send/other", now=t0 + 60) == a
    b = key.jwt_for("https://updates.push.services.mozilla.com/wpush/v2/x", now=t0)
    assert a != b
    header, claims, signature = a.split(".")
    body = json.loads(b64url_decode(claims))
    assert body == {
        "aud": "https://fcm.googleapis.com",
        "exp": int(t0) + JWT_LIFETIME,
        "sub": "mailto:push@example.com",
    }
    assert body["exp"] - t0 <= 24 * 3600
    assert json.loads(b64url_decode(header)) == {"typ": "JWT", "alg": "ES256"}
    sig = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.private_key.public_key().verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    # Renewed about an hour before it expires, never used past that.
    renew_at = t0 + JWT_LIFETIME - JWT_RENEW_BEFORE
    assert key.jwt_for("https://fcm.googleapis.com/x", now=renew_at - 1) == a
    assert key.jwt_for("https://fcm.googleapis.com/x", now=renew_at + 1) != a
    assert key.authorization("https://fcm.googleapis.com/x", now=renew_at + 2).startswith("vapid t=")


def test_every_jwt_a_push_carries_expires_within_24_hours_and_not_within_the_hour() -> None:
    # Apple and RFC 8292 refuse an exp more than 24 h ahead; a JWT about to lapse risks a 403 in flight.
    key = load_vapid_key(
        Settings.from_env(
            {
                "VAPID_PRIVATE_KEY": b64url_encode(
                    generate_private_key().private_numbers().private_value.to_bytes(32, "big")
                )
            }
        )
    )
    assert JWT_LIFETIME <= 24 * 3600
    t0 = 1_800_000_000.0
    for step in range(0, 3 * 86400, 17 * 60):
        now = t0 + step
        token = key.authorization("https://web.push.apple.com/QGuQyavXutnMH9bZ", now=now)
        claims = json.loads(b64url_decode(token.split("t=", 1)[1].split(",", 1)[0].split(".")[1]))
        assert JWT_RENEW_BEFORE <= claims["exp"] - now <= 24 * 3600
