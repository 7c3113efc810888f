"""One retry layer for AWS calls: botocore's standard mode as CLIENT_CONFIG sets it, counted on the wire.

Every request is answered by a botocore ``before-send`` handler with the error response the service would send
(tests/faults.py), so botocore parses, classifies and retries it exactly as it would AWS's answer; no request
leaves the process and no backoff is slept (``no_backoff``).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from functions.aws_lambda import work_queue
from functions.engine.sessions import AWS_TOTAL_ATTEMPTS, CLIENT_CONFIG
from tests.faults import base_session, error_response, no_backoff


@pytest.fixture
def waits(monkeypatch):
    return no_backoff(monkeypatch)


def answering(client: Any, answer) -> list[str]:
    """Answer every request of `client` with answer(); returns the URLs sent, one entry per attempt."""
    sent: list[str] = []

    def before_send(request: Any, **_: Any) -> Any:
        sent.append(request.url)
        return answer()

    client.meta.events.register_first("before-send", before_send)
    return sent


def client(service: str) -> Any:
    return base_session().client(service, region_name="us-east-1", config=CLIENT_CONFIG,
                                 aws_access_key_id="testing", aws_secret_access_key="testing")


def test_the_client_config_is_standard_mode_with_attempts_set_once():
    retries = CLIENT_CONFIG.retries
    assert retries == {"mode": "standard", "total_max_attempts": AWS_TOTAL_ATTEMPTS}


@pytest.mark.parametrize(("service", "call", "code"), [
    ("ec2", lambda c: c.describe_security_groups(), "RequestLimitExceeded"),
    ("sts", lambda c: c.get_caller_identity(), "Throttling"),
    ("sqs", lambda c: c.list_queues(), "InternalError"),
    ("securityhub", lambda c: c.get_findings(), "TooManyRequestsException"),
])
def test_throttling_and_5xx_are_attempted_exactly_total_max_attempts_times(waits, service, call, code):
    c = client(service)
    sent = answering(c, lambda: error_response(service, code))
    with pytest.raises(ClientError) as raised:
        call(c)
    assert raised.value.response["Error"]["Code"] == code
    assert len(sent) == AWS_TOTAL_ATTEMPTS and len(waits.botocore) == AWS_TOTAL_ATTEMPTS - 1
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == AWS_TOTAL_ATTEMPTS - 1


def test_connection_errors_are_retried_by_the_same_layer(waits):
    c = client("ec2")

    def dropped() -> Any:
        raise ConnectionClosedError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")

    sent = answering(c, dropped)
    with pytest.raises(ConnectionClosedError):
        c.describe_security_groups()
    assert len(sent) == AWS_TOTAL_ATTEMPTS


@pytest.mark.parametrize("code", ["AccessDenied", "UnauthorizedOperation"])
def test_permanent_errors_are_sent_once(waits, code):
    c = client("ec2")
    sent = answering(c, lambda: error_response("ec2", code))
    with pytest.raises(ClientError):
        c.describe_security_groups()
    assert len(sent) == 1 and waits.botocore == []


def test_the_retry_quota_stops_retrying_a_service_that_keeps_failing(waits):
    """Standard mode's quota (500 units, 14 per retry of a 5xx): a failing service gets ~35 retries from one
    client in all, then every call is tried once. A stacked layer would have retried on past the quota."""
    c = client("ec2")
    sent = answering(c, lambda: error_response("ec2", "InternalError"))
    per_call = []
    for _ in range(15):
        before = len(sent)
        with pytest.raises(ClientError):
            c.describe_security_groups()
        per_call.append(len(sent) - before)
    assert per_call[0] == AWS_TOTAL_ATTEMPTS and per_call[-1] == 1
    assert sum(per_call) - len(per_call) == 500 // 14  # the retries the quota paid for


def test_a_queue_send_is_one_call_when_the_client_gave_up(waits):
    """work_queue.send adds no retry layer around the call: botocore's attempts are all there are."""
    c = client("sqs")
    sent = answering(c, lambda: error_response("sqs", "InternalError"))
    with pytest.raises(ClientError):
        work_queue.send(c, "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                        [work_queue.summary_message("run-1", "apply", 0)], sleep=lambda _: None)
    assert len(sent) == AWS_TOTAL_ATTEMPTS

