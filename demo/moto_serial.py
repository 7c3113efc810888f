"""moto's DynamoDB and SQS backends are not thread-safe. A conditional PutItem is check-then-write without a lock,
so two writers can both pass the check; TransactWriteItems deep-copies the table ("dictionary changed size during
iteration" when another thread writes), checks and writes item by item, and on a cancellation puts the copy back,
undoing other threads' writes meanwhile; two pollers receiving at once can be handed the same message. The services
apply each request atomically; moto does once their requests run one at a time, so the tests check the ledger's
condition expressions, not moto. The demo's moto server (request threads) and the tests' in-process moto (the
engine's worker threads, several pollers) install this before any request. Nothing like it is in the product."""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.RLock()


def _serialize(handler: Any) -> None:
    if handler.__dict__.get("_cspm_serialized"):
        return
    original = handler.call_action

    def call_action(self: Any) -> Any:
        with _LOCK:
            return original(self)

    handler.call_action = call_action
    handler._cspm_serialized = True


def serialize_dynamodb_and_sqs() -> None:
    """Run moto's DynamoDB and SQS requests one at a time (idempotent)."""
    from moto.dynamodb.responses import DynamoHandler  # imported late: heavy, and only moto users need it
    from moto.sqs.responses import SQSResponse

    for handler in (DynamoHandler, SQSResponse):
        _serialize(handler)
