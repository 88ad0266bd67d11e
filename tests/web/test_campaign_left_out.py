"""Readers a campaign leaves out at planning (unreachable, over their budget) beside its audience: on the
campaign page (both languages, and its JSON), in ``notifier campaigns show``, agreeing with compose's
audience and the ops figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from notifier import stats
from notifier.campaigns import DRAFT, CampaignInput, CampaignStore
from notifier.context import Context
from notifier.delivery import Delivery
from notifier.subscriptions import validate_subscription
from notifier_cli import main


def add_readers(context: Context, n: int) -> list[str]:
    host = context.settings.push_hosts[0]
    sids = []
    for i in range(n):
        item = validate_subscription(
            {
                "endpoint": f"http://{host}/push/left{i}",
                "keys": {
                    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                    "auth": "tBHItJI5svbpez7KI4CCXg",
                },
                "topics": ["breaking"],
            },
            policy=context.policy,
            topics=context.topics,
        )
        sids.append(context.subscriptions.upsert(item)[0])
    return sids


def standing(context: Context, sids: list[str]) -> None:
    """Three unreachable readers (no push shown) and two over their budget (no click), of ten."""
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent(sids[:3], pipe, unreachable_after=1, budget=0, now=1_800_000_000)
    context.subscriptions.mark_sent(sids[3:5], pipe, unreachable_after=0, budget=1, now=1_800_000_000)
    pipe.execute()


def plan(context: Context, cid: str) -> None:
    assert Delivery(context).plan(cid, lambda *args, **kwargs: None) >= 1


def test_the_campaign_page_and_the_command_line_show_who_planning_left_out(
    client,
    login_as,
    context: Context,
    settings_env: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    login_as("editor")
    sids = add_readers(context, 10)
    standing(context, sids)
    store = CampaignStore(context.redis, context.keys)
    item = CampaignInput(
        title="Banjir rob", body="b", url="https://kabarkini.example/rob", topics=("breaking",)
    )

    # Compose counts 5 reached, 3 unreachable, 2 over budget; ops counts the same readers apart.
    audience = client.get("/newsroom/audience.json?topic=breaking").get_json()
    assert (audience["reached"], audience["unreachable"], audience["over_budget"]) == (5, 3, 2)
    subs = stats.subscribers(context.redis, context.keys, ("breaking",), sample=0)
    assert (subs["unreachable"], subs["over_budget"]) == (3, 2)

    # A draft waiting for approval: the audience compose would send to, and who it would leave out now.
    draft = store.create(item, state=DRAFT)
    html = client.get(f"/newsroom/campaigns/{draft}?lang=en").get_data(as_text=True)
    assert "Audience: 5 subscribers · left out: 3 unreachable, 2 over budget" in html
    assert 'id="left-out-predicted">' in html and 'id="left-out-planned" hidden' in html

    # Planned: the counts its planning wrote, beside "N of M readers", in both languages.
    cid = store.create(item)
    plan(context, cid)
    planned = store.get(cid)
    assert (planned.counters["total"], planned.counters["unreachable"], planned.counters["over_budget"]) == (
        5,
        3,
        2,
    )
    html = client.get(f"/newsroom/campaigns/{cid}?lang=en").get_data(as_text=True)
    assert 'id="total-count">5</span> readers' in html
    assert (
        '<span id="left-out"> · left out: <span id="left-out-unreachable">3</span> unreachable, '
        '<span id="left-out-over-budget">2</span> over budget</span>'
    ) in html
    assert 'id="left-out-planned">Left out when the campaign was planned' in html
    assert 'id="left-out-urgent" hidden' in html
    html_id = client.get(f"/newsroom/campaigns/{cid}?lang=id").get_data(as_text=True)
    assert (
        'tertinggal: <span id="left-out-unreachable">3</span> tak terjangkau, '
        '<span id="left-out-over-budget">2</span> melewati jatah'
    ) in html_id
    # The page's live JSON carries the same figures (the script keeps the line current).
    live = client.get(f"/newsroom/campaigns/{cid}.json").get_json()["left_out"]
    assert live == {
        "readers": 5,
        "unreachable": 3,
        "over_budget": 2,
        "planned": True,
        "shown": True,
        "urgent": False,
    }

    # Readers who became unreachable after planning do not change what the campaign left out.
    more = context.redis.pipeline()
    context.subscriptions.mark_sent(sids[5:6], more, unreachable_after=1, budget=0, now=1_800_000_000)
    more.execute()
    assert client.get(f"/newsroom/campaigns/{cid}.json").get_json()["left_out"]["unreachable"] == 3
    assert client.get("/newsroom/audience.json?topic=breaking").get_json()["unreachable"] == 4

    # An urgent alert leaves nobody out, and says so.
    urgent = store.create(CampaignInput(**{**item.__dict__, "breaking": True}))
    plan(context, urgent)
    html = client.get(f"/newsroom/campaigns/{urgent}?lang=en").get_data(as_text=True)
    assert (
        '<span id="left-out" hidden>' in html
        and 'id="left-out-urgent">An urgent alert leaves nobody out' in html
    )
    assert store.get(urgent).counters["total"] == 10

    runner = CliRunner()

    def show(campaign: str) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(
            main, ["campaigns", "show", campaign], env=settings_env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert show(cid)["readers"] == {
        "readers": 5,
        "unreachable": 3,
        "over_budget": 2,
        "planned": True,
        "left_out": "left out: 3 unreachable, 2 over budget",
    }
    # The draft's prediction follows the readers' standing now (one more became unreachable).
    assert (
        show(draft)["readers"]["left_out"] == "left out: 4 unreachable, 2 over budget (if it were sent now)"
    )
    assert show(urgent)["readers"]["left_out"].startswith("none: an urgent alert")
    assert show(urgent)["readers"]["readers"] == 10
    assert show(draft)["readers"]["readers"] == 4
