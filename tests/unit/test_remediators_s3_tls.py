"""S3.5 BucketSecureTransportPolicy against moto: merge a TLS-only Deny into the bucket policy, keep the rest,
recognise equivalent statements, and put the exact previous policy back."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.s3 import BucketSecureTransportPolicy, secure_transport_statement
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import bucket_policy, iam_actions, record_calls, recorded_pre_state

BUCKET = "cspm-tls-bucket"
ARN = f"arn:aws:s3:::{BUCKET}"
# Other statements a real bucket has; written with odd spacing so "exactly the previous text" is a real check.
EXISTING_TEXT = json.dumps(
    {
        "Version": "2012-10-17",
        "Id": "app-policy",
        "Statement": [
            {
                "Sid": "ReadFromApp",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [ARN, f"{ARN}/*"],
            },
            {
                "Sid": "DenyUnencryptedUploads",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{ARN}/*",
                "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            },
        ],
    },
    indent=3,
)


def tls_finding(bucket: str = BUCKET, **overrides: Any):
    return make_finding("S3.5", "AwsS3Bucket", bucket, **overrides)


@pytest.fixture
def s3(moto_aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def put_policy(s3, policy: dict[str, Any] | str) -> None:
    s3.put_bucket_policy(Bucket=BUCKET, Policy=policy if isinstance(policy, str) else json.dumps(policy))


def deny_statement(**changes: Any) -> dict[str, Any]:
    """The documented TLS-only statement with some elements replaced (None removes one)."""
    statement = {**secure_transport_statement(ARN, sid="AllowSSLRequestsOnly"), **changes}
    return {key: value for key, value in statement.items() if value is not None}


def test_bucket_without_policy_gets_a_tls_only_policy(target: Target, sessions: AssumedSessions, s3) -> None:
    remediator, finding = BucketSecureTransportPolicy(), tls_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"Policy": None}
    assert before.changes == [
        f"add a statement denying requests without TLS to the policy of bucket {BUCKET} (it has no policy yet)"
    ]
    assert bucket_policy(BUCKET) is None

    remediator.apply(target, finding, before)

    assert bucket_policy(BUCKET) == {"Version": "2012-10-17", "Statement": [secure_transport_statement(ARN)]}
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []  # rerun: noop
    assert iam_actions(sessions.api_calls) == {"s3:GetBucketPolicy", "s3:GetBucketTagging", "s3:PutBucketPolicy"}


def test_existing_statements_survive_exactly(target: Target, s3) -> None:
    put_policy(s3, EXISTING_TEXT)
    original = json.loads(EXISTING_TEXT)
    remediator, finding = BucketSecureTransportPolicy(), tls_finding()

    assessment = remediator.assess(target, finding)
    assert assessment.pre_state == {"Policy": EXISTING_TEXT}
    assert assessment.changes[0].endswith("keeping its 2 statement(s)")
    remediator.apply(target, finding, assessment)

    after = bucket_policy(BUCKET)
    assert after["Version"] == original["Version"] and after["Id"] == original["Id"]
    assert after["Statement"] == [*original["Statement"], secure_transport_statement(ARN)]
    assert remediator.assess(target, finding).compliant


def test_a_single_statement_object_is_kept(target: Target, s3) -> None:
    single = {"Sid": "One", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:GetObject", "Resource": ARN}
    put_policy(s3, {"Version": "2012-10-17", "Statement": single})
    remediator, finding = BucketSecureTransportPolicy(), tls_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert bucket_policy(BUCKET)["Statement"] == [single, secure_transport_statement(ARN)]


def test_a_taken_sid_is_not_reused(target: Target, s3) -> None:
    """A statement already named DenyInsecureTransport that only covers uploads: the new one needs its own Sid."""
    narrow = deny_statement(Sid="DenyInsecureTransport", Action="s3:PutObject")
    put_policy(s3, {"Version": "2012-10-17", "Statement": [narrow]})
    remediator, finding = BucketSecureTransportPolicy(), tls_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    statements = bucket_policy(BUCKET)["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport", "DenyInsecureTransport1"]
    assert remediator.assess(target, finding).compliant


EQUIVALENT = {
    "aws documented example": deny_statement(),
    "principal AWS *": deny_statement(Principal={"AWS": "*"}),
    "principal AWS [*]": deny_statement(Principal={"AWS": ["*"]}),
    "action *": deny_statement(Action="*"),
    "action list": deny_statement(Action=["s3:GetObject", "s3:*"]),
    "resource *": deny_statement(Resource="*"),
    "boolean false": deny_statement(Condition={"Bool": {"aws:SecureTransport": False}}),
    "list false, key case": deny_statement(Condition={"Bool": {"AWS:SecureTransport": ["False"]}}),
    "no sid": deny_statement(Sid=None),
}


@pytest.mark.parametrize("statement", EQUIVALENT.values(), ids=EQUIVALENT.keys())
def test_equivalent_deny_statements_are_compliant(target: Target, s3, statement: dict[str, Any]) -> None:
    put_policy(s3, {"Version": "2012-10-17", "Statement": [statement]})

    assert BucketSecureTransportPolicy().assess(target, tls_finding()).compliant


NOT_EQUIVALENT = {
    "allow over TLS only": deny_statement(Effect="Allow", Condition={"Bool": {"aws:SecureTransport": "true"}}),
    "some actions": deny_statement(Action=["s3:GetObject", "s3:PutObject"]),
    "objects only": deny_statement(Resource=f"{ARN}/*"),
    "another bucket": deny_statement(Resource=["arn:aws:s3:::other", "arn:aws:s3:::other/*"]),
    "one principal": deny_statement(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
    "not principal": deny_statement(Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
    "extra condition": deny_statement(
        Condition={"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    ),
    "secure transport true": deny_statement(Condition={"Bool": {"aws:SecureTransport": "true"}}),
}


@pytest.mark.parametrize("statement", NOT_EQUIVALENT.values(), ids=NOT_EQUIVALENT.keys())
def test_narrower_statements_are_not_compliant(target: Target, s3, statement: dict[str, Any]) -> None:
    put_policy(s3, {"Version": "2012-10-17", "Statement": [statement]})

    assert not BucketSecureTransportPolicy().assess(target, tls_finding()).compliant


def test_assess_alone_changes_nothing(target: Target, s3) -> None:
    """Dry-run runs assess alone: one read, no write."""
    put_policy(s3, EXISTING_TEXT)
    calls = record_calls(target.client("s3"))

    BucketSecureTransportPolicy().assess(target, tls_finding())

    assert calls == ["GetBucketPolicy", "GetBucketTagging"]
    assert s3.get_bucket_policy(Bucket=BUCKET)["Policy"] == EXISTING_TEXT


@pytest.mark.parametrize("previous", [EXISTING_TEXT, None], ids=["policy", "no-policy"])
def test_restore_puts_the_exact_previous_policy_back(
    target: Target, sessions: AssumedSessions, s3, previous: str | None
) -> None:
    if previous:
        put_policy(s3, previous)
    remediator, finding = BucketSecureTransportPolicy(), tls_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        if previous:
            assert s3.get_bucket_policy(Bucket=BUCKET)["Policy"] == previous
            assert lines == [f"put back the previous policy of bucket {BUCKET}"]
        else:
            assert bucket_policy(BUCKET) is None
            assert lines == [f"deleted the policy of bucket {BUCKET} (it had none before)"]
    assert iam_actions(sessions.api_calls) <= set(BucketSecureTransportPolicy.permissions)


def test_restore_without_a_recorded_policy_is_refused(target: Target, s3) -> None:
    with pytest.raises(RemediationError, match="no previous policy recorded"):
        BucketSecureTransportPolicy().restore(target, tls_finding(), {})


def test_missing_bucket_is_a_remediation_error(target: Target, s3) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        BucketSecureTransportPolicy().assess(target, tls_finding("no-such-bucket-here"))


def test_bucket_arn_as_resource_id(target: Target, s3) -> None:
    finding = tls_finding(ARN)
    remediator = BucketSecureTransportPolicy()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert bucket_policy(BUCKET)["Statement"] == [secure_transport_statement(ARN)]


def test_arns_follow_the_partition(sessions: AssumedSessions) -> None:
    """A GovCloud bucket gets arn:aws-us-gov ARNs (an aws ARN there would match nothing)."""
    region = "us-gov-west-1"
    boto3.client("s3", region_name=region).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
    )
    target = sessions.target(ACCOUNT, region, "aws-us-gov")
    remediator, finding = BucketSecureTransportPolicy(), tls_finding(region=region)

    remediator.apply(target, finding, remediator.assess(target, finding))

    policy = json.loads(boto3.client("s3", region_name=region).get_bucket_policy(Bucket=BUCKET)["Policy"])
    gov_arn = f"arn:aws-us-gov:s3:::{BUCKET}"
    assert policy["Statement"] == [secure_transport_statement(gov_arn)]
    assert remediator.assess(target, finding).compliant


def test_runbook_and_declarations() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
    runbook = BucketSecureTransportPolicy.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-RestrictBucketSSLRequestsOnly"
    assert runbook.parameters(tls_finding(), role) == {"BucketName": [BUCKET], "AutomationAssumeRole": [role]}
    (rule,) = BucketSecureTransportPolicy.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("S3.5", ("2.1.1",), False)
    assert BucketSecureTransportPolicy.resource_types == ("AwsS3Bucket",)
    assert BucketSecureTransportPolicy.reversible
