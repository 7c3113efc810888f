"""EC2 remediators: admin ports open to the world (EC2.53/54/13/14), VPC flow logs (EC2.6), EBS default encryption
(EC2.7).

Security groups are changed surgically: only the (permission, open CIDR) entries the rule counts as offending are
revoked; other CIDRs of the same permission and other permissions stay, and the exact revoked entries are kept in
pre_state so a rollback can re-authorize them as they were (descriptions included).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook
from functions.sessions import Target

IPV4_ANY = "0.0.0.0/0"
IPV6_ANY = "::/0"
ALL_TRAFFIC = "-1"
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp"}  # the API may echo protocol numbers; compare by name


@dataclass(frozen=True)
class Exposure:
    """What one rule counts as offending: an ingress from one of `cidrs`, over one of `protocols`, whose port range
    covers one of `ports`."""

    ports: tuple[int, ...]
    cidrs: tuple[str, ...]
    protocols: tuple[str, ...]


# EC2.53/54 are evaluated by the AWS Config rule vpc-sg-port-restriction-check (TCP, UDP or all traffic);
# EC2.13 (restricted-ssh) and EC2.14 (restricted-common-ports) look at TCP, which all traffic ("-1") includes.
EXPOSURES: dict[str, Exposure] = {
    "EC2.53": Exposure(ports=(22, 3389), cidrs=(IPV4_ANY,), protocols=("tcp", "udp", ALL_TRAFFIC)),
    "EC2.54": Exposure(ports=(22, 3389), cidrs=(IPV6_ANY,), protocols=("tcp", "udp", ALL_TRAFFIC)),
    "EC2.13": Exposure(ports=(22,), cidrs=(IPV4_ANY, IPV6_ANY), protocols=("tcp", ALL_TRAFFIC)),
    "EC2.14": Exposure(ports=(3389,), cidrs=(IPV4_ANY, IPV6_ANY), protocols=("tcp", ALL_TRAFFIC)),
}


def offending_permissions(permissions: list[dict[str, Any]], exposure: Exposure) -> list[dict[str, Any]]:
    """The subset of a group's IpPermissions the rule objects to, reduced to the offending CIDR entries only.

    Each result is a valid IpPermissions item for revoke/authorize: protocol and ports as described, and only the
    open IpRanges/Ipv6Ranges entries (with their descriptions). Group references and prefix lists never match.
    """
    offending = []
    for permission in permissions:
        protocol = _protocol(permission)
        if protocol not in exposure.protocols or not _covers_any(permission, exposure.ports):
            continue
        ipv4 = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") in exposure.cidrs]
        ipv6 = [r for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") in exposure.cidrs]
        if not (ipv4 or ipv6):
            continue
        item: dict[str, Any] = {"IpProtocol": permission["IpProtocol"]}
        item.update({k: permission[k] for k in ("FromPort", "ToPort") if k in permission})
        if ipv4:
            item["IpRanges"] = ipv4
        if ipv6:
            item["Ipv6Ranges"] = ipv6
        offending.append(item)
    return offending


def describe_revocation(permission: dict[str, Any]) -> list[str]:
    """Human-readable lines for one IpPermissions item, e.g. "revoke tcp 22 from 0.0.0.0/0"."""
    protocol, port_range = _protocol(permission), _port_range(permission)
    if protocol == ALL_TRAFFIC:
        what = "all traffic"
    elif port_range is None:
        what = f"{protocol} all ports"
    else:
        low, high = port_range
        what = f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"
    return [f"revoke {what} from {cidr}" for cidr in _cidrs(permission)]


def _protocol(permission: dict[str, Any]) -> str:
    protocol = str(permission.get("IpProtocol", "")).lower()
    return _PROTOCOL_NAMES.get(protocol, protocol)


def _port_range(permission: dict[str, Any]) -> tuple[int, int] | None:
    """(from, to), or None when the permission is not limited to a port range."""
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if low is None or high is None or low == -1:
        return None
    return int(low), int(high)


def _covers_any(permission: dict[str, Any], ports: tuple[int, ...]) -> bool:
    if _protocol(permission) == ALL_TRAFFIC:
        return True
    port_range = _port_range(permission)
    return port_range is None or any(port_range[0] <= port <= port_range[1] for port in ports)


def _cidrs(permission: dict[str, Any]) -> list[str]:
    return [r["CidrIp"] for r in permission.get("IpRanges", [])] + [
        r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])
    ]


def _without_descriptions(permission: dict[str, Any]) -> dict[str, Any]:
    """Revoke matches on protocol, ports and CIDR; a description is not part of the rule's identity."""
    item = {k: v for k, v in permission.items() if k not in ("IpRanges", "Ipv6Ranges")}
    if permission.get("IpRanges"):
        item["IpRanges"] = [{"CidrIp": r["CidrIp"]} for r in permission["IpRanges"]]
    if permission.get("Ipv6Ranges"):
        item["Ipv6Ranges"] = [{"CidrIpv6": r["CidrIpv6"]} for r in permission["Ipv6Ranges"]]
    return item


def _single_entries(permissions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One IpPermissions item per CIDR entry, so each can be revoked on its own."""
    for permission in permissions:
        base = {k: v for k, v in permission.items() if k not in ("IpRanges", "Ipv6Ranges")}
        for entry in permission.get("IpRanges", []):
            yield {**base, "IpRanges": [{"CidrIp": entry["CidrIp"]}]}
        for entry in permission.get("Ipv6Ranges", []):
            yield {**base, "Ipv6Ranges": [{"CidrIpv6": entry["CidrIpv6"]}]}


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


class SecurityGroupAdminPorts(Remediator):
    """Revoke world-open ingress to SSH/RDP, exactly the entries the rule objects to and nothing else."""

    rules = (
        Rule(
            "EC2.53",
            "EC2 security groups should not allow ingress from 0.0.0.0/0 to remote server administration ports",
            cis=("5.2",),
        ),
        Rule(
            "EC2.54",
            "EC2 security groups should not allow ingress from ::/0 to remote server administration ports",
            cis=("5.3",),
        ),
        Rule("EC2.13", "Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22"),
        Rule("EC2.14", "Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 3389"),
    )
    resource_types = ("AwsEc2SecurityGroup",)
    permissions = ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress")
    reversible = True
    # The runbook revokes 22 and 3389 from 0.0.0.0/0 and ::/0 whatever the rule (EC2.13 also loses 3389), only
    # for rules on exactly those ports, and fails with InvalidPermission.NotFound in a non-default VPC unless all
    # four patterns exist. The boto3 path has none of these limits.
    runbook = Runbook(
        document="AWS-DisablePublicAccessForSecurityGroup",
        parameters=lambda finding, role_arn: {"GroupId": [finding.resource_id], "AutomationAssumeRole": [role_arn]},
        permissions=("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress"),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        exposure = EXPOSURES.get(finding.rule_id)
        if exposure is None:
            raise RemediationError(f"rule {finding.rule_id} is not handled by {type(self).__name__}")
        group = self._describe_group(target, finding.resource_id)
        revoke = offending_permissions(group.get("IpPermissions", []), exposure)
        if not revoke:
            return Assessment(compliant=True, tags=_tags(group))
        return Assessment(
            compliant=False,
            changes=[line for permission in revoke for line in describe_revocation(permission)],
            pre_state={"GroupId": finding.resource_id, "IpPermissions": revoke},
            tags=_tags(group),
            context={"revoke": revoke},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        ec2 = target.client("ec2")
        group_id = finding.resource_id
        revoke = assessment.context["revoke"]
        try:
            ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[_without_descriptions(p) for p in revoke]
            )
            return
        except ClientError as error:
            self._raise_if_group_missing(error, group_id)
            if aws_error_code(error) != "InvalidPermission.NotFound":
                raise
        # Part of it is already gone (another finding on the same group, or a person) and the batch was refused as
        # a whole: revoke what is left one entry at a time. The engine's verification decides the outcome.
        for entry in _single_entries(revoke):
            try:
                ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[entry])
            except ClientError as error:
                self._raise_if_group_missing(error, group_id)
                if aws_error_code(error) != "InvalidPermission.NotFound":
                    raise

    @classmethod
    def _describe_group(cls, target: Target, group_id: str) -> dict[str, Any]:
        try:
            groups = target.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as error:
            cls._raise_if_group_missing(error, group_id)
            raise
        if not groups:
            raise RemediationError(f"security group {group_id} not found")
        return groups[0]

    @staticmethod
    def _raise_if_group_missing(error: ClientError, group_id: str) -> None:
        if aws_error_code(error) in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed"):
            raise RemediationError(f"security group {group_id} not found") from error


# Retention values CloudWatch Logs accepts (PutRetentionPolicy).
RETENTION_DAYS = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
)


class VpcFlowLogs(Remediator):
    """Create one VPC flow log (CloudWatch Logs with retention, or S3) where no active one covers the traffic type.

    CIS 3.7 asks for at least REJECT; a flow log of ALL traffic also satisfies it. An existing flow log is never
    modified and never duplicated.
    """

    rules = (
        # Disruptive: flow logs cost money (ingestion and storage), so they need an explicit per-rule enforce.
        Rule("EC2.6", "VPC flow logging should be enabled in all VPCs", cis=("3.7",), disruptive=True),
    )
    resource_types = ("AwsEc2Vpc",)
    permissions = (
        "ec2:DescribeFlowLogs",
        "ec2:CreateFlowLogs",
        "logs:DescribeLogGroups",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "iam:PassRole",  # the delivery role, for CloudWatch Logs
        "logs:CreateLogDelivery",  # publishing to S3
        "logs:DeleteLogDelivery",
    )
    reversible = True
    default_params = {
        "traffic_type": "REJECT",
        "destination_type": "cloud-watch-logs",
        "log_group_name": "/cspm-remediation/vpc-flow-logs",
        "retention_days": 365,
        "delivery_role_name": "CSPMRemediationFlowLogsDelivery",
        "s3_bucket_arn": None,
    }

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        if p["traffic_type"] not in ("ACCEPT", "REJECT", "ALL"):
            raise ValueError(f"VpcFlowLogs: traffic_type must be ACCEPT, REJECT or ALL, got {p['traffic_type']!r}")
        if p["destination_type"] not in ("cloud-watch-logs", "s3"):
            raise ValueError(
                f"VpcFlowLogs: destination_type must be cloud-watch-logs or s3, got {p['destination_type']!r}"
            )
        if p["destination_type"] == "s3" and not p["s3_bucket_arn"]:
            raise ValueError("VpcFlowLogs: destination_type s3 needs s3_bucket_arn")
        if p["destination_type"] == "cloud-watch-logs" and p["retention_days"] not in RETENTION_DAYS:
            raise ValueError(f"VpcFlowLogs: retention_days must be one of {sorted(RETENTION_DAYS)}")

    def assess(self, target: Target, finding: Finding) -> Assessment:
        vpc_id = finding.resource_id
        response = target.client("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])
        flow_logs = response.get("FlowLogs", [])
        accepted = {self.params["traffic_type"], "ALL"}
        if any(fl.get("FlowLogStatus") == "ACTIVE" and fl.get("TrafficType") in accepted for fl in flow_logs):
            return Assessment(compliant=True)
        return Assessment(
            compliant=False,
            changes=[f"create {self.params['traffic_type']} flow log for {vpc_id} to {self._destination_text()}"],
            pre_state={"FlowLogIds": [fl["FlowLogId"] for fl in flow_logs]},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        vpc_id = finding.resource_id
        created: dict[str, Any] = {}
        if self.params["destination_type"] == "s3":
            destination = {"LogDestinationType": "s3", "LogDestination": self.params["s3_bucket_arn"]}
        else:
            if self._ensure_log_group(target):
                created["LogGroupName"] = self.params["log_group_name"]
            destination = {
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": self.params["log_group_name"],
                "DeliverLogsPermissionArn": (
                    f"arn:{target.partition}:iam::{target.account_id}:role/{self.params['delivery_role_name']}"
                ),
            }
        assessment.context["created"] = created  # recorded even when the flow log below fails
        try:
            response = target.client("ec2").create_flow_logs(
                ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=self.params["traffic_type"], **destination
            )
        except ClientError as error:
            code = aws_error_code(error)
            if code == "InvalidVpcID.NotFound":
                raise RemediationError(f"vpc {vpc_id} not found") from error
            if code == "FlowLogAlreadyExists":
                raise RemediationError(
                    f"{vpc_id} already has a flow log to this destination that is not active or does not cover "
                    f"{self.params['traffic_type']} traffic; not creating a second one"
                ) from error
            raise
        created["FlowLogIds"] = response.get("FlowLogIds", [])
        if response.get("Unsuccessful"):
            failure = response["Unsuccessful"][0].get("Error", {})
            raise RemediationError(
                f"cannot create flow log for {vpc_id}: {failure.get('Code')}: {failure.get('Message')}"
            )

    def _ensure_log_group(self, target: Target) -> bool:
        """Create the log group with its retention if it does not exist. True when this call created it.

        An existing group is left as it is: shortening someone's retention would delete their logs.
        """
        logs = target.client("logs")
        name = self.params["log_group_name"]
        groups = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if any(group["logGroupName"] == name for group in groups):
            return False
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as error:
            if aws_error_code(error) == "ResourceAlreadyExistsException":  # a parallel worker made it first
                return False
            raise
        logs.put_retention_policy(logGroupName=name, retentionInDays=self.params["retention_days"])
        return True

    def _destination_text(self) -> str:
        if self.params["destination_type"] == "s3":
            return f"S3 {self.params['s3_bucket_arn']}"
        return (
            f"CloudWatch Logs group {self.params['log_group_name']} (created if missing, retention "
            f"{self.params['retention_days']} days)"
        )


class EbsDefaultEncryption(Remediator):
    """Turn on EBS encryption by default for the account in the finding's region.

    Only new volumes are affected; existing volumes keep their encryption state.
    """

    rules = (Rule("EC2.7", "EBS default encryption should be enabled", cis=("2.2.1",)),)
    resource_types = ("AwsAccount",)
    permissions = ("ec2:GetEbsEncryptionByDefault", "ec2:EnableEbsEncryptionByDefault")
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableEbsEncryptionByDefault",
        parameters=lambda finding, role_arn: {"AutomationAssumeRole": [role_arn]},
        permissions=("ec2:GetEbsEncryptionByDefault", "ec2:EnableEbsEncryptionByDefault"),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        enabled = bool(target.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
        if enabled:
            return Assessment(compliant=True)
        return Assessment(
            compliant=False,
            changes=[f"enable EBS encryption by default in {target.api_region}"],
            pre_state={"EbsEncryptionByDefault": False},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("ec2").enable_ebs_encryption_by_default()
