"""SQS work items: size limits, batching, round trip through moto SQS."""

import json

import boto3
import pytest
from botocore.stub import Stubber

from connectors.finding import Finding
from functions.aws_lambda import work_queue
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


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/work"


def sent_ids(params: dict) -> list[str]:
    return [entry["Id"] for entry in params["Entries"]]


@pytest.mark.stubber  # SQS reporting some entries as failed in a successful response: moto never does
def test_only_the_entries_sqs_failed_are_sent_again_and_boundedly():
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = [work_queue.summary_message(f"run-{n}", "apply", 0) for n in range(3)]
    calls: list[list[str]] = []
    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch",
                             lambda params, **_: calls.append(sent_ids(params)))
    slept: list[float] = []
    with Stubber(sqs) as stub:
        failed = {"Id": "1", "SenderFault": False, "Code": "InternalError"}
        stub.add_response("send_message_batch", {"Successful": [
            {"Id": i, "MessageId": f"m{i}", "MD5OfMessageBody": "x"} for i in ("0", "2")], "Failed": [failed]})
        stub.add_response("send_message_batch", {"Successful": [], "Failed": [failed]})
        stub.add_response("send_message_batch", {"Successful": [
            {"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []})
        assert work_queue.send(sqs, QUEUE, messages, sleep=slept.append) == 3
    assert calls == [["0", "1", "2"], ["1"], ["1"]]  # only the failed entry again
    assert len(slept) == 2

    with Stubber(sqs) as stub:
        for _ in range(work_queue.SEND_ATTEMPTS):
            stub.add_response("send_message_batch", {"Successful": [], "Failed": [{**failed, "Id": "0"}]})
        with pytest.raises(RuntimeError, match=f"did not accept 1 message.* after {work_queue.SEND_ATTEMPTS}"):
            work_queue.send(sqs, QUEUE, messages[:1], sleep=slept.append)
        stub.assert_no_pending_responses()


@pytest.mark.stubber
def test_an_entry_refused_as_the_senders_fault_is_not_sent_again():
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stub:
        stub.add_response("send_message_batch", {"Successful": [], "Failed": [
            {"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]})
        with pytest.raises(RuntimeError, match=r"SQS rejected 1 message.*InvalidMessageContents"):
            work_queue.send(sqs, QUEUE, [work_queue.summary_message("r", "apply", 0)], sleep=lambda _: None)
        stub.assert_no_pending_responses()
