"""SNS summary and notify-only messages, read back through an SQS queue subscribed to a moto topic."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.aws_lambda.notifications import (
    MESSAGE_MAX_BYTES,
    SUBJECT_MAX_CHARS,
    notify_message,
    publish,
    summary_message,
)
from functions.model import Result

RUN = "20240501T100000Z-abcd1234"


def result(outcome: str, reason: str = "", rule_id: str = "EC2.53", account_id: str = "111111111111",
           **extra: Any) -> Result:
    values: dict[str, Any] = {"resource_type": "AwsEc2SecurityGroup", "resource_id": "sg-0abc", **extra}
    return Result(
        finding_id=f"id-{rule_id}-{account_id}-{outcome}", source="securityhub", rule_id=rule_id,
        account_id=account_id, region="eu-west-1", outcome=outcome, reason=reason or outcome, run_id=RUN, **values,
    )


RESULTS = [
    result("remediated", "revoke 0.0.0.0/0:22"),
    result("failed", "apply failed: AccessDenied: not allowed", rule_id="S3.8"),
    result("planned", "circuit breaker: 1 actions for rule EC2.53 this run; planning only", circuit_breaker=True),
    result("planned", "circuit breaker: 1 actions for rule EC2.53 this run; planning only", circuit_breaker=True,
           account_id="222222222222"),
    result("notified", "Enable MFA on the root user from the console.", rule_id="IAM.9",
           resource_type="AwsAccount", resource_id="111111111111"),
]


@pytest.fixture
def topic(moto_aws):
    """A topic with a queue subscribed to it; returns (sns client, topic arn, read() → [(subject, message)])."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="cspm-remediation")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def read() -> list[tuple[str, str]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        envelopes = [json.loads(m["Body"]) for m in messages]
        return [(e.get("Subject"), e["Message"]) for e in envelopes]

    return sns, topic_arn, read


def test_summary_leads_with_what_needs_a_person_then_the_report():
    subject, body = summary_message(RESULTS, RUN, "apply")
    assert subject == f"[cspm-remediation] apply {RUN}: 1 failed, 1 remediated, 2 planned, 1 notified"
    assert body.startswith(f"CSPM remediation apply, run {RUN}\n\nFailed (1):\n"
                           "  [S3.8] 111111111111 eu-west-1 sg-0abc: apply failed: AccessDenied: not allowed\n")
    assert ("Circuit breaker tripped (2 finding(s) planned, not changed):\n"
            "  circuit breaker tripped for rule EC2.53 after 1 actions; 2 finding(s) planned only") in body
    report = body[body.index("Report\n======"):]
    assert "5 finding(s): 2 planned, 1 remediated, 1 notified, 1 failed" in report
    assert "IAM.9" in report and "222222222222" in report  # the per rule/account table


def test_subject_is_ascii_one_line_and_short():
    subject, _ = summary_message(RESULTS, "run-\u00e9t\u00e9\n" + "x" * 200, "apply")
    assert subject.isascii() and "\n" not in subject and len(subject) <= SUBJECT_MAX_CHARS
    assert subject.startswith("[cspm-remediation] apply run-ete x") and subject.endswith("...")


def test_empty_run_still_says_so():
    subject, body = summary_message([], RUN, "plan")
    assert subject.endswith(": no findings") and "no findings" in body


def test_huge_runs_are_cut_to_the_sns_limit_with_a_note():
    many = [result("failed", "x" * 300, rule_id=f"netskope:rule number {n}", account_id=f"{n:012d}")
            for n in range(3000)]
    subject, body = summary_message(many, RUN, "apply")
    assert len(body.encode()) + len(subject) <= MESSAGE_MAX_BYTES
    assert body.endswith(f"the ledger holds every result of run {RUN}]\n")
    assert "Failed (3000):" in body and "… and 2900 more" in body


def test_notify_message_carries_the_guidance():
    subject, body = notify_message(RESULTS[-1])
    assert subject == "[cspm-remediation] action needed: IAM.9 in 111111111111 eu-west-1"
    assert "What to do:\n  Enable MFA on the root user from the console.\n" in body
    assert "Resource:  AwsAccount 111111111111" in body


def test_long_guidance_is_wrapped_for_email_and_keeps_every_word_and_command_whole():
    arn = "arn:aws:iam::111111111111:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig-and-more-x"
    steps = " ".join(f"{n}) do step {n} with aws configservice put-configuration-recorder --role {arn};"
                     for n in range(1, 9))
    _, body = notify_message(result("notified", steps, rule_id="Config.1"))
    guidance = body.split("What to do:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(guidance) > 8
    assert all(line.startswith("  ") and (len(line) <= 100 or " " not in line.strip()) for line in guidance)
    assert " ".join(line.strip() for line in guidance) == steps  # nothing lost, the ARN never split
    assert any(line.strip() == arn + ";" or line.strip().endswith(arn + ";") for line in guidance)


def test_publish_sends_the_summary_and_one_message_per_notified_finding(topic):
    sns, topic_arn, read = topic
    ids = publish(sns, topic_arn, RESULTS, RUN, "apply")
    assert len(ids) == 2
    received = read()
    assert [s for s, _ in received] == [summary_message(RESULTS, RUN, "apply")[0], notify_message(RESULTS[-1])[0]]
    assert received[0][1] == summary_message(RESULTS, RUN, "apply")[1]


def test_publish_summary_only(topic):
    sns, topic_arn, read = topic
    assert len(publish(sns, topic_arn, RESULTS, RUN, "plan", notify_each=False)) == 1
    assert len(read()) == 1


@pytest.mark.stubber  # the Stubber answers before botocore's retry handler: this is the publish layer alone
def test_publish_adds_no_retry_layer_of_its_own():
    """Throttling is retried by the client's standard mode (tests/unit/test_retry_config.py), never again here."""
    sns = boto3.client("sns", region_name="us-east-1")
    subject, body = summary_message([], RUN, "plan")
    expected = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": subject, "Message": body}
    with Stubber(sns) as stub:
        stub.add_client_error("publish", "Throttling", expected_params=expected)
        with pytest.raises(ClientError):
            publish(sns, expected["TopicArn"], [], RUN, "plan")
        stub.assert_no_pending_responses()
