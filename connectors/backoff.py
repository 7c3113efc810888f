"""AWS error codes and HTTP retry hints shared by the connectors, the engine and the failure classes.

There is one retry layer for AWS calls: botocore's standard mode with its retry quota, configured once
(``functions.engine.sessions.CLIENT_CONFIG``). Nothing here retries a boto3 call again on top of it: a
stacked layer multiplies the attempts (6 inside each of 6), bypasses the quota and can outlive the Lambda timeout. Only
the Netskope HTTP client has its own policy (tenacity, in connectors/netskope.py), using
``retry_after_seconds``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

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
