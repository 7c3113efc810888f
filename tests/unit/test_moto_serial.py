"""The tests' and the demo's moto run DynamoDB and SQS requests one at a time (demo/moto_serial.py): moto's
backends are not thread-safe, the services are. Deterministic: while the lock is held, a request waits."""

from __future__ import annotations

import threading
import time

import boto3

from demo import moto_serial
from functions.engine.ledger import create_table
from tests.conftest import REGION


def test_a_dynamodb_and_an_sqs_request_wait_while_another_runs(moto_aws) -> None:
    moto_serial.serialize_dynamodb_and_sqs()  # conftest did it already: idempotent
    dynamodb, sqs = boto3.client("dynamodb", region_name=REGION), boto3.client("sqs", region_name=REGION)
    create_table(dynamodb, "ledger")
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    done: list[str] = []
    requests = [
        threading.Thread(target=lambda: (dynamodb.put_item(TableName="ledger", Item={"pk": {"S": "a"}}),
                                         done.append("dynamodb"))),
        threading.Thread(target=lambda: (sqs.send_message(QueueUrl=queue, MessageBody="{}"), done.append("sqs"))),
    ]
    with moto_serial._LOCK:  # as if another request thread were inside moto
        for request in requests:
            request.start()
        time.sleep(0.3)
        assert done == []
    for request in requests:
        request.join(5)
    assert sorted(done) == ["dynamodb", "sqs"]
