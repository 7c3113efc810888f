"""The remediate Lambda settles each SQS record on its own (issue #11 items 3-5), on moto.

One batch, as the event source mapping hands it over, holds: a finding whose ledger write fails (DynamoDB
answers PutItem with 500 InternalServerError until botocore gives up), one whose security group was deleted
after the scan, one in an account whose remediation role refuses AssumeRole, one whose account keeps
throttling DescribeSecurityGroups, two ordinary ones and a malformed body. Faults are HTTP-level error
responses (tests/faults.py); nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from connectors.finding import Finding
from functions.aws_lambda import handlers
from functions.engine import engine as engine_module
from functions.engine.automation import ExecutionStatus
from functions.engine.engine import Engine, make_result
from functions.engine.ledger import idempotency_key, result_from_row
from functions.engine.rollback import rollback
from functions.engine.sessions import AWS_TOTAL_ATTEMPTS
from tests.e2e.test_handlers import asff_for
from tests.faults import (
    ACCOUNTS,
    CALLER,
    REGION,
    FaultInjector,
    LambdaStack,
    Org,
    assumed_sessions,
    assuming,
    lambda_stack,
    no_backoff,
    reassume_outside_remediators,
)

LEDGER_FAULT, DELETED, NO_ROLE, THROTTLED, CLEAN = ACCOUNTS


@pytest.fixture
def faults(monkeypatch) -> FaultInjector:
    no_backoff(monkeypatch)
    reassume_outside_remediators(monkeypatch)
    return FaultInjector()


@pytest.fixture
def org(moto_aws, monkeypatch) -> Org:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return Org()


@pytest.fixture
def stack(org, faults, monkeypatch) -> Iterator[LambdaStack]:
    with lambda_stack(org, monkeypatch, faults) as stack:
        # A second open group in the account whose ledger write fails: its other finding must not be affected.
        second = org.open_ssh_group(LEDGER_FAULT, "second")
        boto3.client("securityhub", region_name=REGION).batch_import_findings(
            Findings=[asff_for(LEDGER_FAULT, second, 99)])
        org.groups_extra = {LEDGER_FAULT: second}  # type: ignore[attr-defined]
        yield stack


def account_of(record: dict[str, Any]) -> str:
    return json.loads(record["body"])["finding"]["account_id"]


def resource_of(record: dict[str, Any]) -> str:
    return json.loads(record["body"])["finding"]["resource_id"]


def results(stack: LambdaStack, run_id: str) -> dict[str, Any]:
    return {r.resource_id: r for r in map(result_from_row, stack.rt.ledger.results(run_id))}


def put_of_result(resource_id: str):
    """`when=` for DynamoDB PutItem of one finding's result row (not its claim)."""
    def when(request: Any) -> bool:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        return '"result#' in body and resource_id in body
    return when


class Context:
    """A Lambda context whose remaining time is read from a script (the last value repeats)."""

    def __init__(self, *remaining_ms: int) -> None:
        self._remaining = list(remaining_ms)

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining.pop(0) if len(self._remaining) > 1 else self._remaining[0]


def test_one_batch_each_record_settled_on_its_own(stack, org, faults):
    run_id = handlers.pull({"source": "securityhub"})["run_id"]
    records = stack.finding_records()
    assert sorted(map(account_of, records)) == sorted([*ACCOUNTS, LEDGER_FAULT])
    groups = dict(org.groups)
    victim, sibling = groups[LEDGER_FAULT], org.groups_extra[LEDGER_FAULT]

    # The ledger write of the victim's result (one per action) fails, after botocore's attempts.
    faults.error(CALLER, "dynamodb.PutItem", "InternalServerError", times=AWS_TOTAL_ATTEMPTS, status=500,
                 when=put_of_result(victim))
    org.ec2(DELETED).delete_security_group(GroupId=groups[DELETED])  # gone between pull and remediate
    del org.groups[DELETED]
    faults.error(CALLER, "sts.AssumeRole", "AccessDenied", when=assuming(NO_ROLE))  # the role is not there
    throttling = faults.error(THROTTLED, "ec2.DescribeSecurityGroups", "RequestLimitExceeded")
    malformed = {"messageId": "malformed", "body": "{not json", "attributes": {"ApproximateReceiveCount": "1"}}

    response = handlers.remediate({"Records": [*records, malformed]}, Context(300_000))

    returned = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    by_resource = {resource_of(r): r["messageId"] for r in records}
    assert returned == {by_resource[victim], by_resource[groups[THROTTLED]], "malformed"}
    assert throttling.injected == AWS_TOTAL_ATTEMPTS  # botocore's attempts, no second layer

    recorded = results(stack, run_id)
    assert recorded[sibling].outcome == "remediated"  # same account as the victim: unaffected
    assert recorded[groups[CLEAN]].outcome == "remediated"
    gone = recorded[groups[DELETED]]
    assert gone.outcome == "skipped" and gone.reason.startswith("resource no longer exists: ")
    no_role = recorded[groups[NO_ROLE]]
    assert no_role.outcome == "skipped" and "remediation role missing or refused" in no_role.reason
    throttled = recorded[groups[THROTTLED]]
    assert throttled.outcome == "failed" and throttled.error == "RequestLimitExceeded"
    assert victim not in recorded  # not yet: kept by the container, its message returned
    assert org.still_open() == [NO_ROLE, THROTTLED]  # the victim's group was fixed; its record was not lost

    # The redelivery of what came back, after the faults: the container writes the kept action first (and
    # settles its claim); the victim's message is acknowledged, its run keeps the action with its pre-state.
    faults.clear()
    again = [dict(r, attributes={"ApproximateReceiveCount": "2"}) for r in records
             if r["messageId"] in returned]
    assert handlers.remediate({"Records": again}, Context(300_000)) == {"batchItemFailures": []}
    recorded = results(stack, run_id)
    assert recorded[victim].outcome == "remediated" and recorded[victim].pre_state  # the action, as it was
    assert recorded[groups[THROTTLED]].outcome == "remediated"
    assert stack.rt.ledger.get(idempotency_key(recorded[victim]))["status"] == "completed"  # not left in flight
    assert org.still_open() == [NO_ROLE]


def test_a_failed_ledger_write_releases_the_claim_so_the_retry_acts(stack, org, faults):
    """The action did not complete (its write was throttled) and its `failed` result did not reach the ledger:
    the retry must act, not be refused as a duplicate by the claim the failed delivery still held."""
    run_id = handlers.pull({"source": "securityhub"})["run_id"]
    records = [r for r in stack.finding_records() if account_of(r) == CLEAN]
    group = org.groups[CLEAN]
    faults.error(CLEAN, "ec2.RevokeSecurityGroupIngress", "RequestLimitExceeded")
    faults.error(CALLER, "dynamodb.PutItem", "InternalServerError", times=2 * AWS_TOTAL_ATTEMPTS, status=500,
                 when=put_of_result(group))
    response = handlers.remediate({"Records": records}, Context(300_000))
    assert [i["itemIdentifier"] for i in response["batchItemFailures"]] == [records[0]["messageId"]]
    assert org.ssh_open(CLEAN) and group not in results(stack, run_id)
    faults.clear()
    assert handlers.remediate({"Records": records}, Context(300_000)) == {"batchItemFailures": []}
    again = results(stack, run_id)[group]
    assert again.outcome == "remediated", again.reason
    assert not org.ssh_open(CLEAN)


class ClockAfter:
    """A Lambda context with plenty of time until `spent()` is true, then less than the margin."""

    def __init__(self, spent) -> None:
        self._spent = spent

    def get_remaining_time_in_millis(self) -> int:
        ms = handlers.REMAINING_TIME_MARGIN_MS
        return ms - 1 if self._spent() else ms + 60_000


def test_records_not_started_before_the_time_margin_come_back_untouched(stack, org):
    handlers.pull({"source": "securityhub"})
    records = stack.finding_records()
    two = [r for r in records if account_of(r) == LEDGER_FAULT]  # one account, one rule: one group, in order
    # Time runs short once the first is fixed: the engine starts no further finding.
    context = ClockAfter(lambda: not org.ssh_open(LEDGER_FAULT, resource_of(two[0])))
    response = handlers.remediate({"Records": two}, context)
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [two[1]["messageId"]]
    assert org.ssh_open(LEDGER_FAULT, resource_of(two[1]))  # not started: nothing done, nothing claimed
    assert not org.ssh_open(LEDGER_FAULT, resource_of(two[0]))
    assert handlers.remediate({"Records": [two[1]]}, Context(300_000)) == {"batchItemFailures": []}
    assert not org.ssh_open(LEDGER_FAULT, resource_of(two[1]))


def test_a_batch_started_under_the_margin_starts_nothing(stack, org):
    handlers.pull({"source": "securityhub"})
    records = stack.finding_records()
    response = handlers.remediate({"Records": records}, Context(handlers.REMAINING_TIME_MARGIN_MS - 1))
    assert sorted(i["itemIdentifier"] for i in response["batchItemFailures"]) == \
        sorted(r["messageId"] for r in records)
    assert all(org.ssh_open(account_of(r), resource_of(r)) for r in records)


def test_a_bug_after_one_result_fails_that_record_only(stack, org, monkeypatch):
    handlers.pull({"source": "securityhub"})
    records = stack.finding_records()
    broken = org.groups[CLEAN]

    def exploding_settle(rt, engine, item, result, *args, **kwargs):
        if item.finding.resource_id == broken:
            raise RuntimeError("a bug in the record's own handling")
        return settle(rt, engine, item, result, *args, **kwargs)

    settle = handlers._settle
    monkeypatch.setattr(handlers, "_settle", exploding_settle)
    response = handlers.remediate({"Records": records}, Context(300_000))
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == \
        [r["messageId"] for r in records if resource_of(r) == broken]
    assert org.still_open() == []  # every other record was processed


def test_a_status_check_that_could_not_be_queued_is_queued_by_the_redelivery(stack, org, monkeypatch):
    """A runbook was started (the claim is completed with its execution id) but queuing its status check
    failed: that record comes back, and its redelivery — a duplicate for the claim, so it starts nothing —
    queues the check. moto has no SSM Automation: the start is the engine's result, as a stub (docstring)."""
    handlers.pull({"source": "securityhub"})
    record = next(r for r in stack.finding_records() if account_of(r) == CLEAN)
    finding = Finding.from_dict(json.loads(record["body"])["finding"])
    run_id = json.loads(record["body"])["run_id"]
    execution = "0b6b7c1d-1111-2222-3333-444455556666"
    ledger = stack.rt.ledger

    def started(self, findings):
        (only,) = findings
        key = idempotency_key(only)
        assert ledger.claim(key, self.run_id)  # what the guard does before the start
        result = make_result(only, "started", f"started a runbook (execution {execution})", self.run_id,
                             execution_id=execution)
        ledger.record(result, key)  # and after it: the claim is completed
        return [result]

    monkeypatch.setattr(handlers, "STATUS_FIRST_DELAY", 0)  # the check is visible at once, not in 60 s
    real_run, real_enqueue = Engine.run, handlers.Runtime.enqueue
    monkeypatch.setattr(Engine, "run", started)

    def sqs_down(self, messages):
        raise RuntimeError("SQS did not accept 1 message(s) after 3 attempts")

    monkeypatch.setattr(handlers.Runtime, "enqueue", sqs_down)
    response = handlers.remediate({"Records": [record]}, Context(300_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert stack.records() == []

    monkeypatch.setattr(Engine, "run", real_run)  # the real engine: the claim makes the redelivery a duplicate
    monkeypatch.setattr(handlers.Runtime, "enqueue", real_enqueue)
    again = dict(record, attributes={"ApproximateReceiveCount": "2"})
    assert handlers.remediate({"Records": [again]}, Context(300_000)) == {"batchItemFailures": []}
    assert org.ssh_open(CLEAN)  # nothing acted twice
    (status,) = [json.loads(r["body"]) for r in stack.records()]
    assert (status["kind"], status["execution_id"], status["run_id"]) == ("status", execution, run_id)
    assert finding.finding_id == status["finding"]["finding_id"]


def test_a_runbook_verified_by_its_status_check_keeps_the_pre_state_a_rollback_needs(stack, org, monkeypatch):
    """The `remediated` row the status check writes replaces the `started` one: it must carry the pre-state on
    (the status message holds it), or the run cannot be rolled back. moto has no SSM Automation: the start is the
    engine's result with the real assessment's pre-state, the runbook's work is done with boto3, and the
    execution's status is a stub of GetAutomationExecution's Success (docstrings)."""
    handlers.pull({"source": "securityhub"})
    record = next(r for r in stack.finding_records() if account_of(r) == CLEAN)
    run_id = json.loads(record["body"])["run_id"]
    execution = "0b6b7c1d-1111-2222-3333-444455556666"
    ledger = stack.rt.ledger
    real_run = Engine.run

    def started(self, findings):
        (only,) = findings
        target = self.sessions.target(only.account_id, only.region, only.partition)
        entry = self.catalog[only.rule_id]
        assessment = self._remediator(entry).assess(target, only)
        key = idempotency_key(only)
        assert ledger.claim(key, self.run_id)
        result = make_result(only, "started", f"started a runbook (execution {execution})", self.run_id,
                             execution_id=execution, pre_state=assessment.pre_state, mode="enforce",
                             executor="ssm")
        ledger.record(result, key)
        return [result]

    monkeypatch.setattr(handlers, "STATUS_FIRST_DELAY", 0)
    monkeypatch.setattr(Engine, "run", started)
    assert handlers.remediate({"Records": [record]}, Context(300_000)) == {"batchItemFailures": []}
    monkeypatch.setattr(Engine, "run", real_run)
    (status_record,) = stack.records()
    status = json.loads(status_record["body"])
    started_row = next(ledger.results(run_id))
    assert status["pre_state"] == started_row["pre_state"] and status["pre_state"]["IpPermissions"]

    # The runbook's work (what the boto3 path would do), then its Success.
    finding = Finding.from_dict(status["finding"])
    org.ec2(CLEAN).revoke_security_group_ingress(GroupId=org.groups[CLEAN], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    monkeypatch.setattr(engine_module, "execution_status", lambda target, execution_id: ExecutionStatus(
        execution_id, "Success", "remediated", f"SSM execution {execution_id} Success"))
    assert handlers.remediate({"Records": [status_record]}, Context(300_000)) == {"batchItemFailures": []}
    (row,) = [r for r in ledger.results(run_id) if r["finding_id"] == finding.finding_id]
    assert row["outcome"] == "remediated" and row["execution_id"] == execution
    assert row["pre_state"] == started_row["pre_state"]

    ((_, rolled),) = rollback([row], assumed_sessions(), apply=True)
    assert rolled.outcome == "restored", rolled.reason
    assert org.ssh_open(CLEAN)
