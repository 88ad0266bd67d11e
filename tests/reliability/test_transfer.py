"""Export and import of subscriptions: a lossless round trip, refused lines by number, and the CLI."""

from __future__ import annotations

import dataclasses
import io
import json

from click.testing import CliRunner

from notifier.subscriptions import validate_subscription
from notifier.transfer import export_lines, export_to, import_lines
from notifier_cli import main
from tests.factories import store_bulk


def snapshot(context):  # type: ignore[no-untyped-def]
    """Every subscription (without the key id, which an import does not know) and every topic."""
    store = context.subscriptions
    subs = {}
    for page in store.scan_ids():
        for sub in store.load_many(page):
            subs[sub.sid] = dataclasses.replace(sub, key_id="")
    topics = {}
    for t in context.topics:
        topics[t.slug] = {sid for _, ids in store.iter_bitmap(context.keys.subs_topic(t.slug)) for sid in ids}
    return subs, topics


def seed(context, simulator, n: int = 1200):  # type: ignore[no-untyped-def]
    minted = simulator.mint(n, shared_keys=True)
    slugs = [t.slug for t in context.topics]
    store_bulk(context, minted[: n // 3], topics=slugs[:1], now=1_790_000_000)
    store_bulk(context, minted[n // 3 : 2 * n // 3], topics=slugs[:2], now=1_790_000_100)
    store_bulk(context, minted[2 * n // 3 :], topics=(), now=1_790_000_200)
    first = {**minted[0], "expirationTime": 1_900_000_000_000, "topics": slugs[:1]}
    item = validate_subscription(first, policy=context.policy, topics=context.topics)
    context.subscriptions.upsert(item, now=1_790_000_000)
    return minted


def test_round_trip_keeps_every_subscription_and_topic_set(context, simulator) -> None:  # type: ignore[no-untyped-def]
    seed(context, simulator)
    before = snapshot(context)
    buffer = io.StringIO()
    assert export_to(context, buffer) == 1200
    lines = buffer.getvalue().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {
        "endpoint", "expirationTime", "keys", "topics", "lang", "browser", "site", "created", "seen"
    }  # fmt: skip
    assert first["browser"] == "other" and first["site"] == context.sites.default.id  # sid 0: upsert()ed
    assert set(first["keys"]) == {"p256dh", "auth"}

    context.redis.flushdb()
    assert context.subscriptions.count() == 0
    report = import_lines(context, lines)
    assert (report.created, report.updated, report.refused) == (1200, 0, [])
    after = snapshot(context)
    # Same ids, same fields (endpoint, keys, topics, lang, browser, created, seen, expirationTime), same
    # topic sets.
    assert after == before
    assert before[0]["0"].expiration_time == 1_900_000_000_000
    assert sorted(export_lines(context)) == sorted(lines)

    # Importing the same file again updates in place: no duplicates.
    again = import_lines(context, lines)
    assert (again.created, again.updated) == (0, 1200)
    assert context.subscriptions.count() == 1200


def test_bad_lines_are_refused_by_number_and_the_rest_imported(context, simulator) -> None:  # type: ignore[no-untyped-def]
    good = [json.dumps({**s, "topics": ["breaking"]}) for s in simulator.mint(3)]
    bad_key = json.dumps({**simulator.mint(1)[0], "keys": {"p256dh": "AAAA", "auth": "BBBB"}})
    private = json.dumps({**simulator.mint(1)[0], "endpoint": "https://10.0.0.7/push/x"})
    lines = [
        good[0],
        "{not json",
        bad_key,
        "",
        good[1],
        private,
        json.dumps({**json.loads(good[2]), "topics": ["nope"]}),
    ]
    report = import_lines(context, lines)
    assert report.created == 2
    assert [n for n, _ in report.refused] == [2, 3, 6, 7]
    assert "not JSON" in report.refused[0][1]
    assert "p256dh" in report.refused[1][1]
    assert "unknown topic" in report.refused[3][1]
    assert context.subscriptions.count() == 2


def test_cli_export_and_import(context, simulator, settings_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(context, simulator, 300)
    before = snapshot(context)
    runner = CliRunner()
    out = tmp_path / "subs.jsonl"
    result = runner.invoke(main, ["export", "--out", str(out)], env=settings_env)
    assert result.exit_code == 0, result.output
    assert "exported 300 subscriptions" in result.output
    assert len(out.read_text().splitlines()) == 300

    to_stdout = runner.invoke(main, ["export"], env=settings_env)
    assert to_stdout.exit_code == 0
    assert sum(1 for line in to_stdout.stdout.splitlines() if line.startswith("{")) == 300

    context.redis.flushdb()
    result = runner.invoke(main, ["import", str(out)], env=settings_env)
    assert result.exit_code == 0, result.output
    assert "imported 300 subscriptions (300 new, 0 updated), refused 0 lines" in result.output
    assert snapshot(context) == before

    broken = tmp_path / "broken.jsonl"
    broken.write_text(out.read_text().splitlines()[0] + "\n{oops\n")
    result = runner.invoke(main, ["import", str(broken)], env=settings_env)
    assert result.exit_code == 1
    assert "line 2: refused: not JSON" in result.output
    assert "refused 1 lines" in result.output


def test_import_reads_a_byte_order_mark_and_refuses_only_the_line_that_is_not_utf8(  # type: ignore[no-untyped-def]
    context, simulator, settings_env, tmp_path
) -> None:
    lines = [
        json.dumps({**s, "topics": ["breaking"], "browser": "firefox"}).encode() for s in simulator.mint(3)
    ]
    broken = lines[1][:-2] + b'\xff"}'  # one invalid byte inside a string
    source = tmp_path / "from-a-spreadsheet.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\r\n" + broken + b"\n" + lines[2] + b"\n")
    result = CliRunner().invoke(main, ["import", str(source)], env=settings_env)
    assert result.exit_code == 1, result.output
    assert "line 2: refused: not UTF-8 text (byte 0xff" in result.output
    assert "imported 2 subscriptions (2 new, 0 updated), refused 1 lines" in result.output
    stored = [
        context.subscriptions.get_by_endpoint(json.loads(line)["endpoint"]) for line in (lines[0], lines[2])
    ]
    assert [sub.browser for sub in stored] == ["firefox", "firefox"]
