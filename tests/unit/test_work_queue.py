"""SQS work items: size limits, batching, round trip through moto SQS."""

import json

import boto3
import pytest

from connectors.finding import Finding
from functions.aws_lambda.work_queue import (
    MAX_MESSAGE_BYTES,
    _batches,
    decode,
    finding_message,
    send,
    status_message,
    summary_message,
)
from tests.factories import make_finding


def finding(n: int = 0, raw=None) -> Finding:
    return make_finding("EC2.53", "AwsEc2SecurityGroup", f"sg-{n:017x}", raw=raw)


def test_oversized_payload_is_sent_without_raw_never_dropped():
    message = finding_message(finding(raw={"blob": "x" * 300_000}), "run-1")
    assert message.body["raw_trimmed"] is True and message.body["finding"]["raw"] is None
    assert len(json.dumps(message.body)) < MAX_MESSAGE_BYTES
    assert Finding.from_dict(message.body["finding"]).resource_id == "sg-00000000000000000"


def test_batches_respect_entry_count_and_total_size():
    small = [finding_message(finding(i), "r") for i in range(25)]
    assert [len(b) for b in _batches(small)] == [10, 10, 5]
    big = [finding_message(finding(i, raw={"blob": "x" * 100_000}), "r") for i in range(5)]
    batches = list(_batches(big))
    assert all(sum(len(json.dumps(m.body)) for m in b) < MAX_MESSAGE_BYTES for b in batches)
    assert sum(len(b) for b in batches) == 5


def test_round_trip_through_sqs(moto_aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    items = [finding_message(finding(i), "run-1") for i in range(12)] + [summary_message("run-1", "apply", 0)]
    assert send(sqs, url, items) == 13
    received = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        received += [decode(m["Body"]) for m in batch]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                                                         for m in batch])
    assert sorted(r["kind"] for r in received) == ["finding"] * 12 + ["summary"]


def test_status_message_delay_is_capped_at_sqs_maximum():
    assert status_message("exec-1", finding(), "r", attempt=1, delay_seconds=5000).delay_seconds == 900


@pytest.mark.parametrize("body", ["not json", "[]", '{"kind": "other"}'])
def test_foreign_messages_are_rejected_clearly(body):
    with pytest.raises(ValueError, match=r"JSON|work item"):
        decode(body)
