"""moto's DynamoDB and SQS backends are not thread-safe: TransactWriteItems deep-copies a table while another
request thread writes to it ("dictionary changed size during iteration"), and two pollers receiving at once can be
handed the same message. The services apply each request atomically; moto does once their requests run one at a
time. The demo's moto server (request threads) and the tests' in-process moto (the engine's worker threads, several
pollers) install this before any request."""

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
