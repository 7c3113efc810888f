"""The deployed path handles together what the CLI's engine handles together (issue #19): the pull enqueues one
account's findings of one group (the password-policy rules, one rule's security groups) side by side, and the
remediate Lambda runs a batch through one engine run, so one batch of the password rules costs one
GetAccountPasswordPolicy and one UpdateAccountPasswordPolicy, and one batch of security groups one describe.

On moto, every request counted where it leaves botocore (tests/faults.py FaultInjector, no faults injected).
moto lacks BatchUpdateFindings: the write-back is answered in-process (demo.deployed.answer_writeback).
"""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest

from demo.deployed import answer_writeback
from functions.aws_lambda import handlers, work_queue
from functions.engine.catalog import CATALOG
from functions.engine.ledger import create_table, result_from_row
from functions.engine.pacing import Pacer
from functions.engine.sessions import AssumedSessions
from tests.e2e.test_deployed_path import asff, ssh_open_groups, world_ssh_open
from tests.e2e.test_handlers import receive_all
from tests.faults import FaultInjector, assumed_sessions

REGION = "us-east-1"
PASSWORDS, GROUPS = "111111111111", "222222222222"
# The rules that change the one password policy: the engine combines their writes (combines_writes).
PASSWORD_RULES = sorted(r for r, entry in CATALOG.items() if entry.remediator.combines_writes)


@pytest.fixture
def stack(moto_aws, monkeypatch, tmp_path):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "ledger")
    groups = ssh_open_groups(GROUPS, 6)
    findings = [asff(PASSWORDS, rule, "AwsAccount", PASSWORDS) for rule in PASSWORD_RULES]
    findings += [asff(GROUPS, "EC2.13", "AwsEc2SecurityGroup", f"arn:aws:ec2:{REGION}:{GROUPS}:security-group/{g}")
                 for g in groups]
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=findings)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mode": "enforce"}))
    for name, value in {"WORK_QUEUE_URL": queue, "LEDGER_TABLE": "ledger", "CSPM_SOURCE": "securityhub",
                        "CSPM_REGIONS": REGION, "CSPM_CONFIG": str(config),
                        "REMEDIATION_ROLE_NAME": "CSPMRemediationRole", "CSPM_SUMMARY_DELAY_SECONDS": "0"}.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    rt = handlers.runtime()
    calls = FaultInjector()
    rt.sessions = assumed_sessions(calls, role_name="CSPMRemediationRole")
    answer_writeback(rt.session)
    yield {"sqs": sqs, "queue": queue, "rt": rt, "calls": calls}
    handlers.reset_runtime()


def finding_records(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in receive_all(stack["sqs"], stack["queue"]) if json.loads(r["body"])["kind"] == "finding"]


def rule_of(record: dict[str, Any]) -> str:
    return json.loads(record["body"])["finding"]["rule_id"]


def policy() -> dict[str, Any]:
    """The password policy of the account under test, read as its admin would (not counted: another session)."""
    iam = AssumedSessions(role_name="OrganizationAccountAccessRole", pacer=Pacer({})).target(PASSWORDS, REGION).client(
        "iam")
    return iam.get_account_password_policy()["PasswordPolicy"]


def shuffled_source(monkeypatch) -> None:
    """GetFindings promises no order and moto answers one account's findings of one rule filter together: the
    source is shuffled so the pull sees the password findings interleaved with the security groups."""
    listed = handlers.pull_securityhub

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        items = list(listed(*args, **kwargs))
        random.Random(7).shuffle(items)
        return iter(items)

    monkeypatch.setattr(handlers, "pull_securityhub", interleaved)


def test_one_batch_of_the_password_rules_reads_and_writes_the_policy_once(stack, monkeypatch):
    assert len(PASSWORD_RULES) >= 8
    shuffled_source(monkeypatch)
    run_id = handlers.pull({})["run_id"]
    records = finding_records(stack)
    at = [n for n, record in enumerate(records) if rule_of(record) in PASSWORD_RULES]
    # The password findings left the pull side by side although Security Hub listed them interleaved.
    assert at == list(range(at[0], at[0] + len(PASSWORD_RULES))), [rule_of(r) for r in records]
    batch = [r for r in records if rule_of(r) in PASSWORD_RULES]
    assert handlers.remediate({"Records": batch}) == {"batchItemFailures": []}

    calls = stack["calls"]
    assert calls.count(PASSWORDS, "iam.UpdateAccountPasswordPolicy") == 1
    assert calls.count(PASSWORDS, "iam.GetAccountPasswordPolicy") == 2  # the assessment, one verification
    rows = [result_from_row(row) for row in stack["rt"].ledger.results(run_id)]
    assert sorted(r.rule_id for r in rows if r.outcome == "remediated") == PASSWORD_RULES
    live = policy()
    assert live["MinimumPasswordLength"] >= 14 and live["RequireSymbols"] and live["PasswordReusePrevention"] >= 24

    handlers.pull({})  # the next scheduled run: Security Hub still lists them, the policy passes now
    again = [r for r in finding_records(stack) if rule_of(r) in PASSWORD_RULES]
    assert handlers.remediate({"Records": again}) == {"batchItemFailures": []}
    assert calls.count(PASSWORDS, "iam.UpdateAccountPasswordPolicy") == 1
    assert policy() == live


def test_one_batch_of_security_groups_is_described_together(stack):
    handlers.pull({})
    batch = [r for r in finding_records(stack) if rule_of(r) == "EC2.13"]
    assert len(batch) == 6
    assert handlers.remediate({"Records": batch}) == {"batchItemFailures": []}
    assert not any(world_ssh_open(GROUPS).values())
    # One describe for the six (batched assessment), then one per group to verify its own change.
    assert stack["calls"].count(GROUPS, "ec2.DescribeSecurityGroups") == 1 + 6


def test_side_by_side_groups_messages_of_one_key_and_holds_a_bounded_number():
    messages = [((f"acct{n % 3}", "r", "g"), work_queue.Message("finding", {"n": n})) for n in range(12)]
    out = [m.body["n"] for m in work_queue.side_by_side(messages, flush_at=4, hold_max=100)]
    assert sorted(out) == list(range(12))
    assert [n % 3 for n in out] == [0] * 4 + [1] * 4 + [2] * 4  # each account's four as soon as there are four
    held = [m.body["n"] for m in work_queue.side_by_side(messages, flush_at=100, hold_max=5)]
    assert sorted(held) == list(range(12))
    assert held[:2] == [0, 3]  # over 5 held: the largest group went out first, the rest at the end by key
