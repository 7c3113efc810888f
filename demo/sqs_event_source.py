"""What the Lambda service does between an SQS queue and the remediate function, for the demo and the tests.

An SQS event source mapping with ReportBatchItemFailures: several concurrent pollers gather up to the stack's
batch size of messages, invoke the function with them as `Records`, delete the messages the function did not list in
`batchItemFailures`, and leave the listed ones (and every message of an invocation that raised) to come back
after the queue's visibility timeout — until the queue's redrive policy moves them to the dead-letter queue.

Each poller is a thread here; they share the process's warm runtime as one container would share it between
its invocations. Nothing here is shipped: the stack uses the real event source mapping.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.templates.lambdas import QUEUE_BATCH_SIZE, REMEDIATE

BATCH_SIZE = QUEUE_BATCH_SIZE  # the stack's event source mapping
RECEIVE_MAX = 10  # SQS ReceiveMessage's MaxNumberOfMessages maximum
LAMBDA_TIMEOUT_MS = REMEDIATE.timeout * 1000  # the stack's function timeout


class InvocationContext:
    """The parts of the Lambda context object the handlers use."""

    def __init__(self, timeout_ms: int = LAMBDA_TIMEOUT_MS, function_name: str = "cspm-remediate") -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class DrainReport:
    invocations: int = 0
    messages: int = 0  # deliveries handed to the function (a redelivery counts again)
    deleted: int = 0
    returned: int = 0  # listed in batchItemFailures (or in an invocation that raised): delivered again later
    raised: int = 0  # invocations that ended in an exception
    kinds: Counter[str] = field(default_factory=Counter)


class SqsEventSource:
    """`drain()` runs `consumers` pollers until the queue holds nothing visible, in flight or delayed.

    `last(body)` marks messages to hand over only once nothing else is left (the run summary: in the stack a
    15-minute delay keeps it behind the run's findings; a demo run ends in seconds, so it waits here instead —
    held in hand with its visibility extended once, so its receive count does not grow).
    `retry_after_seconds`: when set, a message the function returns comes back after that long instead of after
    the queue's visibility timeout (tests need retries in seconds; the stack's timeout is 6 times the function's).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        consumers: int = 4,
        batch_size: int = BATCH_SIZE,
        last: Callable[[dict[str, Any]], bool] | None = None,
        timeout_seconds: float = 300.0,
        retry_after_seconds: int | None = None,
    ) -> None:
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.consumers, self.batch_size = consumers, batch_size
        self.last = last or (lambda _body: False)
        self.timeout_seconds = timeout_seconds
        self.retry_after_seconds = retry_after_seconds
        self._held: list[dict[str, Any]] = []
        self.report = DrainReport()
        self._lock = threading.Lock()
        self._busy = 0
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def drain(self) -> DrainReport:
        errors: list[BaseException] = []

        def poll() -> None:
            try:
                self._poll()
            except BaseException as error:  # surfaced to the caller after the join
                errors.append(error)

        threads = [threading.Thread(target=poll, name=f"poller-{i}") for i in range(self.consumers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return self.report

    # -- one poller -----------------------------------------------------------------------------
    def _poll(self) -> None:
        deadline = time.monotonic() + self.timeout_seconds
        while time.monotonic() < deadline:
            with self._lock:
                self._busy += 1
            try:
                got = self._receive_and_invoke()
                if not got and (held := self._take_held_if_settled()):
                    self._invoke(held)
                    got = True
            finally:
                with self._lock:
                    self._busy -= 1
            if not got:
                if self._settled():
                    return
                time.sleep(0.2)
        raise TimeoutError(f"queue not drained within {self.timeout_seconds:.0f} s")

    def _receive(self) -> list[dict[str, Any]]:
        """Up to batch_size messages, as Lambda's poller gathers a batch: ReceiveMessage returns at most
        RECEIVE_MAX, so a larger batch (the stack's BatchSize with a batching window) is gathered over several
        receives, until it is full or a receive comes back empty (the window closing early)."""
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(RECEIVE_MAX, self.batch_size - len(messages)),
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def _receive_and_invoke(self) -> bool:
        messages = self._receive()
        if not messages:
            return False
        now = [m for m in messages if not self._is_last(m)]
        for message in (m for m in messages if self._is_last(m)):
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=min(int(self.timeout_seconds), 43_200))
            with self._lock:
                self._held.append(message)
        if now:
            self._invoke(now)
        return True

    def _invoke(self, now: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in now]}
        try:
            response = self.handler(event, InvocationContext())
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception:  # the Lambda service returns the whole batch to the queue
            failed = {m["MessageId"] for m in now}
            with self._lock:
                self.report.raised += 1
        to_delete = [m for m in now if m["MessageId"] not in failed]
        if self.retry_after_seconds is not None:
            for message in (m for m in now if m["MessageId"] in failed):
                self._shorten_visibility(message)
        for start in range(0, len(to_delete), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                       for i, m in enumerate(to_delete[start:start + 10])]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        with self._lock:
            self.report.invocations += 1
            self.report.messages += len(now)
            self.report.deleted += len(to_delete)
            self.report.returned += len(now) - len(to_delete)
            self.report.kinds.update(_kind(m["Body"]) for m in now)

    def _shorten_visibility(self, message: dict[str, Any]) -> None:
        """Bring a returned message back sooner. An invocation that outlived the visibility timeout (a loaded
        machine) finds its receipt handle stale: the message is back in the queue already, as it would be in
        AWS, where the event source mapping leaves returned messages alone."""
        with contextlib.suppress(self.sqs.exceptions.ReceiptHandleIsInvalid):
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=self.retry_after_seconds)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3],
        }

    def _is_last(self, message: dict[str, Any]) -> bool:
        try:
            body = json.loads(message["Body"])
        except ValueError:
            return False
        return isinstance(body, dict) and self.last(body)

    def _counts(self) -> tuple[int, int, int]:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return (int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                int(attributes["ApproximateNumberOfMessagesDelayed"]))

    def _take_held_if_settled(self) -> list[dict[str, Any]]:
        """The held messages, once nothing else is queued, delayed, in flight or being handled (the calling
        poller counts itself busy, hence > 1)."""
        with self._lock:
            if not self._held or self._busy > 1:
                return []
            held = len(self._held)
        visible, in_flight, delayed = self._counts()
        with self._lock:
            if visible or delayed or in_flight > held or self._busy > 1 or len(self._held) != held:
                return []
            taken, self._held = self._held, []
        return taken

    def _settled(self) -> bool:
        with self._lock:
            if self._busy or self._held:
                return False
        return sum(self._counts()) == 0


def _kind(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return "not json"
    return str(data.get("kind", "unknown")) if isinstance(data, dict) else "unknown"
