"""The deployed path end to end (issue #11): one scheduled run split over many remediate invocations.

What the admin stack runs, on moto in this process: the pull handler reads Security Hub and enqueues into an
SQS queue with a dead-letter queue; four concurrent pollers (demo/sqs_event_source.py, the event source
mapping with ReportBatchItemFailures) hand the remediate handler batches of 10; the ledger is DynamoDB (moto)
or SQLite; SNS delivers to an SQS queue standing in for the operator's inbox.

One run: 303 enforce-mode findings over 4 accounts, with limits of 30 actions per rule and 20 per account.
Account A1 has 200 EC2.13 findings (its account limit binds), A2 and A3 have 50 EC2.53 findings each (the rule
limit binds), account NO_ROLE refuses AssumeRole (the remediation role is not deployed there); one security
group is deleted between pull and remediate; one ledger write fails once. IAM.9 (notify-only) in three
accounts checks that two pulls notify once.

moto lacks BatchUpdateFindings: the write-back calls are answered in-process (demo.deployed.answer_writeback).
moto's DynamoDB is not safe for concurrent writes (TransactWriteItems least of all): its requests run one at a time
(demo/moto_serial.py), as DynamoDB applies each atomically.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from demo.deployed import answer_writeback
from demo.sqs_event_source import SqsEventSource
from functions.aws_lambda import handlers
from functions.engine.ledger import create_table, result_from_row
from functions.engine.pacing import Pacer
from functions.engine.sessions import AssumedSessions

REGION = "us-east-1"
ADMIN = "123456789012"
A1, A2, A3, NO_ROLE = "111111111111", "222222222222", "333333333333", "444444444444"
ROLE = "CSPMRemediationRole"
PER_RULE, PER_ACCOUNT = 30, 20
GROUPS = {A1: ("EC2.13", 200), A2: ("EC2.53", 50), A3: ("EC2.53", 50), NO_ROLE: ("EC2.53", 3)}
NOTIFY_ACCOUNTS = (A1, A2, A3)


def asff(account: str, rule_id: str, resource_type: str, resource_id: str) -> dict[str, Any]:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:aws:securityhub:{REGION}:{ADMIN}:security-control/{rule_id}/finding/{uuid.uuid4()}",
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/securityhub",
        "GeneratorId": f"security-control/{rule_id}",
        "AwsAccountId": account,
        "Region": REGION,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-20T08:00:00.000Z",
        "UpdatedAt": "2026-11-23T02:00:00.000Z",
        "FirstObservedAt": "2026-11-20T08:00:00.000Z",
        "LastObservedAt": "2026-11-23T02:00:00.000Z",
        "Severity": {"Label": "HIGH"},
        "Title": rule_id,
        "Description": rule_id,
        "Resources": [{"Type": resource_type, "Id": resource_id, "Partition": "aws", "Region": REGION}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": rule_id},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }


def ec2_of(account: str) -> Any:
    """The test's own view of an account (unpaced: building the world is not the run under test)."""
    return AssumedSessions(role_name="OrganizationAccountAccessRole", pacer=Pacer({})).target(account, REGION).client(
        "ec2")


def ssh_open_groups(account: str, count: int) -> list[str]:
    ec2 = ec2_of(account)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    groups = []
    for n in range(count):
        group = ec2.create_security_group(GroupName=f"g{n}", Description="test", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ])
        groups.append(group)
    return groups


def world_ssh_open(account: str) -> dict[str, bool]:
    groups = ec2_of(account).describe_security_groups()["SecurityGroups"]
    return {
        g["GroupId"]: any(p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
                          for p in g["IpPermissions"])
        for g in groups if g["GroupName"] != "default"
    }


def queue_depth(sqs: Any, url: str) -> int:
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def topic_with_inbox(sqs: Any) -> tuple[str, str]:
    """The stack's SNS topic "alerts" and the operator's inbox: an SQS queue subscribed to it (read with inbox())."""
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    mail = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    mail_arn = sqs.get_queue_attributes(QueueUrl=mail, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=mail_arn)
    return topic, mail


def stack_runtime(monkeypatch: Any, env: dict[str, str], ledger: str, tmp_path: Any) -> Any:
    """The functions' runtime as the stack configures it: `env`, plus the ledger ("dynamodb": a table on moto;
    "sqlite": a file)."""
    if ledger == "dynamodb":
        create_table(boto3.client("dynamodb", region_name=REGION), "ledger")
        env = {**env, "LEDGER_TABLE": "ledger"}
    else:
        env = {**env, "CSPM_LEDGER_PATH": str(tmp_path / "ledger.sqlite")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    return handlers.runtime()


def inbox(sqs: Any, url: str) -> list[dict[str, str]]:
    out = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            envelope = json.loads(message["Body"])
            out.append({"subject": envelope.get("Subject", ""), "body": envelope.get("Message", "")})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


@pytest.fixture(params=["dynamodb", "sqlite"])
def stack(request, moto_aws, monkeypatch, tmp_path):
    """The admin stack's resources and environment, a Security Hub full of findings, the faults."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="work", Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
    })["QueueUrl"]
    topic, mail = topic_with_inbox(sqs)

    groups = {account: ssh_open_groups(account, count) for account, (_rule, count) in GROUPS.items()}
    findings = [asff(account, GROUPS[account][0], "AwsEc2SecurityGroup",
                     f"arn:aws:ec2:{REGION}:{account}:security-group/{group}")
                for account, ids in groups.items() for group in ids]
    findings += [asff(account, "IAM.9", "AwsAccount", account) for account in NOTIFY_ACCOUNTS]
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    for start in range(0, len(findings), 100):  # BatchImportFindings takes at most 100
        hub.batch_import_findings(Findings=findings[start:start + 100])

    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "mode": "enforce",
        "limits": {"max_actions_per_rule": PER_RULE, "max_actions_per_account": PER_ACCOUNT},
    }))
    env = {"WORK_QUEUE_URL": queue, "SNS_TOPIC_ARN": topic, "CSPM_SOURCE": "securityhub", "CSPM_REGIONS": REGION,
           "REMEDIATION_ROLE_NAME": ROLE, "CSPM_CONFIG": str(config), "CSPM_SUMMARY_DELAY_SECONDS": "0"}
    rt = stack_runtime(monkeypatch, env, request.param, tmp_path)
    writeback = answer_writeback(rt.session)

    def no_role_here(params: dict[str, Any], **_: Any) -> None:
        if f":{NO_ROLE}:" in params.get("RoleArn", ""):  # as STS answers when the role does not exist
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform "
                                         "sts:AssumeRole"}}, "AssumeRole")

    rt.sessions._base.events.register("before-parameter-build.sts.AssumeRole", no_role_here)
    yield {"sqs": sqs, "queue": queue, "dlq": dlq, "mail": mail, "groups": groups, "rt": rt,
           "writeback": writeback, "findings": findings}
    handlers.reset_runtime()


def test_one_run_over_concurrent_invocations_keeps_every_promise(stack, caplog):
    sqs, rt, groups = stack["sqs"], stack["rt"], stack["groups"]
    caplog.set_level(logging.WARNING)

    pulled = handlers.pull({})
    assert pulled["pulled"] == len(stack["findings"]) == 306
    run_id = pulled["run_id"]

    gone_account, gone = A2, groups[A2][0]  # deleted after the scan, before the work item is handled
    ec2_of(gone_account).delete_security_group(GroupId=gone)

    ledger = rt.ledger
    assert ledger is not None
    victim = next(f["Id"] for f in stack["findings"] if f["AwsAccountId"] == A3)
    failed_writes: list[str] = []
    real_record = ledger.record

    def record_failing_once(result, *args, **kwargs):  # fault injection: one ledger write fails once
        if result.finding_id == victim and not failed_writes:
            failed_writes.append(result.outcome)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")
        return real_record(result, *args, **kwargs)

    ledger.record = record_failing_once  # type: ignore[method-assign]
    drained = SqsEventSource(sqs, stack["queue"], handlers.remediate, consumers=4, retry_after_seconds=1,
                             last=lambda body: body.get("kind") == "summary").drain()
    assert drained.invocations >= 30 and max(drained.kinds.values()) >= 300

    results = {r.finding_id: r for r in map(result_from_row, ledger.results(run_id))}
    # Nothing lost: one result per finding of the run, whatever went wrong on the way.
    assert set(results) == {f["Id"] for f in stack["findings"]}
    assert failed_writes and results[victim].outcome in ("remediated", "planned", "noop")
    # Only the record whose ledger write failed came back; nothing reached the dead-letter queue.
    assert drained.returned == 1
    assert queue_depth(sqs, stack["dlq"]) == 0

    # The circuit breaker holds across invocations: the real state says so, not only the ledger.
    fixed = {account: sum(not open_ for open_ in world_ssh_open(account).values()) for account in groups}
    remediated = Counter((r.rule_id, r.account_id) for r in results.values() if r.outcome == "remediated")
    assert fixed[A1] == PER_ACCOUNT == sum(n for (rule, account), n in remediated.items() if account == A1)
    assert fixed[A2] + fixed[A3] == PER_RULE == sum(n for (rule, _), n in remediated.items() if rule == "EC2.53")
    held = [r for r in results.values() if r.circuit_breaker]
    assert all(r.outcome == "planned" for r in held)
    assert len(held) == (200 - PER_ACCOUNT) + (100 - 1 - PER_RULE)  # 1: the deleted group

    # One warning per tripped limit, not one per held finding.
    trips = Counter(r.getMessage() for r in caplog.records if "circuit breaker" in r.getMessage())
    assert trips and set(trips.values()) == {1}, trips
    assert any("rule EC2.53" in message for message in trips)
    assert any(f"account {A1}" in message for message in trips)

    # Permanent failures are recorded once and their messages deleted.
    assert results[f"{next(f['Id'] for f in stack['findings'] if gone in f['Resources'][0]['Id'])}"].outcome \
        == "skipped"
    no_role = [r for r in results.values() if r.account_id == NO_ROLE]
    assert len(no_role) == 3 and {r.outcome for r in no_role} == {"skipped"}

    # SNS: the summary once, one alert per tripped limit, each notify-only finding once — even after a second pull.
    handlers.pull({})
    mail = inbox(sqs, stack["mail"])
    subjects = Counter(m["subject"].split(":")[0] for m in mail)
    assert sum(1 for m in mail if "action needed: IAM.9" in m["subject"]) == len(NOTIFY_ACCOUNTS)
    assert sum(1 for m in mail if m["subject"].startswith(f"[cspm-remediation] apply {run_id}")) == 1, subjects
    alerts = [m for m in mail if "circuit breaker" in m["subject"].lower()]
    assert len(alerts) == len(trips), [m["subject"] for m in alerts]
