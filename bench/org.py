"""Builds the synthetic organization in moto through the AWS APIs, as the demo does, at bench scale.

Accounts come from Organizations and get the remediation roles the StackSet would create (the demo's own
function); the resources of their cells (bench.synth) are created in parallel across accounts. The org grows
in steps (1,000 findings, then 10,000): each step creates only what is new. Findings are written with the
demo's ASFF and Netskope builders, interleaved across accounts as a real feed is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench import synth
from demo.moto_org import (
    HOME,
    WORLD_V4,
    WORLD_V6,
    admin_sessions,
    asff_finding,
    create_accounts,
    create_remediation_roles,
    ip_permission,
    netskope_violation,
)
from functions.engine.sessions import AssumedSessions

BUILD_WORKERS = 8
IMPORT_BATCH = 100  # BatchImportFindings maximum
KEY_AGE_DAYS = 120
OPENINGS = ((22, WORLD_V4), (3389, WORLD_V4), (22, WORLD_V6), (3389, WORLD_V6))
AgedKey = tuple[str, str, str]  # (account, user, access key id)


@dataclass(frozen=True)
class Reported:
    """One finding a CSPM raises about one resource."""

    source: str
    account: str
    region: str
    rule_id: str
    resource_type: str
    resource: str  # ARN when there is one, else the id
    title: str

    def payload(self) -> dict[str, Any]:
        if self.source == "securityhub":
            return asff_finding(self.account, self.region, self.rule_id, self.resource_type, self.resource, self.title)
        return netskope_violation(self.account, self.region, self.rule_id, self.resource, self.title)


@dataclass
class Org:
    """The organization as built so far, and everything the two CSPMs report about it."""

    accounts: list[str]
    regions: tuple[str, ...]
    admin: AssumedSessions
    cells: list[synth.CellPlan] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)  # Netskope serves all of them
    by_rule: Counter[str] = field(default_factory=Counter)

    @property
    def findings(self) -> int:
        return sum(self.by_rule.values())


@dataclass
class Growth:
    """What one growth step added: Security Hub findings to import, keys to age."""

    asff: list[dict[str, Any]] = field(default_factory=list)
    aged_keys: list[AgedKey] = field(default_factory=list)


def create_org(accounts: int, regions: Sequence[str]) -> Org:
    """An organization with `accounts` member accounts, each with the remediation roles."""
    ids = create_accounts([f"bench-{i}" for i in range(accounts)])
    admin = admin_sessions()
    with ThreadPoolExecutor(max_workers=BUILD_WORKERS, thread_name_prefix="build") as pool:
        list(pool.map(lambda account: create_remediation_roles(admin, account), ids))
    return Org(accounts=ids, regions=tuple(regions), admin=admin)


def grow_org(org: Org, n: int) -> Growth:
    """Create what the org lacks to hold n findings; record the new findings."""
    added = synth.growth(org.cells, n, org.accounts, org.regions)

    def build_account(index: int) -> tuple[list[Reported], list[AgedKey]]:
        account = org.accounts[index]
        return _AccountBuilder(org.admin, account, index).build([c for c in added if c.account == account])

    with ThreadPoolExecutor(max_workers=BUILD_WORKERS, thread_name_prefix="build") as pool:
        built = list(pool.map(build_account, range(len(org.accounts))))
    growth = Growth(aged_keys=[key for _, keys in built for key in keys])
    for reported in synth.interleave([reports for reports, _ in built]):
        assert isinstance(reported, Reported)
        (growth.asff if reported.source == "securityhub" else org.violations).append(reported.payload())
        org.by_rule[reported.rule_id] += 1
    org.cells = synth.merge(org.cells, added)
    if org.findings != n:
        raise RuntimeError(f"the org has {org.findings} findings, planned {n}")
    return growth


def enable_sources(secret_name: str, token: str) -> None:
    """Security Hub in the administrator account (the aggregator), and the Netskope token secret."""
    boto3.client("securityhub", region_name=HOME).enable_security_hub()
    boto3.client("secretsmanager", region_name=HOME).create_secret(
        Name=secret_name, SecretString=json.dumps({"token": token})
    )


def import_findings(asff: list[dict[str, Any]]) -> None:
    hub = boto3.client("securityhub", region_name=HOME)
    for start in range(0, len(asff), IMPORT_BATCH):
        response = hub.batch_import_findings(Findings=asff[start : start + IMPORT_BATCH])
        if response["FailedCount"]:
            first = response["FailedFindings"][:1]
            raise RuntimeError(f"BatchImportFindings refused {response['FailedCount']} finding(s): {first}")


class _AccountBuilder:
    """Creates one account's new resources; returns their findings in the order a CSPM lists them, and the keys
    to age."""

    def __init__(self, admin: AssumedSessions, account: str, index: int) -> None:
        self.admin = admin
        self.account = account
        self.index = index
        self.reported: list[Reported] = []
        self.aged: list[AgedKey] = []

    def client(self, region: str, service: str) -> Any:
        return self.admin.client(self.account, region, service)

    def report(self, index: int, region: str, rule_id: str, resource_type: str, resource: str, title: str) -> None:
        source = synth.source_for(rule_id, index)
        if source == "netskope" and rule_id == "IAM.3":
            region = "global"  # Netskope reports IAM findings without a region
        self.reported.append(Reported(source, self.account, region, rule_id, resource_type, resource, title))

    def build(self, cells: list[synth.CellPlan]) -> tuple[list[Reported], list[AgedKey]]:
        creators = {"security_group": self.security_group, "vpc": self.vpc, "key": self.key, "user": self.user,
                    "trail": self.trail, "bucket": self.bucket}
        for cell in cells:
            if cell.settings:
                self.settings(cell)
            for kind, create in creators.items():
                for index in cell.resources.get(kind, ()):
                    create(cell.region, index)
        return self.reported, self.aged

    # -- resources -------------------------------------------------------------------------------
    def settings(self, cell: synth.CellPlan) -> None:
        """EBS default encryption is off (EC2.7) in every region; in the home region, a weak password policy
        (fails IAM.7, IAM.10-17), no account-level Block Public Access (S3.1), and the bucket trails log to."""
        region = cell.region
        if cell.home:
            self.client(region, "iam").update_account_password_policy(MinimumPasswordLength=8,
                                                                      AllowUsersToChangePassword=True)
            for rule_id in synth.rotated(synth.PASSWORD_RULES, self.index):
                self.report(0, region, rule_id, "AwsAccount", self.account, f"password policy fails {rule_id}")
            self.report(0, region, "S3.1", "AwsAccount", self.account, "account-level Block Public Access is off")
        self.report(0, region, "EC2.7", "AwsAccount", self.account, "EBS default encryption is off")
        _create_bucket(self.client(region, "s3"), self.trail_bucket(region), region)

    def security_group(self, region: str, i: int) -> None:
        ec2 = self.client(region, "ec2")
        group = ec2.create_security_group(GroupName=f"bench-sg-{i}", Description="bench: admin ports open")["GroupId"]
        permissions = [ip_permission(port, cidr) for port, cidr in OPENINGS] + [ip_permission(443, WORLD_V4)]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
        arn = f"arn:aws:ec2:{region}:{self.account}:security-group/{group}"
        for rule_id in synth.rotated(synth.SECURITY_GROUP_RULES, i):
            self.report(i, region, rule_id, "AwsEc2SecurityGroup", arn, f"{group} opens admin ports ({rule_id})")

    def bucket(self, region: str, i: int) -> None:
        name = f"bench-{self.account}-{region}-{i}"
        _create_bucket(self.client(region, "s3"), name, region)
        self.report(i, region, "S3.8", "AwsS3Bucket", f"arn:aws:s3:::{name}", f"bucket {name} is not blocked")

    def vpc(self, region: str, i: int) -> None:
        vpc = self.client(region, "ec2").create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        self.report(i, region, "EC2.6", "AwsEc2Vpc", f"arn:aws:ec2:{region}:{self.account}:vpc/{vpc}",
                    f"{vpc} has no flow logs")

    def key(self, region: str, i: int) -> None:
        key = self.client(region, "kms").create_key(Description=f"bench key {i}")["KeyMetadata"]
        self.report(i, region, "KMS.4", "AwsKmsKey", key["Arn"], f"key {key['KeyId']} is not rotated")

    def trail_bucket(self, region: str) -> str:
        return f"bench-trails-{self.account}-{region}"

    def trail(self, region: str, i: int) -> None:
        arn = self.client(region, "cloudtrail").create_trail(
            Name=f"bench-trail-{i}", S3BucketName=self.trail_bucket(region)
        )["TrailARN"]
        self.report(i, region, "CloudTrail.4", "AwsCloudTrailTrail", arn, f"trail {i} has no log file validation")

    def user(self, region: str, i: int) -> None:
        iam = self.client(region, "iam")
        name = f"bench-user-{i}"
        iam.create_user(UserName=name)
        key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
        self.aged.append((self.account, name, key_id))
        self.report(i, region, "IAM.3", "AwsIamUser", f"arn:aws:iam::{self.account}:user/{name}",
                    f"user {name} has a {KEY_AGE_DAYS}-day-old key")


def _create_bucket(s3: Any, name: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
