"""The SSM executor does what the rule says: the runbook's inputs follow the rule's configured params, a runbook
that would do what the params forbid is not started, and what the runbook really changes is what is recorded for
rollback. moto does not implement SSM Automation: StartAutomationExecution is stubbed (botocore Stubber, the
documented request and response shapes); every other call is moto."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.remediators.cloudtrail import TrailBucketAccessLogging
from functions.remediators.ec2 import SecurityGroupAdminPorts
from functions.remediators.iam import AccessAnalyzer, PasswordPolicy, UnusedCredentials
from functions.remediators.s3 import BucketPublicAccessBlock
from tests.factories import ACCOUNT, REGION, make_finding

EXECUTION = "0b6b7c1d-1111-2222-3333-444455556666"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationAutomation"


def run_with_ssm(rule_id: str, finding: Any, params: dict[str, Any], expected: dict[str, list[str]] | None) -> Any:
    """One finding through the engine with the SSM executor; `expected` the runbook parameters (None: no start)."""
    config = config_from_dict({"rules": {rule_id: {"mode": "enforce", "executor": "ssm", "params": params}}})
    sessions = AssumedSessions()
    ssm = sessions.target(ACCOUNT, REGION).client("ssm")
    with Stubber(ssm) as stub:
        if expected is not None:
            stub.add_response("start_automation_execution", {"AutomationExecutionId": EXECUTION},
                              {"DocumentName": ANY, "Parameters": expected, "ClientToken": ANY, "Tags": ANY})
        (result,) = Engine(config, sessions, stage="apply").run([finding])
        stub.assert_no_pending_responses()
    return result


@pytest.mark.stubber
def test_the_admin_ports_runbook_records_3389_too_for_an_ssh_finding(moto_aws: None) -> None:
    """AWS-DisablePublicAccessForSecurityGroup revokes tcp 22 and 3389 from the world whatever the rule: for an
    EC2.13 (SSH) finding the SSM execution records both, so a rollback can put 3389 back; a range is not touched
    by the runbook and not recorded; the boto3 plan still records only what it revokes."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    world = [{"CidrIp": "0.0.0.0/0"}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": world},
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": world},
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 9000, "IpRanges": world},
    ])
    finding = make_finding("EC2.13", "AwsEc2SecurityGroup", group)

    boto3_plan = SecurityGroupAdminPorts().assess(AssumedSessions().target(ACCOUNT, REGION), finding)
    result = run_with_ssm("EC2.13", finding, {}, {"GroupId": [group], "AutomationAssumeRole": [ROLE]})

    assert [(p["FromPort"], p["IpRanges"]) for p in boto3_plan.pre_state["IpPermissions"]] == [(22, world)]
    assert result.outcome == "started" and result.executor == "ssm"
    recorded = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in result.pre_state["IpPermissions"])
    assert recorded == [("tcp", 22, 22), ("tcp", 3389, 3389)]
    assert result.pre_state["GroupId"] == group


@pytest.mark.stubber
def test_the_unused_credentials_runbook_honours_the_params(moto_aws: None) -> None:
    """The runbook deletes unused console passwords: with remove_unused_passwords false (the default) it is not
    started; when allowed, it gets the configured max_unused_days, not the default 45."""
    boto3.client("iam", region_name=REGION).create_user(UserName="olga")
    raw = {"Resources": [{"Details": {"AwsIamUser": {"UserId": "AIDAOLGA"}}}]}
    finding = make_finding("IAM.22", "AwsIamUser", "olga", region="global", raw=raw)
    stale = UnusedCredentials.assess

    def non_compliant(self: Any, target: Any, finding: Any) -> Any:
        assessment = stale(self, target, finding)
        assessment.compliant, assessment.changes = False, ["deactivate access key AKIA… of user olga"]
        return assessment

    with pytest.MonkeyPatch.context() as patch:  # a fresh moto user has nothing unused: make it non-compliant
        patch.setattr(UnusedCredentials, "assess", non_compliant)
        refused = run_with_ssm("IAM.22", finding, {}, None)
        allowed = run_with_ssm("IAM.22", finding, {"max_unused_days": 90, "remove_unused_passwords": True}, {
            "AutomationAssumeRole": [ROLE], "IAMResourceId": ["AIDAOLGA"], "MaxCredentialUsageAge": ["90"],
        })

    assert refused.outcome == "failed" and "remove_unused_passwords: false forbids" in refused.reason
    assert allowed.outcome == "started"


def test_the_other_runbooks_take_the_configured_params() -> None:
    """Password policy numbers, the analyzer name and the access-log target follow `rules.<id>.params`."""
    finding = make_finding("IAM.17", "AwsAccount", ACCOUNT)
    policy = PasswordPolicy.runbook.arguments(finding, ROLE, {"min_length": 20, "reuse_prevention": 24,
                                                              "max_age_days": 60})
    assert (policy["MinimumPasswordLength"], policy["PasswordReusePrevention"], policy["MaxPasswordAge"]) == (
        ["20"], ["24"], ["60"])
    weaker = PasswordPolicy.runbook.arguments(make_finding("IAM.15", "AwsAccount", ACCOUNT), ROLE,
                                              {"min_length": 14, "reuse_prevention": 24, "max_age_days": 90})
    assert weaker["MinimumPasswordLength"] == ["14"] and "MaxPasswordAge" not in weaker

    analyzer = AccessAnalyzer.runbook.arguments(make_finding("IAM.28", "AwsAccount", ACCOUNT), ROLE,
                                                {"analyzer_name": "org-external"})
    assert analyzer["AnalyzerName"] == ["org-external"]

    logging = TrailBucketAccessLogging.runbook.arguments(
        make_finding("CloudTrail.7", "AwsS3Bucket", "trail-logs"), ROLE,
        {"target_bucket": "central-access-logs", "target_prefix": "trail-logs/"},
    )
    assert (logging["TargetBucket"], logging["TargetPrefix"]) == (["central-access-logs"], ["trail-logs/"])
    default = TrailBucketAccessLogging.runbook.arguments(
        make_finding("CloudTrail.7", "AwsS3Bucket", "trail-logs"), ROLE, {"target_bucket": None, "target_prefix": None})
    assert default["TargetBucket"] == ["trail-logs-access-logs"]
    # A runbook without configured params gets exactly its parameters.
    assert BucketPublicAccessBlock.runbook.arguments(make_finding("S3.8", "AwsS3Bucket", "b"), ROLE, {}) == \
        BucketPublicAccessBlock.runbook.parameters(make_finding("S3.8", "AwsS3Bucket", "b"), ROLE)
