"""SQS.3 against moto: only the public statements go, the rest of the policy stays; rollback puts the text back."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.sqs import QueuePolicyNotPublic
from tests.factories import ACCOUNT, REGION, make_finding

QUEUE = "orders-events"
ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
PUBLIC = {"Sid": "AnyoneCanSend", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": ARN}
FROM_TOPIC = {
    "Sid": "TopicCanSend",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "sqs:SendMessage",
    "Resource": ARN,
    "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:orders"}},
}
PARTNER = {
    "Sid": "PartnerCanReceive",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": "sqs:ReceiveMessage",
    "Resource": ARN,
}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "orders", "Statement": list(statements)})


@pytest.fixture
def sqs(moto_aws):
    return boto3.client("sqs", region_name=REGION)


def make_queue(sqs, policy_text: str | None) -> str:
    attributes = {"Policy": policy_text} if policy_text else {}
    return sqs.create_queue(QueueName=QUEUE, Attributes=attributes)["QueueUrl"]


def current_policy(sqs, url: str) -> dict[str, Any] | None:
    """An independent read of the queue policy (None when there is none)."""
    text = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
    return json.loads(text) if text else None


def queue_finding(resource_id: str = QUEUE):
    return make_finding("SQS.3", "AwsSqsQueue", resource_id, resource_arn=ARN)


def test_public_statement_is_removed_and_the_rest_kept(target: Target, sqs) -> None:
    original = policy(PUBLIC, FROM_TOPIC, PARTNER)
    url = make_queue(sqs, original)
    remediator, finding = QueuePolicyNotPublic(), queue_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.changes == [
        f'remove statement "AnyoneCanSend" (Allow * sqs:SendMessage) from the policy of queue {url}'
    ]
    assert before.pre_state == {"Policy": original}
    assert current_policy(sqs, url) == json.loads(original)

    remediator.apply(target, finding, before)

    assert current_policy(sqs, url) == {"Version": "2012-10-17", "Id": "orders", "Statement": [FROM_TOPIC, PARTNER]}
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []


def test_a_policy_left_empty_is_removed(target: Target, sqs) -> None:
    url = make_queue(sqs, policy(PUBLIC))
    remediator, finding = QueuePolicyNotPublic(), queue_finding()

    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    assert assessment.changes[-1] == f"remove the then empty policy of queue {url}"
    assert current_policy(sqs, url) is None
    assert remediator.assess(target, finding).compliant


@pytest.mark.parametrize("policy_text", [None, policy(FROM_TOPIC, PARTNER)])
def test_queue_without_public_statements_is_compliant(target: Target, sqs, policy_text: str | None) -> None:
    make_queue(sqs, policy_text)

    assert QueuePolicyNotPublic().assess(target, queue_finding()).compliant


def test_assess_is_read_only(target: Target, sqs) -> None:
    url = make_queue(sqs, policy(PUBLIC, PARTNER))
    calls: list[str] = []
    target.client("sqs").meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    assert not QueuePolicyNotPublic().assess(target, queue_finding()).compliant

    assert calls == ["GetQueueUrl", "GetQueueAttributes", "ListQueueTags"]
    assert current_policy(sqs, url) == json.loads(policy(PUBLIC, PARTNER))


@pytest.mark.parametrize("as_url", [False, True])
def test_restore_puts_the_previous_policy_back_and_is_idempotent(target: Target, sqs, as_url: bool) -> None:
    original = policy(PUBLIC, PARTNER)
    url = make_queue(sqs, original)
    remediator, finding = QueuePolicyNotPublic(), queue_finding(url if as_url else QUEUE)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    first = remediator.restore(target, finding, assessment.pre_state)
    second = remediator.restore(target, finding, assessment.pre_state)

    assert current_policy(sqs, url) == json.loads(original)
    assert first == [f"put back the previous policy of queue {url}"]
    assert second == [f"queue {url} already has its previous policy"]


@pytest.mark.parametrize(
    "resource_id", ["no-such-queue", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/no-such-queue"]
)
def test_missing_queue_is_a_remediation_error(target: Target, sqs, resource_id: str) -> None:
    with pytest.raises(RemediationError, match=r"SQS queue \S*no-such-queue not found"):
        QueuePolicyNotPublic().assess(target, queue_finding(resource_id))


def test_declarations() -> None:
    assert [r.rule_id for r in QueuePolicyNotPublic.rules] == ["SQS.3"]
    assert QueuePolicyNotPublic.resource_types == ("AwsSqsQueue",)
    assert QueuePolicyNotPublic.permissions == (
        "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueueTags", "tag:GetResources",
        "sqs:SetQueueAttributes",
    )
    assert QueuePolicyNotPublic.reversible
