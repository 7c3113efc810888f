"""Run-wide state in the ledger, through the engine on moto: one run split over several Engine objects (as the
remediate Lambda runs one per invocation) keeps its circuit-breaker limits, warns and alerts once per limit,
notifies once per observation, and writes each result to the ledger once.

moto's DynamoDB is not safe under threads; the tests run its requests one at a time (demo/moto_serial.py), as
DynamoDB applies each atomically.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.engine.config import Config, Limits, config_from_dict
from functions.engine.engine import Engine, LedgerBreaker, MemoryBreaker
from functions.engine.ledger import DynamoDbLedger, Ledger, SqliteLedger, create_table, idempotency_key
from functions.engine.sessions import AssumedSessions
from functions.model import Result
from tests.e2e.test_engine import ACCOUNTS, ROLE, open_ssh_group, sg_finding, world_ssh_open
from tests.factories import make_finding

RUN = "20261202T120000Z-0badcafe"


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request, moto_aws, tmp_path):
    if request.param == "sqlite":
        made = SqliteLedger(tmp_path / "ledger.db")
        yield made
        made.close()
    else:
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "ledger")
        yield DynamoDbLedger("ledger", client=client)


def invocation(config: Config, ledger: Ledger | None, **kwargs) -> Engine:
    return Engine(config, AssumedSessions(role_name=ROLE), stage="apply", run_id=RUN, ledger=ledger, **kwargs)


def test_one_run_over_four_invocations_acts_up_to_the_limits_and_alerts_once_per_limit(ledger, caplog):
    """Per rule 5, per account 7. Account 1 has 4 EC2.13 and 4 EC2.19 groups (its account limit binds), accounts
    2 and 3 have 4 EC2.53 groups each (the rule limit binds). Four invocations of one run, one slice each, at
    the same time."""
    def groups(rule: str, account: str, count: int) -> list:
        return [make_finding(rule, "AwsEc2SecurityGroup", open_ssh_group(account, f"{rule}-{n}"), account_id=account)
                for n in range(count)]

    a1, a2, a3 = ACCOUNTS[:3]
    findings = [*groups("EC2.13", a1, 4), *groups("EC2.19", a1, 4), *groups("EC2.53", a2, 4),
                *groups("EC2.53", a3, 4)]
    config = config_from_dict({"mode": "enforce", "rules": {"EC2.19": {"mode": "enforce"}},  # EC2.19 is disruptive
                               "limits": {"max_actions_per_rule": 5, "max_actions_per_account": 7}})
    alerts: list[Result] = []
    caplog.set_level(logging.WARNING)
    slices = [findings[n::4] for n in range(4)]
    engines = [invocation(config, ledger, on_trip=alerts.append) for _ in slices]
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda engine, batch: engine.run(batch), engines, slices))
    results = [r for batch in batches for r in batch]

    acted = [r for r in results if r.outcome == "remediated"]
    assert Counter(r.account_id for r in acted)[a1] == 7
    assert Counter(r.rule_id for r in acted)["EC2.53"] == 5
    held = [r for r in results if r.circuit_breaker]
    assert len(acted) == 12 and len(held) == 4 and {r.outcome for r in held} == {"planned"}
    assert sum(world_ssh_open(f.account_id, f.resource_id) for f in findings) == 4  # the real state agrees

    tripped = {"circuit breaker: 7 actions in account 111111111111 this run; planning only",
               "circuit breaker: 5 actions for rule EC2.53 this run; planning only"}
    assert {r.reason for r in held} == tripped
    warnings = [r.getMessage() for r in caplog.records if "circuit breaker" in r.getMessage()]
    assert sorted(warnings) == sorted(f"run {RUN}: {reason}" for reason in tripped)  # once per limit
    assert sorted(a.reason for a in alerts) == sorted(tripped)


def test_without_a_ledger_the_limits_are_the_engines_own(moto_aws):
    config = Config(mode="enforce", limits=Limits(max_actions_per_rule=1))
    findings = [sg_finding(a, open_ssh_group(a)) for a in ACCOUNTS[:3]]
    first, second = invocation(config, None), invocation(config, None)
    assert isinstance(first.breaker, MemoryBreaker)
    assert sorted(r.outcome for r in first.run(findings[:2])) == ["planned", "remediated"]
    assert [r.outcome for r in second.run(findings[2:])] == ["remediated"]  # each Engine counts alone


def test_a_reached_limit_is_not_asked_again(ledger, monkeypatch):
    """Past the limit, the rest of an invocation's batch costs no ledger write."""
    calls: list[str] = []
    real = ledger.reserve
    monkeypatch.setattr(ledger, "reserve", lambda *args: calls.append(args[1]) or real(*args))
    breaker = LedgerBreaker(ledger, RUN)
    limits = Limits(max_actions_per_rule=1)
    assert [breaker.reserve("EC2.53", "A", limits), breaker.reserve("EC2.53", "B", limits)][0] is None
    assert breaker.reserve("EC2.53", "C", limits).first is False
    assert len(calls) == 2
    other = LedgerBreaker(ledger, RUN)  # another invocation of the run: the ledger says it is full, not first
    assert other.reserve("EC2.53", "D", limits).first is False


def test_one_ledger_write_per_result(ledger, monkeypatch):
    """A remediated finding used to be recorded twice (the guard's finish and on_result): now once, and its
    claim is settled by that one write."""
    findings = [sg_finding(a, open_ssh_group(a)) for a in ACCOUNTS[:3]]
    puts: Counter[str] = Counter()
    settles: Counter[str] = Counter()
    real_put, real_settle = ledger._put_result, ledger._settle
    monkeypatch.setattr(ledger, "_put_result", lambda row, *a: puts.update([row["finding_id"]]) or real_put(row, *a))
    monkeypatch.setattr(ledger, "_settle", lambda key, *a: settles.update([key]) or real_settle(key, *a))
    results = invocation(Config(mode="enforce"), ledger, on_result=lambda _r: None).run(findings)
    assert [r.outcome for r in results] == ["remediated"] * 3
    assert puts == Counter({f.finding_id: 1 for f in findings})
    assert settles == Counter({idempotency_key(f): 1 for f in findings})
    assert {ledger.get(idempotency_key(f))["status"] for f in findings} == {"completed"}


def test_a_result_the_ledger_refuses_is_returned_and_its_claim_released(ledger, monkeypatch):
    findings = [sg_finding(a, open_ssh_group(a)) for a in ACCOUNTS[:2]]
    real = ledger.record

    def refuse_first(result: Result, key: str | None = None) -> None:
        if result.finding_id == findings[0].finding_id:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")
        real(result, key)

    monkeypatch.setattr(ledger, "record", refuse_first)
    engine = invocation(Config(mode="enforce"), ledger)
    assert [r.outcome for r in engine.run(findings)] == ["remediated", "remediated"]
    assert engine.unrecorded == {findings[0].finding_id}
    assert ledger.get(idempotency_key(findings[0]))["status"] == "released"  # a redelivery may look again
    assert ledger.get(idempotency_key(findings[1]))["status"] == "completed"


def test_a_notify_only_finding_is_notified_once_per_observation(ledger):
    findings = [make_finding("IAM.9", "AwsAccount", a, account_id=a, last_observed="2026-12-01T00:00:00Z")
                for a in ACCOUNTS[:3]]
    sent: list[str] = []
    pulls = [Engine(Config(), AssumedSessions(), stage="plan", ledger=ledger, run_id=f"pull-{n}",
                    notifier=lambda r: sent.append(r.account_id)) for n in range(2)]
    first = [r for _, r in pulls[0].screen(findings)]
    second = [r for _, r in pulls[1].screen(findings)]
    assert sorted(sent) == ACCOUNTS[:3]
    assert [r.outcome for r in first] == ["notified"] * 3
    assert [r.outcome for r in second] == ["skipped"] * 3
    assert all(r.reason == "duplicate: this observation was already notified by run pull-0" for r in second)
    later = make_finding("IAM.9", "AwsAccount", ACCOUNTS[0], account_id=ACCOUNTS[0],
                         last_observed="2026-12-02T00:00:00Z")
    assert [r.outcome for _, r in pulls[1].screen([later])] == ["notified"]  # a new observation: told again


def test_a_notification_that_fails_is_failed_and_sent_by_the_next_pull(ledger):
    finding = make_finding("IAM.9", "AwsAccount", ACCOUNTS[0], account_id=ACCOUNTS[0])

    def down(_result: Result) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "SNS is down"}}, "Publish")

    failing = Engine(Config(), AssumedSessions(), stage="plan", ledger=ledger, notifier=down)
    ((_, result),) = failing.screen([finding])
    assert (result.outcome, result.reason) == ("failed", "notification not sent: ClientError: An error occurred "
                                               "(InternalError) when calling the Publish operation: SNS is down")
    sent: list[Result] = []
    ((_, again),) = Engine(Config(), AssumedSessions(), stage="plan", ledger=ledger, notifier=sent.append).screen(
        [finding])
    assert again.outcome == "notified" and len(sent) == 1
