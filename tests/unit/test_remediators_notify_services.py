"""Notify-only service rules through the engine: each finding is `notified` with its own resource filled into the
exact steps, and no AWS call is made (a person acts: rotation functions, leaked credentials, data decisions)."""

from __future__ import annotations

import pytest

from functions.engine.catalog import CATALOG
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.remediators.notify_services import ServiceManualRemediation
from tests.factories import ACCOUNT, make_finding

SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-password-AbCdEf"
# rule id → (resource type, resource id, region, what the message must contain)
CASES = {
    "SecretsManager.1": ("AwsSecretsManagerSecret", SECRET, "eu-west-1",
                         [f"rotate-secret --region eu-west-1 --secret-id {SECRET}", "--manage-master-user-password"]),
    "SecretsManager.3": ("AwsSecretsManagerSecret", SECRET, "eu-west-1",
                         ["--recovery-window-in-days 30", "LastAccessedDate"]),
    "SecretsManager.4": ("AwsSecretsManagerSecret", SECRET, "eu-west-1", ["LastRotatedDate", "rotate-secret"]),
    "CodeBuild.2": ("AwsCodeBuildProject", "web-build", "us-east-1",
                    ["treat them as leaked", "batch-get-projects --region us-east-1 --names web-build"]),
    "CodeBuild.5": ("AwsCodeBuildProject", "web-build", "us-east-1", ["update-project --region us-east-1 --name "
                                                                      "web-build"]),
    "ECS.5": ("AwsEcsTaskDefinition", "web:7", "us-east-1", ["readonlyRootFilesystem true", "aws ecs update-service"]),
    "S3.11": ("AwsS3Bucket", "uploads", "us-east-1",
              ["put-bucket-notification-configuration --bucket uploads", '{"QueueConfigurations": [{"QueueArn"',
               "EventBridge alone may not pass"]),
    "S3.13": ("AwsS3Bucket", "uploads", "us-east-1", ['"DaysAfterInitiation": 7}', "deletes nothing else"]),
    "EC2.4": ("AwsEc2Instance", "i-0abc", "us-east-1", ["create-image --region us-east-1 --instance-id i-0abc",
                                                       "DeleteOnTermination"]),
    "ELB.1": ("AwsElbv2LoadBalancer", "web-alb", "us-east-1",
              ["RedirectConfig={Protocol=HTTPS,Port=443,StatusCode=HTTP_301}", "HTTPS listener"]),
    "RDS.4": ("AwsRdsDbSnapshot", "nightly-1", "us-east-1", ["--target-db-snapshot-identifier nightly-1-encrypted"]),
}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_finding_is_notified_with_its_steps_and_nothing_is_called(moto_aws, rule_id: str) -> None:
    resource_type, resource_id, region, steps = CASES[rule_id]
    assert resource_type in ServiceManualRemediation.resource_types
    sessions = AssumedSessions()
    finding = make_finding(rule_id, resource_type, resource_id, region=region)

    (result,) = Engine(config_from_dict({"mode": "enforce"}), sessions, stage="apply").run([finding])

    assert result.outcome == "notified", result.reason
    message = ServiceManualRemediation().notify_message(finding)
    assert message.startswith(f"{rule_id} — ") and f"account {ACCOUNT}" in message
    for step in steps:
        assert step in message
    assert [call for call in sessions.api_calls if not call.startswith("sts.")] == []


@pytest.mark.parametrize("rule_id", [rule.rule_id for rule in ServiceManualRemediation.rules])
def test_every_message_names_the_resource_and_fills_every_placeholder(rule_id: str) -> None:
    finding = make_finding(rule_id, "AwsAccount", "res-0abc", region="eu-west-1")

    message = ServiceManualRemediation().notify_message(finding)

    assert "res-0abc" in message and len(message) > 120
    for placeholder in ("{resource_id}", "{resource_arn}", "{region}", "{account_id}", "{partition}"):
        assert placeholder not in message


def test_every_rule_has_guidance_and_is_notify_only() -> None:
    for rule in ServiceManualRemediation.rules:
        assert CATALOG[rule.rule_id].notify_only
        assert rule.rule_id in ServiceManualRemediation.guidance


STACK = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/base/0f1e"
FILTER = f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/d1/filter/f1"
# As connectors build them: the resource id is the ARN's last part, which these calls refuse; they take the ARN.
ARN_CASES = {
    "SecretsManager.1": ("AwsSecretsManagerSecret", "db-password-AbCdEf", SECRET, f"--secret-id {SECRET}"),
    "SNS.2": ("AwsSnsTopic", "alerts", f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts",
              f"--topic-arn arn:aws:sns:us-east-1:{ACCOUNT}:alerts"),
    "CloudFormation.1": ("AwsCloudFormationStack", "base/0f1e", STACK, f"--stack-name {STACK}"),
    "DynamoDB.5": ("AwsDynamoDbTable", "carts", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/carts",
                   f"aws dynamodb tag-resource --region us-east-1 --resource-arn arn:aws:dynamodb:us-east-1:{ACCOUNT}:"
                   "table/carts"),
    "GuardDuty.2": ("AwsGuardDutyFilter", "d1/filter/f1", FILTER,
                    f"aws guardduty tag-resource --region us-east-1 --resource-arn {FILTER}"),
}


@pytest.mark.parametrize("rule_id", sorted(ARN_CASES))
def test_calls_that_take_an_arn_get_the_findings_arn(rule_id: str) -> None:
    resource_type, resource_id, arn, step = ARN_CASES[rule_id]

    message = ServiceManualRemediation().notify_message(
        make_finding(rule_id, resource_type, resource_id, region="us-east-1", resource_arn=arn))

    assert step in message


@pytest.mark.parametrize("rule_id", ["CloudFormation.1", "SNS.2", "CodeBuild.5"])
def test_controls_security_hub_retired_say_so(rule_id: str) -> None:
    message = ServiceManualRemediation().notify_message(make_finding(rule_id, "AwsAccount", "res-0abc"))

    assert "Security Hub retired this control in April 2024" in message
