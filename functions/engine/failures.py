"""Failure classes: what an error means for the finding, and for the SQS message that carried it.

Transient (throttling, 5xx, timeouts, connection errors, anything not known to be final): the finding is
`failed` and the remediate Lambda returns its message in ``batchItemFailures``; SQS redelivers it, and after
MaxReceiveCount deliveries it lands in the dead-letter queue, whose alarm tells a person.

Permanent (the resource is gone, the remediation role is missing or refuses us, the role may not make the call,
the remediator cannot handle this resource): the finding is recorded `skipped` or `failed` with its reason and
its message is deleted. A redelivery could only fail the same way; the next scheduled run reads the finding
afresh and acts again if it is still open.

FAILURE_CLASSES is the one table: the engine takes a finding's outcome from it, the remediate handler its
retry decision, the README its "Failure classes" table (tools/docs.py). The first row that matches wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from connectors.backoff import THROTTLING_CODES, TRANSIENT_CODES


def _ordered(first: tuple[str, ...], rest: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The codes of a row, the common ones first (the README shows the first few)."""
    return first + tuple(sorted(rest - set(first)))


THROTTLED = _ordered(("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
                      "SlowDown"), THROTTLING_CODES)
SERVER_ERRORS = _ordered(("InternalError", "ServiceUnavailable", "InternalFailure", "InternalServerError",
                          "Unavailable", "InternalServiceError", "ServiceFailure"), TRANSIENT_CODES)
# Exceptions botocore raises when no HTTP answer came (its names: results carry them in `error`).
CONNECTION_ERRORS = ("ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError",
                     "ProxyConnectionError", "SSLError", "ConnectionError", "HTTPClientError")
# "The resource this finding is about no longer exists": each service's own code. EC2's InvalidXxx.NotFound
# family is matched by its suffix (NOT_FOUND_SUFFIX). Codes that mean "this resource has no such setting"
# (NoSuchBucketPolicy, NoSuchPublicAccessBlockConfiguration…) are not here: the resource is still there.
NOT_FOUND_CODES = (
    "NoSuchBucket", "NoSuchEntity", "DBInstanceNotFound", "ResourceNotFoundException", "NotFoundException",
    "TrailNotFoundException", "ClusterNotFound", "FileSystemNotFound", "DBInstanceNotFoundFault",
    "DBSnapshotNotFound", "DBClusterNotFoundFault", "DBClusterSnapshotNotFoundFault", "ClusterNotFoundFault",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound", "404",
)
NOT_FOUND_SUFFIX = ".NotFound"
# What STS answers an AssumeRole of a role that does not exist, or whose trust policy does not trust us (STS does
# not say which), and of an account where STS is switched off in that region.
ROLE_REFUSED_CODES = ("AccessDenied", "AccessDeniedException", "RegionDisabledException")
NOT_PERMITTED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
                       "UnauthorizedException", "AuthFailure")
REMEDIATOR_REFUSAL = "RemediationError"  # a remediator's own "cannot handle this resource" (remediators/base.py)


@dataclass(frozen=True)
class FailureClass:
    condition: str  # what the README says
    transient: bool  # True: the message is returned (batchItemFailures); False: recorded and deleted
    outcome: str  # the finding's outcome: "failed" or "skipped"
    codes: tuple[str, ...] = ()  # AWS error codes or botocore exception names, common first; empty with `default`
    suffix: str = ""  # ...or codes ending with this
    assume_role: bool = False  # only for the AssumeRole of the remediation role
    http_5xx: bool = False  # ...or any error answered with HTTP 5xx
    default: bool = False  # the last row: whatever no other row matched

    def matches(self, code: str | None, assume_role: bool, status: int | None = None) -> bool:
        if self.default:
            return True
        if self.assume_role and not assume_role:
            return False
        if self.http_5xx and status is not None and status >= 500:
            return True
        return code is not None and (code in self.codes or bool(self.suffix and code.endswith(self.suffix)))

    @property
    def label(self) -> str:
        """The reason's prefix for a permanent outcome other than failed (the README's condition)."""
        return self.condition.split(" (")[0]


FAILURE_CLASSES: tuple[FailureClass, ...] = (
    FailureClass("throttled", transient=True, outcome="failed", codes=THROTTLED),
    FailureClass("AWS service error (HTTP 5xx)", transient=True, outcome="failed", codes=SERVER_ERRORS,
                 http_5xx=True),
    FailureClass("timeout or connection error", transient=True, outcome="failed", codes=CONNECTION_ERRORS),
    FailureClass("remediation role missing or refused in that account (AssumeRole)", transient=False,
                 outcome="skipped", codes=ROLE_REFUSED_CODES, assume_role=True),
    FailureClass("resource no longer exists", transient=False, outcome="skipped", codes=NOT_FOUND_CODES,
                 suffix=NOT_FOUND_SUFFIX),
    FailureClass("not permitted (the remediation role lacks the permission)", transient=False, outcome="failed",
                 codes=NOT_PERMITTED_CODES),
    FailureClass("unsupported resource shape, or the remediator needs a person", transient=False,
                 outcome="failed", codes=(REMEDIATOR_REFUSAL,)),
    FailureClass("anything else (a bug, a failed verification, an unknown error)", transient=True,
                 outcome="failed", default=True),
)
# Outcomes that are decisions, not failures: never retried (notify-only findings are `notified`).
DECIDED_OUTCOMES = ("remediated", "started", "noop", "planned", "notified", "skipped", "excluded")


def aws_error_code(error: BaseException) -> str | None:
    """The AWS error code of a ClientError (`NoSuchEntity`, `InvalidGroup.NotFound`), None for anything else:
    what remediators compare against when a missing or already-changed resource is an answer, not a failure."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def error_code(error: BaseException) -> str:
    """The AWS error code of an error or of what caused it (remediators wrap `…NotFound` into their own
    RemediationError), else the exception's class name."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientError):
            return str(seen.response.get("Error", {}).get("Code", "")) or type(seen).__name__
        seen = seen.__cause__
    return _known_name(error)


def classify(code: str | None, assume_role: bool = False, status: int | None = None) -> FailureClass:
    """The row for an error code (or exception name), as the table says."""
    return next(row for row in FAILURE_CLASSES if row.matches(code, assume_role, status))


def classify_error(error: BaseException, assume_role: bool = False) -> FailureClass:
    return classify(error_code(error), assume_role, _http_status(error))


def retried(outcome: str, error: str | None) -> bool:
    """True when a finding's message should come back (batchItemFailures): a transient failure only."""
    return outcome not in DECIDED_OUTCOMES and classify(error).transient


def _known_name(error: BaseException) -> str:
    """The exception's class name, or the nearest base class the table knows (a subclass of botocore's
    ConnectionError is still a connection error; a remediator's subclass of RemediationError still a refusal)."""
    for cls in type(error).__mro__:
        if cls.__name__ in CONNECTION_ERRORS or cls.__name__ == REMEDIATOR_REFUSAL:
            return cls.__name__
    return type(error).__name__


def _http_status(error: BaseException) -> int | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        seen = seen.__cause__
    return None
