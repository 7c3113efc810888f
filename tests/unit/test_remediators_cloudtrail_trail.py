"""CloudTrail.1 MultiRegionTrail against moto: which trails count, creating a trail and its private bucket,
restarting our own stopped trail, rollback that never deletes logs, and trails of other regions and accounts."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.s3.models import s3_backends

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.cloudtrail import DEFAULT_EVENT_SELECTOR, MultiRegionTrail
from functions.remediators.s3 import ALL_BLOCKED, secure_transport_statement
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import (
    bucket_policy,
    create_trail,
    iam_actions,
    make_trail_bucket,
    record_calls,
    recorded_pre_state,
    trail_arn,
)

OTHER_REGION = "us-west-2"
OWN_TRAIL = "cspm-remediation-trail"
OWN_BUCKET = f"cspm-cloudtrail-{ACCOUNT}-{REGION}"
EXISTING_BUCKET = "existing-trail-logs"


def account_finding(**overrides: Any):
    return make_finding("CloudTrail.1", "AwsAccount", ACCOUNT, **overrides)


@pytest.fixture
def cloudtrail(moto_aws):
    return boto3.client("cloudtrail", region_name=REGION)


@pytest.fixture
def s3(moto_aws):
    return boto3.client("s3", region_name=REGION)


def trail_state(cloudtrail) -> list[tuple[str, bool, bool]]:
    """Independent read: (ARN, multi-Region, logging) of every trail visible in the region."""
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    return [
        (t["TrailARN"], t["IsMultiRegionTrail"], cloudtrail.get_trail_status(Name=t["TrailARN"])["IsLogging"])
        for t in trails
    ]


def bucket_names(s3) -> set[str]:
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_account_without_trail_gets_a_logging_multi_region_trail(
    target: Target, sessions: AssumedSessions, cloudtrail, s3
) -> None:
    remediator, finding = MultiRegionTrail(), account_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"TrailName": OWN_TRAIL, "Trail": None}
    assert [change.split(" (")[0] for change in before.changes] == [
        f"create S3 bucket {OWN_BUCKET}",
        f"create S3 bucket {OWN_BUCKET}-access-logs",
        f"turn on server access logging of bucket {OWN_BUCKET} to s3://{OWN_BUCKET}-access-logs/{OWN_BUCKET}/",
        "create KMS key alias/cspm-cloudtrail in us-east-1 for CloudTrail",
        f"create multi-Region trail {OWN_TRAIL} in {REGION} logging all management events to s3://{OWN_BUCKET} "
        "with log file validation, SSE-KMS",
    ]
    assert trail_state(cloudtrail) == [] and OWN_BUCKET not in bucket_names(s3)

    remediator.apply(target, finding, before)

    own_arn = trail_arn(OWN_TRAIL)
    assert trail_state(cloudtrail) == [(own_arn, True, True)]
    trail = cloudtrail.get_trail(Name=OWN_TRAIL)["Trail"]
    assert (trail["S3BucketName"], trail["LogFileValidationEnabled"]) == (OWN_BUCKET, True)
    created = before.context["created"]
    assert {k: v for k, v in created.items() if k != "KeyArn"} == {
        "BucketName": OWN_BUCKET,
        "LogBucketName": f"{OWN_BUCKET}-access-logs",
        "LogGroupName": "/cspm-remediation/cloudtrail",
        "TrailName": OWN_TRAIL,
        "TrailARN": own_arn,
        "HomeRegion": REGION,
    }
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []  # rerun: noop
    assert iam_actions(sessions.api_calls) <= set(MultiRegionTrail.permissions)


def test_the_created_bucket_is_private_and_only_lets_the_trail_write(target: Target, cloudtrail, s3) -> None:
    remediator, finding = MultiRegionTrail(), account_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert s3.get_public_access_block(Bucket=OWN_BUCKET)["PublicAccessBlockConfiguration"] == ALL_BLOCKED
    encryption = s3.get_bucket_encryption(Bucket=OWN_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    statements = {s["Sid"]: s for s in bucket_policy(OWN_BUCKET)["Statement"]}
    arn = f"arn:aws:s3:::{OWN_BUCKET}"
    assert statements["AWSCloudTrailAclCheck"]["Resource"] == arn
    assert statements["AWSCloudTrailWrite"]["Resource"] == f"{arn}/AWSLogs/{ACCOUNT}/*"
    for sid in ("AWSCloudTrailAclCheck", "AWSCloudTrailWrite"):
        assert statements[sid]["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn(OWN_TRAIL)
    assert statements["DenyInsecureTransport"] == secure_transport_statement(arn)


def test_assess_alone_changes_nothing(target: Target, cloudtrail, s3) -> None:
    create_trail("stopped", make_trail_bucket(EXISTING_BUCKET), IsMultiRegionTrail=True)
    cloudtrail_calls, s3_calls = record_calls(target.client("cloudtrail")), record_calls(target.client("s3"))

    assert not MultiRegionTrail().assess(target, account_finding()).compliant

    assert cloudtrail_calls == ["DescribeTrails", "GetTrailStatus", "GetEventSelectors", "ListTags"]
    assert s3_calls == []  # the stopped trail is fixed: no bucket to look for
    assert trail_state(cloudtrail) == [(trail_arn("stopped"), True, False)]
    assert OWN_BUCKET not in bucket_names(s3)


SELECTORS: dict[str, tuple[dict[str, Any] | None, bool]] = {
    "none set (moto's new trail)": (None, True),
    "AWS default": ({"EventSelectors": [DEFAULT_EVENT_SELECTOR]}, True),
    "read and write in two selectors": (
        {
            "EventSelectors": [
                {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
                {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True},
            ]
        },
        True,
    ),
    "write only": ({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}, False),
    "no management events": (
        {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]},
        False,
    ),
    "KMS events excluded": (
        {
            "EventSelectors": [
                {**DEFAULT_EVENT_SELECTOR, "ExcludeManagementEventSources": ["kms.amazonaws.com"]},
            ]
        },
        False,
    ),
    "advanced: all management events": (
        {
            "AdvancedEventSelectors": [
                {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
            ]
        },
        True,
    ),
    "advanced: one event source left out": (
        {
            "AdvancedEventSelectors": [
                {
                    "Name": "mgmt",
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Management"]},
                        {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                    ],
                }
            ]
        },
        False,
    ),
}


@pytest.mark.parametrize("case", SELECTORS)
def test_which_logging_multi_region_trails_count(target: Target, cloudtrail, case: str) -> None:
    selectors, compliant = SELECTORS[case]
    create_trail("existing", make_trail_bucket(EXISTING_BUCKET), IsMultiRegionTrail=True, logging=True)
    if selectors:
        cloudtrail.put_event_selectors(TrailName="existing", **selectors)

    assert MultiRegionTrail().assess(target, account_finding()).compliant is compliant


def test_a_single_region_trail_does_not_count(target: Target, cloudtrail) -> None:
    create_trail("existing", make_trail_bucket(EXISTING_BUCKET), logging=True)
    remediator, finding = MultiRegionTrail(), account_finding()

    assessment = remediator.assess(target, finding)
    assert not assessment.compliant
    remediator.apply(target, finding, assessment)

    # The existing trail is left exactly as it was; ours is added.
    assert (trail_arn("existing"), False, True) in trail_state(cloudtrail)
    assert (trail_arn(OWN_TRAIL), True, True) in trail_state(cloudtrail)


WRITE_ONLY_AND_DATA = [
    {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "DataResources": [],
     "ExcludeManagementEventSources": ["kms.amazonaws.com"]},
    {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": False,
     "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}],
     "ExcludeManagementEventSources": []},
]


@pytest.mark.parametrize("case", ["stopped", "write-only", "stopped and write-only"])
def test_an_existing_multi_region_trail_is_fixed_instead_of_a_second_one_created(
    target: Target, cloudtrail, s3, case: str
) -> None:
    """CloudTrail.1 passes with one multi-Region trail that is logging all management events: a stopped or
    write-only one is started / widened in place (its data selector kept); no second billed trail, no bucket."""
    create_trail("existing", make_trail_bucket(EXISTING_BUCKET), IsMultiRegionTrail=True,
                 logging=case == "write-only")
    if "write-only" in case:
        cloudtrail.put_event_selectors(TrailName="existing", EventSelectors=WRITE_ONLY_AND_DATA)
    before_selectors = cloudtrail.get_event_selectors(TrailName="existing")["EventSelectors"]
    buckets = bucket_names(s3)
    remediator, finding = MultiRegionTrail(), account_finding()

    assessment = remediator.assess(target, finding)
    assert not assessment.compliant
    remediator.apply(target, finding, assessment)

    assert trail_state(cloudtrail) == [(trail_arn("existing"), True, True)]
    selectors = cloudtrail.get_event_selectors(TrailName="existing")["EventSelectors"]
    if "write-only" in case:
        management, data = selectors
        assert (management["ReadWriteType"], management["ExcludeManagementEventSources"]) == ("All", [])
        assert data == WRITE_ONLY_AND_DATA[1]
    else:
        assert selectors == before_selectors
    assert bucket_names(s3) == buckets
    assert remediator.assess(target, finding).compliant

    lines = remediator.restore(target, finding, recorded_pre_state(assessment))
    assert trail_state(cloudtrail) == [(trail_arn("existing"), True, case == "write-only")]
    assert cloudtrail.get_event_selectors(TrailName="existing")["EventSelectors"] == before_selectors
    assert lines


def test_advanced_management_selectors_are_replaced_and_data_selectors_kept(target: Target, cloudtrail) -> None:
    create_trail("existing", make_trail_bucket(EXISTING_BUCKET), IsMultiRegionTrail=True, logging=True)
    data = {"Name": "s3", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                             {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}
    narrowed = {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                   {"Field": "readOnly", "Equals": ["false"]}]}
    cloudtrail.put_event_selectors(TrailName="existing", AdvancedEventSelectors=[narrowed, data])
    remediator, finding = MultiRegionTrail(), account_finding()

    remediator.apply(target, finding, remediator.assess(target, finding))

    advanced = cloudtrail.get_event_selectors(TrailName="existing")["AdvancedEventSelectors"]
    assert advanced[0] == data and len(advanced) == 2
    assert advanced[1]["FieldSelectors"] == [{"Field": "eventCategory", "Equals": ["Management"]}]
    assert remediator.assess(target, finding).compliant


def test_a_created_trail_passes_cloudtrail_1_2_4_5_and_7(target: Target, cloudtrail, s3) -> None:
    """Read back with the CloudTrail remediators' own assessments (each implements its control's logic: .1, .2,
    .4, .5, .7), plus the delivery role, the log group's retention and the key's rotation (KMS.4)."""
    from functions.remediators.cloudtrail import TrailBucketAccessLogging, TrailKmsEncryption, TrailLogFileValidation
    from functions.remediators.cloudtrail_logs import TrailCloudWatchLogs

    remediator, finding = MultiRegionTrail(), account_finding()
    remediator.apply(target, finding, remediator.assess(target, finding))

    assert remediator.assess(target, finding).compliant  # CloudTrail.1 itself
    trail_finding = make_finding("CloudTrail.2", "AwsCloudTrailTrail", OWN_TRAIL, resource_arn=trail_arn(OWN_TRAIL))
    for other in (TrailKmsEncryption, TrailLogFileValidation, TrailBucketAccessLogging, TrailCloudWatchLogs):
        assert other().assess(target, trail_finding).compliant, other.__name__
    trail = cloudtrail.get_trail(Name=OWN_TRAIL)["Trail"]
    assert trail["CloudWatchLogsLogGroupArn"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/cspm-remediation/cloudtrail:*")
    assert trail["CloudWatchLogsRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationCloudTrailLogs"
    kms = boto3.client("kms", region_name=REGION)
    assert kms.get_key_rotation_status(KeyId=trail["KmsKeyId"])["KeyRotationEnabled"] is True
    groups = boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [("/cspm-remediation/cloudtrail", 365)]


def test_a_multi_region_trail_homed_in_another_region_counts(target: Target) -> None:
    bucket = make_trail_bucket(EXISTING_BUCKET, OTHER_REGION)
    create_trail("west", bucket, region=OTHER_REGION, IsMultiRegionTrail=True, logging=True)

    assessment = MultiRegionTrail().assess(target, account_finding())

    assert assessment.compliant
    assert assessment.context == {"TrailARN": trail_arn("west", OTHER_REGION), "HomeRegion": OTHER_REGION}


def test_an_existing_bucket_is_used_as_it_is(target: Target, cloudtrail, s3) -> None:
    make_trail_bucket(EXISTING_BUCKET)
    policy_before = bucket_policy(EXISTING_BUCKET)
    remediator, finding = MultiRegionTrail({"bucket_name": EXISTING_BUCKET}), account_finding()

    assessment = remediator.assess(target, finding)
    assert not any("create S3 bucket" in change for change in assessment.changes)
    remediator.apply(target, finding, assessment)

    assert cloudtrail.get_trail(Name=OWN_TRAIL)["Trail"]["S3BucketName"] == EXISTING_BUCKET
    assert bucket_policy(EXISTING_BUCKET) == policy_before
    assert "BucketName" not in assessment.context["created"]


def test_restore_deletes_the_created_trail_and_keeps_the_logs(
    target: Target, sessions: AssumedSessions, cloudtrail, s3
) -> None:
    original_trails, original_buckets = trail_state(cloudtrail), bucket_names(s3)
    remediator, finding = MultiRegionTrail(), account_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    # A delivered log file. Written to moto's backend: moto ignores policy conditions, so the TLS-only Deny
    # refuses every client request to the bucket.
    s3_backends[ACCOUNT]["aws"].put_object(OWN_BUCKET, f"AWSLogs/{ACCOUNT}/CloudTrail/log.json.gz", b"{}")

    for _ in range(2):  # restoring twice is harmless
        lines = remediator.restore(target, finding, recorded_pre_state(assessment))
        assert trail_state(cloudtrail) == original_trails
    assert lines[:3] == [
        f"deleted trail {trail_arn(OWN_TRAIL)}",
        f"kept S3 bucket {OWN_BUCKET} and the logs in it (log data is never deleted)",
        f"kept access log bucket {OWN_BUCKET}-access-logs and the logs in it (log data is never deleted)",
    ]
    assert bucket_names(s3) == original_buckets | {OWN_BUCKET, f"{OWN_BUCKET}-access-logs"}
    assert s3.list_objects_v2(Bucket=OWN_BUCKET)["KeyCount"] == 1
    assert not remediator.assess(target, finding).compliant
    assert iam_actions(sessions.api_calls) <= set(MultiRegionTrail.permissions)


def test_our_stopped_trail_is_started_again_and_restore_stops_it(target: Target, cloudtrail) -> None:
    remediator, finding = MultiRegionTrail(), account_finding()
    remediator.apply(target, finding, remediator.assess(target, finding))
    cloudtrail.stop_logging(Name=OWN_TRAIL)

    assessment = remediator.assess(target, finding)
    assert assessment.changes == [f"start logging on multi-Region trail {trail_arn(OWN_TRAIL)}"]
    assert assessment.pre_state == {"TrailARN": trail_arn(OWN_TRAIL), "HomeRegion": REGION, "IsLogging": False}
    remediator.apply(target, finding, assessment)
    assert trail_state(cloudtrail) == [(trail_arn(OWN_TRAIL), True, True)]

    assert remediator.restore(target, finding, recorded_pre_state(assessment)) == [
        f"stopped logging on trail {trail_arn(OWN_TRAIL)} again"
    ]
    assert trail_state(cloudtrail) == [(trail_arn(OWN_TRAIL), True, False)]


def test_a_trail_of_ours_that_is_not_multi_region_is_refused(target: Target) -> None:
    create_trail(OWN_TRAIL, make_trail_bucket(EXISTING_BUCKET))

    with pytest.raises(RemediationError, match="exists but is not a multi-Region trail"):
        MultiRegionTrail().assess(target, account_finding())


@pytest.mark.stubber
def test_a_bucket_without_the_cloudtrail_policy_is_a_remediation_error(target: Target, s3) -> None:
    """moto checks only that the bucket exists: AWS's refusal of a bucket policy is stubbed on create_trail."""
    s3.create_bucket(Bucket=EXISTING_BUCKET)
    remediator, finding = MultiRegionTrail({"bucket_name": EXISTING_BUCKET}), account_finding()
    assessment = remediator.assess(target, finding)
    with Stubber(target.client("cloudtrail")) as stub:
        stub.add_client_error("create_trail", "InsufficientS3BucketPolicyException", "Incorrect S3 bucket policy")
        with pytest.raises(RemediationError, match=f"S3 bucket {EXISTING_BUCKET} does not let CloudTrail write"):
            remediator.apply(target, finding, assessment)
    created = assessment.context["created"]
    assert "TrailName" not in created and "BucketName" not in created  # no trail, no bucket (key and log group:
    # created before the trail, recorded, and kept by a rollback)


@pytest.mark.stubber
def test_a_bucket_name_owned_by_another_account_is_refused() -> None:
    """moto shares bucket names across its accounts without access checks; HeadBucket's 403 is stubbed."""
    cloudtrail, s3 = boto3.client("cloudtrail", region_name=REGION), boto3.client("s3", region_name=REGION)
    clients = {"cloudtrail": cloudtrail, "s3": s3}
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: clients[service])
    with Stubber(cloudtrail) as trails, Stubber(s3) as buckets:
        trails.add_response("describe_trails", {"trailList": []}, {"includeShadowTrails": True})
        buckets.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403)
        with pytest.raises(RemediationError, match=f"name {OWN_BUCKET} is taken by another account"):
            MultiRegionTrail().assess(target, account_finding())


ORG_TRAIL = {
    "Name": "org-trail",
    "TrailARN": trail_arn("org-trail", account="999999999999"),
    "HomeRegion": REGION,
    "IsMultiRegionTrail": True,
    "IsOrganizationTrail": True,
    "HasCustomEventSelectors": False,
}


@pytest.mark.stubber
def test_an_organization_trail_of_the_management_account_counts() -> None:
    """moto lists only the caller's own trails; the member account's view of an organization trail is stubbed."""
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: cloudtrail)
    with Stubber(cloudtrail) as stub:
        stub.add_response("describe_trails", {"trailList": [ORG_TRAIL]}, {"includeShadowTrails": True})
        stub.add_response("get_trail_status", {"IsLogging": True}, {"Name": ORG_TRAIL["TrailARN"]})
        stub.add_response("get_event_selectors", {"EventSelectors": []}, {"TrailName": ORG_TRAIL["TrailARN"]})
        assert MultiRegionTrail().assess(target, account_finding()).compliant
        stub.assert_no_pending_responses()


@pytest.mark.stubber
def test_an_organization_trail_that_cannot_be_read_is_not_guessed_about() -> None:
    """moto lists only the caller's own trails: an unreadable organization trail is stubbed. Creating a trail
    next to one that may already cover the account would double the cost, so the finding is refused."""
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: cloudtrail)
    with Stubber(cloudtrail) as stub:
        stub.add_response("describe_trails", {"trailList": [ORG_TRAIL]}, {"includeShadowTrails": True})
        stub.add_client_error("get_trail_status", "AccessDeniedException", "not authorized")
        with pytest.raises(RemediationError, match="covers this one but cannot be read from it"):
            MultiRegionTrail().assess(target, account_finding())


@pytest.mark.stubber
def test_own_trails_are_read_before_an_organization_trail() -> None:
    """moto lists only the caller's own trails: an organization trail listed first is stubbed. The account's own
    logging trail settles the question without reading the other account's trail."""
    own = {**ORG_TRAIL, "Name": "own", "TrailARN": trail_arn("own"), "IsOrganizationTrail": False}
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: cloudtrail)
    with Stubber(cloudtrail) as stub:
        stub.add_response("describe_trails", {"trailList": [ORG_TRAIL, own]}, {"includeShadowTrails": True})
        stub.add_response("get_trail_status", {"IsLogging": True}, {"Name": own["TrailARN"]})
        stub.add_response("get_event_selectors", {"EventSelectors": []}, {"TrailName": own["TrailARN"]})
        assert MultiRegionTrail().assess(target, account_finding()).compliant
        stub.assert_no_pending_responses()


def test_declarations() -> None:
    (rule,) = MultiRegionTrail.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("CloudTrail.1", ("3.1",), True)
    assert MultiRegionTrail.resource_types == ("AwsAccount",)
    assert MultiRegionTrail.reversible
    assert MultiRegionTrail.executors() == ("boto3",)
    assert json.dumps(MultiRegionTrail.default_params)  # params are plain JSON for the config file
