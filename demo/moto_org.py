"""Building blocks of a misconfigured organization on moto, shared by the demo (demo/org.py), the bench
(bench/org.py) and the tests (tests/faults.py): member accounts made through Organizations, the roles the StackSet
would create in them, world-open security groups, and the findings Security Hub and Netskope raise about them.

Each caller plants its own set of misconfigurations; what they have in common is here, once.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import boto3

from functions.engine.pacing import Pacer
from functions.engine.sessions import AssumedSessions

HOME = "us-east-1"
OTHER = "eu-west-1"
SECURITY_ACCOUNT = "123456789012"  # moto's default: the caller, Security Hub administrator, secret holder
REMEDIATION_ROLE = "CSPMRemediationRole"
EXCLUDE_TAG = "cspm-remediation:exclude"
WORLD_V4, WORLD_V6 = "0.0.0.0/0", "::/0"
NETSKOPE_RULES = {
    "EC2.13": "Communications and control network protection: Ensure no security groups allow ingress from "
    "0.0.0.0/0 to port 22",
    "EC2.14": "Communications and control network protection: Ensure no security groups allow ingress from "
    "0.0.0.0/0 to port 3389",
    "EC2.6": "Baseline network operations and data flows: Ensure VPC flow logging is enabled in all VPCs",
    "S3.8": "Ensure S3 Bucket is not publicly accessible.",
    "IAM.3": "Remote access: Ensure access keys are rotated every 90 days or less.",
    "CloudTrail.4": "Secure audit trails so they cannot be altered : CloudTrail Log Files Lack Integrity Validation",
    "Redshift.1": "Access permissions and authorizations: Ensure Redshift Clusters are not Publicly accessible",
    "RDS.1": "Access permissions and authorizations: Ensure RDS Instances do not have Publicly Accessible Snapshots",
}
NETSKOPE_REGION_NAMES = {HOME: "US East(N. Virginia)", OTHER: "EU(Ireland)", "global": "global"}
TOKEN_SECRET = "cspm-remediation/netskope-token"  # the Secrets Manager secret holding the Netskope token
ADMIN_ROLE = "OrganizationAccountAccessRole"  # what Organizations creates in each new account; the org admin's way in


def isolate_from_real_aws() -> None:
    """Fake credentials and no profile: nothing in this process can reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_SESSION_TOKEN="demo",
        AWS_DEFAULT_REGION=HOME, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    # MOTO_ACCOUNT_ID would pin every request to one account and defeat moto's per-credential accounts.
    os.environ.pop("MOTO_ACCOUNT_ID", None)


def create_accounts(names: Sequence[str]) -> list[str]:
    """A new organization (the caller's account manages it) with one member account per name; their ids."""
    organizations = boto3.client("organizations", region_name=HOME)
    organizations.create_organization(FeatureSet="ALL")
    return [organizations.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
            ["AccountId"] for name in names]


def admin_sessions() -> AssumedSessions:
    """How an org admin sets member accounts up: through the role Organizations created in each. Unpaced: building
    an emulated world is not a remediation run, and moto has no quota to protect."""
    return AssumedSessions(role_name=ADMIN_ROLE, pacer=Pacer({}))


def create_remediation_roles(admin: AssumedSessions, account: str) -> None:
    """What the StackSet template creates in each member account."""
    iam = admin.target(account, HOME).client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{SECURITY_ACCOUNT}:root"}}]}
    iam.create_role(RoleName=REMEDIATION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    flow_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                  "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}
    iam.create_role(RoleName="CSPMRemediationFlowLogsDelivery", AssumeRolePolicyDocument=json.dumps(flow_trust))


def ip_permission(port: int, cidr: str) -> dict[str, Any]:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **ranges}


def opens(permission: dict[str, Any], port: int, cidr: str) -> bool:
    if permission.get("IpProtocol") not in ("tcp", "-1"):
        return False
    low, high = permission.get("FromPort", 0), permission.get("ToPort", 65535)
    if permission.get("IpProtocol") != "-1" and not low <= port <= high:
        return False
    cidrs = [r.get("CidrIp") for r in permission.get("IpRanges", [])]
    cidrs += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges", [])]
    return cidr in cidrs


def age_access_key(account: str, user: str, key_id: str, days: int) -> None:
    from moto.iam.models import iam_backends  # the moto server runs in this process

    for key in iam_backends[account]["aws"].users[user].access_keys:
        if key.access_key_id == key_id:
            key.create_date -= timedelta(days=days)


def asff_finding(account: str, region: str, rule_id: str, resource_type: str, resource_id: str,
          title: str) -> dict[str, Any]:
    """A consolidated-controls finding as the Security Hub administrator account receives it."""
    finding_id = f"arn:aws:securityhub:{region}:{SECURITY_ACCOUNT}:security-control/{rule_id}/finding/{uuid.uuid4()}"
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/securityhub",
        "GeneratorId": f"security-control/{rule_id}",
        "AwsAccountId": account,
        "Region": region,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-20T08:00:00.000Z",
        "UpdatedAt": "2026-11-23T02:00:00.000Z",
        "FirstObservedAt": "2026-11-20T08:00:00.000Z",
        "LastObservedAt": "2026-11-23T02:00:00.000Z",
        "Severity": {"Label": "HIGH"},
        "Title": title,
        "Description": title,
        "Resources": [{"Type": resource_type, "Id": resource_id, "Partition": "aws", "Region": region}],
        "Compliance": {
            "Status": "FAILED",
            "SecurityControlId": rule_id,
            "AssociatedStandards": [{"StandardsId": "standards/cis-aws-foundations-benchmark/v/3.0.0"}],
        },
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }


def netskope_violation(account: str, region: str, rule_id: str, resource_id: str, title: str) -> dict[str, Any]:
    """A Netskope "security assessment violation" (v1 API item)."""
    return {
        "account_id": account,
        "account_name": "sandbox",
        "cloud_provider": "aws",
        "region_name": NETSKOPE_REGION_NAMES[region],
        "resource_id": resource_id,
        "resource_name": resource_id,
        "rule_name": NETSKOPE_RULES[rule_id],
        "severity": "High",
        "status": "Failed",
        "muted": "No",
        "profile_name": "CIS AWS Foundations Benchmark",
        "timestamp": 1763863200,
        "description": title,
    }


def open_security_group(ec2: Any, name: str, openings: Iterable[tuple[int, str]], description: str,
                        cidr_block: str = "10.20.0.0/16") -> str:
    """A new VPC with a security group admitting tcp `port` from `cidr` for each opening; the group's id."""
    vpc = ec2.create_vpc(CidrBlock=cidr_block)["Vpc"]["VpcId"]
    group: str = ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group,
                                         IpPermissions=[ip_permission(port, cidr) for port, cidr in openings])
    return group
