"""Batched tag reads: the Resource Groups Tagging API's GetResources names up to 100 resources per call.

Findings from Netskope and Prowler often carry no tags, so each remediator reads the resource's live tags for the
exclusion tag, one call per resource. For the findings of one account and region the engine asks GetResources once
per 100 of their ARNs first (`prefetch_tags`), and keeps each answer in the run's read cache, where the
remediator's own tag read (Remediator.resource_tags) finds it. Whatever the batch cannot answer for sure is read
per resource as before, so the exclusion tag always holds:

* GetResources answers for every resource type except IAM users and roles and Auto Scaling groups (AWS's
  "Services that support the Resource Groups Tagging API"), for the Region it is called in only, and leaves out a
  resource that has never been tagged (or does not exist). So a resource it does not list has no tags only when its
  ARN names this Region: `SUPPORTED` lists the types taken so (each one moto's GetResources lists too, as the tests
  run there; CloudTrail trails only through demo/moto_tagging.py, and not ECR repositories, which moto leaves
  out). A resource it does not list may also be gone: the remediator's own reads say so (EC2.6 reads no VPC then:
  CreateFlowLogs does, at apply).
* An S3 bucket's ARN names no Region and the API lists a bucket only in its own Region, which a finding's region
  need not be (Netskope reports the region it saw): a bucket it lists has those tags; one it does not list has
  none only when its Region is known to be this one. Security Hub's own findings place it (`places_resource`,
  noted by the remediator's tagging_arn through `bucket_arn`); for the others ListBuckets, asked for this Region's
  buckets (BucketRegion), must name it. That listing is made only for `BUCKETS_WORTH_LISTING` or more such buckets
  (it replaces one GetBucketTagging each); otherwise an unlisted bucket is read on its own, and such buckets alone
  make no GetResources call. A remediator naming bucket ARNs also declares s3:ListAllMyBuckets.
* A refused (AccessDenied: a role deployed before tag:GetResources was granted) or failed call keeps nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from connectors.asff import SECURITY_HUB_PRODUCT
from connectors.finding import Finding
from functions.model import Target

log = logging.getLogger(__name__)

MAX_ARNS = 100  # GetResources ResourceARNList: 1-100 ARNs
BUCKETS_WORTH_LISTING = 2
TAGS = "tags"  # the read cache's key: (TAGS, arn)
HOME = "s3.BucketHome"  # (HOME, bucket ARN) kept in the read cache of the bucket's own Region (bucket_arn)
# (service, resource type) as an ARN names them → GetResources not listing one means it has no tags (its ARN names
# the Region), or that only when the bucket is known to be in this Region (S3: no Region in the ARN).
SUPPORTED: dict[tuple[str, str], bool] = {
    ("kms", "key"): True,
    ("cloudtrail", "trail"): True,
    ("ec2", "vpc"): True,
    ("sns", ""): True,  # arn:…:sns:region:account:TOPIC (no type in the ARN)
    ("sqs", ""): True,  # arn:…:sqs:region:account:QUEUE
    ("lambda", "function"): True,
    ("logs", "log-group"): True,
    ("dynamodb", "table"): True,
    ("athena", "workgroup"): True,
    ("ssm", "document"): True,
    ("s3", ""): False,
}
_UNTYPED = ("s3", "sns", "sqs")  # services whose ARN names the resource without a type
# The sources whose finding's region is the resource's own: Security Hub's controls evaluate a resource (AWS Config's
# configuration item) in its Region, and ASFF's Resources[].Region is "the Region where this resource is located"
# (connectors/asff.py takes it first). Only Security Hub's own product: another one importing ASFF may say anything.
PLACING_SOURCES = ("securityhub",)


def kind(arn: str, target: Target) -> tuple[str, str] | None:
    """The (service, resource type) of an ARN this batch may ask about in the target's account and Region, or None
    (another partition, account or Region, or a type the batch does not cover)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != target.partition:
        return None
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    key = (service, "" if service in _UNTYPED else re.split(r"[/:]", resource, maxsplit=1)[0])
    if key not in SUPPORTED or (service in _UNTYPED and re.search(r"[/:]", resource)):
        return None
    if service == "s3" and (region or account):
        return None
    if service != "s3" and (region != target.api_region or account != target.account_id):
        return None
    return key


def prefetch_tags(target: Target, arns: Iterable[str]) -> int:
    """Read the tags of these resources (one account and Region) with GetResources, 100 ARNs per call, into the
    run's read cache. Returns the number of GetResources calls. Nothing is kept for what the answers do not
    settle."""
    wanted = {arn: key for arn in dict.fromkeys(arns) if (key := kind(arn, target)) is not None}
    if not target.batching:
        return 0
    pending = [arn for arn in wanted if not target.cached((TAGS, arn))]
    placed = {arn for arn in pending if wanted[arn] == ("s3", "") and target.cached((HOME, arn))}
    buckets = [arn for arn in pending if wanted[arn] == ("s3", "") and arn not in placed]
    calls = 0
    answers = {arn for arn in pending if SUPPORTED[wanted[arn]]} | placed
    if len(buckets) >= BUCKETS_WORTH_LISTING:
        # Once per run and Region (the engine streams findings in chunks): a bucket created since is not in it and
        # is read on its own; one deleted since fails its own assessment.
        here = target.lookup(("s3.ListBuckets", "BucketRegion"), lambda: buckets_in_region(target))
        answers |= {arn for arn in buckets if arn.rsplit(":", 1)[1] in here}
    if not answers:
        return calls  # an unlisted resource would be read on its own anyway
    for start in range(0, len(pending), MAX_ARNS):
        chunk = pending[start:start + MAX_ARNS]
        try:
            calls += 1
            response = target.client("resourcegroupstaggingapi").get_resources(ResourceARNList=chunk)
        except (ClientError, BotoCoreError) as error:  # refused or failed: each resource is read on its own
            log.info("tag:GetResources in %s %s: %s; reading tags per resource", target.account_id,
                     target.api_region, error)
            return calls
        listed: set[str] = set()
        for mapping in response.get("ResourceTagMappingList", []):
            arn = mapping.get("ResourceARN")
            if arn in wanted:
                listed.add(arn)
                target.keep((TAGS, arn), {tag["Key"]: tag.get("Value", "") for tag in mapping.get("Tags", [])})
        if response.get("PaginationToken"):
            continue  # a partial answer (AWS pages no ARN list; a fake may): the rest is read on its own
        for arn in chunk:
            if arn not in listed and arn in answers:
                target.keep((TAGS, arn), {})
    return calls


def places_resource(finding: Finding) -> bool:
    """The finding's region is its resource's own Region (PLACING_SOURCES, from Security Hub's own product)."""
    return (finding.source in PLACING_SOURCES and finding.region != "global"
            and SECURITY_HUB_PRODUCT.fullmatch(finding.product_arn or "") is not None)


def bucket_arn(target: Target, finding: Finding, bucket: str) -> str:
    """A bucket's ARN for the batch (a remediator's tagging_arn); from a finding that places its resource, also
    noted as in the target's Region, so that the batch not listing it means no tags without a ListBuckets."""
    arn = f"arn:{target.partition}:s3:::{bucket}"
    if places_resource(finding) and target.api_region == finding.region:
        target.keep((HOME, arn), True)
    return arn


def buckets_in_region(target: Target) -> frozenset[str]:
    """The names of the account's buckets in the target's Region (ListBuckets, BucketRegion, from that Region's
    endpoint as S3 requires); none when the listing is refused or fails (each bucket is then read on its own)."""
    names: set[str] = set()
    try:
        pages = target.client("s3").get_paginator("list_buckets").paginate(BucketRegion=target.api_region)
        for page in pages:
            names.update(bucket["Name"] for bucket in page.get("Buckets", []))
    except (ClientError, BotoCoreError) as error:
        log.info("s3:ListAllMyBuckets in %s %s: %s; reading bucket tags per bucket", target.account_id,
                 target.api_region, error)
        return frozenset()
    return frozenset(names)
