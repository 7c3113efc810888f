"""The batched tag read (functions/remediators/tagging.py) for every remediator that names its resource's ARN:
VPCs (EC2.6), SNS topics, SQS queues, Lambda functions, log groups, DynamoDB tables, and S3 buckets of findings
whose source places them (Security Hub). For findings that carry no tags, through the engine on moto:

* the exclusion tag still holds (the tagged resource excluded, the untagged one acted on);
* the remediator's own tag read is gone when the batch settled it (calls counted: one GetResources instead);
* a refused GetResources leaves each resource to its own read, and the tag still holds.
"""

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
from tests.faults import FaultInjector

EXCLUDE = {"cspm-remediation:exclude": "true"}
GET_RESOURCES = "resource-groups-tagging-api.GetResources"
PUBLIC_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"},
]}
SECURITY_HUB = f"arn:aws:securityhub:{REGION}::product/aws/securityhub"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# Each maker: (index, tags) → (resource id, resource ARN), the resource failing its rule.
def vpc(index: int, tags: dict[str, str]) -> tuple[str, str]:
    spec = [{"ResourceType": "vpc", "Tags": tag_list(tags)}] if tags else []
    vpc_id = boto3.client("ec2", region_name=REGION).create_vpc(
        CidrBlock=f"10.{40 + index}.0.0/16", TagSpecifications=spec)["Vpc"]["VpcId"]
    return vpc_id, f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{vpc_id}"


def topic(index: int, tags: dict[str, str]) -> tuple[str, str]:
    arn = boto3.client("sns", region_name=REGION).create_topic(Name=f"alerts{index}", Tags=tag_list(tags))["TopicArn"]
    return f"alerts{index}", arn


def queue(index: int, tags: dict[str, str], public: bool = False) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"jobs{index}", tags=tags,
                           Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
    if public:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(PUBLIC_POLICY)})
    return f"jobs{index}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs{index}"


def public_queue(index: int, tags: dict[str, str]) -> tuple[str, str]:
    return queue(index, tags, public=True)


def function(index: int, tags: dict[str, str]) -> tuple[str, str]:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"fn{index}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    client = boto3.client("lambda", region_name=REGION)
    name = f"thumbnailer{index}"
    arn = client.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                                 Code={"ZipFile": buffer.getvalue()}, Tags=tags)["FunctionArn"]
    client.add_permission(FunctionName=name, StatementId="anyone", Action="lambda:InvokeFunction", Principal="*")
    return name, arn


def log_group(index: int, tags: dict[str, str]) -> tuple[str, str]:
    logs = boto3.client("logs", region_name=REGION)
    name = f"/app/group{index}"
    logs.create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    return name, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def table(index: int, tags: dict[str, str]) -> tuple[str, str]:
    arn = boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=f"orders{index}", BillingMode="PAY_PER_REQUEST", Tags=tag_list(tags),
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])["TableDescription"]["TableArn"]
    return f"orders{index}", arn


def workgroup(index: int, tags: dict[str, str]) -> tuple[str, str]:
    boto3.client("athena", region_name=REGION).create_work_group(
        Name=f"analysts{index}", Configuration={"PublishCloudWatchMetricsEnabled": False}, Tags=tag_list(tags))
    return f"analysts{index}", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/analysts{index}"


def public_document(index: int, tags: dict[str, str]) -> tuple[str, str]:
    ssm = boto3.client("ssm", region_name=REGION)
    content = {"schemaVersion": "2.2", "description": "t", "mainSteps": [
        {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["true"]}}]}
    name = f"runbook{index}"
    ssm.create_document(Content=json.dumps(content), Name=name, DocumentType="Command", Tags=tag_list(tags))
    ssm.modify_document_permission(Name=name, PermissionType="Share", AccountIdsToAdd=["All"])
    return name, f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/{name}"


def bucket(index: int, tags: dict[str, str]) -> tuple[str, str]:
    """A bucket without a TLS-only policy nor default encryption (S3.5, S3.4); Netskope's findings do not place it,
    so three of them are worth one ListBuckets."""
    s3 = boto3.client("s3", region_name=REGION)
    name = f"data-bkt-{index}"
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(tags)})
    return name, f"arn:aws:s3:::{name}"


# (rule, resource type, maker, the remediator's own tag read that the batch replaces)
CASES: list[tuple[str, str, Callable[[int, dict[str, str]], tuple[str, str]], str]] = [
    ("EC2.6", "AwsEc2Vpc", vpc, "ec2.DescribeVpcs"),
    ("SNS.1", "AwsSnsTopic", topic, "sns.ListTagsForResource"),
    ("SQS.1", "AwsSqsQueue", queue, "sqs.ListQueueTags"),
    ("SQS.3", "AwsSqsQueue", public_queue, "sqs.ListQueueTags"),
    ("Lambda.1", "AwsLambdaFunction", function, "lambda.ListTags"),
    ("CloudWatch.16", "AwsLogsLogGroup", log_group, "cloudwatch-logs.ListTagsForResource"),
    ("DynamoDB.6", "AwsDynamoDbTable", table, "dynamodb.ListTagsOfResource"),
    ("Athena.4", "AwsAthenaWorkGroup", workgroup, "athena.ListTagsForResource"),
    ("SSM.4", "AwsSsmDocument", public_document, "ssm.ListTagsForResource"),
    ("S3.5", "AwsS3Bucket", bucket, "s3.GetBucketTagging"),
    ("S3.4", "AwsS3Bucket", bucket, "s3.GetBucketTagging"),
]
IDS = [rule for rule, *_ in CASES]


def plan(rule_id: str, resource_type: str, resources: list[tuple[str, str]],
         faults: FaultInjector | None = None) -> tuple[list[Any], AssumedSessions]:
    """Netskope-shaped findings (no tags, the resource's ARN) planned in one run."""
    findings = [make_finding(rule_id, resource_type, resource_id, resource_arn=arn, source="netskope", tags={})
                for resource_id, arn in resources]
    sessions = AssumedSessions(session_hook=faults.hook if faults else None)
    config = config_from_dict({"rules": {rule_id: {"mode": "dry-run"}}})
    return Engine(config, sessions, stage="plan").run(findings), sessions


@pytest.mark.parametrize(("rule_id", "resource_type", "make", "own_read"), CASES, ids=IDS)
def test_the_batch_settles_the_tags_and_the_exclusion_tag_holds(
    moto_aws: None, rule_id: str, resource_type: str, make: Callable, own_read: str
) -> None:
    resources = [make(0, EXCLUDE), make(1, {}), make(2, {"team": "a"})]

    results, sessions = plan(rule_id, resource_type, resources)

    assert [r.outcome for r in results] == ["excluded", "planned", "planned"], [r.reason for r in results]
    assert sessions.api_calls[GET_RESOURCES] == 1
    assert sessions.api_calls[own_read] == 0  # one per resource (EC2.6: one batched DescribeVpcs) without it


@pytest.mark.parametrize(("rule_id", "resource_type", "make", "own_read"), CASES, ids=IDS)
def test_a_refused_batch_leaves_each_resource_to_its_own_read(
    moto_aws: None, rule_id: str, resource_type: str, make: Callable, own_read: str
) -> None:
    resources = [make(0, EXCLUDE), make(1, {})]
    faults = FaultInjector()
    faults.error("caller", GET_RESOURCES, "AccessDenied")

    results, sessions = plan(rule_id, resource_type, resources, faults)

    assert [r.outcome for r in results] == ["excluded", "planned"], [r.reason for r in results]
    assert faults.count("caller", GET_RESOURCES) == 1
    assert sessions.api_calls[own_read] == (1 if rule_id == "EC2.6" else 2)  # EC2.6: both VPCs in one describe


def test_a_vpc_the_batch_settled_is_not_described_but_its_flow_logs_are_read(moto_aws: None) -> None:
    """EC2.6 still reads the flow logs (its compliance) in one call; only the tag read goes."""
    resources = [vpc(i, {}) for i in range(3)]

    results, sessions = plan("EC2.6", "AwsEc2Vpc", resources)

    assert [r.outcome for r in results] == ["planned"] * 3
    assert sessions.api_calls["ec2.DescribeFlowLogs"] == 1
    assert sessions.api_calls["ec2.DescribeVpcs"] == 0


# -- S3 buckets: the finding's source may place the bucket in its Region ---------------------------------------
def bucket_finding(name: str, source: str, product_arn: str | None = None) -> Any:
    return make_finding("S3.8", "AwsS3Bucket", name, resource_arn=f"arn:aws:s3:::{name}", source=source, tags={},
                        product_arn=product_arn)


def buckets(tags: list[dict[str, str]]) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    names = []
    for index, bucket_tags in enumerate(tags):
        name = f"placed-bkt-{index}"
        s3.create_bucket(Bucket=name)
        if bucket_tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(bucket_tags)})
        names.append(name)
    return names


def plan_buckets(findings: list[Any], faults: FaultInjector | None = None) -> tuple[list[Any], AssumedSessions]:
    sessions = AssumedSessions(session_hook=faults.hook if faults else None)
    return Engine(config_from_dict({}), sessions, stage="plan").run(findings), sessions


def test_security_hub_findings_place_their_buckets_no_listing_no_bucket_tag_read(moto_aws: None) -> None:
    """Security Hub evaluates a bucket in its own Region: a bucket the batch does not list has no tags, without a
    ListBuckets (one bucket alone is not worth one) and without a GetBucketTagging."""
    (excluded, untagged) = buckets([EXCLUDE, {}])

    results, sessions = plan_buckets([bucket_finding(excluded, "securityhub", SECURITY_HUB),
                                      bucket_finding(untagged, "securityhub", SECURITY_HUB)])

    assert [r.outcome for r in results] == ["excluded", "planned"]
    assert sessions.api_calls[GET_RESOURCES] == 1
    assert sessions.api_calls["s3.ListBuckets"] == 0
    assert sessions.api_calls["s3.GetBucketTagging"] == 0


@pytest.mark.parametrize(("source", "product_arn"), [
    ("netskope", None),
    ("prowler", None),
    ("securityhub", "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"),  # imported by others
])
def test_other_sources_do_not_place_a_lone_bucket(moto_aws: None, source: str, product_arn: str | None) -> None:
    (excluded,) = buckets([EXCLUDE])

    results, sessions = plan_buckets([bucket_finding(excluded, source, product_arn)])

    assert results[0].outcome == "excluded"
    assert sessions.api_calls[GET_RESOURCES] == 0
    assert sessions.api_calls["s3.GetBucketTagging"] == 1


def test_a_refused_batch_reads_placed_buckets_on_their_own(moto_aws: None) -> None:
    names = buckets([EXCLUDE, {}])
    faults = FaultInjector()
    faults.error("caller", GET_RESOURCES, "AccessDenied")

    results, sessions = plan_buckets([bucket_finding(n, "securityhub", SECURITY_HUB) for n in names], faults)

    assert [r.outcome for r in results] == ["excluded", "planned"]
    assert sessions.api_calls["s3.GetBucketTagging"] == 2


def test_which_findings_place_their_resource() -> None:
    from functions.remediators.tagging import places_resource

    def finding(source: str, product_arn: str | None, region: str = REGION) -> Any:
        return make_finding("S3.8", "AwsS3Bucket", "b", source=source, product_arn=product_arn, region=region)

    assert places_resource(finding("securityhub", SECURITY_HUB))
    assert places_resource(finding("securityhub", "arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/securityhub",
                                   "us-gov-west-1"))
    assert not places_resource(finding("securityhub", None))
    assert not places_resource(finding("securityhub", "arn:aws:securityhub:us-east-1::product/prowler/prowler"))
    assert not places_resource(finding("netskope", SECURITY_HUB))
    assert not places_resource(finding("securityhub", SECURITY_HUB, "global"))


# -- CloudTrail trails (moto lists them through demo/moto_tagging.py, as AWS does) ------------------------------
def trail(index: int, tags: dict[str, str]) -> tuple[str, str]:
    bucket = f"trail-logs-more-{index}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    arn = boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name=f"audit-more-{index}", S3BucketName=bucket, TagsList=tag_list(tags))["TrailARN"]
    return arn, arn


def test_a_tagged_trail_named_by_its_arn_is_excluded_from_the_batch(moto_aws: None) -> None:
    """CloudTrail.4 findings naming the trail's ARN: the batch settles the trails, the exclusion tag holds."""
    resources = [trail(0, EXCLUDE), trail(1, {})]

    results, sessions = plan("CloudTrail.4", "AwsCloudTrailTrail", resources)

    assert [r.outcome for r in results] == ["excluded", "planned"], [r.reason for r in results]
    assert sessions.api_calls[GET_RESOURCES] == 1
    assert sessions.api_calls["cloudtrail.ListTags"] == 0
