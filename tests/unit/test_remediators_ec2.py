"""EC2 remediators against moto, at the level of the remediator contract.

Every cycle checks both sides: the remediator's own assess() and an independent read of moto's state. Every
reversible remediator is also rolled back from the pre_state the engine records, twice.
Network ACLs and the default security group are in test_remediators_ec2_network.py, which shares the helpers here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator
from functions.remediators.ec2 import (
    EXPOSURES,
    HIGH_RISK_PORTS,
    DefaultSecurityGroupClosed,
    EbsDefaultEncryption,
    EbsSnapshotNotPublic,
    InstanceMetadataV2,
    NetworkAclOpenIngress,
    SecurityGroupAdminPorts,
    SecurityGroupHighRiskPorts,
    VpcFlowLogs,
    remaining_ranges,
)
from tests.factories import ACCOUNT, REGION, make_finding

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


def recorded_pre_state(assessment: Assessment) -> dict[str, Any]:
    """pre_state as the engine records it for a remediated finding: what assess recorded, plus what apply created."""
    created = assessment.context.get("created")
    return {**assessment.pre_state, **({"created": created} if created else {})}


def assert_restores(
    remediator: Remediator, target: Target, finding: Any, read: Callable[[], Any]
) -> tuple[list[str], list[str]]:
    """remediate → restore → `read()` equals the original state and the finding is open again; a second restore
    leaves it so. Returns the lines of both restores."""
    original = read()
    assessment = run_cycle(remediator, target, finding)
    assert read() != original
    first = remediator.restore(target, finding, recorded_pre_state(assessment))
    assert read() == original
    assert remediator.assess(target, finding).compliant is False
    second = remediator.restore(target, finding, recorded_pre_state(assessment))
    assert read() == original
    assert first and second
    return first, second


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
    ("rule_id", "permission", "change", "left"),
    [
        (
            "EC2.53", perm("tcp", 0, 65535, "0.0.0.0/0"),
            "narrow tcp 0-65535 from 0.0.0.0/0 to tcp 0-21, 23-3388, 3390-65535",
            {("tcp", 0, 21, "0.0.0.0/0"), ("tcp", 23, 3388, "0.0.0.0/0"), ("tcp", 3390, 65535, "0.0.0.0/0")},
        ),
        (
            "EC2.53", perm("udp", 3380, 3390, "0.0.0.0/0"),
            "narrow udp 3380-3390 from 0.0.0.0/0 to udp 3380-3388, 3390-3390",
            {("udp", 3380, 3388, "0.0.0.0/0"), ("udp", 3390, 3390, "0.0.0.0/0")},
        ),
        ("EC2.54", perm("tcp", 3389, 3389, "::/0"), "revoke tcp 3389 from ::/0", set()),
        ("EC2.13", perm("tcp", 22, 22, "::/0"), "revoke tcp 22 from ::/0", set()),
        (
            "EC2.14", perm("tcp", 1024, 4000, "0.0.0.0/0"),
            "narrow tcp 1024-4000 from 0.0.0.0/0 to tcp 1024-3388, 3390-4000",
            {("tcp", 1024, 3388, "0.0.0.0/0"), ("tcp", 3390, 4000, "0.0.0.0/0")},
        ),
    ],
)  # fmt: skip
def test_offending_shapes_are_revoked_or_narrowed(
    target: Target, ec2: Any, rule_id: str, permission: dict[str, Any], change: str, left: set[Any]
) -> None:
    group_id = make_group(ec2, [permission])
    assert len(entries(ec2, group_id)) == 1

    before = run_cycle(SecurityGroupAdminPorts(), target, sg_finding(rule_id, group_id))

    assert before.changes == [change]
    assert before.disruptive == ""
    assert entries(ec2, group_id) == left


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


def normalized_rules(permissions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A group's rules as sorted (protocol, from, to, source, description) rows: order-free, descriptions kept."""
    rows = []
    for p in permissions:
        for key, field in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("UserIdGroupPairs", "GroupId")):
            for r in p.get(key, []):
                rows.append((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r[field], r.get("Description")))
    return sorted(rows, key=repr)


def test_restore_re_authorizes_exactly_what_was_revoked(target: Target, ec2: Any) -> None:
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

    first, second = assert_restores(
        SecurityGroupAdminPorts(),
        target,
        sg_finding("EC2.53", group_id),
        lambda: normalized_rules(ingress(ec2, group_id)),  # descriptions included
    )

    assert first == [
        "re-authorized ingress tcp 22 from 0.0.0.0/0",
        "re-authorized ingress tcp 3389 from 0.0.0.0/0",
    ]
    assert second == [f"{group_id}: every revoked entry is present; nothing to restore"]


def test_restore_adds_only_what_is_missing(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0", "::/0")])
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.13", group_id)
    assessment = run_cycle(remediator, target, finding)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[perm("tcp", 22, 22, "::/0")])

    lines = remediator.restore(target, finding, recorded_pre_state(assessment))

    assert lines == ["re-authorized ingress tcp 22 from 0.0.0.0/0"]
    assert entries(ec2, group_id) == {("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 22, 22, "::/0")}


def test_restore_of_a_deleted_group_is_a_remediation_error(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0")])
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.53", group_id)
    assessment = run_cycle(remediator, target, finding)
    ec2.delete_security_group(GroupId=group_id)

    with pytest.raises(RemediationError, match=f"security group {group_id} not found"):
        remediator.restore(target, finding, recorded_pre_state(assessment))


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

    for cls in (SecurityGroupAdminPorts, SecurityGroupHighRiskPorts):
        for rule in cls.rules:
            assert cls().assess(target, sg_finding(rule.rule_id, group_id)).compliant is False

    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"] == before


# -- EC2.19: high-risk ports -------------------------------------------------------------------------------------


def test_high_risk_ports_are_the_security_hub_list() -> None:
    assert HIGH_RISK_PORTS == (
        20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080,
        8088, 8888, 9200, 9300,
    )  # fmt: skip


def test_ec2_19_revokes_open_high_risk_ports_and_leaves_the_rest(target: Target, ec2: Any) -> None:
    group_id = make_group(
        ec2,
        [
            perm("tcp", 3306, 3306, "0.0.0.0/0", "10.0.0.0/8"),
            perm("tcp", 5400, 5600, "::/0"),  # covers 5432 and 5500
            perm("tcp", 443, 443, "0.0.0.0/0"),
            perm("tcp", 6000, 7000, "0.0.0.0/0"),  # no listed port in range
            perm("udp", 1434, 1434, "0.0.0.0/0"),  # SQL Server browser: the control names no protocol
            perm("udp", 53, 53, "0.0.0.0/0"),  # not on the list: stays
        ],
    )

    before = run_cycle(SecurityGroupHighRiskPorts(), target, sg_finding("EC2.19", group_id))

    assert before.changes == [
        "revoke tcp 3306 from 0.0.0.0/0",
        "narrow tcp 5400-5600 from ::/0 to tcp 5400-5431, 5433-5499, 5501-5600",
        "revoke udp 1434 from 0.0.0.0/0",
    ]
    assert entries(ec2, group_id) == {
        ("tcp", 5400, 5431, "::/0"),
        ("tcp", 5433, 5499, "::/0"),
        ("tcp", 5501, 5600, "::/0"),
        ("tcp", 3306, 3306, "10.0.0.0/8"),
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 6000, 7000, "0.0.0.0/0"),
        ("udp", 53, 53, "0.0.0.0/0"),
    }


def test_ec2_19_restore(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("-1", None, None, "0.0.0.0/0"), perm("tcp", 8080, 8080, "::/0")])

    first, _ = assert_restores(
        SecurityGroupHighRiskPorts(),
        target,
        sg_finding("EC2.19", group_id),
        lambda: normalized_rules(ingress(ec2, group_id)),
    )

    pieces = 2 * len(remaining_ranges(0, 65535, HIGH_RISK_PORTS)) + 1
    assert first == [
        "re-authorized ingress all traffic from 0.0.0.0/0",
        "re-authorized ingress tcp 8080 from ::/0",
        f"revoked the {pieces} narrower ingress rule(s) added in their place",
    ]  # the tcp and udp pieces and icmp that kept the rest of all traffic open


def test_each_security_group_class_handles_only_its_rules(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 22, 22, "0.0.0.0/0")])
    with pytest.raises(RemediationError, match=r"rule EC2\.19 is not handled by SecurityGroupAdminPorts"):
        SecurityGroupAdminPorts().assess(target, sg_finding("EC2.19", group_id))
    with pytest.raises(RemediationError, match=r"rule EC2\.53 is not handled by SecurityGroupHighRiskPorts"):
        SecurityGroupHighRiskPorts().assess(target, sg_finding("EC2.53", group_id))


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


@pytest.mark.parametrize("created", ["REJECT", "ALL"])
@pytest.mark.parametrize(("existing", "compliant"), [("REJECT", True), ("ALL", True), ("ACCEPT", False)])
def test_traffic_type_coverage(
    target: Target, ec2: Any, logs: Any, vpc_id: str, created: str, existing: str, compliant: bool
) -> None:
    """EC2.6 checks for a flow log of rejected traffic (REJECT, or ALL which includes it), whatever the
    traffic_type param says a created one logs: ALL never adds a second flow log beside a compliant REJECT one."""
    add_flow_log(ec2, logs, vpc_id, existing)
    existing_id = flow_logs_of(ec2, vpc_id)[0]["FlowLogId"]

    assessment = VpcFlowLogs({"traffic_type": created}).assess(target, vpc_finding(vpc_id))

    assert assessment.compliant is compliant
    if not compliant:
        assert assessment.pre_state == {"FlowLogIds": [existing_id]}
        assert assessment.changes[0].startswith(f"create {created} flow log for {vpc_id}")


def test_an_accept_flow_log_cannot_be_asked_for() -> None:
    """ACCEPT would report remediated while the control (trafficType REJECT) still fails."""
    with pytest.raises(ValueError, match="traffic_type must be one of REJECT, ALL"):
        VpcFlowLogs({"traffic_type": "ACCEPT"})


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
    """A finding without tags reads the VPC's (DescribeVpcs), which already says it is gone: nothing is written."""
    remediator, finding = VpcFlowLogs(), vpc_finding("vpc-0123456789abcdef0")
    with pytest.raises(RemediationError, match="vpc vpc-0123456789abcdef0 not found"):
        remediator.assess(target, finding)


def test_flow_logs_assess_alone_changes_nothing(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    before = (ec2.describe_flow_logs()["FlowLogs"], log_groups(logs))
    assert VpcFlowLogs().assess(target, vpc_finding(vpc_id)).compliant is False
    assert (ec2.describe_flow_logs()["FlowLogs"], log_groups(logs)) == before


def flow_log_state(ec2: Any, logs: Any, vpc_id: str) -> tuple[list[str], list[str]]:
    return [fl["FlowLogId"] for fl in flow_logs_of(ec2, vpc_id)], sorted(log_groups(logs))


def test_flow_log_restore_deletes_what_it_created(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    first, second = assert_restores(
        VpcFlowLogs(), target, vpc_finding(vpc_id), lambda: flow_log_state(ec2, logs, vpc_id)
    )

    assert first[0].startswith("deleted flow log fl-")
    assert first[1:] == [f"deleted log group {LOG_GROUP}"]
    assert second[0].endswith("already gone")
    assert second[1:] == [f"log group {LOG_GROUP} already gone"]


def test_flow_log_restore_keeps_a_log_group_it_did_not_create(target: Target, ec2: Any, logs: Any, vpc_id: str) -> None:
    logs.create_log_group(logGroupName=LOG_GROUP)

    first, _ = assert_restores(VpcFlowLogs(), target, vpc_finding(vpc_id), lambda: flow_log_state(ec2, logs, vpc_id))

    assert len(first) == 1 and first[0].startswith("deleted flow log")
    assert LOG_GROUP in log_groups(logs)


def test_flow_log_restore_keeps_a_log_group_another_flow_log_uses(
    target: Target, ec2: Any, logs: Any, vpc_id: str
) -> None:
    other_vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    remediator = VpcFlowLogs()
    first = run_cycle(remediator, target, vpc_finding(vpc_id))  # creates the log group
    run_cycle(remediator, target, vpc_finding(other_vpc))  # reuses it
    [other_flow_log] = flow_logs_of(ec2, other_vpc)

    lines = remediator.restore(target, vpc_finding(vpc_id), recorded_pre_state(first))

    assert lines[1:] == [f"kept log group {LOG_GROUP}: still used by {other_flow_log['FlowLogId']}"]
    assert flow_logs_of(ec2, vpc_id) == []
    assert LOG_GROUP in log_groups(logs)


def test_flow_log_restore_without_a_record_of_creation_does_nothing(target: Target, vpc_id: str) -> None:
    lines = VpcFlowLogs().restore(target, vpc_finding(vpc_id), {"FlowLogIds": []})
    assert lines == [f"nothing was created for {vpc_id}; nothing to restore"]


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


def test_ebs_default_encryption_restore(target: Target, ec2: Any) -> None:
    first, second = assert_restores(
        EbsDefaultEncryption(),
        target,
        account_finding(),
        lambda: ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"],
    )
    assert first == second == ["disabled EBS encryption by default in us-east-1"]


def test_ebs_default_encryption_restore_never_disables_what_was_on(target: Target, ec2: Any) -> None:
    ec2.enable_ebs_encryption_by_default()
    lines = EbsDefaultEncryption().restore(target, account_finding(), {})
    assert lines == ["EBS encryption by default was not off before in us-east-1; nothing to restore"]
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True


# -- IMDSv2 ------------------------------------------------------------------------------------------------------


def make_instance(ec2: Any, **metadata_options: Any) -> str:
    instance_id = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"}]}],
    )["Instances"][0]["InstanceId"]
    if metadata_options:
        ec2.modify_instance_metadata_options(InstanceId=instance_id, **metadata_options)
    return instance_id


def metadata_options(ec2: Any, instance_id: str) -> dict[str, Any]:
    """The options the remediator reads or writes. (moto drops the options a modify call omits; AWS keeps them.)"""
    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    return {key: options.get(key) for key in ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit")}


def instance_finding(instance_id: str) -> Any:
    return make_finding("EC2.8", "AwsEc2Instance", instance_id)


def test_imdsv2_is_required(target: Target, ec2: Any) -> None:
    instance_id = make_instance(ec2)
    assert metadata_options(ec2, instance_id)["HttpTokens"] == "optional"

    before = run_cycle(InstanceMetadataV2(), target, instance_finding(instance_id))

    assert metadata_options(ec2, instance_id)["HttpTokens"] == "required"
    assert metadata_options(ec2, instance_id)["HttpEndpoint"] == "enabled"
    assert before.changes == [f"require IMDSv2 on {instance_id} (HttpTokens optional → required)"]
    assert before.pre_state == {"InstanceId": instance_id, "HttpTokens": "optional"}
    assert before.tags == {"team": "web"}


def test_imdsv2_leaves_a_disabled_endpoint_disabled(target: Target, ec2: Any) -> None:
    instance_id = make_instance(ec2, HttpTokens="optional", HttpEndpoint="disabled")

    run_cycle(InstanceMetadataV2(), target, instance_finding(instance_id))

    assert metadata_options(ec2, instance_id)["HttpEndpoint"] == "disabled"


def test_imdsv2_restore(target: Target, ec2: Any) -> None:
    instance_id = make_instance(ec2)

    first, second = assert_restores(
        InstanceMetadataV2(), target, instance_finding(instance_id), lambda: metadata_options(ec2, instance_id)
    )

    assert first == [f"set HttpTokens back to optional on {instance_id}"]
    assert second == [f"{instance_id}: HttpTokens is optional; nothing to restore"]


def test_imdsv2_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    instance_id = make_instance(ec2)
    before = metadata_options(ec2, instance_id)
    assert InstanceMetadataV2().assess(target, instance_finding(instance_id)).compliant is False
    assert metadata_options(ec2, instance_id) == before


def test_imdsv2_missing_or_terminated_instance_is_refused(target: Target, ec2: Any) -> None:
    with pytest.raises(RemediationError, match="instance i-0123456789abcdef0 not found"):
        InstanceMetadataV2().assess(target, instance_finding("i-0123456789abcdef0"))
    instance_id = make_instance(ec2)
    ec2.terminate_instances(InstanceIds=[instance_id])
    with pytest.raises(RemediationError, match=f"instance {instance_id} is terminated"):
        InstanceMetadataV2().assess(target, instance_finding(instance_id))


# -- public EBS snapshots ----------------------------------------------------------------------------------------


def make_snapshot(ec2: Any, *, public: bool, shared_with: str | None = None) -> str:
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    tags = [{"ResourceType": "snapshot", "Tags": [{"Key": "team", "Value": "data"}]}]
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id, TagSpecifications=tags)["SnapshotId"]
    if public:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
        )
    if shared_with:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[shared_with]
        )
    return snapshot_id


def volume_permissions(ec2: Any, snapshot_id: str) -> list[dict[str, str]]:
    attribute = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    return sorted(attribute["CreateVolumePermissions"], key=repr)


def snapshot_finding(snapshot_id: str) -> Any:
    return make_finding("EC2.1", "AwsEc2Snapshot", snapshot_id)


def test_public_snapshot_is_made_private_keeping_account_shares(target: Target, ec2: Any) -> None:
    snapshot_id = make_snapshot(ec2, public=True, shared_with="111122223333")

    before = run_cycle(EbsSnapshotNotPublic(), target, snapshot_finding(snapshot_id))

    assert volume_permissions(ec2, snapshot_id) == [{"UserId": "111122223333"}]
    assert before.changes == [f"make {snapshot_id} private (remove createVolumePermission group all)"]
    assert before.pre_state == {"PublicSnapshotIds": [snapshot_id]}
    assert before.tags == {"team": "data"}


def test_snapshot_restore(target: Target, ec2: Any) -> None:
    snapshot_id = make_snapshot(ec2, public=True, shared_with="111122223333")

    first, second = assert_restores(
        EbsSnapshotNotPublic(), target, snapshot_finding(snapshot_id), lambda: volume_permissions(ec2, snapshot_id)
    )

    assert first == second == [f"made {snapshot_id} publicly restorable again"]


@pytest.fixture
def without_moto_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto seeds ~1,300 snapshots of public AMIs that an account-wide listing walks through (it ignores the
    filters, see below); without them the account finding's test reads only this account's snapshots."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def test_account_finding_covers_every_public_snapshot_of_the_account(
    without_moto_amis: None, target: Target, ec2: Any
) -> None:
    public = [make_snapshot(ec2, public=True), make_snapshot(ec2, public=True)]
    private = make_snapshot(ec2, public=False, shared_with="111122223333")

    before = run_cycle(EbsSnapshotNotPublic(), target, make_finding("EC2.1", "AwsAccount", ACCOUNT))

    assert before.pre_state == {"PublicSnapshotIds": public}
    assert before.tags is None
    assert [volume_permissions(ec2, snapshot_id) for snapshot_id in public] == [[], []]
    assert volume_permissions(ec2, private) == [{"UserId": "111122223333"}]


@pytest.mark.stubber
def test_account_finding_asks_aws_for_public_snapshots_only() -> None:
    """moto ignores OwnerIds and RestorableByUserIds (it lists every snapshot it holds), so the request that keeps
    this to one cheap call in AWS is checked with Stubber."""
    client = boto3.client("ec2", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client)
    snapshots = [{"SnapshotId": "snap-1", "OwnerId": ACCOUNT}, {"SnapshotId": "snap-2", "OwnerId": "999999999999"}]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_snapshots", {"Snapshots": snapshots}, {"OwnerIds": ["self"], "RestorableByUserIds": ["all"]}
        )
        stub.add_response(
            "describe_snapshot_attribute",
            {"SnapshotId": "snap-1", "CreateVolumePermissions": [{"Group": "all"}]},
            {"SnapshotId": "snap-1", "Attribute": "createVolumePermission"},
        )
        assessment = EbsSnapshotNotPublic().assess(target, make_finding("EC2.1", "AwsAccount", ACCOUNT))
        stub.assert_no_pending_responses()
    assert assessment.pre_state == {"PublicSnapshotIds": ["snap-1"]}


def test_snapshot_restore_after_deletion_says_so(target: Target, ec2: Any) -> None:
    snapshot_id = make_snapshot(ec2, public=True)
    remediator, finding = EbsSnapshotNotPublic(), snapshot_finding(snapshot_id)
    assessment = run_cycle(remediator, target, finding)
    ec2.delete_snapshot(SnapshotId=snapshot_id)

    assert remediator.restore(target, finding, recorded_pre_state(assessment)) == [
        f"{snapshot_id} no longer exists; nothing to restore"
    ]


def test_snapshot_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    snapshot_id = make_snapshot(ec2, public=True)
    before = volume_permissions(ec2, snapshot_id)
    assert EbsSnapshotNotPublic().assess(target, snapshot_finding(snapshot_id)).compliant is False
    assert volume_permissions(ec2, snapshot_id) == before


def test_missing_snapshot_is_a_remediation_error(target: Target) -> None:
    with pytest.raises(RemediationError, match="snapshot snap-0123456789abcdef0 not found"):
        EbsSnapshotNotPublic().assess(target, snapshot_finding("snap-0123456789abcdef0"))


# -- declarations ------------------------------------------------------------------------------------------------


EC2_REMEDIATORS = [
    SecurityGroupAdminPorts,
    SecurityGroupHighRiskPorts,
    DefaultSecurityGroupClosed,
    NetworkAclOpenIngress,
    InstanceMetadataV2,
    EbsSnapshotNotPublic,
    VpcFlowLogs,
    EbsDefaultEncryption,
]


@pytest.mark.parametrize("cls", EC2_REMEDIATORS)
def test_declarations(cls: type[Remediator]) -> None:
    assert cls.rules and cls.resource_types and isinstance(cls.reversible, bool)
    for action in cls.permissions + (cls.runbook.permissions if cls.runbook else ()):
        assert re.fullmatch(r"[a-z0-9]+:[A-Za-z]+", action), action
    cls()  # the defaults are valid parameters


@pytest.mark.parametrize(
    ("cls", "document", "finding", "resource_parameter"),
    [
        (
            SecurityGroupAdminPorts,
            "AWS-DisablePublicAccessForSecurityGroup",
            sg_finding("EC2.53", "sg-0abc"),
            "GroupId",
        ),
        (
            DefaultSecurityGroupClosed,
            "AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules",
            sg_finding("EC2.2", "sg-0abc"),
            "GroupId",
        ),
        (
            InstanceMetadataV2,
            "AWSConfigRemediation-EnforceEC2InstanceIMDSv2",
            instance_finding("i-0abc"),
            "InstanceId",
        ),
        (EbsDefaultEncryption, "AWSConfigRemediation-EnableEbsEncryptionByDefault", account_finding(), None),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_runbook_parameters(cls: type[Remediator], document: str, finding: Any, resource_parameter: str | None) -> None:
    runbook = cls.runbook
    assert runbook is not None
    assert runbook.document == document
    expected = {resource_parameter: [finding.resource_id]} if resource_parameter else {}
    assert runbook.parameters(finding, ROLE_ARN) == {**expected, "AutomationAssumeRole": [ROLE_ARN]}
    assert set(runbook.permissions) <= set(cls.permissions)


def test_declared_rules() -> None:
    """Rule ids, CIS mapping, disruptive flag and executors of every EC2 rule, in one table."""
    declared = {
        rule.rule_id: (rule.cis, rule.disruptive, cls.executors()) for cls in EC2_REMEDIATORS for rule in cls.rules
    }
    both, boto3_only = ("boto3", "ssm"), ("boto3",)
    assert declared == {
        "EC2.53": (("5.2",), False, both),
        "EC2.54": (("5.3",), False, both),
        "EC2.13": ((), False, both),
        "EC2.14": ((), False, both),
        "EC2.19": ((), True, boto3_only),
        "EC2.2": (("5.4",), True, both),
        "EC2.21": (("5.1",), True, boto3_only),
        "netskope:nacl-allow-all-ingress": ((), True, boto3_only),
        "EC2.8": (("5.6",), True, both),
        "EC2.1": ((), False, boto3_only),
        "EC2.6": (("3.7",), True, boto3_only),
        "EC2.7": (("2.2.1",), False, both),
    }
    assert set(EXPOSURES) == {r.rule_id for r in SecurityGroupAdminPorts.rules + SecurityGroupHighRiskPorts.rules}
    assert all(rule.default_mode == "dry-run" for cls in EC2_REMEDIATORS for rule in cls.rules)
    assert all(cls.reversible for cls in EC2_REMEDIATORS)
