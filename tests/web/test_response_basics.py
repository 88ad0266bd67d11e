"""What every API answer carries, however it is built: headers, request id, sessions, JSON bytes."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask, jsonify

from tests.factories import make_sub, post
from web.errors import BodyRefused, json_response, parse_json_bytes
from web.security import CONTENT_SECURITY_POLICY


def test_subscribe_answer_headers(client) -> None:  # type: ignore[no-untyped-def]
    resp = post(client, make_sub())
    assert resp.status_code == 201
    assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
    assert "Cookie" in resp.headers.get("Vary", "")  # it looked for a newsroom session
    assert "Set-Cookie" not in resp.headers  # and, finding none, set none
    assert resp.get_data().endswith(b"}\n")


def test_a_view_s_own_security_header_is_kept(app: Flask) -> None:
    @app.get("/own-csp")
    def own_csp():  # type: ignore[no-untyped-def]
        return "x", 200, {"Content-Security-Policy": "default-src 'none'", "X-Request-ID": "view-chosen-id"}

    resp = app.test_client().get("/own-csp")
    assert resp.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    assert resp.headers.getlist("X-Request-ID") == ["view-chosen-id"]
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_forged_session_cookie_is_still_verified(client) -> None:  # type: ignore[no-untyped-def]
    client.set_cookie("session", "eyJ1c2VyIjoiYWRtaW5Aa2FiYXJraW5pLmV4YW1wbGUifQ.forged.signature")
    resp = client.get("/ops/summary.json")
    assert resp.status_code == 401


@pytest.mark.parametrize(
    "data", [{"id": "x", "topics": ["a", "b"], "lang": "id"}, {"b": 1, "a": "é ☃", "c": None}, []]
)
def test_json_response_writes_what_jsonify_writes(app: Flask, data) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        ours, theirs = json_response(data, 201), jsonify(data)
        assert ours.get_data() == theirs.get_data()
        assert ours.mimetype == theirs.mimetype and ours.status_code == 201


def test_lone_surrogates_are_found_in_any_escape_form() -> None:
    for raw in (b'{"a": "\\ud800"}', b'{"a": "x\\uDFFFy"}', b'["\\\\", "\\udc00"]'):
        with pytest.raises(BodyRefused) as refused:
            parse_json_bytes(raw)
        assert json.loads(refused.value.response.get_data())["error"] == "invalid_unicode"
    # An escaped backslash before "u" is plain text, and a surrogate pair is one real character.
    assert parse_json_bytes(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}
    assert parse_json_bytes(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    assert parse_json_bytes('{"a": "😀"}'.encode()) == {"a": "😀"}
