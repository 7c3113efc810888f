"""Batched tag reads (functions/remediators/tagging.py, the engine's per-account tag prefetch): findings that carry
no tags get their resources' live tags from one Resource Groups Tagging API GetResources call per region and 100
ARNs instead of one tag read each; whatever the batch cannot settle (a refused call, a bucket it does not list, a
type it does not cover, a resource of another Region) is read per resource, so the exclusion tag always holds.

Through the engine on moto, counting calls with AssumedSessions.api_calls ("service.Operation").
"""

from __future__ import annotations

import math
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.catalog import CATALOG
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import ReadCache, Target
from functions.remediators.base import Remediator
from functions.remediators.tagging import MAX_ARNS, kind, prefetch_tags
from tests.factories import ACCOUNT, REGION, make_finding
from tests.faults import FaultInjector

EXCLUDE = "cspm-remediation:exclude"
GET_RESOURCES = "resource-groups-tagging-api.GetResources"


@pytest.fixture
def kms(moto_aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


def keys(kms: Any, count: int, region: str = REGION) -> list[str]:
    client = kms if region == REGION else boto3.client("kms", region_name=region)
    return [client.create_key(Description=f"k{i}")["KeyMetadata"]["Arn"] for i in range(count)]


def key_finding(arn: str, region: str = REGION) -> Any:
    return make_finding("KMS.4", "AwsKmsKey", arn.rsplit("/", 1)[1], resource_arn=arn, region=region,
                        source="netskope")


def run(findings: list[Any], faults: FaultInjector | None = None) -> tuple[list[Any], AssumedSessions]:
    sessions = AssumedSessions(session_hook=faults.hook if faults else None)
    return Engine(config_from_dict({}), sessions, stage="plan").run(findings), sessions


def test_tags_of_many_keys_come_from_one_call_per_100(kms: Any) -> None:
    arns = keys(kms, MAX_ARNS + 30)
    kms.tag_resource(KeyId=arns[3], Tags=[{"TagKey": EXCLUDE, "TagValue": "true"}])
    kms.tag_resource(KeyId=arns[120], Tags=[{"TagKey": "team", "TagValue": "a"}])

    results, sessions = run([key_finding(arn) for arn in arns])

    assert results[3].outcome == "excluded"
    assert [r.outcome for i, r in enumerate(results) if i != 3] == ["planned"] * (len(arns) - 1)
    assert sessions.api_calls[GET_RESOURCES] == math.ceil(len(arns) / MAX_ARNS) == 2
    assert sessions.api_calls["kms.ListResourceTags"] == 0  # one per key without the batch


@pytest.mark.parametrize("refusal", ["AccessDenied", "ThrottledException"])
def test_a_refused_batch_falls_back_to_each_keys_own_read(kms: Any, refusal: str) -> None:
    arns = keys(kms, 3)
    kms.tag_resource(KeyId=arns[1], Tags=[{"TagKey": EXCLUDE, "TagValue": "true"}])
    faults = FaultInjector()
    faults.error("caller", GET_RESOURCES, refusal)  # no role: the caller's own session

    results, sessions = run([key_finding(arn) for arn in arns], faults)

    assert [r.outcome for r in results] == ["planned", "excluded", "planned"]
    assert faults.count("caller", GET_RESOURCES) >= 1
    assert sessions.api_calls["kms.ListResourceTags"] == 3


def test_a_type_the_api_does_not_answer_for_is_read_on_its_own(moto_aws: None) -> None:
    """IAM users: GetResources does not list them (AWS documents it), so IAM.3 reads each user's tags."""
    iam = boto3.client("iam")
    iam.create_user(UserName="u1", Tags=[{"Key": EXCLUDE, "Value": "true"}])
    iam.create_access_key(UserName="u1")
    finding = make_finding("IAM.3", "AwsIamUser", "u1", resource_arn=f"arn:aws:iam::{ACCOUNT}:user/u1",
                           region="global", source="netskope")

    results, sessions = run([finding])

    assert results[0].outcome == "excluded"
    assert sessions.api_calls[GET_RESOURCES] == 0
    assert sessions.api_calls["iam.ListUserTags"] == 1


def bucket_finding(name: str, region: str = REGION) -> Any:
    return make_finding("S3.8", "AwsS3Bucket", name, resource_arn=f"arn:aws:s3:::{name}", region=region,
                        source="netskope")


def test_a_lone_bucket_the_api_does_not_list_is_read_on_its_own(kms: Any) -> None:
    """A bucket's ARN names no Region: one bucket is not worth a ListBuckets, so unlisted it is read per bucket."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="unlisted")

    results, sessions = run([key_finding(keys(kms, 1)[0]), bucket_finding("unlisted")])

    assert [r.outcome for r in results] == ["planned", "planned"]
    assert sessions.api_calls[GET_RESOURCES] == 1
    assert sessions.api_calls["s3.ListBuckets"] == 0
    assert sessions.api_calls["s3.GetBucketTagging"] == 1


def test_buckets_listed_in_this_region_are_settled_by_the_batch(moto_aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    names = [f"bkt-{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=names[2], Tagging={"TagSet": [{"Key": EXCLUDE, "Value": "true"}]})

    results, sessions = run([bucket_finding(name) for name in names])

    assert [r.outcome for r in results] == ["planned", "planned", "excluded", "planned", "planned"]
    assert sessions.api_calls[GET_RESOURCES] == sessions.api_calls["s3.ListBuckets"] == 1
    assert sessions.api_calls["s3.GetBucketTagging"] == 0  # one per bucket without the batch


def test_the_bucket_listing_is_made_once_per_run_and_region(moto_aws: None) -> None:
    """The engine streams findings in chunks (one tag batch per account, region and chunk); the listing of a
    Region's buckets serves every chunk of the run."""
    s3 = boto3.client("s3", region_name=REGION)
    names = [f"bkt-{i}" for i in range(6)]
    for name in names:
        s3.create_bucket(Bucket=name)
    sessions = AssumedSessions()

    results = list(Engine(config_from_dict({}), sessions, stage="plan").stream(
        [bucket_finding(name) for name in names], chunk_size=2))

    assert [r.outcome for r in results] == ["planned"] * len(names)
    assert sessions.api_calls["s3.ListBuckets"] == 1
    assert sessions.api_calls[GET_RESOURCES] == 3
    assert sessions.api_calls["s3.GetBucketTagging"] == 0


def test_a_bucket_of_another_region_is_never_taken_as_untagged(moto_aws: None) -> None:
    """AWS's GetResources lists a bucket only in its own Region (moto lists every bucket everywhere, so the answer is
    stubbed as AWS would give it): a finding naming the wrong region leaves its bucket to its own read."""
    reads = ReadCache()
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    clients = {"resourcegroupstaggingapi": tagging, "s3": s3}
    target = Target(ACCOUNT, REGION, "aws", lambda service, region: clients[service], reads=reads)
    here, elsewhere = "arn:aws:s3:::bkt-here", "arn:aws:s3:::bkt-eu"
    with Stubber(tagging) as stub_tags, Stubber(s3) as stub_s3:
        stub_s3.add_response("list_buckets", {"Buckets": [{"Name": "bkt-here"}]}, {"BucketRegion": REGION})
        stub_tags.add_response("get_resources", {"ResourceTagMappingList": []}, {"ResourceARNList": [here, elsewhere]})
        prefetch_tags(target, [here, elsewhere])

    assert target.cached(("tags", here)) and not target.cached(("tags", elsewhere))


def test_a_refused_bucket_listing_settles_no_unlisted_bucket(moto_aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for name in ("bkt-a", "bkt-b"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket="bkt-b", Tagging={"TagSet": [{"Key": EXCLUDE, "Value": "true"}]})
    faults = FaultInjector()
    faults.error("caller", "s3.ListBuckets", "AccessDenied")

    results, sessions = run([bucket_finding("bkt-a"), bucket_finding("bkt-b")], faults)

    assert [r.outcome for r in results] == ["planned", "excluded"]
    assert sessions.api_calls[GET_RESOURCES] == 0  # nothing it could settle that the buckets' own reads would not
    assert sessions.api_calls["s3.GetBucketTagging"] == 2


def test_buckets_alone_make_no_batch_call(moto_aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="bkt-1")
    s3.put_bucket_tagging(Bucket="bkt-1", Tagging={"TagSet": [{"Key": EXCLUDE, "Value": "true"}]})

    results, sessions = run([bucket_finding("bkt-1")])

    assert results[0].outcome == "excluded"
    assert sessions.api_calls[GET_RESOURCES] == 0
    assert sessions.api_calls["s3.GetBucketTagging"] == 1


def test_a_key_of_another_region_is_not_asked_for_here(kms: Any) -> None:
    """GetResources answers for its own Region: a key ARN of another Region (a finding that names the wrong
    region) must not be taken as untagged because this Region's answer leaves it out."""
    other = keys(kms, 1, region="eu-west-1")[0]
    boto3.client("kms", region_name="eu-west-1").tag_resource(
        KeyId=other, Tags=[{"TagKey": EXCLUDE, "TagValue": "true"}])
    target = Target(ACCOUNT, REGION, "aws", lambda service, region: None)

    assert kind(other, target) is None
    assert kind(other.replace("eu-west-1", REGION), target) == ("kms", "key")
    assert kind(f"arn:aws:iam::{ACCOUNT}:user/u1", target) is None
    assert kind("arn:aws:s3:::b1", target) == ("s3", "")
    assert kind("arn:aws-cn:s3:::b1", target) is None


def test_verification_after_apply_reads_no_tags_again(kms: Any) -> None:
    arns = keys(kms, 2)
    sessions = AssumedSessions()
    engine = Engine(config_from_dict({"rules": {"KMS.4": {"mode": "enforce"}}}), sessions, stage="apply")

    results = engine.run([key_finding(arn) for arn in arns])

    assert [r.outcome for r in results] == ["remediated", "remediated"]
    assert sessions.api_calls[GET_RESOURCES] == 1
    assert sessions.api_calls["kms.ListResourceTags"] == 0


def test_the_remediators_that_name_arns_are_the_ones_granted_the_batch() -> None:
    """The engine asks GetResources only for remediators declaring tag:GetResources (batches_tags), so the
    generated role grants every batched call; a remediator naming ARNs without the declaration would never batch."""
    for entry in CATALOG.values():
        names_arns = entry.remediator.tagging_arn is not Remediator.tagging_arn
        assert names_arns == entry.remediator.batches_tags(), entry.rule_id
        if names_arns and "AwsS3Bucket" in entry.remediator.resource_types:  # its buckets' Region (ListBuckets)
            assert "s3:ListAllMyBuckets" in entry.remediator.read_permissions, entry.rule_id
    assert {"S3.8", "KMS.4", "CloudTrail.4"} <= {rule for rule, e in CATALOG.items() if e.remediator.batches_tags()}
