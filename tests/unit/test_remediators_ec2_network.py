"""Network ACLs (EC2.21, Netskope allow-all ingress) and the default security group (EC2.2) against moto.

Same contract as test_remediators_ec2.py, whose cycle and restore helpers this module uses.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from connectors.netskope_rules import NACL_RULE_ID
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError
from functions.remediators.ec2 import DefaultSecurityGroupClosed, NetworkAclOpenIngress
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_ec2 import (
    assert_restores,
    normalized_rules,
    perm,
    recorded_pre_state,
    run_cycle,
)


@pytest.fixture
def ec2(target: Target) -> Any:
    return target.client("ec2")


# -- network ACLs ------------------------------------------------------------------------------------------------


def acl_entry(
    number: int, protocol: str, cidr: str, ports: tuple[int, int] | None = None, *, action: str = "allow",
    egress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A create_network_acl_entry request, which is also how describe shows the entry."""
    item: dict[str, Any] = {"RuleNumber": number, "Protocol": protocol, "RuleAction": action, "Egress": egress}
    item["Ipv6CidrBlock" if ":" in cidr else "CidrBlock"] = cidr
    if ports:
        item["PortRange"] = {"From": ports[0], "To": ports[1]}
    return item


def make_acl(ec2: Any, entries: list[dict[str, Any]], tags: dict[str, str] | None = None) -> str:
    """A custom ACL (moto gives it no built-in entries) holding exactly `entries`."""
    vpc_id = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    tag_specs = [{"ResourceType": "network-acl", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    acl_id = ec2.create_network_acl(VpcId=vpc_id, TagSpecifications=tag_specs if tags else [])["NetworkAcl"][
        "NetworkAclId"
    ]
    for entry in entries:
        ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry)
    return acl_id


def default_acl(ec2: Any) -> str:
    """A new VPC's default ACL: allow-all rule 100 and the built-in deny 32767, in and out."""
    vpc_id = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    return ec2.describe_network_acls(Filters=filters)["NetworkAcls"][0]["NetworkAclId"]


def acl_entries(ec2: Any, acl_id: str) -> list[dict[str, Any]]:
    """An independent read of the ACL's entries, in a stable order."""
    entries = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    return sorted(entries, key=lambda e: (e["Egress"], e["RuleNumber"]))


def acl_finding(rule_id: str, acl_id: str) -> Any:
    return make_finding(rule_id, "AwsEc2NetworkAcl", acl_id)


def test_ec2_21_takes_out_exactly_the_open_admin_port_entries(target: Target, ec2: Any) -> None:
    offending = [
        acl_entry(100, "6", "0.0.0.0/0", (22, 22)),
        acl_entry(110, "6", "::/0", (3389, 3389)),
        acl_entry(120, "6", "0.0.0.0/0", (0, 65535)),
        acl_entry(130, "17", "0.0.0.0/0", (3389, 3389)),  # the Config rule counts UDP too
    ]
    kept = [
        acl_entry(140, "6", "10.0.0.0/8", (22, 22)),
        acl_entry(150, "6", "0.0.0.0/0", (443, 443)),
        acl_entry(160, "6", "0.0.0.0/0", (22, 22), action="deny"),
        acl_entry(100, "-1", "0.0.0.0/0", egress=True),
    ]
    acl_id = make_acl(ec2, offending + kept)

    before = run_cycle(NetworkAclOpenIngress(), target, acl_finding("EC2.21", acl_id))

    assert before.changes == [
        "delete ingress rule 100: allow tcp 22 from 0.0.0.0/0",
        "delete ingress rule 110: allow tcp 3389 from ::/0",
        "replace ingress rule 120: allow tcp 0-65535 from 0.0.0.0/0 with allow tcp 0-21 (rule 120), "
        "tcp 23-3388 (rule 121), tcp 3390-65535 (rule 122)",
        "delete ingress rule 130: allow udp 3389 from 0.0.0.0/0",
    ]
    assert before.pre_state == {"NetworkAclId": acl_id, "Entries": offending}
    pieces = [
        acl_entry(120, "6", "0.0.0.0/0", (0, 21)),
        acl_entry(121, "6", "0.0.0.0/0", (23, 3388)),
        acl_entry(122, "6", "0.0.0.0/0", (3390, 65535)),
    ]
    assert acl_entries(ec2, acl_id) == sorted(kept + pieces, key=lambda e: (e["Egress"], e["RuleNumber"]))


@pytest.mark.parametrize(
    ("rule_id", "entry", "offends"),
    [
        ("EC2.21", acl_entry(100, "-1", "0.0.0.0/0"), True),
        ("EC2.21", acl_entry(100, "6", "::/0", (20, 25)), True),
        ("EC2.21", acl_entry(100, "6", "0.0.0.0/0", (23, 3388)), False),
        ("EC2.21", acl_entry(100, "1", "0.0.0.0/0"), False),
        ("EC2.21", acl_entry(100, "6", "0.0.0.0/0", (22, 22), egress=True), False),
        (NACL_RULE_ID, acl_entry(100, "-1", "0.0.0.0/0"), True),
        (NACL_RULE_ID, acl_entry(100, "-1", "::/0"), False),  # Netskope's rule is about IPv4 0.0.0.0/0
        (NACL_RULE_ID, acl_entry(100, "6", "0.0.0.0/0", (0, 65535)), False),  # not all traffic
        (NACL_RULE_ID, acl_entry(100, "-1", "10.0.0.0/8"), False),
        (NACL_RULE_ID, acl_entry(100, "-1", "0.0.0.0/0", action="deny"), False),
        (NACL_RULE_ID, acl_entry(100, "-1", "0.0.0.0/0", egress=True), False),
    ],
)
def test_which_entries_each_rule_objects_to(
    target: Target, ec2: Any, rule_id: str, entry: dict[str, Any], offends: bool
) -> None:
    acl_id = make_acl(ec2, [entry])
    assessment = NetworkAclOpenIngress().assess(target, acl_finding(rule_id, acl_id))
    assert assessment.compliant is not offends
    assert assessment.pre_state == ({"NetworkAclId": acl_id, "Entries": [entry]} if offends else {})


def test_netskope_allow_all_deletes_the_default_acl_allow_all_ingress(target: Target, ec2: Any) -> None:
    acl_id = default_acl(ec2)
    original = acl_entries(ec2, acl_id)

    before = run_cycle(NetworkAclOpenIngress(), target, acl_finding(NACL_RULE_ID, acl_id))

    assert before.changes == ["delete ingress rule 100: allow all traffic from 0.0.0.0/0"]
    assert acl_entries(ec2, acl_id) == [e for e in original if e["Egress"] or e["RuleNumber"] != 100]


def test_acl_restore(target: Target, ec2: Any) -> None:
    acl_id = make_acl(ec2, [acl_entry(100, "6", "0.0.0.0/0", (22, 22)), acl_entry(110, "6", "::/0", (0, 65535))])

    first, second = assert_restores(
        NetworkAclOpenIngress(), target, acl_finding("EC2.21", acl_id), lambda: acl_entries(ec2, acl_id)
    )

    assert first == [
        f"re-created {acl_id} ingress rule 100: allow tcp 22 from 0.0.0.0/0",
        f"put back {acl_id} ingress rule 110: allow tcp 0-65535 from ::/0",
        f"deleted the added {acl_id} ingress rule 111: allow tcp 23-3388 from ::/0",
        f"deleted the added {acl_id} ingress rule 112: allow tcp 3390-65535 from ::/0",
    ]
    assert second == [
        f"{acl_id} ingress rule 100: allow tcp 22 from 0.0.0.0/0 is present; left as is",
        f"{acl_id} ingress rule 110: allow tcp 0-65535 from ::/0 is present; left as is",
    ]


def test_acl_restore_never_overwrites_a_reused_rule_number(target: Target, ec2: Any) -> None:
    acl_id = make_acl(ec2, [acl_entry(100, "-1", "0.0.0.0/0")])
    remediator, finding = NetworkAclOpenIngress(), acl_finding(NACL_RULE_ID, acl_id)
    assessment = run_cycle(remediator, target, finding)
    newer = acl_entry(100, "6", "10.0.0.0/8", (443, 443))
    ec2.create_network_acl_entry(NetworkAclId=acl_id, **newer)

    lines = remediator.restore(target, finding, recorded_pre_state(assessment))

    assert lines == [
        f"not restored: {acl_id} ingress rule 100: allow all traffic from 0.0.0.0/0; the rule number now holds "
        "ingress rule 100: allow tcp 443 from 10.0.0.0/8"
    ]
    assert acl_entries(ec2, acl_id) == [newer]


@pytest.mark.stubber
def test_acl_apply_tolerates_an_entry_deleted_since_assessment() -> None:
    """moto raises a Python StopIteration on deleting a missing entry; AWS answers InvalidNetworkAclEntry.NotFound."""
    client = boto3.client("ec2", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client)
    entry = acl_entry(100, "-1", "0.0.0.0/0")
    assessment = Assessment(compliant=False, context={"plans": [{"entry": entry, "replacement": []}]})
    with Stubber(client) as stub:
        stub.add_client_error(
            "delete_network_acl_entry",
            "InvalidNetworkAclEntry.NotFound",
            expected_params={"NetworkAclId": "acl-0abc", "RuleNumber": 100, "Egress": False},
        )
        NetworkAclOpenIngress().apply(target, acl_finding(NACL_RULE_ID, "acl-0abc"), assessment)
        stub.assert_no_pending_responses()


def test_acl_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    acl_id = default_acl(ec2)
    before = acl_entries(ec2, acl_id)
    for rule in NetworkAclOpenIngress.rules:
        assert NetworkAclOpenIngress().assess(target, acl_finding(rule.rule_id, acl_id)).compliant is False
    assert acl_entries(ec2, acl_id) == before


def test_acl_tags_are_reported(target: Target, ec2: Any) -> None:
    acl_id = make_acl(ec2, [], tags={"cspm-remediation:exclude": "true"})
    assessment = NetworkAclOpenIngress().assess(target, acl_finding("EC2.21", acl_id))
    assert assessment.compliant is True
    assert assessment.tags == {"cspm-remediation:exclude": "true"}


@pytest.mark.stubber
def test_missing_acl_is_a_remediation_error() -> None:
    """moto answers a missing ACL with InvalidRouteTableID.NotFound; AWS says InvalidNetworkAclID.NotFound."""
    client = boto3.client("ec2", region_name=REGION)
    target = Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_network_acls",
            "InvalidNetworkAclID.NotFound",
            expected_params={"NetworkAclIds": ["acl-0123456789abcdef0"]},
        )
        with pytest.raises(RemediationError, match="network ACL acl-0123456789abcdef0 not found"):
            NetworkAclOpenIngress().assess(target, acl_finding("EC2.21", "acl-0123456789abcdef0"))


def test_acl_rule_outside_the_table_is_refused(target: Target, ec2: Any) -> None:
    with pytest.raises(RemediationError, match=r"rule EC2\.53 is not handled by NetworkAclOpenIngress"):
        NetworkAclOpenIngress().assess(target, acl_finding("EC2.53", default_acl(ec2)))


# -- the default security group ----------------------------------------------------------------------------------


def default_group(ec2: Any) -> str:
    """A new VPC's default group (moto gives it the allow-all egress rule) with open ingress added."""
    vpc_id = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    group_id = ec2.describe_security_groups(Filters=filters)["SecurityGroups"][0]["GroupId"]
    ssh = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "admin"}],
        "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
    }
    # The self reference AWS creates. (moto cannot revoke a group pair that carries a description.)
    itself = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id, "UserId": ACCOUNT}]}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[ssh, itself])
    return group_id


def group_rules(ec2: Any, group_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return normalized_rules(group["IpPermissions"]), normalized_rules(group["IpPermissionsEgress"])


def default_sg_finding(group_id: str) -> Any:
    return make_finding("EC2.2", "AwsEc2SecurityGroup", group_id)


def test_default_group_loses_every_rule(target: Target, ec2: Any) -> None:
    group_id = default_group(ec2)

    before = run_cycle(DefaultSecurityGroupClosed(), target, default_sg_finding(group_id))

    assert group_rules(ec2, group_id) == ([], [])
    assert before.changes == [
        "revoke ingress tcp 22 from 0.0.0.0/0",
        "revoke ingress tcp 22 from ::/0",
        f"revoke ingress all traffic from {group_id}",
        "revoke egress all traffic to 0.0.0.0/0",
    ]
    assert before.pre_state["GroupId"] == group_id
    assert before.pre_state["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    assert len(before.pre_state["IpPermissions"]) == 2


def test_default_group_restore(target: Target, ec2: Any) -> None:
    group_id = default_group(ec2)

    first, second = assert_restores(
        DefaultSecurityGroupClosed(), target, default_sg_finding(group_id), lambda: group_rules(ec2, group_id)
    )

    assert first == [
        "re-authorized ingress tcp 22 from 0.0.0.0/0",
        "re-authorized ingress tcp 22 from ::/0",
        f"re-authorized ingress all traffic from {group_id}",
        "re-authorized egress all traffic to 0.0.0.0/0",
    ]
    assert second == [f"{group_id}: every revoked rule is present; nothing to restore"]


def test_closed_default_group_is_compliant(target: Target, ec2: Any) -> None:
    group_id = default_group(ec2)
    run_cycle(DefaultSecurityGroupClosed(), target, default_sg_finding(group_id))
    assert DefaultSecurityGroupClosed().assess(target, default_sg_finding(group_id)).tags == {}


def test_a_group_that_is_not_default_is_refused(target: Target, ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[perm("tcp", 443, 443, "0.0.0.0/0")])

    with pytest.raises(RemediationError, match=f"security group {group_id} is 'web', not a VPC's default group"):
        DefaultSecurityGroupClosed().assess(target, default_sg_finding(group_id))


def test_missing_default_group_is_a_remediation_error(target: Target) -> None:
    with pytest.raises(RemediationError, match="security group sg-0123456789abcdef0 not found"):
        DefaultSecurityGroupClosed().assess(target, default_sg_finding("sg-0123456789abcdef0"))


def test_default_group_assess_alone_changes_nothing(target: Target, ec2: Any) -> None:
    group_id = default_group(ec2)
    before = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert DefaultSecurityGroupClosed().assess(target, default_sg_finding(group_id)).compliant is False
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"] == before
