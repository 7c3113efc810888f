"""The deployed path of the demo: what the admin stack runs, on the demo's moto server.

The resources the stack creates (work queue with its dead-letter queue, DynamoDB ledger, SNS topic), the
environment it gives the functions, then one scheduled run: the pull handler enqueues, four concurrent
pollers feed the remediate handler batches of 10 (demo/sqs_event_source.py), the run summary reaches the
topic. An SQS queue subscribed to the topic stands in for the operator's e-mail, so the demo can show what
they would receive.

moto has no BatchUpdateFindings: the write-back calls are answered in-process (every identifier processed)
and counted, so the demo shows what Security Hub would have been told.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from demo.sqs_event_source import DrainReport, SqsEventSource
from functions.aws_lambda import handlers
from functions.engine.ledger import create_table, result_from_row
from functions.model import Result

QUEUE, DLQ, TABLE, TOPIC, INBOX = "cspm-work", "cspm-work-dlq", "cspm-ledger", "cspm-alerts", "operator-inbox"
MAX_RECEIVE_COUNT = 3  # the stack's redrive policy
VISIBILITY_SECONDS = 60  # longer than any demo invocation (the stack: 6 times the function timeout), so no message is
# handed to a second poller while the first still works on it


@dataclass
class DeployedRun:
    run_id: str
    pull: dict[str, Any]
    drain: DrainReport
    results: list[Result]
    emails: list[dict[str, str]]  # what the topic delivered: {"subject", "body"}
    dead_letters: int
    writeback: Counter[str] = field(default_factory=Counter)  # workflow status → identifiers
    api_calls: Counter[str] = field(default_factory=Counter)


def run_deployed(region: str, environment: dict[str, str], config: dict[str, Any], consumers: int = 4) -> DeployedRun:
    """One scheduled run through the handlers. `environment`: the stack's settings beyond the resources made here
    (sources, role name, Netskope URL and secret); `config`: the config document the stack carries."""
    sqs = boto3.client("sqs", region_name=region)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": str(VISIBILITY_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
    })["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=region), TABLE)
    sns = boto3.client("sns", region_name=region)
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    inbox_url = sqs.create_queue(QueueName=INBOX)["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)

    with _config_file(config) as config_path, _environment({
        **environment, "WORK_QUEUE_URL": queue_url, "LEDGER_TABLE": TABLE, "SNS_TOPIC_ARN": topic_arn,
        "CSPM_CONFIG": config_path, "CSPM_SUMMARY_DELAY_SECONDS": "0",
    }):
        handlers.reset_runtime()
        runtime = handlers.runtime()
        writeback = answer_writeback(runtime.session)
        pull = handlers.pull({})
        drained = SqsEventSource(sqs, queue_url, handlers.remediate, consumers=consumers,
                                 last=lambda body: body.get("kind") == "summary").drain()
        assert runtime.ledger is not None
        results = [result_from_row(row) for row in runtime.ledger.results(pull["run_id"])]
        api_calls = Counter(runtime.sessions.api_calls)
        handlers.reset_runtime()
    dead = int(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])
    return DeployedRun(pull["run_id"], pull, drained, results, _emails(sqs, inbox_url), dead, writeback, api_calls)


def answer_writeback(session: boto3.Session) -> Counter[str]:
    """BatchUpdateFindings answered before it leaves the process (moto lacks it): all processed, counted."""
    counts: Counter[str] = Counter()

    def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        request = json.loads(params.get("body") or b"{}")  # the serialized request (rest-json)
        identifiers = request.get("FindingIdentifiers", [])
        counts[request.get("Workflow", {}).get("Status", "note only")] += len(identifiers)
        return _Ok(), {"ProcessedFindings": identifiers, "UnprocessedFindings": [],
                       "ResponseMetadata": {"HTTPStatusCode": 200}}

    session.events.register("before-call.securityhub.BatchUpdateFindings", answer)
    return counts


class _Ok:
    """The HTTP response botocore expects beside a parsed one answered from before-call."""

    status_code = 200
    headers: dict[str, str] = {}


def _emails(sqs: Any, inbox_url: str) -> list[dict[str, str]]:
    emails = []
    while batch := sqs.receive_message(QueueUrl=inbox_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            envelope = json.loads(message["Body"])  # SNS → SQS delivery (not raw): the notification JSON
            emails.append({"subject": envelope.get("Subject", ""), "body": envelope.get("Message", "")})
            sqs.delete_message(QueueUrl=inbox_url, ReceiptHandle=message["ReceiptHandle"])
    return emails


@contextmanager
def _config_file(config: dict[str, Any]) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cspm-demo-") as folder:
        path = os.path.join(folder, "config.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        yield path


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
