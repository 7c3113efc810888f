"""CloudTrail events → findings: every event of the table, in CloudTrail's own record shape
(demo/cloudtrail_records.py), names the right rules and resource; failed calls, our own roles, unknown and
unlocatable events are ignored with a logged reason; any outside input either translates or is refused with a
FindingError."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import cloudtrail
from connectors.cloudtrail_events import EVENT_TABLE, event_rules, rows_for, watched_events
from connectors.finding import Finding, FindingError
from demo import cloudtrail_records as ct
from functions.engine.catalog import CATALOG

A, R = ct.ACCOUNT, ct.REGION
NACL_RULES = ("EC2.21", "netskope:nacl-allow-all-ingress")
SG_RULES = {"EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54"}
PASSWORD_RULES = {"IAM.7", *(f"IAM.{n}" for n in range(10, 18))}
SQS_URL = f"https://sqs.us-east-1.amazonaws.com/{A}/orders"
KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
TRAIL_ARN = f"arn:aws:cloudtrail:{R}:{A}:trail/org-trail"

# (record, {(rule, resource_type, resource_id, resource_arn)}) for every event the table watches.
CASES: dict[str, tuple[dict[str, Any], set[tuple[str, str, str, str | None]]]] = {
    "AuthorizeSecurityGroupIngress": (
        ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718"),
        {(r, "AwsEc2SecurityGroup", "sg-0a1b2c3d4e5f60718", None) for r in SG_RULES}),
    "CreateNetworkAclEntry": (
        ct.network_acl_entry("acl-0a1b2c3d4e5f60718"),
        {(r, "AwsEc2NetworkAcl", "acl-0a1b2c3d4e5f60718", None) for r in NACL_RULES}),
    "ReplaceNetworkAclEntry": (
        ct.network_acl_entry("acl-0a1b2c3d4e5f60718", "ReplaceNetworkAclEntry"),
        {(r, "AwsEc2NetworkAcl", "acl-0a1b2c3d4e5f60718", None) for r in NACL_RULES}),
    "ModifySnapshotAttribute": (
        ct.modify_snapshot_attribute("snap-0a1b2c3d4e5f60718"),
        {("EC2.1", "AwsEc2Snapshot", "snap-0a1b2c3d4e5f60718", None)}),
    "DisableEbsEncryptionByDefault": (ct.disable_ebs_encryption_by_default(), {("EC2.7", "AwsAccount", A, None)}),
    "ModifyInstanceMetadataOptions": (
        ct.modify_instance_metadata_options("i-0a1b2c3d4e5f60718"),
        {("EC2.8", "AwsEc2Instance", "i-0a1b2c3d4e5f60718", None)}),
    "RunInstances": (
        ct.run_instances(["i-0a1b2c3d4e5f60718", "i-0a1b2c3d4e5f60719"]),
        {("EC2.8", "AwsEc2Instance", "i-0a1b2c3d4e5f60718", None),
         ("EC2.8", "AwsEc2Instance", "i-0a1b2c3d4e5f60719", None)}),
    "CreateVpc": (ct.create_vpc("vpc-0a1b2c3d4e5f60718"), {("EC2.6", "AwsEc2Vpc", "vpc-0a1b2c3d4e5f60718", None)}),
    "PutBucketPolicy": (
        ct.put_bucket_policy("app-data"), {("S3.5", "AwsS3Bucket", "app-data", "arn:aws:s3:::app-data")}),
    "PutBucketPublicAccessBlock": (
        ct.bucket_public_access_block("app-data", "PutBucketPublicAccessBlock"),
        {("S3.8", "AwsS3Bucket", "app-data", "arn:aws:s3:::app-data")}),
    "DeleteBucketPublicAccessBlock": (
        ct.bucket_public_access_block("app-data"), {("S3.8", "AwsS3Bucket", "app-data", "arn:aws:s3:::app-data")}),
    "PutAccountPublicAccessBlock": (
        ct.account_public_access_block("PutAccountPublicAccessBlock"), {("S3.1", "AwsAccount", A, None)}),
    "DeleteAccountPublicAccessBlock": (ct.account_public_access_block(), {("S3.1", "AwsAccount", A, None)}),
    "CreateTrail": (
        ct.create_trail("org-trail", "trail-logs"),
        {(r, "AwsCloudTrailTrail", "org-trail", TRAIL_ARN) for r in ("CloudTrail.2", "CloudTrail.4")}),
    "UpdateTrail": (
        ct.update_trail("org-trail", "trail-logs", by_arn=True),
        {*((r, "AwsCloudTrailTrail", "org-trail", TRAIL_ARN) for r in ("CloudTrail.2", "CloudTrail.4")),
         ("CloudTrail.1", "AwsAccount", A, None)}),
    "StopLogging": (ct.stop_logging("org-trail"), {("CloudTrail.1", "AwsAccount", A, None)}),
    "DeleteTrail": (ct.delete_trail("org-trail"), {("CloudTrail.1", "AwsAccount", A, None)}),
    "DisableKeyRotation": (
        ct.disable_key_rotation(f"arn:aws:kms:{R}:{A}:key/{KEY}"),
        {("KMS.4", "AwsKmsKey", KEY, f"arn:aws:kms:{R}:{A}:key/{KEY}")}),
    "CreateKey": (ct.create_key(KEY), {("KMS.4", "AwsKmsKey", KEY, f"arn:aws:kms:{R}:{A}:key/{KEY}")}),
    "CreateDBInstance": (
        ct.db_instance("orders-db"),
        {(r, "AwsRdsDbInstance", "orders-db", f"arn:aws:rds:{R}:{A}:db:orders-db") for r in ("RDS.2", "RDS.13")}),
    "ModifyDBInstance": (
        ct.db_instance("orders-db", "ModifyDBInstance"),
        {(r, "AwsRdsDbInstance", "orders-db", f"arn:aws:rds:{R}:{A}:db:orders-db") for r in ("RDS.2", "RDS.13")}),
    "ModifyDBSnapshotAttribute": (
        ct.modify_db_snapshot_attribute("orders-2026-12-01"),
        {("RDS.1", "AwsRdsDbSnapshot", "orders-2026-12-01", None)}),
    "ModifyDBClusterSnapshotAttribute": (
        ct.modify_db_snapshot_attribute("aurora-2026-12-01", cluster=True),
        {("RDS.1", "AwsRdsDbClusterSnapshot", "aurora-2026-12-01", None)}),
    "ModifyCluster": (ct.modify_cluster("analytics"), {("Redshift.1", "AwsRedshiftCluster", "analytics", None)}),
    "AddPermission20150331v2": (
        ct.add_permission(f"arn:aws:lambda:{R}:{A}:function:resize"),
        {("Lambda.1", "AwsLambdaFunction", "resize", f"arn:aws:lambda:{R}:{A}:function:resize")}),
    "SetQueueAttributes": (
        ct.set_queue_attributes(SQS_URL, '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*"}]}'),
        {("SQS.3", "AwsSqsQueue", "orders", f"arn:aws:sqs:{R}:{A}:orders")}),
    "UpdateAccountPasswordPolicy": (
        ct.update_account_password_policy(), {(r, "AwsAccount", A, None) for r in PASSWORD_RULES}),
    "DeleteAccountPasswordPolicy": (
        ct.delete_account_password_policy(), {(r, "AwsAccount", A, None) for r in PASSWORD_RULES}),
}
# Recognised, but the record cannot name what to re-check (the reason is logged).
UNLOCATABLE = {"DeleteFlowLogs": ct.delete_flow_logs()}
# Lambda's other API version of AddPermission, for the same rule.
ALIASES = {"AddPermission20150331"}


def _keys(findings: tuple[Finding, ...] | list[Finding]) -> set[tuple[str, str, str, str | None]]:
    return {(f.rule_id, f.resource_type, f.resource_id, f.resource_arn) for f in findings}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_event_names_its_rules_and_resource(name: str) -> None:
    body, expected = CASES[name]
    translation = cloudtrail.translate(ct.event(body))
    assert translation.ignored is None
    assert _keys(translation.findings) == expected
    for finding in translation.findings:
        assert finding.source == "cloudtrail"
        assert (finding.account_id, finding.region) == (A, R)
        assert finding.compliance_status == "FAILED" and finding.workflow_status is None
        assert finding.last_observed == body["eventTime"]
        assert finding.finding_id.startswith(f"cloudtrail:{body['eventID']}:{finding.rule_id}:")
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding  # JSON round trip


def test_every_watched_event_has_a_real_shaped_case() -> None:
    watched = {(source, name) for source, names in watched_events().items() for name in names}
    named = {name for _, name in watched}
    assert named == set(CASES) | ALIASES
    for row in EVENT_TABLE:
        if not row.paths:
            assert set(row.event_names) <= set(UNLOCATABLE)


def test_the_table_only_names_rules_and_resource_types_the_catalog_handles() -> None:
    for row in EVENT_TABLE:
        for rule in row.rules:
            assert rule in CATALOG, rule
            assert row.resource_type in CATALOG[rule].remediator.resource_types, (rule, row.resource_type)
    assert len(event_rules()) == len(set(event_rules()))


def test_a_bare_record_and_a_cloudtrail_log_file_translate_like_the_event() -> None:
    body, expected = CASES["CreateVpc"]
    assert _keys(cloudtrail.translate(body).findings) == expected
    log_file = {"Records": [body, CASES["StopLogging"][0]]}
    found = [f for f in cloudtrail.parse_payload(log_file) if isinstance(f, Finding)]
    assert _keys(found) == expected | CASES["StopLogging"][1]


def test_other_regions_and_accounts_come_from_the_event() -> None:
    body = ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718", account="210987654321", region="eu-west-1")
    findings = cloudtrail.translate(ct.event(body)).findings
    assert {(f.account_id, f.region) for f in findings} == {("210987654321", "eu-west-1")}


def test_a_lambda_partial_arn_and_a_plain_name_give_the_function_name() -> None:
    for given_name in ("resize", f"{A}:function:resize"):
        (finding,) = cloudtrail.translate(ct.add_permission(given_name)).findings
        assert finding.resource_id == "resize"


def test_a_security_group_named_only_in_the_response_is_found_there() -> None:
    body = ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718")
    body["requestParameters"] = {"groupName": "default", "ipPermissions": body["requestParameters"]["ipPermissions"]}
    assert {f.resource_id for f in cloudtrail.translate(body).findings} == {"sg-0a1b2c3d4e5f60718"}


# -- ignored, with the reason logged ---------------------------------------------------------------------------------
def _ignored(body: dict[str, Any], caplog: pytest.LogCaptureFixture, **kw: Any) -> str:
    with caplog.at_level(logging.INFO, logger="connectors.cloudtrail"):
        items = list(cloudtrail.parse_payload(ct.event(body), **kw))
    assert items == []
    (message,) = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert body["eventName"] in message and body["eventID"] in message
    return message


def test_a_failed_call_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    body = ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718", error="Client.UnauthorizedOperation")
    assert "the call failed (Client.UnauthorizedOperation)" in _ignored(body, caplog)


@pytest.mark.parametrize("role", ["CSPMRemediationRole", "CSPMRemediationAutomation", "CSPMRemediationRollbackRole"])
def test_calls_by_our_own_roles_are_ignored(role: str, caplog: pytest.LogCaptureFixture) -> None:
    body = ct.authorize_security_group_ingress("sg-0a1b2c3d4e5f60718", role=role)
    assert f"made by our own role {role}" in _ignored(body, caplog)


def test_a_configured_role_name_is_ignored_and_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REMEDIATION_ROLE_NAME", "SecOpsFixer")
    monkeypatch.setenv("CSPM_EVENTS_IGNORE_ROLES", "BreakGlass, Other")
    assert {"SecOpsFixer", "BreakGlass", "Other"} <= cloudtrail.own_role_names()
    for role in ("SecOpsFixer", "BreakGlass"):
        caplog.clear()
        assert f"our own role {role}" in _ignored(ct.modify_cluster("analytics", role=role), caplog)


def test_an_assumed_role_arn_without_session_context_is_recognised(caplog: pytest.LogCaptureFixture) -> None:
    body = ct.modify_cluster("analytics", user_identity={
        "type": "AssumedRole", "arn": f"arn:aws:sts::{A}:assumed-role/CSPMRemediationRole/cspm-remediate"})
    assert "our own role CSPMRemediationRole" in _ignored(body, caplog)


def test_another_callers_role_is_not_ours() -> None:
    assert cloudtrail.translate(ct.modify_cluster("analytics", role="CSPMRemediationRoleNot")).findings


def test_an_unknown_event_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    body = ct.record("ec2.amazonaws.com", "CreateTags", {"resourcesSet": {"items": [{"resourceId": "i-0abc"}]}},
                     {"_return": True})
    assert "not an event that can break a watched rule" in _ignored(body, caplog)


def test_a_read_only_call_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    body = ct.modify_cluster("analytics")
    body["readOnly"] = True
    assert "read-only" in _ignored(body, caplog)


def test_delete_flow_logs_is_recognised_but_names_no_vpc(caplog: pytest.LogCaptureFixture) -> None:
    assert rows_for("ec2.amazonaws.com", "DeleteFlowLogs")
    assert "never the VPC" in _ignored(UNLOCATABLE["DeleteFlowLogs"], caplog)


# -- refused -------------------------------------------------------------------------------------------------------
def test_an_envelope_from_another_account_than_the_call_is_refused() -> None:
    forged = ct.event(ct.modify_cluster("analytics"))
    forged["account"] = "210987654321"
    with pytest.raises(FindingError, match="comes from account"):
        cloudtrail.translate(forged)


def test_another_detail_type_is_refused_and_the_rest_go_on() -> None:
    other = {"detail-type": "Security Hub Findings - Imported", "detail": {"findings": []}}
    items = list(cloudtrail.parse_payload([other, ct.event(CASES["CreateVpc"][0])]))
    assert isinstance(items[0], FindingError) and "event #0" in str(items[0])
    assert _keys([i for i in items if isinstance(i, Finding)]) == CASES["CreateVpc"][1]


def test_a_non_payload_is_refused() -> None:
    with pytest.raises(FindingError):
        list(cloudtrail.parse_payload("text"))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
_fields = st.fixed_dictionaries({}, optional={
    "eventSource": st.sampled_from(sorted({r.event_source for r in EVENT_TABLE})) | _json,
    "eventName": st.sampled_from(sorted({n for r in EVENT_TABLE for n in r.event_names})) | _json,
    "eventID": st.uuids().map(str) | _json,
    "eventTime": st.just("2026-12-02T14:02:00Z") | _json,
    "awsRegion": st.sampled_from(["us-east-1", "eu-west-1", "global"]) | _json,
    "recipientAccountId": st.sampled_from([A, "12345"]) | _json,
    "errorCode": st.none() | _json,
    "userIdentity": _json,
    "requestParameters": _json | st.fixed_dictionaries({}, optional={
        k: _json for k in ("groupId", "bucketName", "queueUrl", "functionName", "keyId", "networkAclId")}),
    "responseElements": _json,
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_fields, _fields.map(lambda d: {"detail-type": "AWS API Call via CloudTrail", "detail": d}), _json))
def test_outside_input_translates_or_is_refused_with_a_finding_error(payload: Any) -> None:
    try:
        items = list(cloudtrail.parse_payload(payload, own_roles=()))
    except FindingError:
        return
    for item in items:
        assert isinstance(item, Finding | FindingError)
