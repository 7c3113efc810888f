"""The exclusion tag for the issue-17 rules whose resource has tags, whatever the source: a Netskope-shaped finding
carries no tags, so assess reads the live ones and the engine reports `excluded` under enforce, writing nothing;
the same resource without the tag is planned (so the tag, not something else, excludes it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from tests.factories import REGION, make_finding

EXCLUDE = {"cspm-remediation:exclude": "true"}


def run(rule_id: str, resource_type: str, resource_id: str, mode: str) -> Any:
    finding = make_finding(rule_id, resource_type, resource_id, source="netskope", tags={})
    config = config_from_dict({"mode": "enforce", "rules": {rule_id: {"mode": mode}}})
    (result,) = Engine(config, AssumedSessions(), stage="apply").run([finding])
    return result


def queue(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"q{len(tags)}", tags=tags, Attributes={"SqsManagedSseEnabled": "false"})[
        "QueueUrl"]
    return url, lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
        "SqsManagedSseEnabled"] == "false"


def topic(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    sns = boto3.client("sns", region_name=REGION)
    arn = sns.create_topic(Name=f"t{len(tags)}", Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["TopicArn"]
    return arn, lambda: not sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId")


def table(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    name = f"table{len(tags)}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return name, lambda: not dynamodb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"]


def repository(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    ecr = boto3.client("ecr", region_name=REGION)
    name = f"repo{len(tags)}"
    ecr.create_repository(repositoryName=name, tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return name, lambda: not ecr.describe_repositories(repositoryNames=[name])["repositories"][0][
        "imageScanningConfiguration"]["scanOnPush"]


def log_group(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    logs = boto3.client("logs", region_name=REGION)
    name = f"/app/g{len(tags)}"
    logs.create_log_group(logGroupName=name, tags=tags)
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    return name, lambda: logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 30


def document(tags: dict[str, str]) -> tuple[str, Callable[[], bool]]:
    ssm = boto3.client("ssm", region_name=REGION)
    name = f"Doc{len(tags)}"
    ssm.create_document(Name=name, DocumentType="Command", Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                        Content=json.dumps({"schemaVersion": "2.2", "description": "d", "mainSteps": [
                            {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["true"]}}]}))
    ssm.modify_document_permission(Name=name, PermissionType="Share", AccountIdsToAdd=["All"])
    return name, lambda: "all" in {a.lower() for a in ssm.describe_document_permission(
        Name=name, PermissionType="Share")["AccountIds"]}


CASES = [
    ("SQS.1", "AwsSqsQueue", queue),
    ("SNS.1", "AwsSnsTopic", topic),
    ("DynamoDB.6", "AwsDynamoDbTable", table),
    ("ECR.1", "AwsEcrRepository", repository),
    ("CloudWatch.16", "AwsLogsLogGroup", log_group),
    ("SSM.4", "AwsSsmDocument", document),
]
IDS = [rule for rule, _, _ in CASES]


@pytest.mark.parametrize(("rule_id", "resource_type", "make"), CASES, ids=IDS)
def test_tagged_resource_is_excluded_and_left_alone(moto_aws: None, rule_id: str, resource_type: str,
                                                    make: Callable) -> None:
    resource_id, unchanged = make(EXCLUDE)

    result = run(rule_id, resource_type, resource_id, "enforce")

    assert (result.outcome, result.reason) == ("excluded", "resource has tag cspm-remediation:exclude=true")
    assert unchanged()


@pytest.mark.parametrize(("rule_id", "resource_type", "make"), CASES, ids=IDS)
def test_the_same_resource_without_the_tag_is_planned(moto_aws: None, rule_id: str, resource_type: str,
                                                      make: Callable) -> None:
    resource_id, unchanged = make({})

    result = run(rule_id, resource_type, resource_id, "dry-run")

    assert result.outcome == "planned", result.reason
    assert unchanged()
