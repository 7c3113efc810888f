"""The exclusion tag for every remediator whose resource has tags, whatever the source: a Netskope-shaped finding
carries no tags, so assess reads the resource's live ones (one call) and the engine reports `excluded` under a
global enforce, writing nothing. The same resource without the tag is remediated (or planned), so the tag — not
something else — is what excludes it. (S3.8 / S3.5: test_remediators_s3_tags.py; RDS: test_remediators_rds.py.)"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_iam_more import CLOUDSHELL, aws_managed_policy

EXCLUDE = {"cspm-remediation:exclude": "true"}
PUBLIC_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"},
]}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def run(rule_id: str, resource_type: str, resource_id: str, region: str = REGION, rules: dict | None = None) -> Any:
    """One Netskope-shaped finding (no tags) through the engine under a global enforce."""
    finding = make_finding(rule_id, resource_type, resource_id, region=region, source="netskope", tags={})
    config = config_from_dict({"mode": "enforce", "rules": rules or {}})
    (result,) = Engine(config, AssumedSessions(), stage="apply").run([finding])
    return result


# Each case: (rule, resource type, make(tags) → (resource id, region), still_as_it_was() → bool).
def sqs_queue(tags: dict[str, str]) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"jobs{len(tags)}", tags=tags)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(PUBLIC_POLICY)})
    return url, REGION


def sqs_unchanged(resource_id: str) -> bool:
    policy = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=resource_id, AttributeNames=["Policy"])["Attributes"].get("Policy")
    return json.loads(policy or "{}") == PUBLIC_POLICY


def lambda_function(tags: dict[str, str]) -> tuple[str, str]:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"fn{len(tags)}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    client = boto3.client("lambda", region_name=REGION)
    name = f"thumbnailer{len(tags)}"
    client.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                           Code={"ZipFile": buffer.getvalue()}, Tags=tags)
    client.add_permission(FunctionName=name, StatementId="anyone", Action="lambda:InvokeFunction", Principal="*")
    return name, REGION


def lambda_unchanged(resource_id: str) -> bool:
    try:
        policy = boto3.client("lambda", region_name=REGION).get_policy(FunctionName=resource_id)["Policy"]
    except Exception:  # no policy left
        return False
    return [s["Sid"] for s in json.loads(policy)["Statement"]] == ["anyone"]


def iam_user_with_policy(tags: dict[str, str]) -> tuple[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    name = f"etl{len(tags)}"
    iam.create_user(UserName=name, Tags=tag_list(tags))
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    aws_managed_policy(CLOUDSHELL)
    iam.attach_user_policy(UserName=name, PolicyArn=CLOUDSHELL)
    iam.create_access_key(UserName=name)
    return name, "global"


def iam_user_unchanged(resource_id: str) -> bool:
    iam = boto3.client("iam", region_name=REGION)
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=resource_id)["AttachedPolicies"]]
    return attached == [CLOUDSHELL] and iam.list_user_policies(UserName=resource_id)["PolicyNames"] == ["inline"]


def iam_role_with_cloudshell(tags: dict[str, str]) -> tuple[str, str]:
    iam = boto3.client("iam", region_name=REGION)
    name = f"ops{len(tags)}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
                    Tags=tag_list(tags))
    aws_managed_policy(CLOUDSHELL)
    iam.attach_role_policy(RoleName=name, PolicyArn=CLOUDSHELL)
    return name, "global"


def iam_role_unchanged(resource_id: str) -> bool:
    iam = boto3.client("iam", region_name=REGION)
    attached = iam.list_attached_role_policies(RoleName=resource_id)["AttachedPolicies"]
    return [p["PolicyArn"] for p in attached] == [CLOUDSHELL]


def kms_key(tags: dict[str, str]) -> tuple[str, str]:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]["KeyId"]
    return key, REGION


def kms_unchanged(resource_id: str) -> bool:
    kms = boto3.client("kms", region_name=REGION)
    return kms.get_key_rotation_status(KeyId=resource_id)["KeyRotationEnabled"] is False


def trail(tags: dict[str, str]) -> tuple[str, str]:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = f"trail-logs-{len(tags)}"
    s3.create_bucket(Bucket=bucket)
    if tags:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(tags)})
    name = f"audit{len(tags)}"
    boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name=name, S3BucketName=bucket, TagsList=tag_list(tags))
    return name, REGION


def trail_unchanged(resource_id: str) -> bool:
    (found,) = boto3.client("cloudtrail", region_name=REGION).describe_trails(trailNameList=[resource_id])["trailList"]
    bucket = found["S3BucketName"]
    logging = boto3.client("s3", region_name=REGION).get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
    return not found.get("LogFileValidationEnabled") and not found.get("KmsKeyId") and not logging


def trail_bucket(tags: dict[str, str]) -> tuple[str, str]:
    _, region = trail(tags)
    return f"trail-logs-{len(tags)}", region


def bucket_unchanged(resource_id: str) -> bool:
    return not boto3.client("s3", region_name=REGION).get_bucket_logging(Bucket=resource_id).get("LoggingEnabled")


def vpc(tags: dict[str, str]) -> tuple[str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    spec = [{"ResourceType": "vpc", "Tags": tag_list(tags)}] if tags else []
    return ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=spec)["Vpc"]["VpcId"], REGION


def vpc_unchanged(resource_id: str) -> bool:
    ec2 = boto3.client("ec2", region_name=REGION)
    return not ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["FlowLogs"]


CASES: list[tuple[str, str, Callable[[dict[str, str]], tuple[str, str]], Callable[[str], bool]]] = [
    ("SQS.3", "AwsSqsQueue", sqs_queue, sqs_unchanged),
    ("Lambda.1", "AwsLambdaFunction", lambda_function, lambda_unchanged),
    ("IAM.3", "AwsIamUser", iam_user_with_policy, iam_user_unchanged),
    ("IAM.22", "AwsIamUser", iam_user_with_policy, iam_user_unchanged),
    ("IAM.2", "AwsIamUser", iam_user_with_policy, iam_user_unchanged),
    ("IAM.27", "AwsIamUser", iam_user_with_policy, iam_user_unchanged),
    ("IAM.27", "AwsIamRole", iam_role_with_cloudshell, iam_role_unchanged),
    ("KMS.4", "AwsKmsKey", kms_key, kms_unchanged),
    ("CloudTrail.4", "AwsCloudTrailTrail", trail, trail_unchanged),
    ("CloudTrail.2", "AwsCloudTrailTrail", trail, trail_unchanged),
    ("CloudTrail.7", "AwsCloudTrailTrail", trail, trail_unchanged),
    ("CloudTrail.7", "AwsS3Bucket", trail_bucket, bucket_unchanged),
    ("EC2.6", "AwsEc2Vpc", vpc, vpc_unchanged),
]
IDS = [f"{rule}-{kind}" for rule, kind, _, _ in CASES]


@pytest.mark.parametrize(("rule_id", "resource_type", "make", "unchanged"), CASES, ids=IDS)
def test_netskope_finding_on_a_tagged_resource_is_excluded(
    moto_aws: None, rule_id: str, resource_type: str, make: Callable, unchanged: Callable
) -> None:
    resource_id, region = make(EXCLUDE)

    result = run(rule_id, resource_type, resource_id, region, rules={rule_id: {"mode": "enforce"}})

    assert (result.outcome, result.reason) == ("excluded", "resource has tag cspm-remediation:exclude=true")
    assert unchanged(resource_id)


@pytest.mark.parametrize(("rule_id", "resource_type", "make", "unchanged"), CASES, ids=IDS)
def test_the_same_resource_without_the_tag_is_acted_on(
    moto_aws: None, rule_id: str, resource_type: str, make: Callable, unchanged: Callable
) -> None:
    resource_id, region = make({})

    result = run(rule_id, resource_type, resource_id, region, rules={rule_id: {"mode": "dry-run"}})

    assert result.outcome in ("planned", "noop"), result.reason
    assert result.outcome == "planned" or rule_id in ("IAM.3", "IAM.22")  # a fresh key is neither old nor unused
    assert ACCOUNT in result.account_id
