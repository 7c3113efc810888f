"""SNS.1 against moto: an unencrypted topic gets the KMS key, read back; a second assess is compliant; the policy,
display name and subscriptions survive; the plan names the AWS services the topic policy lets publish; rollback
removes the key again."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.sns import TopicEncryption, service_publishers, topic_arn
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

NAME = "deploy-events"
ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}"
EVENTS_MAY_PUBLISH = {"Version": "2012-10-17", "Statement": [
    {"Sid": "events", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
     "Action": "sns:Publish", "Resource": ARN}]}


@pytest.fixture
def sns(moto_aws):
    return boto3.client("sns", region_name=REGION)


def make_topic(sns, policy: dict | None = None, **tags: str) -> str:
    arn = sns.create_topic(Name=NAME, Attributes={"DisplayName": "Deploys"},
                           Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["TopicArn"]
    if policy:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    boto3.client("sqs", region_name=REGION).create_queue(QueueName="deploy-inbox")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:deploy-inbox")
    return arn


def finding(resource_id: str = ARN, **overrides):
    """A Security Hub finding: it carries the topic's tags, so they are not read again."""
    return make_finding("SNS.1", "AwsSnsTopic", resource_id, **{"tags": {"team": "ops"}, **overrides})


def key_of(sns, arn: str) -> str:
    return sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId", "")


def test_unencrypted_topic_is_encrypted_and_keeps_the_rest(target: Target, sns) -> None:
    arn = make_topic(sns, EVENTS_MAY_PUBLISH)
    remediator = TopicEncryption()
    calls = record_calls(target.client("sns"))

    before = remediator.assess(target, finding())
    assert not before.compliant
    assert before.changes[0] == f"encrypt SNS topic {arn} with KMS key alias/aws/sns"
    assert "events.amazonaws.com publish" in before.changes[1]
    assert key_of(sns, arn) == ""

    remediator.apply(target, finding(), before)

    assert key_of(sns, arn) == "alias/aws/sns"
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {"KmsMasterKeyId": "alias/aws/sns"}
    assert calls == ["GetTopicAttributes", "SetTopicAttributes", "GetTopicAttributes"]
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["DisplayName"] == "Deploys"
    assert json.loads(attributes["Policy"]) == EVENTS_MAY_PUBLISH
    assert len(sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]) == 1


def test_a_named_customer_key_is_used(target: Target, sns) -> None:
    arn = make_topic(sns)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    remediator = TopicEncryption({"kms_key_id": key})

    assessment = remediator.assess(target, finding())
    assert assessment.changes == [f"encrypt SNS topic {arn} with KMS key {key}"]  # no service publishes
    remediator.apply(target, finding(), assessment)

    assert key_of(sns, arn) == key


def test_rule_is_disruptive_and_needs_its_own_enforce() -> None:
    assert CATALOG["SNS.1"].rule.disruptive


def test_restore_removes_the_key_and_twice_is_harmless(target: Target, sessions: AssumedSessions, sns) -> None:
    arn = make_topic(sns, env="prod")
    remediator = TopicEncryption()
    assessment = remediator.assess(target, finding(tags={}))
    assert assessment.tags == {"env": "prod"}
    remediator.apply(target, finding(), assessment)

    first = remediator.restore(target, finding(), assessment.pre_state)
    second = remediator.restore(target, finding(), assessment.pre_state)

    assert key_of(sns, arn) == ""
    assert first == [f"set the KMS key of SNS topic {arn} back to none"]
    assert second == [f"SNS topic {arn} already has its previous encryption setting"]
    # tag:GetResources: the engine\'s batched tag read (test_batched_tags_more.py)
    assert iam_actions(sessions.api_calls) | {"tag:GetResources"} == set(TopicEncryption.permissions)


def test_missing_topic_is_refused(target: Target, sns) -> None:
    with pytest.raises(RemediationError, match="not found"):
        TopicEncryption().assess(target, finding(f"arn:aws:sns:{REGION}:{ACCOUNT}:gone"))


def test_topic_arn_from_a_name(target: Target) -> None:
    assert topic_arn(target, finding(NAME)) == ARN


def test_service_publishers() -> None:
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["s3.amazonaws.com", "cloudwatch.amazonaws.com"]}},
        {"Effect": "Deny", "Principal": {"Service": "events.amazonaws.com"}},
        {"Effect": "Allow", "Principal": "*"},
    ]}
    assert service_publishers(json.dumps(policy)) == ["cloudwatch.amazonaws.com", "s3.amazonaws.com"]
    assert service_publishers("") == []
