"""Helpers shared by the S3, CloudTrail and KMS remediator tests (this module holds no tests).

Independent reads go through plain boto3 clients; only calls through the Target are counted, so the calls a
remediator makes can be compared with the IAM actions it declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from functions.remediators.base import Assessment
from tests.factories import ACCOUNT, REGION
from tests.iam_actions import iam_action


def iam_actions(api_calls: Iterable[str]) -> set[str]:
    """The IAM actions behind the counted calls (AssumedSessions.api_calls: "service-id.Operation"), less the
    sessions' own STS calls."""
    actions = set()
    for call in api_calls:
        service_id, operation = call.split(".", 1)
        service = service_id.replace("-", "")  # "s3-control" → botocore's "s3control", which signs as "s3"
        service = {"cloudwatchlogs": "logs"}.get(service, service)  # "cloudwatch-logs" is botocore's "logs"
        if service != "sts":
            actions.add(iam_action(service, "s3" if service == "s3control" else service, operation))
    return actions


def record_calls(client) -> list[str]:
    """Operation names the client sends from now on."""
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def recorded_pre_state(assessment: Assessment) -> dict[str, Any]:
    """The pre_state the engine records for a remediated finding: the assessment's, plus what apply created."""
    created = assessment.context.get("created")
    return {**assessment.pre_state, **({"created": created} if created else {})}


def make_trail_bucket(name: str, region: str = REGION) -> str:
    """A log bucket with the policy CloudTrail requires (moto itself only checks that the bucket exists)."""
    s3 = boto3.client("s3", region_name=region)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **location)
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{name}",
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{name}/AWSLogs/{ACCOUNT}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


def bucket_policy(name: str) -> dict[str, Any] | None:
    """Independent read of a bucket policy, parsed."""
    try:
        return json.loads(boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchBucketPolicy"
        return None


def trail_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


def create_trail(name: str, bucket: str, region: str = REGION, logging: bool = False, **kwargs: Any) -> str:
    """A trail created directly (not by a remediator); returns its ARN."""
    cloudtrail = boto3.client("cloudtrail", region_name=region)
    arn = cloudtrail.create_trail(Name=name, S3BucketName=bucket, **kwargs)["TrailARN"]
    if logging:
        cloudtrail.start_logging(Name=name)
    return arn


def event_selectors(name: str, region: str = REGION) -> dict[str, list[dict[str, Any]]]:
    """Independent read of a trail's selectors, both kinds."""
    response = boto3.client("cloudtrail", region_name=region).get_event_selectors(TrailName=name)
    return {key: response.get(key) or [] for key in ("EventSelectors", "AdvancedEventSelectors")}
