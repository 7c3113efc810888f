"""The failure-class table (functions/engine/failures.py), row by row: the errors as botocore raises them and as
remediators wrap them, the outcome the finding gets, and whether its SQS message comes back."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from functions.engine.failures import (
    DECIDED_OUTCOMES,
    FAILURE_CLASSES,
    FailureClass,
    classify,
    classify_error,
    error_code,
    retried,
)
from functions.remediators.base import RemediationError
from tools.docs import failures_markdown


def client_error(code: str, status: int = 400, operation: str = "DescribeSecurityGroups") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def wrapped(cause: Exception, text: str = "security group sg-1 not found") -> RemediationError:
    """What a remediator raises: its own error, the AWS one as its cause (`raise … from error`)."""
    try:
        raise RemediationError(text) from cause
    except RemediationError as error:
        return error


def row(condition: str) -> FailureClass:
    return next(r for r in FAILURE_CLASSES if r.condition.startswith(condition))


# (error, raised on the remediation role's AssumeRole?, the row it belongs to)
CASES = {
    "EC2 RequestLimitExceeded (503)": (client_error("RequestLimitExceeded", 503), False, "throttled"),
    "STS Throttling (400)": (client_error("Throttling", 400, "AssumeRole"), True, "throttled"),
    "Security Hub TooManyRequestsException (429)": (client_error("TooManyRequestsException", 429), False,
                                                    "throttled"),
    "EC2 InternalError (500)": (client_error("InternalError", 500), False, "AWS service error"),
    "an unknown code answered with 502": (client_error("BadGatewayOfSomeKind", 502), False, "AWS service error"),
    "read timeout": (ReadTimeoutError(endpoint_url="https://ec2"), False, "timeout or connection error"),
    "connection closed": (ConnectionClosedError(endpoint_url="https://ec2"), False, "timeout or connection error"),
    "no endpoint": (EndpointConnectionError(endpoint_url="https://sts"), True, "timeout or connection error"),
    "AssumeRole AccessDenied (no role, or its trust refuses us)": (
        client_error("AccessDenied", 403, "AssumeRole"), True, "remediation role missing"),
    "AssumeRole RegionDisabledException": (client_error("RegionDisabledException", 403, "AssumeRole"), True,
                                           "remediation role missing"),
    "EC2 InvalidGroup.NotFound, wrapped by the remediator": (
        wrapped(client_error("InvalidGroup.NotFound")), False, "resource no longer exists"),
    "S3 NoSuchBucket": (client_error("NoSuchBucket", 404), False, "resource no longer exists"),
    "IAM NoSuchEntity": (wrapped(client_error("NoSuchEntity", 404), "user bob does not exist"), False,
                         "resource no longer exists"),
    "RDS DBInstanceNotFound": (client_error("DBInstanceNotFound", 404), False, "resource no longer exists"),
    "EC2 InvalidSnapshot.NotFound (the suffix)": (client_error("InvalidSnapshot.NotFound"), False,
                                                  "resource no longer exists"),
    "EC2 UnauthorizedOperation on a write": (client_error("UnauthorizedOperation", 403), False, "not permitted"),
    "AccessDenied on a call (not AssumeRole)": (client_error("AccessDenied", 403), False, "not permitted"),
    "a remediator's own refusal": (RemediationError("the trail already has 5 event selectors"), False,
                                   "unsupported resource shape"),
    "a bug": (KeyError("Resources"), False, "anything else"),
    "an unknown 4xx code": (client_error("InvalidParameterValue"), False, "anything else"),
    "throttling wrapped by a remediator stays transient": (wrapped(client_error("Throttling")), False, "throttled"),
}


@pytest.mark.parametrize(("error", "assume_role", "condition"), CASES.values(), ids=CASES.keys())
def test_each_error_falls_in_its_row(error, assume_role, condition):
    found = classify_error(error, assume_role=assume_role)
    assert found is row(condition)
    # The remediate handler decides from the recorded result alone (outcome + error code), and must agree.
    assert retried(found.outcome, error_code(error)) == (found.transient and found.outcome == "failed")


def test_every_row_of_the_table_is_tested():
    tested = {row(condition) for _, _, condition in CASES.values()}
    assert tested == set(FAILURE_CLASSES)


@pytest.mark.parametrize("condition", [r.condition for r in FAILURE_CLASSES])
def test_transient_rows_fail_the_finding_and_permanent_rows_never_return_the_message(condition):
    found = row(condition)
    if found.transient:
        assert found.outcome == "failed" and retried("failed", found.codes[0] if found.codes else None)
    else:
        assert not retried(found.outcome, found.codes[0])


def test_access_denied_is_the_role_only_on_assume_role():
    assert classify("AccessDenied", assume_role=True).outcome == "skipped"
    assert classify("AccessDenied", assume_role=False).outcome == "failed"
    assert not classify("AccessDenied").transient


@pytest.mark.parametrize("outcome", DECIDED_OUTCOMES)
def test_decisions_are_never_retried(outcome):
    """notify-only (notified), duplicates and the rest: recorded as decided, the message deleted."""
    assert not retried(outcome, None) and not retried(outcome, "Throttling")


def test_error_code_prefers_the_aws_code_of_the_cause():
    assert error_code(wrapped(client_error("InvalidGroup.NotFound"))) == "InvalidGroup.NotFound"
    assert error_code(RemediationError("no")) == "RemediationError"
    assert error_code(ConnectionClosedError(endpoint_url="x")) == "ConnectionClosedError"

    class Sub(RemediationError):
        pass

    assert error_code(Sub("a subclass is still a remediator's refusal")) == "RemediationError"


def test_the_readme_table_is_generated_from_every_row():
    table = failures_markdown()
    for found in FAILURE_CLASSES:
        assert f"| {found.condition} |" in table
    assert "`InvalidGroup.NotFound`" not in table and "`*.NotFound`" in table  # the suffix, not every code
