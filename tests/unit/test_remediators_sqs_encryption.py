"""SQS.1 against moto: an unencrypted queue gets SSE-SQS (or SSE-KMS with a named key), read back as encrypted; a
second assess is compliant; the queue's other attributes, policy and messages survive; rollback turns it off."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.sqs_encryption import QueueEncryption
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

QUEUE = "billing-jobs"
ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "sqs:SendMessage", "Resource": ARN}]}


@pytest.fixture
def sqs(moto_aws):
    return boto3.client("sqs", region_name=REGION)


def unencrypted_queue(sqs, name: str = QUEUE, **tags: str) -> str:
    """moto encrypts new queues with SSE-SQS (as AWS does since 2022): this queue predates that."""
    url = sqs.create_queue(QueueName=name, tags=tags, Attributes={
        "SqsManagedSseEnabled": "false", "VisibilityTimeout": "120"})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(POLICY)})
    sqs.send_message(QueueUrl=url, MessageBody="invoice 42")
    return url


def encryption(sqs, url: str) -> tuple[str, str]:
    """Independent read of both settings."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes.get("SqsManagedSseEnabled", "false"), attributes.get("KmsMasterKeyId", "")


def finding(resource_id: str = QUEUE, **overrides):
    """A Security Hub finding: it carries the queue's tags, so they are not read again."""
    return make_finding("SQS.1", "AwsSqsQueue", resource_id, resource_arn=ARN, **{"tags": {"team": "billing"},
                                                                                    **overrides})


def test_unencrypted_queue_gets_sse_sqs_and_keeps_everything_else(target: Target, sqs) -> None:
    url = unencrypted_queue(sqs)
    remediator = QueueEncryption()
    calls = record_calls(target.client("sqs"))

    before = remediator.assess(target, finding())
    assert not before.compliant and not before.disruptive
    assert before.changes == [f"encrypt queue {url} with the SQS-managed key (SSE-SQS)"]
    assert before.pre_state == {"SqsManagedSseEnabled": False, "KmsMasterKeyId": ""}
    assert encryption(sqs, url) == ("false", "")  # assess wrote nothing

    sent: list[dict] = []
    target.client("sqs").meta.events.register(
        "provide-client-params.sqs.SetQueueAttributes", lambda params, **_: sent.append(params["Attributes"]))
    remediator.apply(target, finding(), before)

    assert encryption(sqs, url) == ("true", "")
    # Only the encryption setting is sent: SQS keeps every attribute a call leaves out (moto drops the policy on
    # any SetQueueAttributes without one, so the policy's survival is checked on the request, not read back).
    assert sent == [{"SqsManagedSseEnabled": "true"}]
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {"SqsManagedSseEnabled": True}
    # The finding's tags were given: no ListQueueTags; one read before, one write, one read to verify.
    assert calls == ["GetQueueUrl", "GetQueueAttributes", "SetQueueAttributes", "GetQueueUrl", "GetQueueAttributes"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "120"
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "invoice 42"


def test_encrypted_queues_are_compliant(target: Target, sqs) -> None:
    sqs.create_queue(QueueName="sse-sqs")  # the default
    sqs.create_queue(QueueName="sse-kms", Attributes={"SqsManagedSseEnabled": "false",
                                                      "KmsMasterKeyId": "alias/aws/sqs"})

    assert QueueEncryption().assess(target, finding("sse-sqs")).compliant
    assert QueueEncryption().assess(target, finding("sse-kms")).compliant


def test_a_named_kms_key_is_used_and_the_plan_says_senders_need_it(target: Target, sqs) -> None:
    url = unencrypted_queue(sqs)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    remediator = QueueEncryption({"kms_key_id": key})

    assessment = remediator.assess(target, finding())
    assert "kms:GenerateDataKey" in assessment.disruptive
    remediator.apply(target, finding(), assessment)

    assert encryption(sqs, url)[1] == key
    assert remediator.assess(target, finding()).compliant


def test_restore_turns_encryption_off_again_and_twice_is_harmless(
    target: Target, sessions: AssumedSessions, sqs
) -> None:
    url = unencrypted_queue(sqs, env="prod")
    remediator = QueueEncryption()
    assessment = remediator.assess(target, finding(tags={}))  # no tags on the finding: ListQueueTags
    assert assessment.tags == {"env": "prod"}
    remediator.apply(target, finding(), assessment)

    first = remediator.restore(target, finding(), assessment.pre_state)
    second = remediator.restore(target, finding(), assessment.pre_state)

    assert encryption(sqs, url) == ("false", "")
    assert first == [f"turned server-side encryption of queue {url} off again"]
    assert second == [f"queue {url} already has its previous encryption settings"]
    # tag:GetResources: the engine\'s batched tag read (test_batched_tags_more.py)
    assert iam_actions(sessions.api_calls) | {"tag:GetResources"} == set(QueueEncryption.permissions)


def test_missing_queue_is_refused(target: Target, sqs) -> None:
    with pytest.raises(RemediationError, match="SQS queue no-such-queue not found"):
        QueueEncryption().assess(target, finding("no-such-queue"))


def test_bad_key_param_is_refused() -> None:
    assert "kms_key_id must match" in (QueueEncryption.params_problem({"kms_key_id": "not a key"}) or "")


def test_an_engine_run_looks_the_queue_url_up_once_for_both_rules(sqs) -> None:
    """SQS.1 and SQS.3 on one queue, both remediated and verified: one GetQueueUrl in all (the URL is kept across
    the writes; the attributes are read live again for each verification)."""
    from functions.engine.config import config_from_dict
    from functions.engine.engine import Engine

    url = unencrypted_queue(sqs)
    public = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": ARN}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(
        {**POLICY, "Statement": [*POLICY["Statement"], public]})})
    sessions = AssumedSessions()
    config = config_from_dict({"rules": {"SQS.1": {"mode": "enforce"}, "SQS.3": {"mode": "enforce"}}})
    # SQS.3 first: moto drops a queue's policy on any SetQueueAttributes that leaves it out (AWS keeps it).
    findings = [make_finding("SQS.3", "AwsSqsQueue", QUEUE, resource_arn=ARN, tags={"team": "billing"}), finding()]

    results = Engine(config, sessions, stage="apply").run(findings)

    assert [r.outcome for r in results] == ["remediated", "remediated"]
    assert sessions.api_calls["sqs.GetQueueUrl"] == 1  # was 4: each assess and each verification looked it up
    assert sessions.api_calls["sqs.GetQueueAttributes"] == 4  # two reads and two live verifications
    assert encryption(sqs, url) == ("true", "")
