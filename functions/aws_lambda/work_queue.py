"""The SQS work queue between the pull/events Lambdas and the remediate Lambda.

Messages are JSON with a `kind`: "finding" (one finding to remediate), "status" (check an SSM Automation
execution later, sent with DelaySeconds — the Lambda never sleeps waiting), "summary" (publish a run's
summary once its findings had time to be processed).

SQS limits honoured here: 256 KiB per message and per SendMessageBatch call, 10 entries per call, DelaySeconds
≤ 900. A finding whose original payload would overflow is sent without `raw` (flagged), never dropped.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.finding import Finding
from functions.model import AwsClient

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
MAX_DELAY_SECONDS = 900
_HEADROOM = 2 * 1024  # the batch request's own JSON around the bodies
# SendMessageBatch calls per group of entries. The call itself is retried by the client (CLIENT_CONFIG); a call
# that succeeds can still report some entries as failed on SQS's side: only those are sent again, this often.
SEND_ATTEMPTS = 3


@dataclass(frozen=True)
class Message:
    kind: str
    body: dict[str, Any]
    delay_seconds: int = 0


def finding_message(finding: Finding, run_id: str, enforce: bool = False) -> Message:
    """`enforce`: the analyst asked for this finding (Security Hub custom action): act even in dry-run."""
    body: dict[str, Any] = {"kind": "finding", "run_id": run_id, "enforce": enforce, "finding": finding.to_dict()}
    if _size(body) > MAX_MESSAGE_BYTES - _HEADROOM:
        body["finding"]["raw"] = None
        body["raw_trimmed"] = True
        log.warning("finding %s: original payload dropped from the message (over 256 KiB)", finding.finding_id)
    return Message("finding", body)


def status_message(execution_id: str, finding: Finding, run_id: str, attempt: int, delay_seconds: int,
                   pre_state: Mapping[str, Any] | None = None) -> Message:
    """`pre_state`: the started result's, carried to the follow-up, whose `remediated` row replaces the `started`
    one in the ledger and must keep what a rollback needs."""
    body = {
        "kind": "status",
        "run_id": run_id,
        "execution_id": execution_id,
        "attempt": attempt,
        "finding": {**finding.to_dict(), "raw": None},
        "pre_state": dict(pre_state) if pre_state else None,
    }
    return Message("status", body, min(max(delay_seconds, 0), MAX_DELAY_SECONDS))


def summary_message(run_id: str, stage: str, delay_seconds: int = MAX_DELAY_SECONDS) -> Message:
    return Message("summary", {"kind": "summary", "run_id": run_id, "stage": stage}, delay_seconds)


# The pull keeps together the findings one engine run handles together (Engine.batch_key: one account, region and
# group), so the remediate Lambda receives them in one batch: one batched read, one combined write, where one
# finding per batch would read and write once each. A group waits in memory until it fills a batch; at most
# HOLD_MAX messages wait, and the end of the pull sends what is left account by account.
HOLD_MAX = 1_000
K = TypeVar("K", bound=tuple[str, ...])


def side_by_side(keyed: Iterable[tuple[K, Message]], flush_at: int = MAX_BATCH_ENTRIES,
                 hold_max: int = HOLD_MAX) -> Iterator[Message]:
    """The messages, reordered so that those of one key come out adjacent, in runs of `flush_at` while a key
    has that many; bounded memory (over `hold_max` held, the largest group goes out as it is)."""
    held: dict[K, list[Message]] = {}
    count = 0
    for key, message in keyed:
        group = held.setdefault(key, [])
        group.append(message)
        count += 1
        if len(group) >= flush_at:
            yield from held.pop(key)
            count -= len(group)
        elif count > hold_max:
            largest = max(held, key=lambda k: len(held[k]))
            count -= len(held[largest])
            yield from held.pop(largest)
    for key in sorted(held):
        yield from held[key]


def decode(body: str) -> dict[str, Any]:
    """Parse a message body; raises ValueError with a clear reason for anything that is not ours."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"message body is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("kind") not in ("finding", "status", "summary"):
        raise ValueError("message is not a cspm-remediation work item (no known `kind`)")
    return data


def send(sqs: AwsClient, queue_url: str, messages: Iterable[Message],
         sleep: Callable[[float], None] = time.sleep) -> int:
    """SendMessageBatch in groups of ≤ 10 entries and ≤ 256 KiB; entries SQS failed on its side are re-sent
    (only those, at most SEND_ATTEMPTS calls per group, with a short jittered pause).

    Returns the number of messages sent; raises RuntimeError naming what could not be sent (an entry SQS
    refused as the sender's fault is not re-sent: it would be refused again).
    """
    sent = 0
    for batch in _batches(messages):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(m.body, default=str), "DelaySeconds": m.delay_seconds}
            for i, m in enumerate(batch)
        ]
        for attempt in range(1, SEND_ATTEMPTS + 1):
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent += len(response.get("Successful", []))
            failed = response.get("Failed", [])
            sender_faults = [f for f in failed if f.get("SenderFault")]
            if sender_faults:
                raise RuntimeError(f"SQS rejected {len(sender_faults)} message(s): {sender_faults[0].get('Code')}")
            failed_ids = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in failed_ids]
            if not entries:
                break
            if attempt < SEND_ATTEMPTS:
                sleep(random.uniform(0, 0.1 * 2**attempt))
        if entries:
            raise RuntimeError(f"SQS did not accept {len(entries)} message(s) after {SEND_ATTEMPTS} attempts")
    return sent


def _batches(messages: Iterable[Message]) -> Iterator[list[Message]]:
    batch: list[Message] = []
    size = 0
    for message in messages:
        message_size = _size(message.body)
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + message_size > MAX_MESSAGE_BYTES - _HEADROOM):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message_size
    if batch:
        yield batch


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, default=str).encode("utf-8"))
