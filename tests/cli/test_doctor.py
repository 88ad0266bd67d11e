"""``notifier doctor`` against the push service simulator: our sender and pywebpush, one message each."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from notifier.context import Context
from notifier_cli import main
from notifier_simulator import SimulatorServer
from tests.factories import store_minted


def doctor(settings_env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["doctor", *args], env=settings_env)
    return result.exit_code, result.output


def test_doctor_compares_our_answer_with_pywebpushs(
    settings_env: dict[str, str], context: Context, simulator: SimulatorServer
) -> None:
    minted = simulator.mint(1)
    store_minted(context, minted)
    endpoint = str(minted[0]["endpoint"])
    sid = context.subscriptions.sid_of(endpoint)
    assert sid is not None

    code, out = doctor(settings_env, sid, "--yes")
    assert code == 0, out
    assert "both accepted" in out and re.search(r"HTTP status +201 +201\n", out)
    got = simulator.received(endpoint)
    assert len(got) == 2  # both decrypted by the simulator: one from each sender
    assert all(
        r.decrypted and json.loads(r.payload or b"")["notification"]["tag"] == "notifier-doctor" for r in got
    )

    simulator.add_rule(403, endpoint=endpoint)
    code, out = doctor(settings_env, endpoint, "--yes", "--json")
    report = json.loads(out.splitlines()[-1])
    assert code == 2 and [a["status"] for a in report["answers"]] == [403, 403]
    assert "refuses both the same way (HTTP 403)" in report["verdict"] and "VAPID" in report["verdict"]
    assert context.subscriptions.count() == 1  # the doctor deletes nothing

    simulator.clear_rules()
    simulator.add_rule(500, endpoint=endpoint, count=1)  # only the first request fails: ours
    code, out = doctor(settings_env, sid, "--yes")
    assert code == 1 and "the answers differ" in out and "500" in out


def test_doctor_asks_first_and_names_an_unknown_subscription(
    settings_env: dict[str, str], context: Context, simulator: SimulatorServer
) -> None:
    code, out = doctor(settings_env, "987654")
    assert code == 1 and "no stored subscription '987654'" in out
    store_minted(context, simulator.mint(1))
    result = CliRunner().invoke(main, ["doctor", "0"], env=settings_env, input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert simulator.received() == []
