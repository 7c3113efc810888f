"""The Lambda handlers on moto keep a run's state in the ledger: several concurrent `remediate` invocations of
one scheduled run act up to the circuit-breaker limits exactly, and warn and alert once per limit reached;
two scheduled pulls send one SNS message per notify-only finding.

The operator's inbox is an SQS queue subscribed to the topic. moto lacks BatchUpdateFindings: the write-back is
answered in-process (demo.deployed.answer_writeback). moto's DynamoDB requests run one at a time
(demo/moto_serial.py: its TransactWriteItems is not safe under threads).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from demo.deployed import answer_writeback
from functions.aws_lambda import handlers
from functions.engine.ledger import create_table, result_from_row
from tests.e2e.test_deployed_path import asff, inbox, ssh_open_groups, topic_with_inbox, world_ssh_open
from tests.e2e.test_handlers import receive_all

REGION = "us-east-1"
A1, A2, A3 = "111111111111", "222222222222", "333333333333"
PER_RULE, PER_ACCOUNT = 5, 7
# Account A1: 4 + 4 findings of two rules, so its account limit binds; EC2.53 in A2 and A3: its rule limit binds.
GROUPS = [("EC2.13", A1, 4), ("EC2.19", A1, 4), ("EC2.53", A2, 4), ("EC2.53", A3, 4)]
NOTIFY = (A1, A2, A3)  # IAM.9 (root MFA) is notify-only


@pytest.fixture
def stack(moto_aws, monkeypatch, tmp_path):
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    topic, mail = topic_with_inbox(sqs)
    create_table(boto3.client("dynamodb", region_name=REGION), "ledger")

    findings = [asff(account, rule, "AwsEc2SecurityGroup", f"arn:aws:ec2:{REGION}:{account}:security-group/{group}")
                for rule, account, count in GROUPS for group in ssh_open_groups(account, count)]
    findings += [asff(account, "IAM.9", "AwsAccount", account) for account in NOTIFY]
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=findings)

    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "mode": "enforce", "rules": {"EC2.19": {"mode": "enforce"}},  # EC2.19 is disruptive: its own opt-in
        "limits": {"max_actions_per_rule": PER_RULE, "max_actions_per_account": PER_ACCOUNT},
    }))
    for name, value in {"WORK_QUEUE_URL": queue, "SNS_TOPIC_ARN": topic, "LEDGER_TABLE": "ledger",
                        "CSPM_SOURCE": "securityhub", "CSPM_REGIONS": REGION, "CSPM_CONFIG": str(config),
                        "REMEDIATION_ROLE_NAME": "CSPMRemediationRole", "CSPM_SUMMARY_DELAY_SECONDS": "0"}.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    rt = handlers.runtime()
    answer_writeback(rt.session)
    yield {"sqs": sqs, "queue": queue, "mail": mail, "rt": rt}
    handlers.reset_runtime()


def test_concurrent_invocations_of_one_run_keep_its_limits_and_alert_once(stack, caplog):
    sqs, rt = stack["sqs"], stack["rt"]
    caplog.set_level(logging.WARNING)
    run_id = handlers.pull({})["run_id"]
    records = receive_all(sqs, stack["queue"])
    work = [r for r in records if json.loads(r["body"])["kind"] == "finding"]
    assert len(work) == sum(count for *_, count in GROUPS)
    batches = [work[n:n + 4] for n in range(0, len(work), 4)]  # four invocations, at the same time
    with ThreadPoolExecutor(4) as pool:
        assert all(response == {"batchItemFailures": []}
                   for response in pool.map(lambda batch: handlers.remediate({"Records": batch}), batches))
    handlers.remediate({"Records": [r for r in records if json.loads(r["body"])["kind"] == "summary"]})

    results = [result_from_row(row) for row in rt.ledger.results(run_id)]
    acted = [r for r in results if r.outcome == "remediated"]
    assert Counter(r.account_id for r in acted)[A1] == PER_ACCOUNT
    assert Counter(r.rule_id for r in acted)["EC2.53"] == PER_RULE
    held = [r for r in results if r.circuit_breaker]
    assert len(held) == len(work) - PER_ACCOUNT - PER_RULE and {r.outcome for r in held} == {"planned"}
    assert sum(sum(world_ssh_open(account).values()) for account in (A1, A2, A3)) == len(held)

    limits = [f"{PER_ACCOUNT} actions in account {A1}", f"{PER_RULE} actions for rule EC2.53"]
    warnings = [r.getMessage() for r in caplog.records if "circuit breaker" in r.getMessage()]
    assert sorted(warnings) == sorted(f"run {run_id}: circuit breaker: {limit} this run; planning only"
                                      for limit in limits)
    mail = inbox(sqs, stack["mail"])
    alerts = sorted((m["subject"], m["body"].splitlines()[0]) for m in mail if "circuit breaker" in m["subject"])
    assert alerts == sorted((f"[cspm-remediation] circuit breaker tripped: {limit}",
                             f"Run {run_id} reached a circuit-breaker limit: {limit}.") for limit in limits)
    summaries = [m for m in mail if m["subject"].startswith(f"[cspm-remediation] apply {run_id}:")]
    assert len(summaries) == 1 and "Circuit breaker tripped (4 finding(s) planned, not changed)" in \
        summaries[0]["body"]


def test_two_pulls_notify_each_notify_only_finding_once(stack):
    first, second = handlers.pull({}), handlers.pull({})
    assert first["decided_at_pull"] == {"notified": len(NOTIFY)}
    assert second["decided_at_pull"] == {"skipped": len(NOTIFY)}
    notices = [m for m in inbox(stack["sqs"], stack["mail"]) if "action needed: IAM.9" in m["subject"]]
    assert sorted(m["subject"].split(" in ")[1].split()[0] for m in notices) == sorted(NOTIFY)
    rows = {r["account_id"]: r for r in stack["rt"].ledger.results(second["run_id"]) if r["rule_id"] == "IAM.9"}
    assert {r["reason"] for r in rows.values()} == {
        f"duplicate: this observation was already notified by run {first['run_id']}"}
