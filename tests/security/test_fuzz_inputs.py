"""Hypothesis over the inputs that used to reach storage or a 500: ids, numbers, URLs, endpoints, times.

Through the public interfaces, the JSON API (as raw bodies, so ``NaN`` and ``Infinity`` literals
and numbers too big for a float arrive as a client would send them) and the ``notifier`` command:
no 5xx and no traceback, every API refusal a JSON ``{"error", "message"}``, and a refused request
stores no campaign and no subscription. Derandomized, so a run is repeatable; ~10 s.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import redis
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier_cli import main as cli
from web.cms import sign

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Characters that name other keys, escape paths or break parsers, mixed into ids and URLs.
NASTY = ":/\\.%#?@[]{}\x00\n\r\t \u202e\ud7ff😀"
ids = st.one_of(
    st.text(alphabet=st.sampled_from("0123456789abcdefxyz" + NASTY), max_size=40),
    st.from_regex(r"[0-9a-z]{8,40}(:timeline|:held|:services|:batches:done)?", fullmatch=True),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "0x10", "１２"]),
)
urls = st.one_of(
    st.from_regex(r"https?://kabarkini\.example(:[0-9a-z]{0,6})?/[a-z/\.]{0,12}(#x)?", fullmatch=True),
    st.builds(
        lambda h, p: f"http://{h}:{p}/x",
        st.sampled_from(["2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "127.1", "[::1]"]),
        st.integers(0, 99999),
    ),
    st.text(alphabet=st.sampled_from("htps:/ak.ex" + NASTY), max_size=30),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20), urls),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def raw_json(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN/Infinity literals, huge numbers as digits."""

    def fix(v: Any) -> Any:
        if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity", "1e400"):
            return _Literal(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    text = json.dumps(fix(value), default=lambda lit: f"@@{lit.text}@@", allow_nan=True, ensure_ascii=False)
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        text = text.replace(f'"@@{literal}@@"', literal)
    return text.encode("utf-8", "surrogatepass")


class _Literal:
    def __init__(self, text: str) -> None:
        self.text = text


def counts(context: Context) -> tuple[int, int]:
    return CampaignStore(context.redis, context.keys).count(), context.subscriptions.count()


def check_answer(response: Any, before: tuple[int, int], context: Context) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and {"error", "message"} <= set(body), response.get_data(as_text=True)[
            :300
        ]
        assert counts(context) == before, "a refused request stored something"


def test_fuzz_campaign_bodies_and_ids(app: Flask, context: Context, api_token: str, r: redis.Redis) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_token}"}
    base = {"title": "Judul", "body": "Isi.", "url": "https://kabarkini.example/a", "topics": ["breaking"]}

    @FUZZ
    @given(
        fields=st.dictionaries(
            st.sampled_from(
                ["title", "body", "url", "image", "ttl", "send_at", "topics", "urgency", "breaking", "story"]
            ),
            values,
            max_size=4,
        ),
        cid=ids,
    )
    def run(fields: dict[str, Any], cid: str) -> None:
        before = counts(context)
        response = client.post(
            "/api/v1/campaigns",
            data=raw_json({**base, **fields}),
            content_type="application/json",
            headers=auth,
        )
        check_answer(response, before, context)
        if response.status_code == 202:
            made = CampaignStore(context.redis, context.keys).get(response.get_json()["id"])
            assert made.send_at is None or math.isfinite(made.send_at)
            assert client.get(f"/api/v1/campaigns/{made.cid}", headers=auth).status_code == 200
        for path in (f"/api/v1/campaigns/{cid}", f"/api/v1/campaigns/{cid}/cancel"):
            before = counts(context)
            check_answer(
                client.open(path, method="GET" if path.endswith(cid) else "POST", headers=auth),
                before,
                context,
            )

    run()


def test_fuzz_subscriptions_receipts_and_webhook(app: Flask, context: Context, simulator) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    real = simulator.mint(1)[0]

    @FUZZ
    @given(
        endpoint=st.one_of(
            urls,
            st.builds(
                lambda s: real["endpoint"] + s, st.text(alphabet=st.sampled_from(NASTY + "aB"), max_size=4)
            ),
        ),
        expiration=st.one_of(st.none(), numbers),
        lang=values,
        receipt=st.fixed_dictionaries(
            {"type": st.sampled_from(["shown", "clicked", "x"]), "cid": ids, "sid": ids, "rt": ids}
        ),
        article=st.dictionaries(
            st.sampled_from(["guid", "title", "url", "image", "categories", "published_at", "breaking"]),
            values,
            max_size=4,
        ),
    )
    def run(
        endpoint: str, expiration: Any, lang: Any, receipt: dict[str, str], article: dict[str, Any]
    ) -> None:
        before = counts(context)
        body = {**real, "endpoint": endpoint, "expirationTime": expiration, "lang": lang}
        check_answer(
            client.post("/api/v1/subscriptions", data=raw_json(body), content_type="application/json"),
            before,
            context,
        )
        before = counts(context)
        check_answer(
            client.post("/api/v1/events", data=raw_json(receipt), content_type="application/json"),
            before,
            context,
        )
        raw = raw_json({"guid": "kk-fuzz", "title": "Judul", "url": "https://kabarkini.example/x", **article})
        stamp = str(int(time.time()))
        headers = {
            "X-Notifier-Timestamp": stamp,
            "X-Notifier-Signature": sign("webhook-test-secret", stamp, raw),
        }
        before = counts(context)
        check_answer(
            client.post("/api/v1/articles", data=raw, headers=headers, content_type="application/json"),
            before,
            context,
        )

    run()


def test_fuzz_the_command_line(settings_env: dict[str, str], context: Context, tmp_path: Path) -> None:
    runner = CliRunner(env=settings_env)
    source = tmp_path / "import.jsonl"

    def no_traceback(args: list[str]) -> None:
        result = runner.invoke(cli, args)
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            repr(result.exception),
        )

    @FUZZ
    @given(
        verb=st.sampled_from(["show", "cancel", "resume"]),
        cid=ids.filter(lambda s: not s.startswith("-")),
        service=st.text(alphabet=st.sampled_from("fcm127.0:" + NASTY), max_size=12).filter(
            lambda s: not s.startswith("-")
        ),
        url=urls.filter(lambda s: not s.startswith("-")),
        at=st.one_of(
            st.text(max_size=25), st.sampled_from(["NaN", "inf", "2026-13-40T25:00+07:00", "9" * 30])
        ).filter(lambda s: not s.startswith("-")),
        ttl=st.one_of(st.integers(-(2**40), 2**40).map(str), st.sampled_from(["NaN", "1e9", ""])).filter(
            lambda s: not s.startswith("-")
        ),
        lines=st.lists(st.binary(max_size=60), max_size=4),
    )
    def run(verb: str, cid: str, service: str, url: str, at: str, ttl: str, lines: list[bytes]) -> None:
        no_traceback(["campaigns", verb, cid])
        no_traceback(["services", "resume", service])
        no_traceback(["services", "held", service])
        no_traceback(["feeds", "add", url])
        no_traceback(
            [
                "send",
                "--title",
                "Judul",
                "--body",
                "Isi.",
                "--url",
                url,
                "--at",
                at,
                "--ttl",
                ttl,
                "--no-wait",
            ]
        )
        source.write_bytes(b"\n".join(lines))
        no_traceback(["import", str(source)])

    run()
