"""ARN parsing per resource type of CATALOG A, across partitions."""

import pytest

from connectors.arns import ArnError, parse_arn, resolve_resource


@pytest.mark.parametrize(
    ("resource_type", "raw", "resource_id", "account", "region"),
    [
        ("AwsEc2SecurityGroup", "arn:aws:ec2:eu-west-1:222222222222:security-group/sg-0a1b2c3d4e5f60718",
         "sg-0a1b2c3d4e5f60718", "222222222222", "eu-west-1"),
        ("AwsS3Bucket", "arn:aws:s3:::my-bucket", "my-bucket", None, None),
        ("AwsS3Bucket", "arn:aws-cn:s3:::cn-bucket", "cn-bucket", None, None),
        ("AwsIamUser", "arn:aws:iam::123456789012:user/alice", "alice", "123456789012", None),
        ("AwsIamUser", "arn:aws:iam::123456789012:user/team/ops/bob", "bob", "123456789012", None),
        ("AwsKmsKey", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
         "1234abcd-12ab-34cd-56ef-1234567890ab", "123456789012", "us-east-1"),
        ("AwsCloudTrailTrail", "arn:aws-us-gov:cloudtrail:us-gov-west-1:123456789012:trail/org-trail",
         "org-trail", "123456789012", "us-gov-west-1"),
        ("AwsEc2Vpc", "arn:aws:ec2:us-east-2:123456789012:vpc/vpc-0abc1234def567890", "vpc-0abc1234def567890",
         "123456789012", "us-east-2"),
        ("AwsEc2NetworkAcl", "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-0123456789abcdef0",
         "acl-0123456789abcdef0", "123456789012", "us-east-1"),
        ("AwsEc2Instance", "arn:aws-cn:ec2:cn-north-1:123456789012:instance/i-0123456789abcdef0",
         "i-0123456789abcdef0", "123456789012", "cn-north-1"),
        ("AwsRdsDbInstance", "arn:aws:rds:us-east-1:123456789012:db:prod-db", "prod-db", "123456789012", "us-east-1"),
        ("AwsAccount", "AWS::::Account:123456789012", "123456789012", "123456789012", None),
        ("AwsAccount", "arn:aws:iam::123456789012:root", "123456789012", "123456789012", None),
        ("AwsEc2SecurityGroup", "sg-0123456789abcdef0", "sg-0123456789abcdef0", None, None),
    ],
)
def test_resource_ids(resource_type, raw, resource_id, account, region):
    ref = resolve_resource(resource_type, raw)
    assert (ref.resource_id, ref.account, ref.region) == (resource_id, account, region)
    assert ref.arn == (raw if raw.startswith("arn:") else None)


def test_access_key_resolves_to_its_user():
    ref = resolve_resource("AwsIamAccessKey", "AKIAIOSFODNN7EXAMPLE", {"AwsIamAccessKey": {"UserName": "carol"}})
    assert ref.resource_id == "carol"


@pytest.mark.parametrize(
    "raw",
    ["arn:aws", "arn:aws-xx:ec2:us-east-1:123456789012:vpc/vpc-1", "arn:aws:ec2:us-east-1:12:vpc/vpc-1", "a/b/c", ""],
)
def test_bad_ids_raise_arn_error(raw):
    with pytest.raises(ArnError):
        resolve_resource("AwsEc2Vpc", raw)


def test_parse_arn_fields():
    arn = parse_arn("arn:aws:rds:eu-central-1:123456789012:db:orders")
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource_type, arn.resource_name) == (
        "aws", "rds", "eu-central-1", "123456789012", "db", "orders",
    )
