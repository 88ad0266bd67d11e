"""The outcome policy's pure decisions (notifier.breakers): half-open verdicts, cool-downs, late key trips."""

from __future__ import annotations

from notifier.breakers import (
    FAILING,
    INCONCLUSIVE,
    KEY,
    RECOVERED,
    BatchJudge,
    Policy,
    Probe,
    Tally,
)


def judge(policy: Policy, so_far: dict[str, Tally], **kw) -> BatchJudge:  # type: ignore[no-untyped-def]
    return BatchJudge(policy, "c1", 1000, {}, {}, so_far, lambda service: 0.0, lambda service: [], **kw)


def test_a_key_sample_recovers_when_accepted_and_fails_when_still_refused() -> None:
    policy = Policy()
    assert policy.probe_verdict(KEY, Tally(10, 10, 0, 0), 0.0) == RECOVERED
    # A few readers' own bad subscriptions in the sample do not keep the breaker shut.
    assert policy.probe_verdict(KEY, Tally(10, 8, 0, 2), 0.0) == RECOVERED
    assert policy.probe_verdict(KEY, Tally(10, 0, 0, 10), 0.0) == FAILING
    assert policy.probe_verdict(KEY, Tally(10, 1, 0, 9), 0.0) == FAILING
    assert policy.probe_verdict(KEY, Tally(), 0.0) == INCONCLUSIVE


def test_a_gone_sample_recovers_under_the_threshold_that_opened_it() -> None:
    policy = Policy()  # threshold max(30 %, 5 x normal rate)
    assert policy.probe_verdict("gone", Tally(10, 7, 3, 0), 0.0) == RECOVERED
    assert policy.probe_verdict("gone", Tally(10, 6, 4, 0), 0.0) == FAILING
    assert policy.probe_verdict("gone", Tally(10, 6, 4, 0), 0.1) == RECOVERED  # 5 x 10 % normally
    assert policy.probe_verdict("gone", Tally(), 0.0) == INCONCLUSIVE


def test_each_failed_sample_doubles_the_cool_down_up_to_its_maximum() -> None:
    policy = Policy(probe_cooldown=300, probe_cooldown_max=1000)
    waits = [300.0]
    for _ in range(4):
        waits.append(policy.next_cooldown(waits[-1]))
    assert waits == [300, 600, 1000, 1000, 1000]


def test_a_probe_keeps_its_sample_through_its_stored_form() -> None:
    probe = Probe("fcm", 12.5, 300.0, "probing", 2, "c1", "p3_fcm", ("4", "9"), 11.0, "10 of 10 answers")
    assert Probe.from_json(probe.to_json()) == probe
    assert Probe.from_json("{not json") is None


def test_a_key_problem_no_batch_saw_alone_opens_at_a_batch_end() -> None:
    # Batches in flight together each read the campaign's answers when they began: 0. This one's
    # own 25 rejections are far from the 200 answers needed; at its end, 180 more are recorded.
    policy = Policy()
    j = judge(policy, {})
    for _ in range(25):
        assert j.observe("fcm", "rejected", 401) is None
    assert j.recheck_keys() == []
    j.so_far = {"fcm": Tally(180, 0, 0, 180)}
    trips = j.recheck_keys()
    assert [(t.kind, t.service, t.status, t.count, t.answers) for t in trips] == [(KEY, "fcm", 401, 205, 205)]
    assert "fcm" in j.held and not j.rejections_count_against_readers("fcm")
    # The service accepted messages in the campaign: its rejections are readers' own, no trip.
    other = judge(policy, {"fcm": Tally(400, 200, 0, 200)})
    for _ in range(25):
        other.observe("fcm", "rejected", 403)
    assert other.recheck_keys() == []


def test_a_sample_batch_is_not_held_back_from_the_service_it_tries() -> None:
    policy = Policy()
    probe = Probe("fcm", 0.0, 300.0, "probing", 0, "c1", "p1_fcm", ("1",), 0.0)
    from notifier.breakers import Trip

    trip = Trip(KEY, "fcm", 401, 200, 200, 1.0, 0.0, "c1", 0.0)
    j = BatchJudge(policy, "c1", 1000, {"fcm": {KEY: trip}}, {"fcm": "held"}, {}, lambda s: 0.0,
                   lambda s: [], {"fcm": probe})  # fmt: skip
    assert "fcm" not in j.held
    for _ in range(10):
        j.observe("fcm", "sent", 201)
    assert j.probe_verdicts() == {"fcm": {KEY: RECOVERED}}


def test_a_resend_reaches_each_reader_once_takes_back_their_gone_and_reopens_a_done_campaign(context) -> None:  # type: ignore[no-untyped-def]
    from notifier.campaigns import CampaignStore
    from tests.factories import create

    store = CampaignStore(context.redis, context.keys)
    cid = create(context)
    key = context.keys.campaign(cid)
    context.redis.hset(key, mapping={"state": "done", "gone": 3, "sent": 7, "total": 10, "pending": 0})
    context.redis.hset(context.keys.campaign_services(cid), mapping={"fcm:gone": 3, "fcm:sent": 7})
    readers = [("4", "fcm", "chrome"), ("5", "fcm", "chrome"), ("6", "fcm", "firefox")]
    batches = store.resend(cid, readers, prefix="x1_fcm_", batch_size=2, reason="again")
    assert batches == [["4", "5"], ["6"]]
    campaign = store.get(cid)
    assert (campaign.state, campaign.counters["gone"], campaign.pending) == ("sending", 0, 2)
    assert campaign.reason == "again" and store.services(cid)["fcm"]["gone"] == 0
    assert store.browsers(cid) == {"chrome": {"gone": -2}, "firefox": {"gone": -1}}
    # Once each: the same readers again (a restore run twice) send nothing and count nothing.
    assert store.resend(cid, readers, prefix="x2_fcm_", batch_size=2, reason="again") == []
    assert store.get(cid).counters["gone"] == 0 and store.get(cid).pending == 2
