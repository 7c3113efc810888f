"""S3.8 / S3.1 Block Public Access remediators against moto: assess → apply → verify, read-only assess, runbooks,
rollback."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.s3 import ALL_BLOCKED, AccountPublicAccessBlock, BucketPublicAccessBlock
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls, recorded_pre_state

BUCKET = "cspm-test-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
PARTIAL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


def bucket_finding(bucket: str = BUCKET, **overrides: Any):
    return make_finding("S3.8", "AwsS3Bucket", bucket, **overrides)


def account_finding(**overrides: Any):
    return make_finding("S3.1", "AwsAccount", ACCOUNT, **overrides)


@pytest.fixture
def s3(moto_aws):
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def s3control(moto_aws):
    return boto3.client("s3control", region_name=REGION)


@pytest.fixture
def bucket(s3) -> str:
    """A bucket without a Block Public Access configuration (moto does not add AWS's default one)."""
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def bucket_pab(s3, name: str = BUCKET) -> dict[str, bool] | None:
    """An independent read of the bucket's configuration, not through the remediator."""
    try:
        return s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
        return None


def account_pab(s3control) -> dict[str, bool] | None:
    try:
        return s3control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
        return None


# -- S3.8: bucket level ------------------------------------------------------------------------------------------


def test_bucket_without_configuration_is_remediated_and_verified(target: Target, s3, bucket: str) -> None:
    remediator = BucketPublicAccessBlock()
    finding = bucket_finding()
    calls = record_calls(target.client("s3"))

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"PublicAccessBlockConfiguration": None}
    assert before.changes == [
        "turn on BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets for bucket "
        + finding.resource_id
    ]
    assert before.tags == {}  # the finding carries no tags: the bucket's live ones (none) were read
    assert bucket_pab(s3) is None

    remediator.apply(target, finding, before)

    assert bucket_pab(s3) == ALL_BLOCKED
    after = remediator.assess(target, finding)
    assert after.compliant
    assert after.changes == []
    # Rerun on the fixed bucket: still compliant, so the engine reports noop.
    assert remediator.assess(target, finding).compliant
    read = ["GetPublicAccessBlock", "GetBucketTagging"]
    is_public = ["GetBucketPolicyStatus", "GetBucketAcl"]  # only while not compliant: would blocking cut access?
    assert calls == [*read, *is_public, "PutPublicAccessBlock", *read, *read]


def test_partial_bucket_configuration_is_non_compliant_and_recorded(target: Target, s3, bucket: str) -> None:
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PARTIAL)
    remediator = BucketPublicAccessBlock()
    finding = bucket_finding()

    before = remediator.assess(target, finding)

    assert not before.compliant
    assert before.pre_state == {"PublicAccessBlockConfiguration": PARTIAL}
    assert before.changes == [f"turn on BlockPublicPolicy, RestrictPublicBuckets for bucket {bucket}"]
    remediator.apply(target, finding, before)
    assert bucket_pab(s3) == ALL_BLOCKED
    assert remediator.assess(target, finding).compliant


def test_fully_blocked_bucket_is_compliant(target: Target, s3, bucket: str) -> None:
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)

    assessment = BucketPublicAccessBlock().assess(target, bucket_finding())

    assert assessment.compliant
    assert assessment.changes == []


@pytest.mark.parametrize("how", ["policy", "acl", "private"])
def test_a_bucket_public_now_is_disruptive_for_that_finding(target: Target, s3, bucket: str, how: str) -> None:
    """Blocking public access on a bucket that is public right now (policy status, or an ACL grant to everyone)
    cuts that access: the assessment says so, and the engine holds it under a global enforce (the plan says why)
    while a private bucket is remediated. Calls carry ExpectedBucketOwner (the bucket must be this account's)."""
    from functions.engine.config import config_from_dict
    from functions.engine.engine import Engine

    if how == "policy":
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    elif how == "acl":
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    owners: list[str | None] = []
    target.client("s3").meta.events.register(
        "before-parameter-build.s3", lambda params, **_: owners.append(params.get("ExpectedBucketOwner")))

    assessment = BucketPublicAccessBlock().assess(target, bucket_finding())
    (result,) = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply").run([bucket_finding()])

    assert set(owners) == {ACCOUNT}
    if how == "private":
        assert assessment.disruptive == ""
        assert result.outcome == "remediated"
    else:
        expected = "its policy is public" if how == "policy" else "its ACL grants everyone access"
        assert assessment.disruptive == f"bucket {bucket} is public now ({expected}): that access stops"
        assert result.outcome == "planned" and "disruptive for this finding" in result.reason
        assert bucket_pab(s3) is None


@pytest.mark.parametrize(("already_on", "reads"), [
    ({"IgnorePublicAcls": True}, ["GetBucketPolicyStatus"]),  # public ACLs are ignored already: nothing to cut
    ({"RestrictPublicBuckets": True}, ["GetBucketAcl"]),  # a public policy is held back already
    ({"IgnorePublicAcls": True, "RestrictPublicBuckets": True}, []),
])
def test_only_the_access_the_change_can_cut_is_read(target: Target, s3, bucket: str, already_on: dict[str, bool],
                                                   reads: list[str]) -> None:
    """GetBucketPolicyStatus and GetBucketAcl decide whether blocking cuts access in use: each is read only when
    the setting that would cut it is still off. A public ACL under IgnorePublicAcls is no access in use."""
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        name: already_on.get(name, False) for name in ALL_BLOCKED})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    calls = record_calls(target.client("s3"))

    assessment = BucketPublicAccessBlock().assess(target, bucket_finding())

    assert not assessment.compliant
    assert calls == ["GetPublicAccessBlock", "GetBucketTagging", *reads]
    public_acl_in_use = "IgnorePublicAcls" not in already_on
    assert ("its ACL grants everyone access" in assessment.disruptive) == public_acl_in_use


@pytest.mark.parametrize(("account_on", "reads", "reasons"), [
    ({}, ["GetBucketPolicyStatus", "GetBucketAcl"], ["its policy is public", "its ACL grants everyone access"]),
    ({"IgnorePublicAcls": True}, ["GetBucketPolicyStatus"], ["its policy is public"]),
    ({"RestrictPublicBuckets": True}, ["GetBucketAcl"], ["its ACL grants everyone access"]),
    ({"IgnorePublicAcls": True, "RestrictPublicBuckets": True}, [], []),
])
def test_the_accounts_block_public_access_counts_as_in_effect(target: Target, s3, s3control, bucket: str,
                                                             account_on: dict[str, bool], reads: list[str],
                                                             reasons: list[str]) -> None:
    """S3 applies a setting that the bucket's or the account's configuration turns on. A public policy or ACL
    the account's settings already hold back is no access in use: the bucket's change cuts nothing there, so it
    is not disruptive for that reason and that read is not made."""
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    if account_on:
        s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={
            name: account_on.get(name, False) for name in ALL_BLOCKED})
    calls = record_calls(target.client("s3"))

    assessment = BucketPublicAccessBlock().assess(target, bucket_finding())

    assert not assessment.compliant  # the bucket's own settings decide the control
    assert calls == ["GetPublicAccessBlock", "GetBucketTagging", *reads]
    expected = f"bucket {bucket} is public now ({', '.join(reasons)}): that access stops" if reasons else ""
    assert assessment.disruptive == expected


def test_unreadable_account_settings_leave_the_bucket_reads_as_they_were(target: Target, s3, bucket: str) -> None:
    """A target role deployed before s3:GetAccountPublicAccessBlock was granted: the bucket's policy status and
    ACL are read as without the account's settings, and the assessment stands."""
    from botocore.stub import Stubber

    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    calls = record_calls(target.client("s3"))
    with Stubber(target.client("s3control")) as refused:  # moto grants every call: AccessDenied answered here
        refused.add_client_error("get_public_access_block", "AccessDenied", http_status_code=403)
        assessment = BucketPublicAccessBlock().assess(target, bucket_finding())
        refused.assert_no_pending_responses()

    assert calls == ["GetPublicAccessBlock", "GetBucketTagging", "GetBucketPolicyStatus", "GetBucketAcl"]
    assert assessment.disruptive == f"bucket {bucket} is public now (its ACL grants everyone access): that access stops"


def test_the_account_settings_are_read_once_per_account_whatever_the_region_or_writes(moto_aws) -> None:
    """One run over S3.1 and buckets in two regions of one account, enforced: S3 Control's GetPublicAccessBlock
    is read once for S3.1 and every bucket (an account-wide entry), a bucket's write keeps it (it changes only
    that bucket), and S3.1's own write drops it (the next read sees the account's new settings)."""
    from functions.engine.config import config_from_dict
    from functions.engine.engine import Engine

    other = "eu-west-1"
    names = {REGION: ["cspm-a-east", "cspm-b-east"], other: ["cspm-c-west"]}
    for region, buckets in names.items():
        client = boto3.client("s3", region_name=region)
        for name in buckets:
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            client.create_bucket(Bucket=name, **extra)
    findings = [bucket_finding(name, region=region) for region, buckets in names.items() for name in buckets]
    sessions = AssumedSessions()
    config = config_from_dict({"mode": "enforce", "rules": {"S3.1": {"mode": "enforce"}}})  # its own opt-in

    results = Engine(config, sessions, stage="apply").run([*findings, account_finding()])

    assert sorted(r.outcome for r in results) == ["remediated"] * 4
    # One read shared by the three buckets and S3.1, then one after S3.1's write: its verification.
    assert sessions.api_calls["s3-control.GetPublicAccessBlock"] == 2
    for region, buckets in names.items():
        for name in buckets:
            assert bucket_pab(boto3.client("s3", region_name=region), name) == ALL_BLOCKED


def test_an_excluded_bucket_is_not_checked_for_public_access(s3, bucket: str) -> None:
    """The exclusion tag leaves the bucket alone whatever it is: its policy status and ACL are not read."""
    from functions.engine.config import config_from_dict
    from functions.engine.engine import Engine

    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cspm-remediation:exclude", "Value": "1"}]})
    sessions = AssumedSessions()

    (result,) = Engine(config_from_dict({}), sessions, stage="plan").run([bucket_finding()])

    assert result.outcome == "excluded"
    assert sessions.api_calls["s3.GetBucketTagging"] == 1
    assert sessions.api_calls["s3.GetBucketPolicyStatus"] == sessions.api_calls["s3.GetBucketAcl"] == 0


def test_bucket_assess_is_read_only(target: Target, s3, bucket: str) -> None:
    """Dry-run runs assess alone: it reads and never writes."""
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PARTIAL)
    calls = record_calls(target.client("s3"))

    assessment = BucketPublicAccessBlock().assess(target, bucket_finding())

    assert not assessment.compliant
    # PARTIAL ignores public ACLs already: the ACL is not read (see test_only_the_access_the_change_can_cut_is_read)
    assert calls == ["GetPublicAccessBlock", "GetBucketTagging", "GetBucketPolicyStatus"]
    assert bucket_pab(s3) == PARTIAL


def test_bucket_arn_as_resource_id(target: Target, s3, bucket: str) -> None:
    finding = bucket_finding(f"arn:aws:s3:::{bucket}")
    remediator = BucketPublicAccessBlock()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert bucket_pab(s3) == ALL_BLOCKED


def test_missing_bucket_is_a_remediation_error(target: Target, s3) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        BucketPublicAccessBlock().assess(target, bucket_finding("no-such-bucket-here"))


def test_bucket_runbook_parameters() -> None:
    runbook = BucketPublicAccessBlock.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-ConfigureS3BucketPublicAccessBlock"
    assert runbook.parameters(bucket_finding(), ROLE) == {
        "BucketName": [BUCKET],
        "AutomationAssumeRole": [ROLE],
        "BlockPublicAcls": ["true"],
        "IgnorePublicAcls": ["true"],
        "BlockPublicPolicy": ["true"],
        "RestrictPublicBuckets": ["true"],
    }


def test_bucket_declarations() -> None:
    assert [rule.rule_id for rule in BucketPublicAccessBlock.rules] == ["S3.8"]
    assert BucketPublicAccessBlock.rules[0].cis == ("2.1.4.2",)
    assert BucketPublicAccessBlock.resource_types == ("AwsS3Bucket",)
    # The IAM actions behind GetPublicAccessBlock / PutPublicAccessBlock on a bucket.
    # GetBucketTagging: the live tags, for findings that carry none (exclusion by tag); tag:GetResources and
    # s3:ListAllMyBuckets (the buckets of a Region) the engine's batched tag read of them (remediators/tagging.py);
    # GetAccountPublicAccessBlock: the account's settings in effect too (public_now).
    assert BucketPublicAccessBlock.permissions == (
        "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketPolicyStatus", "s3:GetBucketAcl",
        "s3:GetAccountPublicAccessBlock", "tag:GetResources", "s3:ListAllMyBuckets", "s3:PutBucketPublicAccessBlock",
    )
    assert BucketPublicAccessBlock.reversible


# -- S3.1: account level -----------------------------------------------------------------------------------------


def test_account_without_configuration_is_remediated_and_verified(target: Target, s3control) -> None:
    remediator = AccountPublicAccessBlock()
    finding = account_finding()
    calls = record_calls(target.client("s3control"))

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"PublicAccessBlockConfiguration": None}
    assert before.changes[0].startswith("turn on BlockPublicAcls, IgnorePublicAcls")
    assert before.changes[0].endswith(f"for account {ACCOUNT}")
    assert account_pab(s3control) is None

    remediator.apply(target, finding, before)

    assert account_pab(s3control) == ALL_BLOCKED
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []
    assert calls == ["GetPublicAccessBlock", "PutPublicAccessBlock", "GetPublicAccessBlock", "GetPublicAccessBlock"]


def test_partial_account_configuration_is_non_compliant_and_recorded(target: Target, s3control) -> None:
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=PARTIAL)
    remediator = AccountPublicAccessBlock()
    finding = account_finding()

    before = remediator.assess(target, finding)

    assert not before.compliant
    assert before.pre_state == {"PublicAccessBlockConfiguration": PARTIAL}
    assert before.changes == [f"turn on BlockPublicPolicy, RestrictPublicBuckets for account {ACCOUNT}"]
    remediator.apply(target, finding, before)
    assert account_pab(s3control) == ALL_BLOCKED
    assert remediator.assess(target, finding).compliant


def test_account_assess_is_read_only(target: Target, s3control) -> None:
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=PARTIAL)
    calls = record_calls(target.client("s3control"))

    assessment = AccountPublicAccessBlock().assess(target, account_finding())

    assert not assessment.compliant
    assert calls == ["GetPublicAccessBlock"]
    assert account_pab(s3control) == PARTIAL


def test_fully_blocked_account_is_compliant(target: Target, s3control) -> None:
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_BLOCKED)

    assert AccountPublicAccessBlock().assess(target, account_finding()).compliant


def test_account_runbook_parameters() -> None:
    runbook = AccountPublicAccessBlock.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-ConfigureS3PublicAccessBlock"
    assert runbook.parameters(account_finding(), ROLE) == {
        "AccountId": [ACCOUNT],
        "AutomationAssumeRole": [ROLE],
        "BlockPublicAcls": ["true"],
        "IgnorePublicAcls": ["true"],
        "BlockPublicPolicy": ["true"],
        "RestrictPublicBuckets": ["true"],
    }


def test_account_declarations() -> None:
    assert [rule.rule_id for rule in AccountPublicAccessBlock.rules] == ["S3.1"]
    assert AccountPublicAccessBlock.rules[0].cis == ("2.1.4.1",)
    assert AccountPublicAccessBlock.resource_types == ("AwsAccount",)
    assert AccountPublicAccessBlock.permissions == (
        "s3:GetAccountPublicAccessBlock",
        "s3:PutAccountPublicAccessBlock",
    )


def test_account_finding_in_region_global(sessions, s3control) -> None:
    """An account-level finding may carry region "global": the S3 Control call then goes to the home region."""
    target = sessions.target(ACCOUNT, "global")
    finding = account_finding(region="global")
    remediator = AccountPublicAccessBlock()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert account_pab(s3control) == ALL_BLOCKED


# -- rollback ----------------------------------------------------------------------------------------------------

RESTORE_CASES = {
    "bucket": (BucketPublicAccessBlock, bucket_finding, lambda s3, s3control: bucket_pab(s3)),
    "account": (AccountPublicAccessBlock, account_finding, lambda s3, s3control: account_pab(s3control)),
}


def _set_partial(kind: str, s3, s3control) -> None:
    if kind == "bucket":
        s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=PARTIAL)
    else:
        s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=PARTIAL)


@pytest.mark.parametrize("kind", RESTORE_CASES)
@pytest.mark.parametrize("before", [None, PARTIAL], ids=["none", "partial"])
def test_restore_puts_the_previous_configuration_back(
    kind: str, before, target: Target, sessions: AssumedSessions, s3, s3control, bucket: str
) -> None:
    remediator_class, make, read = RESTORE_CASES[kind]
    if before:
        _set_partial(kind, s3, s3control)
    remediator, finding = remediator_class(), make()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    assert read(s3, s3control) == ALL_BLOCKED

    lines = remediator.restore(target, finding, recorded_pre_state(assessment))

    assert read(s3, s3control) == before
    assert lines and all(isinstance(line, str) for line in lines)
    assert remediator.restore(target, finding, recorded_pre_state(assessment))  # twice is harmless
    assert read(s3, s3control) == before
    assert not remediator.assess(target, finding).compliant
    assert iam_actions(sessions.api_calls) <= set(remediator_class.permissions)


@pytest.mark.parametrize("kind", RESTORE_CASES)
def test_restore_without_a_recorded_state_is_refused(kind: str, target: Target, bucket: str) -> None:
    remediator_class, make, _ = RESTORE_CASES[kind]
    with pytest.raises(RemediationError, match="no previous Block Public Access"):
        remediator_class().restore(target, make(), {})
