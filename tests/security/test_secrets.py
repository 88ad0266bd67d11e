"""Secrets (VAPID private key, API tokens, passwords, webhook and session secrets) never leak."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from flask import Flask

from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.tokens import TokenStore
from notifier.users import UserStore
from web.cms import sign

PASSWORD = "Kuda-Baterai-Staples-7731"
WRONG_PASSWORD = "Kuda-Baterai-Staples-7732"


def secrets_of(context: Context, token: str) -> dict[str, str]:
    key = context.vapid.private_key
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_body = "".join(pem.strip().splitlines()[1:-1])
    return {
        "vapid scalar b64url": b64url_encode(scalar),
        "vapid scalar hex": scalar.hex(),
        "vapid pem body": pem_body[16:80],
        "api token": token,
        "api token body": token[4:],
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "webhook secret": context.settings.webhook_secret,
        "secret key": context.settings.secret_key,
        "receipt key": context.receipt_key.hex(),
    }


def test_a_full_flow_leaks_no_secret_to_logs_pages_or_errors(
    app: Flask,
    context: Context,
    r: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    token = TokenStore(context.redis, context.keys).create("cms")
    UserStore(context.redis, context.keys).create("admin@kabarkini.example", PASSWORD, "admin")
    secrets = secrets_of(context, token)
    assert all(len(v) >= 16 for v in secrets.values()), secrets
    client = app.test_client()
    seen: list[str] = []

    def record(resp: Any) -> Any:
        seen.append(f"{resp.status} {dict(resp.headers)} {resp.get_data(as_text=True)}")
        return resp

    bearer = {"Authorization": f"Bearer {token}"}
    created = record(
        client.post(
            "/api/v1/campaigns",
            headers=bearer,
            content_type="application/json",
            data=json.dumps(
                {
                    "title": "Uji",
                    "body": "Uji rahasia",
                    "url": "https://kabarkini.example/u",
                    "send_at": time.time() + 3600,
                }
            ),
        )
    )
    assert created.status_code == 202
    cid = created.get_json()["id"]
    record(client.get(f"/api/v1/campaigns/{cid}", headers=bearer))
    # Near-miss and malformed credentials: the error must not echo what was sent.
    assert (
        record(
            client.get(f"/api/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {token}x"})
        ).status_code
        == 401
    )
    assert (
        record(
            client.get(f"/api/v1/campaigns/{cid}", headers={"Authorization": f"Basic {token}"})
        ).status_code
        == 401
    )
    # The CMS webhook, signed right and wrong.
    body = json.dumps({"guid": "g-1", "title": "Judul", "url": "https://kabarkini.example/g-1"}).encode()
    stamp = str(int(time.time()))
    good = {
        "X-Notifier-Timestamp": stamp,
        "X-Notifier-Signature": sign(context.settings.webhook_secret, stamp, body),
    }
    assert (
        record(
            client.post("/api/v1/articles", data=body, headers=good, content_type="application/json")
        ).status_code
        < 300
    )
    bad = {**good, "X-Notifier-Signature": sign("not-the-secret", stamp, body)}
    assert (
        record(
            client.post("/api/v1/articles", data=body, headers=bad, content_type="application/json")
        ).status_code
        == 401
    )
    # Logins, wrong then right, then the dashboards.
    app.config["CSRF_DISABLED"] = True
    record(client.post("/login", data={"email": "admin@kabarkini.example", "password": WRONG_PASSWORD}))
    assert (
        record(
            client.post("/login", data={"email": "admin@kabarkini.example", "password": PASSWORD})
        ).status_code
        == 302
    )
    for path in (
        "/",
        "/newsroom/campaigns",
        f"/newsroom/campaigns/{cid}",
        "/newsroom/users",
        "/ops/",
        "/ops/summary.json",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/api/v1/vapid-public-key",
        "/sw.js",
    ):
        status = record(client.get(path)).status_code
        assert status < 500 or (path == "/readyz" and status == 503), path  # readyz: no worker runs here

    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert "POST /api/v1/campaigns" in logs or caplog.records, "the request log was not captured"
    haystack = {"logs": logs, "responses": "\n".join(seen)}
    leaks = [
        (name, where) for name, value in secrets.items() for where, text in haystack.items() if value in text
    ]
    assert leaks == []


def test_tokens_and_passwords_are_stored_hashed(context: Context, r: redis.Redis) -> None:
    token = TokenStore(context.redis, context.keys).create("cms")
    UserStore(context.redis, context.keys).create("ed@kabarkini.example", PASSWORD)
    stored: list[str] = []
    for key in r.scan_iter():
        kind = r.type(key)
        stored.append(key)
        if kind == "string":
            stored.append(r.get(key) or "")
        elif kind == "hash":
            stored.extend(f"{k}={v}" for k, v in r.hgetall(key).items())
        elif kind in ("set", "zset", "list"):
            stored.extend(
                r.smembers(key)
                if kind == "set"
                else r.zrange(key, 0, -1)
                if kind == "zset"
                else r.lrange(key, 0, -1)
            )
    text = "\n".join(stored)
    assert token not in text and token[4:] not in text
    assert PASSWORD not in text
    assert "$argon2" in text  # the password hash is argon2
