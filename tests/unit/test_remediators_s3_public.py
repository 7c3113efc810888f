"""S3.2 and S3.3 against moto: a bucket readable (writable) by everyone through its ACL gets the four Block Public
Access settings, read back; a second assess is compliant; the plan says the public access stops (disruptive for
that finding); the ACL and objects stay, so rollback restores the access exactly."""

from __future__ import annotations

import boto3
import pytest

from functions.model import Target
from functions.remediators.s3_public import BucketPublicReadWriteBlocked
from tests.factories import make_finding

REGION = "us-east-1"


@pytest.mark.parametrize(("rule_id", "acl"), [("S3.2", "public-read"), ("S3.3", "public-read-write")])
def test_public_bucket_is_blocked_and_its_acl_kept(target: Target, moto_aws, rule_id: str, acl: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="press-kit")
    s3.delete_public_access_block(Bucket="press-kit")
    s3.put_bucket_ownership_controls(Bucket="press-kit", OwnershipControls={"Rules": [
        {"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket="press-kit", ACL=acl)
    s3.put_object(Bucket="press-kit", Key="logo.png", Body=b"png")
    remediator, finding = BucketPublicReadWriteBlocked(), make_finding(rule_id, "AwsS3Bucket", "press-kit",
                                                                      tags={"team": "pr"})

    before = remediator.assess(target, finding)
    assert not before.compliant and "is public now" in before.disruptive
    remediator.apply(target, finding, before)

    assert all(s3.get_public_access_block(Bucket="press-kit")["PublicAccessBlockConfiguration"].values())
    assert remediator.assess(target, finding).compliant
    grants = s3.get_bucket_acl(Bucket="press-kit")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants)  # kept for rollback
    assert s3.get_object(Bucket="press-kit", Key="logo.png")["Body"].read() == b"png"
