"""The ledger on both backends: SQLite (a temp file) and DynamoDB (moto), with an injectable clock."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from functions.engine.engine import ActionGuard
from functions.engine.ledger import (
    RESERVE_ATTEMPTS,
    TABLE_SCHEMA,
    DynamoDbLedger,
    Ledger,
    LedgerGuard,
    SqliteLedger,
    create_table,
    idempotency_key,
    notification_key,
    result_from_row,
)
from functions.model import Result
from tests.factories import make_finding

TABLE = "cspm-ledger"
TTL = 60


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now



@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dynamodb(moto_aws):
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table(client, TABLE)
    return client


@pytest.fixture(params=["sqlite", "dynamodb"])
def new_ledger(request, tmp_path, clock) -> Callable[[], Ledger]:
    """A factory: each call is another ledger (another process) on the same store."""
    if request.param == "sqlite":
        made: list[Ledger] = []

        def make() -> Ledger:
            made.append(SqliteLedger(tmp_path / "ledger.db", clock=clock, hold_seconds=3600))
            return made[-1]

        yield make
        for ledger in made:
            ledger.close()
    else:
        client = request.getfixturevalue("dynamodb")  # moto serialized (demo/moto_serial.py, conftest)
        yield lambda: DynamoDbLedger(TABLE, client=client, clock=clock, hold_seconds=3600)


@pytest.fixture
def ledger(new_ledger) -> Ledger:
    return new_ledger()


FINDING = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0abc", last_observed="2024-05-01T10:00:00Z")
KEY = idempotency_key(FINDING)


def result_for(finding=FINDING, outcome="remediated", run_id="run-1", **extra: Any) -> Result:
    return Result(
        finding_id=finding.finding_id, source=finding.source, rule_id=finding.rule_id,
        account_id=finding.account_id, region=finding.region, resource_type=finding.resource_type,
        resource_id=finding.resource_id, outcome=outcome, reason=extra.pop("reason", outcome), run_id=run_id,
        **extra,
    )


def in_other_thread(fn: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


# -- the key --------------------------------------------------------------------------------------------

def test_key_is_stable_and_made_of_rule_resource_and_observation():
    again = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0abc", last_observed="2024-05-01T10:00:00Z",
                         finding_id="arn:aws:securityhub:other-delivery-path")
    later = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0abc", last_observed="2024-05-02T10:00:00Z")
    assert idempotency_key(again) == KEY  # same observation, whatever path delivered it
    assert idempotency_key(later) != KEY  # reappeared after a fix: a new observation
    assert idempotency_key(make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0def")) != KEY
    # Pinned: changing the recipe re-opens every completed claim, so it needs a new version prefix.
    assert KEY == "v1:5f87190eb26e47ada983066f05e4c5c010938c251ae3f0dfbab3c6dfa16636ff"


def test_key_without_observation_matches_the_result_key():
    finding = make_finding("S3.8", "AwsS3Bucket", "bucket-a")
    assert idempotency_key(finding) == idempotency_key(result_for(finding))


# -- claims ---------------------------------------------------------------------------------------------

def test_first_claim_wins_and_a_duplicate_loses(ledger):
    assert ledger.claim(KEY, "run-1", TTL) is True
    assert ledger.claim(KEY, "run-1", TTL) is False
    assert in_other_thread(lambda: ledger.claim(KEY, "run-2", TTL)) is False
    claim = ledger.get(KEY)
    assert (claim["status"], claim["claimed_by"], claim["result"]) == ("in_flight", "run-1", None)


def test_completed_action_blocks_the_same_observation_but_not_a_new_one(ledger):
    ledger.claim(KEY, "run-1", TTL)
    ledger.record(result_for(pre_state={"IpPermissions": [{"FromPort": 22}]}, changes=["revoke 22"]), KEY)
    claim = ledger.get(KEY)
    assert claim["status"] == "completed"
    assert claim["result"]["pre_state"] == {"IpPermissions": [{"FromPort": 22}]}
    assert ledger.claim(KEY, "run-2", TTL) is False
    reappeared = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0abc", last_observed="2024-06-01T00:00:00Z")
    assert ledger.claim(idempotency_key(reappeared), "run-2", TTL) is True


def test_completed_claim_lapses_after_hold(ledger, clock):
    ledger.claim(KEY, "run-1", TTL)
    ledger.record(result_for(), KEY)
    clock.now += 3601
    assert ledger.claim(KEY, "run-2", TTL) is True


@pytest.mark.parametrize("outcome", ["failed", "noop", "planned", "skipped"])
def test_no_action_releases_the_claim(ledger, outcome):
    ledger.claim(KEY, "run-1", TTL)
    ledger.record(result_for(outcome=outcome), KEY)
    assert ledger.get(KEY)["status"] == "released"
    assert ledger.get(KEY)["result"]["outcome"] == outcome
    assert ledger.claim(KEY, "run-2", TTL) is True


def test_release_after_a_failed_attempt(ledger):
    ledger.claim(KEY, "run-1", TTL)
    ledger.release(KEY)
    assert ledger.get(KEY)["status"] == "released"
    assert ledger.claim(KEY, "run-2", TTL) is True


def test_abandoned_claim_is_taken_over_and_the_late_worker_cannot_settle_it(ledger, clock):
    assert ledger.claim(KEY, "run-1", TTL)
    clock.now += TTL - 1
    assert in_other_thread(lambda: ledger.claim(KEY, "run-2", TTL)) is False
    clock.now += 2
    assert in_other_thread(lambda: ledger.claim(KEY, "run-2", TTL)) is True
    ledger.record(result_for(outcome="failed"), KEY)  # the first worker wakes up: its token is gone
    assert (ledger.get(KEY)["status"], ledger.get(KEY)["claimed_by"]) == ("in_flight", "run-2")


def test_a_duplicate_records_its_result_without_touching_the_winners_claim(ledger):
    ledger.claim(KEY, "run-1", TTL)

    def duplicate() -> None:
        assert not ledger.claim(KEY, "run-1", TTL)
        ledger.record(result_for(outcome="skipped", reason="duplicate in flight"), KEY)
        ledger.record(result_for(outcome="failed"), KEY)
        ledger.release(KEY)

    in_other_thread(duplicate)
    assert ledger.get(KEY)["status"] == "in_flight"


def test_a_later_failure_of_a_started_execution_releases_the_key(ledger):
    ledger.claim(KEY, "run-1", TTL)
    ledger.record(result_for(outcome="started", execution_id="exec-1"), KEY)
    assert ledger.get(KEY)["status"] == "completed"
    in_other_thread(lambda: ledger.record(result_for(outcome="failed", execution_id="exec-1"), KEY))
    assert ledger.get(KEY)["status"] == "released"
    assert ledger.claim(KEY, "run-2", TTL) is True


def test_twenty_workers_one_winner(new_ledger):
    ledgers = [new_ledger() for _ in range(20)]  # as many processes as threads: the store decides, not a lock
    shared = ledgers[0]
    for contenders in (ledgers, [shared] * 20):
        key = f"{KEY}:{len(set(map(id, contenders)))}"
        barrier = threading.Barrier(len(contenders))

        def contend(pair: tuple[int, Ledger], key: str = key, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            return pair[1].claim(key, f"run-{pair[0]}", TTL)

        with ThreadPoolExecutor(len(contenders)) as pool:
            wins = list(pool.map(contend, enumerate(contenders)))
        assert wins.count(True) == 1


# -- results --------------------------------------------------------------------------------------------

def test_results_by_run_and_by_finding(ledger, clock):
    other = make_finding("S3.8", "AwsS3Bucket", "bucket-a")
    pre_state = {"versioning": "", "ratio": 0.5, "nested": {"empty": [], "none": None}}
    ledger.claim(KEY, "run-1", TTL)
    ledger.record(result_for(pre_state=pre_state, changes=["a", "b"], execution_id=None), KEY)
    clock.now += 1
    ledger.record(result_for(other, outcome="planned", reason="dry-run: would block public access"))
    clock.now += 1
    ledger.record(result_for(outcome="noop", run_id="run-2"), KEY)

    rows = list(ledger.results("run-1"))
    assert [r["finding_id"] for r in rows] == [FINDING.finding_id, other.finding_id]
    assert rows[0]["pre_state"] == pre_state and rows[0]["changes"] == ["a", "b"]
    assert rows[0]["key"] == KEY and rows[0]["recorded_at"] == "2023-11-14T22:13:20.000Z"
    assert rows[1]["reason"] == "dry-run: would block public access"
    assert [r["run_id"] for r in ledger.find(FINDING.finding_id)] == ["run-1", "run-2"]
    assert result_from_row(rows[0]) == result_for(pre_state=pre_state, changes=["a", "b"])
    assert list(ledger.results("run-3")) == []


def test_a_later_result_of_the_same_run_replaces_the_earlier(ledger, clock):
    ledger.record(result_for(outcome="started", execution_id="exec-1"), KEY)
    clock.now += 5
    ledger.record(result_for(outcome="remediated", execution_id="exec-1"), KEY)
    assert [(r["outcome"], r["execution_id"]) for r in ledger.results("run-1")] == [("remediated", "exec-1")]


def test_results_without_a_run_id_are_listed_under_the_empty_id(ledger):
    ledger.record(result_for(outcome="skipped", run_id=""), KEY)
    assert [r["outcome"] for r in ledger.results("")] == ["skipped"]


def test_table_schema_creates_the_table_with_ttl(dynamodb):
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"run_id-index", "finding_id-index"}
    assert table["KeySchema"] == TABLE_SCHEMA["KeySchema"]
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    ledger = DynamoDbLedger(TABLE, client=dynamodb)
    ledger.claim(KEY, "run-1", TTL)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"claim#{KEY}"}})["Item"]
    assert int(item["expires_at"]["N"]) > 0 and "run_id" not in item  # claims stay out of the GSIs


# -- the engine's guard ---------------------------------------------------------------------------------

def test_guard_lets_one_delivery_act_and_tells_the_others_why(new_ledger):
    first: ActionGuard = LedgerGuard(new_ledger())
    second: ActionGuard = LedgerGuard(new_ledger())  # another invocation, same store
    assert first.acquire(FINDING, "run-1") is None
    assert in_other_thread(lambda: second.acquire(FINDING, "run-2")) == (
        "duplicate: this observation is being remediated by run run-1")
    first.finish(FINDING, result_for())
    assert in_other_thread(lambda: second.acquire(FINDING, "run-2")) == (
        "duplicate: this observation is already remediated by run run-1")
    reappeared = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0abc", last_observed="2024-06-01T00:00:00Z")
    assert in_other_thread(lambda: second.acquire(reappeared, "run-2")) is None


def test_guard_releases_after_a_failure_or_a_circuit_breaker_plan(ledger):
    guard = LedgerGuard(ledger)
    for outcome in ("failed", "planned"):
        assert guard.acquire(FINDING, "run-1") is None
        guard.finish(FINDING, result_for(outcome=outcome))
    assert guard.acquire(FINDING, "run-2") is None


def test_sqlite_drops_expired_rows_when_opened(tmp_path, clock):
    first = SqliteLedger(tmp_path / "l.db", clock=clock, retention_seconds=10)
    first.record(result_for(), KEY)
    first.close()
    clock.now += 3600 * 25
    reopened = SqliteLedger(tmp_path / "l.db", clock=clock)
    assert list(reopened.results("run-1")) == [] and reopened.get(KEY) is None
    reopened.close()


def test_a_later_non_action_never_hides_an_action_of_the_same_run(ledger):
    """SQS redelivery in the same run: the second pass reads `noop`; the run still remediated the finding."""
    done = result_for(outcome="remediated")
    ledger.record(done)
    ledger.record(dataclasses.replace(done, outcome="noop", reason="already compliant"))
    ledger.record(dataclasses.replace(done, outcome="skipped", reason="duplicate"))
    assert [r["outcome"] for r in ledger.results(done.run_id)] == ["remediated"]
    ledger.record(dataclasses.replace(done, outcome="started", reason="runbook"))  # an action replaces an action
    assert [r["outcome"] for r in ledger.results(done.run_id)] == ["started"]


def test_an_action_replaces_an_earlier_failure(ledger):
    failed = result_for(outcome="failed")
    ledger.record(failed)
    ledger.record(dataclasses.replace(failed, outcome="remediated"))
    assert [r["outcome"] for r in ledger.results(failed.run_id)] == ["remediated"]


# -- run state: the circuit breaker's counters and trip marks ------------------------------------------

def test_a_reservation_takes_a_slot_on_both_counters_or_on_neither(ledger):
    assert [ledger.reserve("run-1", "EC2.53", "A", 3, 2) for _ in range(2)] == [None, None]
    assert ledger.reserve("run-1", "EC2.53", "A", 3, 2) == "account"  # account A is full ...
    assert ledger.reserve("run-1", "EC2.53", "B", 3, 2) is None  # ... and the refusal took no slot of the rule
    assert ledger.reserve("run-1", "EC2.53", "C", 3, 2) == "rule"
    assert ledger.reserve("run-1", "EC2.53", "A", 3, 2) == "rule"  # both full: the rule is named first
    assert ledger.reserve("run-1", "S3.8", "B", 3, 2) is None  # other rule, account B has 1 of 2
    assert ledger.reserve("run-2", "EC2.53", "A", 3, 2) is None  # another run counts from zero


def test_a_limit_of_zero_takes_nothing(ledger):
    assert ledger.reserve("run-1", "EC2.53", "A", 0, 5) == "rule"
    assert ledger.reserve("run-1", "EC2.53", "A", 5, 0) == "account"
    assert ledger.reserve("run-1", "EC2.53", "A", 1, 1) is None


def test_eight_workers_racing_are_granted_exactly_the_limits(new_ledger):
    """8 threads, each with its own ledger (another Lambda container), reserve at the same moment: per rule 5
    over 2 accounts, then per account 7 over 8 rules."""
    ledgers = [new_ledger() for _ in range(8)]

    def race(attempt: Callable[[int, Ledger], str | None]) -> list[str | None]:
        barrier = threading.Barrier(len(ledgers))

        def worker(pair: tuple[int, Ledger]) -> list[str | None]:
            barrier.wait()
            return [attempt(pair[0], pair[1]) for _ in range(3)]

        with ThreadPoolExecutor(len(ledgers)) as pool:
            return [outcome for outcomes in pool.map(worker, enumerate(ledgers)) for outcome in outcomes]

    per_rule = race(lambda n, ledger: ledger.reserve("run-1", "EC2.53", f"acct-{n % 2}", 5, 100))
    assert (per_rule.count(None), per_rule.count("rule")) == (5, 19)
    per_account = race(lambda n, ledger: ledger.reserve("run-2", f"rule-{n}", "acct-0", 100, 7))
    assert (per_account.count(None), per_account.count("account")) == (7, 17)


def test_a_trip_is_first_once_per_run_and_limit(new_ledger):
    ledgers = [new_ledger() for _ in range(8)]
    barrier = threading.Barrier(len(ledgers))

    def first(ledger: Ledger) -> bool:
        barrier.wait()
        return ledger.first_trip("run-1", "rule", "EC2.53")

    with ThreadPoolExecutor(len(ledgers)) as pool:
        assert sorted(pool.map(first, ledgers)) == [False] * 7 + [True]
    assert ledgers[0].first_trip("run-1", "account", "EC2.53") is True  # another limit
    assert ledgers[0].first_trip("run-2", "rule", "EC2.53") is True  # another run


def test_run_state_expires_like_results(dynamodb, tmp_path, clock):
    ledger = DynamoDbLedger(TABLE, client=dynamodb, clock=clock, retention_seconds=100)
    ledger.reserve("run-1", "EC2.53", "A", 5, 5)
    ledger.first_trip("run-1", "rule", "EC2.53")
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == [
        "breaker#run-1#account#A", "breaker#run-1#rule#EC2.53", "tripped#run-1#rule#EC2.53"]
    assert {int(i["expires_at"]["N"]) for i in items} == {int(clock.now) + 100}
    assert all("run_id" not in i for i in items)  # run state stays out of the result indexes

    local = SqliteLedger(tmp_path / "l.db", clock=clock, retention_seconds=100)
    local.reserve("run-1", "EC2.53", "A", 1, 5)
    local.close()
    clock.now += 101
    reopened = SqliteLedger(tmp_path / "l.db", clock=clock)
    assert reopened.reserve("run-1", "EC2.53", "A", 1, 5) is None  # the expired counter is gone
    reopened.close()


def cancelled(*codes: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": code} for code in codes]}, "TransactWriteItems")


def test_dynamodb_reservation_is_one_transaction_and_reads_the_cancellation_reasons(dynamodb):
    """The request as DynamoDB documents it, checked with a Stubber: two Updates in one TransactWriteItems; a
    TransactionConflict (another reservation on the counter at that moment) is tried again, a
    ConditionalCheckFailed names its counter's limit."""
    ledger = DynamoDbLedger(TABLE, client=dynamodb)
    ledger._sleep = lambda _seconds: None
    update = {"TableName": TABLE, "UpdateExpression": "ADD #n :one SET #expires_at = :expires_at",
              "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
              "ExpressionAttributeNames": {"#n": "n", "#expires_at": "expires_at"}}
    expected = {"TransactItems": [
        {"Update": {**update, "Key": {"pk": {"S": "breaker#run-1#rule#EC2.53"}},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": "25"}, ":expires_at": ANY}}},
        {"Update": {**update, "Key": {"pk": {"S": "breaker#run-1#account#A"}},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": "100"}, ":expires_at": ANY}}},
    ], "ClientRequestToken": ANY}
    with Stubber(dynamodb) as stub:
        stub.add_client_error("transact_write_items", "TransactionCanceledException", "cancelled",
                              response_meta=None, expected_params=expected,
                              modeled_fields={"CancellationReasons": [{"Code": "TransactionConflict"},
                                                                      {"Code": "None"}]})
        stub.add_response("transact_write_items", {}, expected)
        assert ledger.reserve("run-1", "EC2.53", "A", 25, 100) is None
        stub.add_client_error("transact_write_items", "TransactionCanceledException", "cancelled",
                              modeled_fields={"CancellationReasons": [{"Code": "None"},
                                                                      {"Code": "ConditionalCheckFailed"}]})
        assert ledger.reserve("run-1", "EC2.53", "A", 25, 100) == "account"
        stub.assert_no_pending_responses()


def test_dynamodb_reservation_gives_up_on_endless_contention(dynamodb, monkeypatch):
    ledger = DynamoDbLedger(TABLE, client=dynamodb)
    sleeps: list[float] = []
    ledger._sleep = sleeps.append

    def always_conflict(**_kwargs: Any) -> None:
        raise cancelled("TransactionConflict", "None")

    monkeypatch.setattr(dynamodb, "transact_write_items", always_conflict)
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        ledger.reserve("run-1", "EC2.53", "A", 25, 100)
    assert len(sleeps) == RESERVE_ATTEMPTS - 1 and all(0 <= s <= 2 for s in sleeps)


# -- notifications ---------------------------------------------------------------------------------------

def test_notifications_are_claimed_apart_from_actions(ledger):
    """A notified result recorded without a claim (the CLI) marks nothing; a claimed notification completes
    its own key, never the action's, so the rule moved to enforce is acted on at once."""
    key = notification_key(FINDING)
    notified = result_for(outcome="notified", last_observed=FINDING.last_observed)  # as make_result fills it
    assert key != KEY and key == notification_key(notified)
    ledger.record(notified)
    assert ledger.get(KEY) is None and ledger.get(key) is None
    assert ledger.claim(key, "run-1", TTL)
    ledger.record(notified, key)
    assert ledger.get(key)["status"] == "completed" and not ledger.claim(key, "run-2", TTL)
    assert ledger.claim(KEY, "run-2", TTL)
