"""Retry with jittered exponential backoff on throttling, for boto3 calls and HTTP APIs alike.

One policy object per kind of call; `sleep` is injectable so tests are instant and deterministic.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Error codes AWS uses for "slow down" across services (EC2, STS, Security Hub, SSM, IAM, S3...).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
    }
)
TRANSIENT_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "InternalServerError"})


def aws_error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def is_retryable_aws_error(error: BaseException) -> bool:
    if isinstance(error, BotoConnectionError):
        return True
    code = aws_error_code(error)
    return code in THROTTLING_CODES or code in TRANSIENT_CODES


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "retrying %s after %s (attempt %d, waiting %.1fs)",
        getattr(state.fn, "__name__", "call"),
        type(error).__name__ if error else "error",
        state.attempt_number,
        wait,
    )


def aws_retrying(
    attempts: int = 6, max_wait: float = 20.0, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """A tenacity policy for boto3 calls: retry throttling and transient errors, re-raise the rest."""
    return Retrying(
        retry=retry_if_exception(is_retryable_aws_error),
        wait=wait_random_exponential(multiplier=0.5, max=max_wait),
        stop=stop_after_attempt(attempts),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


def call_with_retry(fn: Callable[..., T], *args: Any, retrying: Retrying | None = None, **kwargs: Any) -> T:
    return (retrying or aws_retrying())(fn, *args, **kwargs)


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Parse an HTTP `Retry-After` header: delta-seconds or an HTTP-date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
