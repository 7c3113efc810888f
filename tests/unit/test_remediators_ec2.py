"""EC2 remediators against moto, at the level of the remediator contract.

Every cycle checks both sides: the remediator's own assess() and an independent read of moto's state.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.remediators.base import Assessment, RemediationError, Remediator
from functions.remediators.ec2 import (
    EXPOSURES,
    EbsDefaultEncryption,
    SecurityGroupAdminPorts,
    VpcFlowLogs,
)
from functions.sessions import Target
from tests.factories import ACCOUNT, make_finding

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/CSPMAutomation"
LOG_GROUP = "/cspm-remediation/vpc-flow-logs"


@pytest.fixture
def ec2(target: Target) -> Any:
    return target.client("ec2")


@pytest.fixture
def logs(target: Target) -> Any:
    return target.client("logs")


def run_cycle(remediator: Remediator, target: Target, finding: Any) -> Assessment:
    """assess → apply → assess, and a later run's assess: the contract every remediation follows."""
    before = remediator.assess(target, finding)
    assert before.compliant is False
    assert before.changes
    remediator.apply(target, finding, before)
    after = remediator.assess(target, finding)
    assert after.compliant is True
    assert after.changes == []
    assert type(remediator)(remediator.params).assess(target, finding).compliant is True  # next run: noop
    return before


# -- security groups ---------------------------------------------------------------------------------------------


def perm(protocol: str, from_port: int | None, to_port: int | None, *cidrs: str) -> dict[str, Any]:
    item: dict[str, Any] = {"IpProtocol": protocol}
    if from_port is not None:
        item.update(FromPort=from_port, ToPort=to_port)
    ipv4 = [{"CidrIp": c} for c in cidrs if ":" not in c]
    ipv6 = [{"CidrIpv6": c} for c in cidrs if ":" in c]
    if ipv4:
        item["IpRanges"] = ipv4
    if ipv6:
        item["Ipv6Ranges"] = ipv6
    return item


def make_group(ec2: Any, permissions: list[dict[str, Any]], tags: dict[str, str] | None = None) -> str:
    """A group in a non-default VPC (where revoke of an unknown rule is an error, as in most real accounts)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    extra: dict[str, Any] = {}
    if tags:
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        extra["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": tag_list}]
    group_id = ec2.create_security_group(GroupName="admin", Description="test", VpcId=vpc_id, **extra)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


def ingress(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]


def entries(ec2: Any, group_id: str) -> set[tuple[str, Any, Any, str]]:
    """The group's ingress as flat (protocol, from, to, cidr) tuples: an independent read of moto's state."""
    flat = set()
    for p in ingress(ec2, group_id):
        ports = (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
        flat |= {(*ports, r["CidrIp"]) for r in p.get("IpRanges", [])}
        flat |= {(*ports, r["CidrIpv6"]) for r in p.get("Ipv6Ranges", [])}
    return flat


def sg_finding(rule_id: str, group_id: str) -> Any:
    return make_finding(rule_id, "AwsEc2SecurityGroup", group_id)


def test_ec2_53_revokes_only_the_open_ssh_entry(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0", "10.0.0.0/8"), perm("tcp", 443, 443, "0.0.0.0/0")])
    assert ("tcp", 22, 22, "0.0.0.0/0") in entries(ec2, group_id)

    before = run_cycle(SecurityGroupAdminPorts(), target, sg_finding("EC2.53", group_id))

    assert before.changes == ["revoke tcp 22 from 0.0.0.0/0"]
    assert before.pre_state == {
        "GroupId": group_id,
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    }
    assert entries(ec2, group_id) == {("tcp", 22, 22, "10.0.0.0/8"), ("tcp", 443, 443, "0.0.0.0/0")}


@pytest.mark.parametrize(
    ("rule_id", "permission", "change"),
    [
        ("EC2.53", perm("tcp", 0, 65535, "0.0.0.0/0"), "revoke tcp 0-65535 from 0.0.0.0/0"),
        ("EC2.53", perm("-1", None, None, "0.0.0.0/0"), "revoke all traffic from 0.0.0.0/0"),
        ("EC2.53", perm("udp", 3380, 3390, "0.0.0.0/0"), "revoke udp 3380-3390 from 0.0.0.0/0"),
        ("EC2.54", perm("tcp", 3389, 3389, "::/0"), "revoke tcp 3389 from ::/0"),
        ("EC2.54", perm("-1", None, None, "::/0"), "revoke all traffic from ::/0"),
        ("EC2.13", perm("tcp", 22, 22, "::/0"), "revoke tcp 22 from ::/0"),
        ("EC2.14", perm("tcp", 1024, 4000, "0.0.0.0/0"), "revoke tcp 1024-4000 from 0.0.0.0/0"),
    ],
)
def test_offending_shapes_are_revoked(
    target: Target, ec2: Any, rule_id: str, permission: dict[str, Any], change: str
) -> None:
    group_id = make_group(ec2, [permission])
    assert len(entries(ec2, group_id)) == 1

    before = run_cycle(SecurityGroupAdminPorts(), target, sg_finding(rule_id, group_id))

    assert before.changes == [change]
    assert entries(ec2, group_id) == set()


@pytest.mark.parametrize(
    ("rule_id", "permission"),
    [
        ("EC2.53", perm("tcp", 3389, 3389, "::/0")),  # IPv6 is EC2.54's business
        ("EC2.54", perm("tcp", 22, 22, "0.0.0.0/0")),  # and IPv4 is EC2.53's
        ("EC2.53", perm("tcp", 80, 443, "0.0.0.0/0")),
        ("EC2.53", perm("tcp", 22, 22, "10.0.0.0/8")),
        ("EC2.53", perm("icmp", -1, -1, "0.0.0.0/0")),
        ("EC2.13", perm("tcp", 3389, 3389, "0.0.0.0/0")),
        ("EC2.13", perm("udp", 22, 22, "0.0.0.0/0")),  # restricted-ssh is about TCP
        ("EC2.14", perm("tcp", 22, 22, "::/0")),
    ],
)
def test_shapes_the_rule_does_not_object_to_are_compliant(
    target: Target, ec2: Any, rule_id: str, permission: dict[str, Any]
) -> None:
    group_id = make_group(ec2, [permission])
    assessment = SecurityGroupAdminPorts().assess(target, sg_finding(rule_id, group_id))
    assert assessment.compliant is True
    assert assessment.changes == []


def test_ec2_13_leaves_rdp_alone(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0", "::/0"), perm("tcp", 3389, 3389, "0.0.0.0/0", "::/0")])

    before = run_cycle(SecurityGroupAdminPorts(), target, sg_finding("EC2.13", group_id))

    assert before.changes == ["revoke tcp 22 from 0.0.0.0/0", "revoke tcp 22 from ::/0"]
    assert entries(ec2, group_id) == {("tcp", 3389, 3389, "0.0.0.0/0"), ("tcp", 3389, 3389, "::/0")}


def test_pre_state_re_authorizes_exactly_what_was_revoked(target: Target, ec2: Any) -> None:
    original = [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "bastion"}, {"CidrIp": "10.0.0.0/8"}],
        },
        perm("tcp", 3389, 3389, "0.0.0.0/0", "::/0"),
    ]
    group_id = make_group(ec2, original)
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.53", group_id)
    before_ingress = ingress(ec2, group_id)

    assessment = run_cycle(remediator, target, finding)
    assert entries(ec2, group_id) == {("tcp", 22, 22, "10.0.0.0/8"), ("tcp", 3389, 3389, "::/0")}

    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=assessment.pre_state["IpPermissions"])
    assert _normalized(ingress(ec2, group_id)) == _normalized(before_ingress)  # descriptions included
    assert remediator.assess(target, finding).compliant is False


def _normalized(permissions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = []
    for p in permissions:
        for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", []):
            cidr = r.get("CidrIp") or r.get("CidrIpv6")
            rows.append((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), cidr, r.get("Description")))
    return sorted(rows, key=repr)


def test_apply_copes_with_entries_removed_since_assessment(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0", "::/0")])
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.13", group_id)
    assessment = remediator.assess(target, finding)
    # Someone (or the EC2.54 finding on the same group) removes the IPv6 entry in between.
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[perm("tcp", 22, 22, "::/0")])

    remediator.apply(target, finding, assessment)

    assert entries(ec2, group_id) == set()
    assert remediator.assess(target, finding).compliant is True


def test_missing_group_is_a_remediation_error(target: Target) -> None:
    finding = sg_finding("EC2.53", "sg-0123456789abcdef0")
    with pytest.raises(RemediationError, match="security group sg-0123456789abcdef0 not found"):
        SecurityGroupAdminPorts().assess(target, finding)


def test_rule_outside_the_table_is_refused(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0")])
    with pytest.raises(RemediationError, match=r"rule EC2\.2 is not handled"):
        SecurityGroupAdminPorts().assess(target, sg_finding("EC2.2", group_id))


def test_group_tags_are_reported(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0")], tags={"cspm-remediation:exclude": "true"})
    assessment = SecurityGroupAdminPorts().assess(target, sg_finding("EC2.53", group_id))
    assert assessment.tags == {"cspm-remediation:exclude": "true"}


def test_sg_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0"), perm("-1", None, None, "::/0")])
    before = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]

    for rule_id in EXPOSURES:
        assert SecurityGroupAdminPorts().assess(target, sg_finding(rule_id, group_id)).compliant is False

    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"] == before


def test_sg_runbook_parameters() -> None:
    runbook = SecurityGroupAdminPorts.runbook
    assert runbook is not None
    assert runbook.document == "AWS-DisablePublicAccessForSecurityGroup"
    finding = sg_finding("EC2.53", "sg-0abc")
    assert runbook.parameters(finding, ROLE_ARN) == {"GroupId": ["sg-0abc"], "AutomationAssumeRole": [ROLE_ARN]}


# -- VPC flow logs -----------------------------------------------------------------------------------------------


@pytest.fixture
def vpc_id(ec2: Any) -> str:
    return ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]


def vpc_finding(vpc_id: str) -> Any:
    return make_finding("EC2.6", "AwsEc2Vpc", vpc_id)


def flow_logs_of(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    return ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]


def log_groups(logs: Any) -> dict[str, dict[str, Any]]:
    return {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}


def add_flow_log(ec2: Any, logs: Any, vpc_id: str, traffic_type: str) -> None:
    logs.create_log_group(logGroupName="/existing")
    ec2.create_flow_logs(
        ResourceIds=[vpc_id],
        ResourceType="VPC",
        TrafficType=traffic_type,
        LogGroupName="/existing",
        DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/existing",
    )


def test_flow_log_to_cloudwatch_logs_with_retention(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    assert flow_logs_of(ec2, vpc_id) == []
    assert LOG_GROUP not in log_groups(logs)

    before = run_cycle(VpcFlowLogs(), target, vpc_finding(vpc_id))

    [flow_log] = flow_logs_of(ec2, vpc_id)
    assert flow_log["FlowLogStatus"] == "ACTIVE"
    assert flow_log["TrafficType"] == "REJECT"
    assert flow_log["LogGroupName"] == LOG_GROUP
    assert flow_log["DeliverLogsPermissionArn"] == f"arn:aws:iam::{ACCOUNT}:role/CSPMRemediationFlowLogsDelivery"
    assert log_groups(logs)[LOG_GROUP]["retentionInDays"] == 365
    assert before.pre_state == {"FlowLogIds": []}
    assert before.context["created"] == {"LogGroupName": LOG_GROUP, "FlowLogIds": [flow_log["FlowLogId"]]}


def test_existing_log_group_is_reused_untouched(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=30)

    before = run_cycle(VpcFlowLogs(), target, vpc_finding(vpc_id))

    assert log_groups(logs)[LOG_GROUP]["retentionInDays"] == 30
    assert "LogGroupName" not in before.context["created"]
    assert len(flow_logs_of(ec2, vpc_id)) == 1


@pytest.mark.parametrize(
    ("required", "existing", "compliant"),
    [("REJECT", "REJECT", True), ("REJECT", "ALL", True), ("REJECT", "ACCEPT", False), ("ALL", "REJECT", False)],
)
def test_traffic_type_coverage(
    target: Target, ec2: Any, logs: Any, vpc_id: str, required: str, existing: str, compliant: bool
) -> None:
    add_flow_log(ec2, logs, vpc_id, existing)
    existing_id = flow_logs_of(ec2, vpc_id)[0]["FlowLogId"]

    assessment = VpcFlowLogs({"traffic_type": required}).assess(target, vpc_finding(vpc_id))

    assert assessment.compliant is compliant
    if not compliant:
        assert assessment.pre_state == {"FlowLogIds": [existing_id]}


def test_flow_log_to_s3(target: Target, ec2: Any, vpc_id: str) -> None:
    target.client("s3").create_bucket(Bucket="flow-logs-bucket")
    remediator = VpcFlowLogs({"destination_type": "s3", "s3_bucket_arn": "arn:aws:s3:::flow-logs-bucket"})

    before = run_cycle(remediator, target, vpc_finding(vpc_id))

    [flow_log] = flow_logs_of(ec2, vpc_id)
    assert flow_log["LogDestinationType"] == "s3"
    assert flow_log["LogDestination"] == "arn:aws:s3:::flow-logs-bucket"
    assert before.changes == [f"create REJECT flow log for {vpc_id} to S3 arn:aws:s3:::flow-logs-bucket"]


def test_unsuccessful_flow_log_is_a_remediation_error(target: Target, ec2: Any, vpc_id: str) -> None:
    remediator = VpcFlowLogs({"destination_type": "s3", "s3_bucket_arn": "arn:aws:s3:::no-such-bucket"})
    finding = vpc_finding(vpc_id)
    assessment = remediator.assess(target, finding)
    with pytest.raises(RemediationError, match="cannot create flow log"):
        remediator.apply(target, finding, assessment)
    assert flow_logs_of(ec2, vpc_id) == []


def test_missing_vpc_is_a_remediation_error(target: Target) -> None:
    remediator, finding = VpcFlowLogs(), vpc_finding("vpc-0123456789abcdef0")
    assessment = remediator.assess(target, finding)
    with pytest.raises(RemediationError, match="vpc vpc-0123456789abcdef0 not found"):
        remediator.apply(target, finding, assessment)


def test_flow_logs_assess_alone_changes_nothing(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    before = (ec2.describe_flow_logs()["FlowLogs"], log_groups(logs))
    assert VpcFlowLogs().assess(target, vpc_finding(vpc_id)).compliant is False
    assert (ec2.describe_flow_logs()["FlowLogs"], log_groups(logs)) == before


@pytest.mark.parametrize(
    "params",
    [
        {"traffic_type": "SOME"},
        {"destination_type": "kinesis-data-firehose"},
        {"destination_type": "s3"},
        {"retention_days": 42},
        {"log_bucket": "x"},
    ],
)
def test_flow_log_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="VpcFlowLogs"):
        VpcFlowLogs(params)


# -- EBS default encryption --------------------------------------------------------------------------------------


def account_finding() -> Any:
    return make_finding("EC2.7", "AwsAccount", ACCOUNT)


def test_ebs_default_encryption(target: Target, ec2: Any) -> None:
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False

    before = run_cycle(EbsDefaultEncryption(), target, account_finding())

    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert before.pre_state == {"EbsEncryptionByDefault": False}
    assert before.changes == ["enable EBS encryption by default in us-east-1"]


def test_ebs_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    assert EbsDefaultEncryption().assess(target, account_finding()).compliant is False
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False


def test_ebs_runbook_parameters() -> None:
    runbook = EbsDefaultEncryption.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-EnableEbsEncryptionByDefault"
    assert runbook.parameters(account_finding(), ROLE_ARN) == {"AutomationAssumeRole": [ROLE_ARN]}


# -- declarations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SecurityGroupAdminPorts, VpcFlowLogs, EbsDefaultEncryption])
def test_declarations(cls: type[Remediator]) -> None:
    assert cls.rules and cls.resource_types and isinstance(cls.reversible, bool)
    for action in cls.permissions + (cls.runbook.permissions if cls.runbook else ()):
        assert re.fullmatch(r"[a-z0-9]+:[A-Za-z]+", action), action
    cls()  # the defaults are valid parameters


def test_declared_rules() -> None:
    assert {r.rule_id for r in SecurityGroupAdminPorts.rules} == set(EXPOSURES)
    all_rules = SecurityGroupAdminPorts.rules + VpcFlowLogs.rules + EbsDefaultEncryption.rules
    assert {r.rule_id: r.cis for r in all_rules} == {
        "EC2.53": ("5.2",),
        "EC2.54": ("5.3",),
        "EC2.13": (),
        "EC2.14": (),
        "EC2.6": ("3.7",),
        "EC2.7": ("2.2.1",),
    }
    assert VpcFlowLogs.runbook is None
    assert SecurityGroupAdminPorts.executors() == ("boto3", "ssm")
    assert VpcFlowLogs.executors() == ("boto3",)
