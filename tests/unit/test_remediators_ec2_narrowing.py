"""Security groups and network ACLs: the narrowest change (DESIGN §4), on moto.

Written from the controls' documented logic: EC2.53/EC2.54 are AWS Config vpc-sg-port-restriction-check (an
ingress from 0.0.0.0/0 resp. ::/0 over TCP, UDP or all traffic reaching 22 or 3389); EC2.13 restricted-ssh and
EC2.14 (22, 3389 over TCP); EC2.19 (its high-risk ports, over TCP and UDP: the control names no protocol). A wide
permission is not revoked whole: every port and protocol the control does not object to stays open to the same
source, and a rollback puts back exactly the original permission.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from connectors.netskope_rules import NACL_RULE_ID
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.ec2 import (
    HIGH_RISK_PORTS,
    NetworkAclOpenIngress,
    SecurityGroupAdminPorts,
    SecurityGroupHighRiskPorts,
)
from tests.unit.test_remediators_ec2 import (
    assert_restores,
    ingress,
    make_group,
    normalized_rules,
    perm,
    recorded_pre_state,
    run_cycle,
    sg_finding,
)
from tests.unit.test_remediators_ec2_network import acl_entries, acl_entry, acl_finding, default_acl, make_acl

PROBE_PORTS = (0, 1, 20, 21, 22, 23, 80, 443, 3306, 3388, 3389, 3390, 8080, 65535)


@pytest.fixture
def ec2(target: Target) -> Any:
    return target.client("ec2")


def allows(ec2: Any, group_id: str, protocol: str, port: int | None, cidr: str) -> bool:
    """Does the group, read back from moto, admit `protocol` on `port` from exactly `cidr`? (all traffic counts)"""
    for p in ingress(ec2, group_id):
        sources = [r["CidrIp"] for r in p.get("IpRanges", [])] + [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
        if cidr not in sources:
            continue
        if p["IpProtocol"] == "-1":
            return True
        if p["IpProtocol"] == protocol and (port is None or p["FromPort"] <= port <= p["ToPort"]):
            return True
    return False


def open_ports(ec2: Any, group_id: str, cidr: str) -> dict[str, set[int]]:
    return {
        protocol: {port for port in PROBE_PORTS if allows(ec2, group_id, protocol, port, cidr)}
        for protocol in ("tcp", "udp")
    }


@pytest.mark.parametrize("wide", [perm("-1", None, None, "0.0.0.0/0"), perm("tcp", 0, 65535, "0.0.0.0/0")])
def test_ec2_53_keeps_every_port_but_22_and_3389_open_to_the_same_source(
    target: Target, ec2: Any, wide: dict[str, Any]
) -> None:
    group_id = make_group(ec2, [wide])

    run_cycle(SecurityGroupAdminPorts(), target, sg_finding("EC2.53", group_id))

    everything_else = set(PROBE_PORTS) - {22, 3389}
    ports = open_ports(ec2, group_id, "0.0.0.0/0")
    assert ports["tcp"] == everything_else
    if wide["IpProtocol"] == "-1":
        assert ports["udp"] == everything_else  # the Config rule counts UDP: 22/3389 carved out there too
        assert allows(ec2, group_id, "icmp", None, "0.0.0.0/0")
    else:
        assert ports["udp"] == set()  # nothing was open over UDP; nothing is added


def test_all_traffic_narrowed_per_rule_and_per_family(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("-1", None, None, "0.0.0.0/0", "::/0")])

    before = run_cycle(SecurityGroupAdminPorts(), target, sg_finding("EC2.14", group_id))

    assert before.changes == [
        "narrow all traffic from 0.0.0.0/0 to tcp 0-3388, 3390-65535; udp 0-65535; icmp",
        "narrow all traffic from ::/0 to tcp 0-3388, 3390-65535; udp 0-65535; icmpv6",
    ]  # EC2.14 is about TCP 3389 only: SSH and UDP 3389 stay
    for cidr in ("0.0.0.0/0", "::/0"):
        assert open_ports(ec2, group_id, cidr) == {"tcp": set(PROBE_PORTS) - {3389}, "udp": set(PROBE_PORTS)}
    assert allows(ec2, group_id, "icmpv6", None, "::/0")


def test_all_traffic_is_disruptive_for_that_finding_and_a_range_is_not(target: Target, ec2: Any) -> None:
    wide = make_group(ec2, [perm("-1", None, None, "0.0.0.0/0")])
    ranged = make_group(ec2, [perm("tcp", 0, 65535, "0.0.0.0/0")])

    assessment = SecurityGroupAdminPorts().assess(target, sg_finding("EC2.53", wide))
    assert "other than TCP, UDP and ICMP" in assessment.disruptive  # a group cannot deny: GRE, ESP… are lost
    assert SecurityGroupAdminPorts().assess(target, sg_finding("EC2.53", ranged)).disruptive == ""


def test_engine_holds_a_finding_disruptive_change_under_global_enforce(target: Target, ec2: Any) -> None:
    wide = make_group(ec2, [perm("-1", None, None, "0.0.0.0/0")])
    ranged = make_group(ec2, [perm("tcp", 0, 65535, "0.0.0.0/0")])
    findings = [sg_finding("EC2.53", wide), sg_finding("EC2.53", ranged)]
    original = normalized_rules(ingress(ec2, wide))

    results = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply").run(findings)

    assert [r.outcome for r in results] == ["planned", "remediated"]
    assert "disruptive for this finding" in results[0].reason
    assert "own entry says enforce" in results[0].reason
    assert normalized_rules(ingress(ec2, wide)) == original  # untouched

    own = config_from_dict({"rules": {"EC2.53": {"mode": "enforce"}}})
    again = Engine(own, AssumedSessions(), stage="apply").run(findings[:1])
    assert [r.outcome for r in again] == ["remediated"]
    assert "disruptive for this finding" not in again[0].reason


def test_pieces_keep_the_description_and_restore_puts_back_exactly_the_original(target: Target, ec2: Any) -> None:
    original = [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "web"}]},
        {"IpProtocol": "tcp", "FromPort": 1000, "ToPort": 4000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        perm("tcp", 22, 22, "10.0.0.0/8"),
    ]
    group_id = make_group(ec2, original)
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.13", group_id)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    pieces = [r for p in ingress(ec2, group_id) if p["IpProtocol"] != "-1" for r in p.get("IpRanges", [])]
    world = [r for r in pieces if r["CidrIp"] == "0.0.0.0/0"]
    assert len(world) == 4 and all(r.get("Description") == "web" for r in world)  # tcp 0-21, 23-65535, udp, icmp

    again = make_group(ec2, original)
    first, second = assert_restores(
        SecurityGroupAdminPorts(), target, sg_finding("EC2.13", again), lambda: normalized_rules(ingress(ec2, again))
    )
    assert first[-1].startswith("revoked the ") and "narrower ingress rule(s)" in first[-1]
    assert second == [f"{again}: every revoked entry is present; nothing to restore"]


def test_a_piece_someone_already_had_is_neither_added_nor_removed_by_restore(target: Target, ec2: Any) -> None:
    theirs = perm("tcp", 23, 3388, "0.0.0.0/0")
    group_id = make_group(ec2, [perm("tcp", 0, 65535, "0.0.0.0/0"), theirs])
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.53", group_id)

    assessment = run_cycle(remediator, target, finding)
    assert [p["FromPort"] for p in assessment.context["created"]["IpPermissions"]] == [0, 3390]

    remediator.restore(target, finding, recorded_pre_state(assessment))
    assert allows(ec2, group_id, "tcp", 100, "0.0.0.0/0")  # the original range is back
    assert any(p.get("FromPort") == 23 and p.get("ToPort") == 3388 for p in ingress(ec2, group_id))  # theirs stays


def test_when_the_pieces_cannot_be_added_nothing_is_revoked(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 0, 65535, "0.0.0.0/0")])
    original = normalized_rules(ingress(ec2, group_id))

    def quota_exceeded(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "RulesPerSecurityGroupLimitExceeded", "Message": "limit"}},
            "AuthorizeSecurityGroupIngress",
        )

    ec2.meta.events.register("before-call.ec2.AuthorizeSecurityGroupIngress", quota_exceeded)
    remediator, finding = SecurityGroupAdminPorts(), sg_finding("EC2.53", group_id)
    assessment = remediator.assess(target, finding)
    with pytest.raises(RemediationError, match=r"RulesPerSecurityGroupLimitExceeded.*nothing was revoked"):
        remediator.apply(target, finding, assessment)

    assert normalized_rules(ingress(ec2, group_id)) == original


def test_ec2_19_keeps_the_ports_off_its_list(target: Target, ec2: Any) -> None:
    group_id = make_group(ec2, [perm("tcp", 0, 65535, "0.0.0.0/0"), perm("udp", 0, 65535, "0.0.0.0/0")])

    run_cycle(SecurityGroupHighRiskPorts(), target, sg_finding("EC2.19", group_id))

    ports = open_ports(ec2, group_id, "0.0.0.0/0")
    assert ports["tcp"] == set(PROBE_PORTS) - set(HIGH_RISK_PORTS)
    assert ports["udp"] == set(PROBE_PORTS) - set(HIGH_RISK_PORTS)  # UDP too: the control names no protocol


# -- network ACLs: EC2.21 (AWS Config nacl-no-unrestricted-ssh-rdp) and Netskope's allow-all ---------------------

NACL_PROTOCOLS = {"tcp": "6", "udp": "17", "icmp": "1"}


def nacl_admits(ec2: Any, acl_id: str, protocol: str, port: int | None, cidr: str = "0.0.0.0/0") -> bool:
    """How AWS evaluates a stateless ACL: the lowest-numbered ingress entry for that source matching decides."""
    entries = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    for entry in sorted((e for e in entries if not e["Egress"]), key=lambda e: e["RuleNumber"]):
        if (entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")) != cidr:
            continue
        if entry["Protocol"] not in ("-1", NACL_PROTOCOLS[protocol]):
            continue
        ports = entry.get("PortRange")
        if port is not None and ports and not ports["From"] <= port <= ports["To"]:
            continue
        return entry["RuleAction"] == "allow"
    return False


def default_acl_with_ipv6(ec2: Any) -> str:
    acl_id = default_acl(ec2)
    ec2.create_network_acl_entry(NetworkAclId=acl_id, **acl_entry(101, "-1", "::/0"))
    return acl_id


def test_ec2_21_default_acl_keeps_allowing_everything_but_the_admin_ports(target: Target, ec2: Any) -> None:

    acl_id = default_acl(ec2)
    egress = [e for e in ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"] if e["Egress"]]
    finding = acl_finding("EC2.21", acl_id)

    before = run_cycle(NetworkAclOpenIngress(), target, finding)

    for protocol in ("tcp", "udp"):
        admitted = {port for port in PROBE_PORTS if nacl_admits(ec2, acl_id, protocol, port)}
        assert admitted == set(PROBE_PORTS) - {22, 3389}, protocol
    assert nacl_admits(ec2, acl_id, "icmp", None)
    now = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    assert [e for e in now if e["Egress"]] == egress  # outbound untouched
    assert "other than TCP, UDP and ICMP" in before.disruptive


def test_ec2_21_pieces_keep_the_entry_place_between_its_neighbours(target: Target, ec2: Any) -> None:

    acl_id = make_acl(
        ec2,
        [
            acl_entry(90, "6", "0.0.0.0/0", (8080, 8080), action="deny"),
            acl_entry(100, "6", "0.0.0.0/0", (0, 65535)),
            acl_entry(102, "6", "0.0.0.0/0", (5000, 5000), action="deny"),
        ],
    )

    run_cycle(NetworkAclOpenIngress(), target, acl_finding("EC2.21", acl_id))

    numbers = sorted(e["RuleNumber"] for e in ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
                     ["Entries"])  # fmt: skip
    assert numbers == [90, 99, 100, 101, 102]  # 101 above and 99 below: still between 90 and 102
    assert not nacl_admits(ec2, acl_id, "tcp", 8080)  # the deny in front still wins
    assert nacl_admits(ec2, acl_id, "tcp", 443) and not nacl_admits(ec2, acl_id, "tcp", 22)


def test_ec2_21_without_room_deletes_and_says_it_is_disruptive(target: Target, ec2: Any) -> None:

    acl_id = make_acl(
        ec2, [acl_entry(1, "6", "0.0.0.0/0", (0, 65535)), acl_entry(2, "6", "0.0.0.0/0", (80, 80), action="deny")]
    )
    assessment = NetworkAclOpenIngress().assess(target, acl_finding("EC2.21", acl_id))
    assert assessment.changes == ["delete ingress rule 1: allow tcp 0-65535 from 0.0.0.0/0"]
    assert "no free rule numbers" in assessment.disruptive


def test_ec2_21_restore_puts_back_the_default_acl_exactly(target: Target, ec2: Any) -> None:

    acl_id = default_acl_with_ipv6(ec2)
    first, second = assert_restores(
        NetworkAclOpenIngress(), target, acl_finding("EC2.21", acl_id), lambda: acl_entries(ec2, acl_id)
    )
    assert first[0] == f"put back {acl_id} ingress rule 100: allow all traffic from 0.0.0.0/0"
    assert len(second) == 2 and all(line.endswith("is present; left as is") for line in second)


def test_netskope_allow_all_is_ipv4_only(target: Target, ec2: Any) -> None:

    acl_id = default_acl_with_ipv6(ec2)

    before = run_cycle(NetworkAclOpenIngress(), target, acl_finding(NACL_RULE_ID, acl_id))

    assert before.changes == ["delete ingress rule 100: allow all traffic from 0.0.0.0/0"]
    assert nacl_admits(ec2, acl_id, "tcp", 22, "::/0")  # the ::/0 entry is not Netskope's finding
