"""An account-level finding covers many items (EC2.1: every public snapshot of the account; IAM.27 on the policy or
the account: every identity it is attached to; IAM.26: every expired server certificate). Each item's own
exclusion tag holds, as it would for a finding on that item alone: the others are remediated, the tagged ones left
as they are and named in the result; when every item is tagged the finding is `excluded`. Engine runs on moto under
a global enforce."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_ec2 import volume_permissions
from tests.unit.test_remediators_iam_more import CLOUDSHELL, attached_to, aws_managed_policy

EXCLUDE = {"cspm-remediation:exclude": "true"}
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def run(finding: Any, rules: dict | None = None) -> Any:
    config = config_from_dict({"mode": "enforce", "rules": rules or {}})
    (result,) = Engine(config, AssumedSessions(), stage="apply").run([finding])
    return result


def account_finding(rule_id: str, region: str) -> Any:
    return make_finding(rule_id, "AwsAccount", f"AWS::::Account:{ACCOUNT}", region=region)


def public_snapshot(ec2: Any, tags: dict[str, str]) -> str:
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    spec = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id, TagSpecifications=spec)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add",
                                  GroupNames=["all"])
    return snapshot_id


def is_public(ec2: Any, snapshot_id: str) -> bool:
    return {"Group": "all"} in volume_permissions(ec2, snapshot_id)


def test_ec2_1_leaves_the_tagged_snapshot_public_and_makes_the_others_private(moto_aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    kept, fixed = public_snapshot(ec2, EXCLUDE), public_snapshot(ec2, {"team": "data"})

    result = run(account_finding("EC2.1", REGION))

    assert result.outcome == "remediated", result.reason
    assert is_public(ec2, kept) and not is_public(ec2, fixed)
    assert f"leave public snapshot {kept} (resource has tag cspm-remediation:exclude=true) as it is" in result.reason
    assert result.pre_state == {"PublicSnapshotIds": [fixed]}  # the rollback puts back only what was changed
    assert run(account_finding("EC2.1", REGION)).outcome == "excluded"  # what is left is the excluded one


def test_ec2_1_with_every_public_snapshot_tagged_is_excluded_and_changes_nothing(moto_aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    kept = public_snapshot(ec2, EXCLUDE)

    result = run(account_finding("EC2.1", REGION))

    assert result.outcome == "excluded"
    assert result.reason == f"every public snapshot carries the exclusion tag: {kept} (resource has tag " \
                            "cspm-remediation:exclude=true)"
    assert is_public(ec2, kept)


@pytest.mark.parametrize("resource_type", ["AwsAccount", "AwsIamPolicy"])
def test_iam_27_keeps_cloudshell_on_the_tagged_identity(moto_aws, resource_type: str) -> None:
    iam = boto3.client("iam", region_name=REGION)
    aws_managed_policy(CLOUDSHELL)
    iam.create_user(UserName="break-glass", Tags=[{"Key": k, "Value": v} for k, v in EXCLUDE.items()])
    iam.attach_user_policy(UserName="break-glass", PolicyArn=CLOUDSHELL)
    iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName="ops", PolicyArn=CLOUDSHELL)
    iam.create_group(GroupName="devs")  # groups have no tags: always in scope
    iam.attach_group_policy(GroupName="devs", PolicyArn=CLOUDSHELL)
    resource_id = f"AWS::::Account:{ACCOUNT}" if resource_type == "AwsAccount" else CLOUDSHELL

    result = run(make_finding("IAM.27", resource_type, resource_id, region="global"))

    assert result.outcome == "remediated", result.reason
    assert attached_to(iam, CLOUDSHELL) == {("User", "break-glass")}
    assert "leave identity user break-glass (resource has tag cspm-remediation:exclude=true) as it is" \
        in result.reason
    assert {d["Name"] for d in result.pre_state["detached"]} == {"ops", "devs"}


@pytest.mark.stubber  # moto lacks ListServerCertificateTags: the engine's IAM client is stubbed
def test_iam_26_deletes_only_the_untagged_expired_certificates(moto_aws) -> None:
    now = datetime.now(UTC)

    def listing(*names: str) -> dict[str, Any]:
        return {"IsTruncated": False, "ServerCertificateMetadataList": [{
            "Path": "/", "ServerCertificateName": name, "ServerCertificateId": f"ASCA{name.upper()}EXAMPLE01",
            "Arn": f"arn:aws:iam::{ACCOUNT}:server-certificate/{name}", "UploadDate": now - timedelta(days=400),
            "Expiration": now - timedelta(days=1)} for name in names]}

    def tags(name: str, values: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, str]]:
        return ("list_server_certificate_tags", {"IsTruncated": False, "Tags": [
            {"Key": k, "Value": v} for k, v in values.items()]}, {"ServerCertificateName": name})

    sessions = AssumedSessions()
    # IAM.26 is disruptive: it acts only when its own entry says enforce.
    engine = Engine(config_from_dict({"mode": "enforce", "rules": {"IAM.26": {"mode": "enforce"}}}), sessions,
                    stage="apply")
    with Stubber(sessions.target(ACCOUNT, "global").client("iam")) as stub:
        stub.add_response("list_server_certificates", listing("shop", "cdn"), {})
        stub.add_response(*tags("shop", EXCLUDE))
        stub.add_response(*tags("cdn", {"team": "web"}))
        stub.add_response("delete_server_certificate", {}, {"ServerCertificateName": "cdn"})
        stub.add_response("list_server_certificates", listing("shop"), {})  # the verification
        stub.add_response(*tags("shop", EXCLUDE))
        (result,) = engine.run([account_finding("IAM.26", "global")])
        stub.assert_no_pending_responses()

    assert result.outcome == "remediated", result.reason
    assert [c["ServerCertificateName"] for c in result.pre_state["deleted"]] == ["cdn"]
    assert "leave expired server certificate shop (resource has tag cspm-remediation:exclude=true) as it is" \
        in result.reason
