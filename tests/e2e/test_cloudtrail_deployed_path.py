"""The real-time path end to end (issue #16): a CloudTrail event delivered to the cloudtrail_events handler ends in a
remediated resource in the member account, through the work queue and the remediate handler, with the ledger.

On moto in this process: the admin stack's SQS work queue (with a dead-letter queue), its DynamoDB ledger and SNS
topic; two concurrent pollers (demo/sqs_event_source.py, the event source mapping with ReportBatchItemFailures)
feed the remediate handler. The member account is reached through the remediation role, as deployed. The events
are CloudTrail records in CloudTrail's shape (demo/cloudtrail_records.py) wrapped as EventBridge delivers them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import boto3
import pytest

from demo import cloudtrail_records as ct
from demo.sqs_event_source import SqsEventSource
from functions.aws_lambda import cloudtrail_events, handlers
from functions.engine.ledger import create_table, result_from_row
from functions.engine.sessions import AssumedSessions

REGION = "us-east-1"
MEMBER = "111111111111"
ROLE = "CSPMRemediationRole"
WORLD = "0.0.0.0/0"


def member(service: str) -> Any:
    return AssumedSessions(role_name="OrganizationAccountAccessRole").target(MEMBER, REGION).client(service)


def open_to_world(group: str) -> list[int]:
    """Ports open to 0.0.0.0/0, read independently of the remediator."""
    permissions = member("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return sorted(p["FromPort"] for p in permissions if any(r["CidrIp"] == WORLD for r in p.get("IpRanges", [])))


@pytest.fixture
def stack(moto_aws, monkeypatch, tmp_path):
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="work", Attributes={
        "VisibilityTimeout": "60", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
    })["QueueUrl"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
    create_table(boto3.client("dynamodb", region_name=REGION), "ledger")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": {"EC2.53": {"mode": "enforce"}, "EC2.13": {"mode": "enforce"}},
                                  "exclude": {"resources": []}}))
    for name, value in {"WORK_QUEUE_URL": queue, "SNS_TOPIC_ARN": topic, "LEDGER_TABLE": "ledger",
                        "REMEDIATION_ROLE_NAME": ROLE, "CSPM_CONFIG": str(config)}.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    yield {"sqs": sqs, "queue": queue, "dlq": dlq, "rt": handlers.runtime()}
    handlers.reset_runtime()


def drain(stack: dict[str, Any]) -> Any:
    return SqsEventSource(stack["sqs"], stack["queue"], handlers.remediate, consumers=2, retry_after_seconds=1).drain()


def test_an_event_ends_in_a_remediated_resource_through_the_queue_with_the_ledger(stack, caplog) -> None:
    caplog.set_level(logging.INFO)
    ec2 = member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": WORLD}]} for port in (22, 443)])
    assert open_to_world(group) == [22, 443]

    delivered = ct.event(ct.authorize_security_group_ingress(group, 22, WORLD, account=MEMBER))
    report = cloudtrail_events.handler(delivered)
    # Five rules may be broken; EC2.13 and EC2.53 are enforced, the other three dry-run: all five are assessed.
    assert report["findings"] == 5 and report["enqueued"] == 5, report
    cloudtrail_events.handler(delivered)  # EventBridge delivers at least once: a redelivery must not act twice
    drained = drain(stack)
    assert drained.deleted == 10 and drained.returned == 0

    assert open_to_world(group) == [443]  # exactly the admin port was closed; the rest of the group kept
    ledger = stack["rt"].ledger
    results = [result_from_row(row) for row in ledger.results(report["run_id"])]
    assert {r.source for r in results} == {"cloudtrail"}
    by_rule = Counter((r.rule_id, r.outcome) for r in results)
    assert {rule for (rule, outcome) in by_rule if outcome == "remediated"} <= {"EC2.13", "EC2.53"}, by_rule
    # Each rule acted at most once although every work item was delivered twice (the ledger's claim, or assess
    # finding the group already fixed); EC2.13 and EC2.53 are two rules on one group: either may be first.
    acted = Counter(r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith(
        "remediated EC2.") and group in r.getMessage())
    assert acted and set(acted.values()) == {1}, acted
    assert by_rule[("EC2.14", "noop")] >= 1 and by_rule[("EC2.54", "noop")] >= 1
    assert not {outcome for (_, outcome) in by_rule} & {"failed"}
    assert stack["sqs"].get_queue_attributes(QueueUrl=stack["dlq"], AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_our_own_change_a_failed_call_and_an_unknown_event_enqueue_nothing(stack, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cspm_remediate.cloudtrail_events")
    group = "sg-0a1b2c3d4e5f60718"
    ours = cloudtrail_events.handler(ct.event(ct.authorize_security_group_ingress(group, account=MEMBER, role=ROLE)))
    failed = cloudtrail_events.handler(ct.event(ct.authorize_security_group_ingress(
        group, account=MEMBER, error="Client.InvalidGroup.NotFound")))
    unknown = cloudtrail_events.handler(ct.event(ct.record("ec2.amazonaws.com", "CreateTags", {}, {}, account=MEMBER)))
    forged = ct.event(ct.authorize_security_group_ingress(group, account=MEMBER))
    forged["account"] = "222222222222"
    rejected = cloudtrail_events.handler(forged)
    assert [r["enqueued"] for r in (ours, failed, unknown, rejected)] == [0, 0, 0, 0]
    assert f"our own role {ROLE}" in ours["ignored"] and "the call failed" in failed["ignored"]
    assert "not an event that can break" in unknown["ignored"] and rejected["rejected"] == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "ignored: made by our own role" in messages and "rejected: the event comes from account" in messages
    assert drain(stack).messages == 0


def test_an_excluded_resource_and_an_off_rule_are_decided_before_the_queue(stack, tmp_path, monkeypatch) -> None:
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"rules": {"Redshift.1": {"mode": "off"}},
                                  "exclude": {"resources": ["orders"]}}))
    monkeypatch.setenv("CSPM_CONFIG", str(config))
    handlers.reset_runtime()
    off = cloudtrail_events.handler(ct.event(ct.modify_cluster("analytics", account=MEMBER)))
    excluded = cloudtrail_events.handler(ct.event(ct.set_queue_attributes(
        f"https://sqs.{REGION}.amazonaws.com/{MEMBER}/orders", "{}", account=MEMBER)))
    assert off["enqueued"] == 0 and off["decided_at_pull"] == {"skipped": 1}
    assert excluded["enqueued"] == 0 and excluded["decided_at_pull"] == {"excluded": 1}


def test_a_burst_of_events_is_held_by_the_circuit_breaker_like_a_scheduled_run(stack, tmp_path, monkeypatch) -> None:
    """A script opening SSH on five groups: the events of one hour share a run, so the ledger's (run, rule) counter
    lets EC2.53 act twice (its limit) and holds the other three `planned` with `circuit_breaker`, left open."""
    config = tmp_path / "burst.json"
    config.write_text(json.dumps({"rules": {"EC2.53": {"mode": "enforce"}}, "limits": {"max_actions_per_rule": 2}}))
    monkeypatch.setenv("CSPM_CONFIG", str(config))
    monkeypatch.setattr(cloudtrail_events, "events_run_id", lambda now=None: "20261201T140000Z-cloudtrail")
    handlers.reset_runtime()
    ec2 = member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    groups = [ec2.create_security_group(GroupName=f"g{n}", Description="g", VpcId=vpc)["GroupId"] for n in range(5)]
    for group in groups:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}])
        cloudtrail_events.handler(ct.event(ct.authorize_security_group_ingress(group, 22, WORLD, account=MEMBER)))
    assert drain(stack).returned == 0

    results = [result_from_row(row) for row in handlers.runtime().ledger.results("20261201T140000Z-cloudtrail")]
    ec2_53 = Counter((r.outcome, r.circuit_breaker) for r in results if r.rule_id == "EC2.53")
    assert ec2_53 == {("remediated", False): 2, ("planned", True): 3}, ec2_53
    assert sum(open_to_world(group) == [22] for group in groups) == 3  # held means untouched


def test_events_of_one_hour_share_a_run() -> None:
    assert cloudtrail_events.events_run_id(0) == cloudtrail_events.events_run_id(3599) == "19700101T000000Z-cloudtrail"
    assert cloudtrail_events.events_run_id(3600) != cloudtrail_events.events_run_id(0)


def test_a_renamed_remediation_role_is_still_ours(stack, monkeypatch) -> None:
    monkeypatch.setenv("REMEDIATION_ROLE_NAME", "SecOpsFixer")
    handlers.reset_runtime()
    body = ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718", account=MEMBER, role="SecOpsFixer")
    assert "our own role SecOpsFixer" in cloudtrail_events.handler(ct.event(body))["ignored"]
