"""EC2 remediators: security groups open to the world (EC2.53/54/13/14/19), the default security group (EC2.2),
network ACLs open to the world (EC2.21, Netskope allow-all ingress), IMDSv2 (EC2.8), public EBS snapshots (EC2.1),
VPC flow logs (EC2.6) and EBS default encryption (EC2.7).

Network rules are changed surgically: only the entries a rule counts as offending are removed; other CIDRs of the
same permission, other permissions and other ACL entries stay, and a wide security group permission (a port range,
all traffic) is narrowed rather than revoked: the ports and protocols the rule does not object to are re-authorized
for the same source before the wide one goes. The exact removed entries are kept in pre_state so a
rollback (restore) can put them back as they were, descriptions included. Every restore is idempotent.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from connectors.netskope_rules import NACL_RULE_ID
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import (
    ROLE_NAME,
    Assessment,
    Param,
    RemediationError,
    Remediator,
    Rule,
    Runbook,
    ServiceRole,
    left_alone,
    split_excluded,
)
from functions.remediators.tagging import TAGS

IPV4_ANY = "0.0.0.0/0"
IPV6_ANY = "::/0"
WORLD = (IPV4_ANY, IPV6_ANY)
ALL_TRAFFIC = "-1"
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}  # the API may echo numbers; compare names
PORTS = (0, 65535)


def _protocol_name(protocol: object) -> str:
    name = str(protocol).lower()
    return _PROTOCOL_NAMES.get(name, name)


@dataclass(frozen=True)
class Exposure:
    """What one rule counts as offending: an ingress from one of `cidrs`, over one of `protocols`, whose port range
    covers one of `ports` (all traffic covers every port)."""

    ports: tuple[int, ...]
    cidrs: tuple[str, ...]
    protocols: tuple[str, ...]

    def covers(self, protocol: str, port_range: tuple[int, int] | None) -> bool:
        """port_range None: the entry is not limited to a port range."""
        if protocol not in self.protocols:
            return False
        if protocol == ALL_TRAFFIC or port_range is None:
            return True
        return any(port_range[0] <= port <= port_range[1] for port in self.ports)


# The Security Hub EC2.19 list (AWS Config restricted-common-ports with these blockedPorts).
HIGH_RISK_PORTS = (
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088,
    8888, 9200, 9300,
)  # fmt: skip

# Security groups. EC2.53/54 are evaluated by the AWS Config rule vpc-sg-port-restriction-check (TCP, UDP or all
# traffic); EC2.13 (restricted-ssh) and EC2.14 look at TCP, which all traffic ("-1") includes. EC2.19's control
# text names no protocol ("unrestricted incoming traffic ... to the ports with high risk"), and several of its
# ports are UDP services as well (135, 445, 1434 SQL Server browser, 5500): a world-open UDP range over them is
# narrowed too (EC2.19 is disruptive: only on its own enforce).
EXPOSURES: dict[str, Exposure] = {
    "EC2.53": Exposure(ports=(22, 3389), cidrs=(IPV4_ANY,), protocols=("tcp", "udp", ALL_TRAFFIC)),
    "EC2.54": Exposure(ports=(22, 3389), cidrs=(IPV6_ANY,), protocols=("tcp", "udp", ALL_TRAFFIC)),
    "EC2.13": Exposure(ports=(22,), cidrs=WORLD, protocols=("tcp", ALL_TRAFFIC)),
    "EC2.14": Exposure(ports=(3389,), cidrs=WORLD, protocols=("tcp", ALL_TRAFFIC)),
    "EC2.19": Exposure(ports=HIGH_RISK_PORTS, cidrs=WORLD, protocols=("tcp", "udp", ALL_TRAFFIC)),
}

# Network ACLs. EC2.21 is AWS Config nacl-no-unrestricted-ssh-rdp (a TCP or UDP entry, or all traffic, reaching
# 22 or 3389); Netskope's allow-all rule is about protocol "-1" from anywhere, whatever the ports.
NACL_EXPOSURES: dict[str, Exposure] = {
    "EC2.21": Exposure(ports=(22, 3389), cidrs=WORLD, protocols=("tcp", "udp", ALL_TRAFFIC)),
    # Netskope's rule looks at IPv4 0.0.0.0/0 only: a ::/0 entry is not its finding and is left alone.
    NACL_RULE_ID: Exposure(ports=(), cidrs=(IPV4_ANY,), protocols=(ALL_TRAFFIC,)),
}


def _exposure_for(remediator: Remediator, finding: Finding, table: Mapping[str, Exposure]) -> Exposure:
    if finding.rule_id not in {rule.rule_id for rule in remediator.rules}:
        raise RemediationError(f"rule {finding.rule_id} is not handled by {type(remediator).__name__}")
    return table[finding.rule_id]


def _traffic_text(protocol: str, port_range: tuple[int, int] | None) -> str:
    """How a rule's traffic reads: all traffic, tcp 22, tcp 1024-4000, udp all ports, icmp."""
    if protocol == ALL_TRAFFIC:
        return "all traffic"
    if port_range is None:
        return f"{protocol} all ports" if protocol in ("tcp", "udp") else protocol
    low, high = port_range
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def _error_is(error: ClientError, *codes: str) -> bool:
    return aws_error_code(error) in codes


def _resource_runbook(document: str, id_parameter: str, permissions: tuple[str, ...]) -> Runbook:
    """An AWS-owned runbook that takes the finding's resource id as `id_parameter`, and the automation role."""
    return Runbook(
        document=document,
        parameters=lambda finding, role_arn: {id_parameter: [finding.resource_id], "AutomationAssumeRole": [role_arn]},
        permissions=permissions,
    )


# -- security groups ---------------------------------------------------------------------------------------------

# IpPermissions source lists → the field that names the source.
_SOURCES = {
    "IpRanges": "CidrIp",
    "Ipv6Ranges": "CidrIpv6",
    "PrefixListIds": "PrefixListId",
    "UserIdGroupPairs": "GroupId",
}
_GROUP_MISSING = ("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed")


@dataclass(frozen=True)
class _Direction:
    """Ingress or egress: where the rules are in a described group, and which calls remove and add them."""

    key: str
    name: str
    preposition: str
    revoke: str
    authorize: str


INGRESS = _Direction(
    "IpPermissions", "ingress", "from", "revoke_security_group_ingress", "authorize_security_group_ingress"
)
EGRESS = _Direction(
    "IpPermissionsEgress", "egress", "to", "revoke_security_group_egress", "authorize_security_group_egress"
)


def offending_permissions(permissions: list[dict[str, Any]], exposure: Exposure) -> list[dict[str, Any]]:
    """The subset of a group's IpPermissions the rule objects to, reduced to the offending CIDR entries only.

    Each result is a valid IpPermissions item for revoke/authorize: protocol and ports as described, and only the
    open IpRanges/Ipv6Ranges entries (with their descriptions). Group references and prefix lists never match.
    """
    offending = []
    for permission in permissions:
        if not exposure.covers(_protocol_name(permission.get("IpProtocol", "")), _port_range(permission)):
            continue
        ipv4 = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") in exposure.cidrs]
        ipv6 = [r for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") in exposure.cidrs]
        if ipv4 or ipv6:
            offending.append(_compact({**_without_sources(permission), "IpRanges": ipv4, "Ipv6Ranges": ipv6}))
    return offending


def remaining_ranges(low: int, high: int, blocked: tuple[int, ...]) -> list[tuple[int, int]]:
    """[low, high] without the blocked ports, as ranges: (0, 65535) without 22 and 3389 → 0-21, 23-3388, 3390-65535."""
    pieces, start = [], low
    for port in sorted({p for p in blocked if low <= p <= high}):
        if port > start:
            pieces.append((start, port - 1))
        start = port + 1
    if start <= high:
        pieces.append((start, high))
    return pieces


@dataclass(frozen=True)
class Narrowing:
    """How one offending permission is replaced: `keep` re-authorizes every port and protocol the rule does not
    object to, for the same sources (descriptions kept); `lost` names what no security group rule can keep (a group
    cannot deny, so all traffic loses the IP protocols beyond TCP, UDP and ICMP), which makes the change disruptive.
    """

    revoke: dict[str, Any]
    keep: list[dict[str, Any]]
    lost: str = ""


def narrow(permission: dict[str, Any], exposure: Exposure) -> Narrowing:
    """The narrowest replacement of an offending permission (reduced to its open CIDRs by offending_permissions)."""
    protocol = _protocol_name(permission.get("IpProtocol", ""))
    sources = {k: permission[k] for k in ("IpRanges", "Ipv6Ranges") if permission.get(k)}
    if protocol == ALL_TRAFFIC:
        keep = [
            _compact({"IpProtocol": name, "FromPort": low, "ToPort": high, **sources})
            for name in ("tcp", "udp")
            for low, high in (remaining_ranges(*PORTS, exposure.ports) if name in exposure.protocols else [PORTS])
        ]
        if sources.get("IpRanges"):
            keep.append({"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": sources["IpRanges"]})
        if sources.get("Ipv6Ranges"):
            keep.append({"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1, "Ipv6Ranges": sources["Ipv6Ranges"]})
        cidrs = ", ".join(e.get("CidrIp") or e.get("CidrIpv6") for k in sources for e in sources[k])
        lost = f"IP protocols other than TCP, UDP and ICMP (GRE, ESP, SCTP, …) from {cidrs} are no longer allowed"
        return Narrowing(permission, keep, lost)
    port_range = _port_range(permission)
    if port_range is None:  # a protocol the rule counts without ports: nothing narrower exists
        return Narrowing(permission, [], f"{_traffic_text(protocol, None)} is revoked whole")
    keep = [
        {**permission, "FromPort": low, "ToPort": high} for low, high in remaining_ranges(*port_range, exposure.ports)
    ]
    return Narrowing(permission, keep)


def narrowing_lines(narrowing: Narrowing) -> list[str]:
    """Per source, e.g. "narrow tcp 0-65535 from 0.0.0.0/0 to tcp 0-21, 23-3388, 3390-65535", or a plain revoke."""
    lines = []
    for entry in _single_entries([narrowing.revoke]):
        source = _entry_identity(entry)[2:]
        kept: dict[str, list[str]] = {}
        for item in _single_entries(narrowing.keep):
            if _entry_identity(item)[2:] == source:
                protocol, port_range = _protocol_name(item["IpProtocol"]), _port_range(item)
                kept.setdefault(protocol, []).append("" if port_range is None else f"{port_range[0]}-{port_range[1]}")
        text = "; ".join(f"{p} {', '.join(r for r in ranges)}".strip() for p, ranges in kept.items())
        (line,) = rule_lines("revoke", entry)
        lines.append(line.replace("revoke", "narrow", 1) + f" to {text}" if kept else line)
    return lines


def rule_lines(verb: str, permission: Mapping[str, Any], direction: _Direction = INGRESS) -> list[str]:
    """Human-readable lines for one IpPermissions item, e.g. "revoke tcp 22 from 0.0.0.0/0"."""
    what = _traffic_text(_protocol_name(permission.get("IpProtocol", "")), _port_range(permission))
    sources = [entry.get(field) for key, field in _SOURCES.items() for entry in permission.get(key, [])]
    return [f"{verb} {what} {direction.preposition} {source}" for source in sources]


def _port_range(permission: Mapping[str, Any]) -> tuple[int, int] | None:
    """(from, to), or None when the permission is not limited to a port range (ICMP types count as none)."""
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if low is None or high is None or -1 in (low, high):
        return None
    return int(low), int(high)


def _without_sources(permission: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in permission.items() if k not in _SOURCES}


def _compact(permission: Mapping[str, Any]) -> dict[str, Any]:
    """Without the empty source lists describe returns, so pre_state shows only what is there."""
    return {k: v for k, v in permission.items() if v != []}


def _without_descriptions(permission: Mapping[str, Any]) -> dict[str, Any]:
    """Revoke matches on protocol, ports and source; a description is not part of the rule's identity."""
    item = _without_sources(permission)
    for key in _SOURCES:
        if permission.get(key):
            item[key] = [{f: v for f, v in entry.items() if f != "Description"} for entry in permission[key]]
    return item


def _single_entries(permissions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One IpPermissions item per source entry, so each can be changed on its own."""
    for permission in permissions:
        for key in _SOURCES:
            for entry in permission.get(key, []):
                yield {**_without_sources(permission), key: [entry]}


# -- batched reads -------------------------------------------------------------------------------------------------

# Ids per describe call. EC2 refuses more than 200 values in one filter (FilterLimitExceeded); its id lists have no
# documented limit, and are kept to the same size so the filter fallback can take any chunk as it is.
BATCH_IDS = 200


@dataclass(frozen=True)
class _BatchRead:
    """How to describe many resources of one kind at once, for the run's read cache (`prefetch`).

    key: the cache key's operation (each resource's entry is (key, id) → the list its own describe returns);
    by_ids: the describe by ids, which EC2 fails whole when one id does not exist (`missing` codes); by_filter: the
    same by a filter on the id, which leaves missing ones out; id_of: the id of a returned item.
    """

    key: str
    by_ids: Callable[[Any, list[str]], Iterable[dict[str, Any]]] | None
    by_filter: Callable[[Any, list[str]], Iterable[dict[str, Any]]]
    id_of: Callable[[dict[str, Any]], str]
    missing: tuple[str, ...] = ()

    def prefetch(self, target: Target, ids: Iterable[str]) -> None:
        """Describe the ids not cached yet, BATCH_IDS per call; an id the answer lacks is cached as gone (an empty
        list), so its finding alone is skipped. Any other error (throttling after botocore's retries, a refused
        call) is raised: it is every finding's of the batch (assess_many), none reads again on its own."""
        if not target.batching:
            return
        wanted = [i for i in dict.fromkeys(ids) if not target.cached((self.key, i))]
        ec2 = target.client("ec2")
        for start in range(0, len(wanted), BATCH_IDS):
            chunk = wanted[start:start + BATCH_IDS]
            items = self._describe(ec2, chunk)
            found: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for item in items:
                found[self.id_of(item)].append(item)
            for resource_id in chunk:
                target.keep((self.key, resource_id), found.get(resource_id, []))

    def _describe(self, ec2: Any, chunk: list[str]) -> list[dict[str, Any]]:
        if self.by_ids is not None:
            try:
                return list(self.by_ids(ec2, chunk))
            except ClientError as error:
                # Any NotFound (emulators name a missing ACL's error after route tables) means an id is gone.
                if not (_error_is(error, *self.missing) or (aws_error_code(error) or "").endswith(".NotFound")):
                    raise
        return list(self.by_filter(ec2, chunk))  # one id is gone: the filter leaves it out, keeps the others


def _pages(ec2: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in ec2.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _gone(what: str, code: str) -> RemediationError:
    """A resource the describe did not return: its finding is `skipped` (resource gone), as for AWS's own
    NotFound error (failures.py reads the code from the cause)."""
    error = RemediationError(f"{what} not found")
    error.__cause__ = ClientError({"Error": {"Code": code, "Message": f"{what} does not exist"}}, "Describe")
    return error


_GROUPS = _BatchRead(
    "ec2.DescribeSecurityGroups",
    by_ids=lambda ec2, ids: ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"],
    by_filter=lambda ec2, ids: _pages(ec2, "describe_security_groups", "SecurityGroups",
                                      Filters=[{"Name": "group-id", "Values": ids}]),
    id_of=lambda group: str(group["GroupId"]),
    missing=("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed"),
)
_ACLS = _BatchRead(
    "ec2.DescribeNetworkAcls",
    by_ids=lambda ec2, ids: _pages(ec2, "describe_network_acls", "NetworkAcls", NetworkAclIds=ids),
    by_filter=lambda ec2, ids: _pages(ec2, "describe_network_acls", "NetworkAcls",
                                      Filters=[{"Name": "network-acl-id", "Values": ids}]),
    id_of=lambda acl: str(acl["NetworkAclId"]),
    missing=("InvalidNetworkAclID.NotFound", "InvalidNetworkAclId.Malformed"),
)
_INSTANCES = _BatchRead(
    "ec2.DescribeInstances",
    by_ids=lambda ec2, ids: (i for r in _pages(ec2, "describe_instances", "Reservations", InstanceIds=ids)
                             for i in r.get("Instances", [])),
    by_filter=lambda ec2, ids: (i for r in _pages(ec2, "describe_instances", "Reservations",
                                                  Filters=[{"Name": "instance-id", "Values": ids}])
                                for i in r.get("Instances", [])),
    id_of=lambda instance: str(instance["InstanceId"]),
    missing=("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"),
)
_VPCS = _BatchRead(
    "ec2.DescribeVpcs",
    by_ids=lambda ec2, ids: _pages(ec2, "describe_vpcs", "Vpcs", VpcIds=ids),
    by_filter=lambda ec2, ids: _pages(ec2, "describe_vpcs", "Vpcs", Filters=[{"Name": "vpc-id", "Values": ids}]),
    id_of=lambda vpc: str(vpc["VpcId"]),
    missing=("InvalidVpcID.NotFound", "InvalidVpcID.Malformed"),
)
# Flow logs by the resource they log: a VPC without any is an empty list, not a missing VPC.
_FLOW_LOGS = _BatchRead(
    "ec2.DescribeFlowLogs",
    by_ids=None,
    by_filter=lambda ec2, ids: _pages(ec2, "describe_flow_logs", "FlowLogs",
                                      Filters=[{"Name": "resource-id", "Values": ids}]),
    id_of=lambda flow_log: str(flow_log.get("ResourceId", "")),
)


def _ids(findings: Sequence[Finding]) -> list[str]:
    return [finding.resource_id for finding in findings]


def _describe_group(target: Target, group_id: str, cached: bool = False) -> dict[str, Any]:
    """The group as described now; cached=True (assess only) shares one describe among the run's findings on the
    group (EC2.2, .13, .14, .19, .53, .54 …), or takes it from a batched describe (prefetch): the engine drops it
    at a write on the group."""
    def describe() -> list[dict[str, Any]]:
        try:
            groups: list[dict[str, Any]] = \
                target.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as error:
            _raise_if_group_missing(error, group_id)
            raise
        return groups

    groups = target.read((_GROUPS.key, group_id), describe) if cached else describe()
    if not groups:
        raise _gone(f"security group {group_id}", "InvalidGroup.NotFound")
    return groups[0]


def _raise_if_group_missing(error: ClientError, group_id: str) -> None:
    if _error_is(error, *_GROUP_MISSING):
        raise RemediationError(f"security group {group_id} not found") from error


def _change_rules(
    call: Callable[..., Any],
    group_id: str,
    permissions: list[dict[str, Any]],
    already_done: str,
    changed: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Send `permissions` to `call` (a revoke or authorize) in one request. When that is refused because part of it
    is already done (error code `already_done`: gone for a revoke, present for an authorize — another finding on the
    same group, or a person), send one source entry at a time and skip those. Returns what this call changed, also
    appended to `changed` as it goes (so a caller knows what was done when a later entry fails).
    """
    changed = [] if changed is None else changed
    if not permissions:
        return changed
    try:
        call(GroupId=group_id, IpPermissions=permissions)
        changed.extend(permissions)
        return changed
    except ClientError as error:
        _raise_if_group_missing(error, group_id)
        if not _error_is(error, already_done):
            raise
    for entry in _single_entries(permissions):
        try:
            call(GroupId=group_id, IpPermissions=[entry])
        except ClientError as error:
            _raise_if_group_missing(error, group_id)
            if not _error_is(error, already_done):
                raise
        else:
            changed.append(entry)
    return changed


def _revoke(target: Target, group_id: str, direction: _Direction, permissions: list[dict[str, Any]]) -> None:
    call = getattr(target.client("ec2"), direction.revoke)
    _change_rules(call, group_id, [_without_descriptions(p) for p in permissions], "InvalidPermission.NotFound")


def _reauthorize(
    target: Target, group: Mapping[str, Any], direction: _Direction, permissions: list[dict[str, Any]]
) -> list[str]:
    """Put back the recorded rules the described `group` lacks, descriptions included. Returns what was done."""
    present = {_entry_identity(entry) for entry in _single_entries(group.get(direction.key, []))}
    missing = [entry for entry in _single_entries(permissions) if _entry_identity(entry) not in present]
    call = getattr(target.client("ec2"), direction.authorize)
    restored = _change_rules(call, group["GroupId"], missing, "InvalidPermission.Duplicate")
    return [line for p in restored for line in rule_lines(f"re-authorized {direction.name}", p, direction)]


def _entry_identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """What AWS matches a single-source rule on: protocol, ports and source, not the description."""
    key = next(k for k in _SOURCES if entry.get(k))
    return _protocol_name(entry.get("IpProtocol", "")), _port_range(entry), key, entry[key][0].get(_SOURCES[key])


def runbook_revokes(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The single-source entries AWS-DisablePublicAccessForSecurityGroup revokes whatever the rule: tcp 22 or 3389
    exactly (not a range), from 0.0.0.0/0 or ::/0."""
    found = []
    for entry in _single_entries(permissions):
        protocol, port_range, _, source = _entry_identity(entry)
        if protocol == "tcp" and port_range in ((22, 22), (3389, 3389)) and source in WORLD:
            found.append(entry)
    return found


class SecurityGroupAdminPorts(Remediator):
    """Take world-open SSH/RDP out of a group: exactly the CIDR-and-port combinations the rule objects to.

    tcp 0-65535 from 0.0.0.0/0 becomes tcp 0-21, 23-3388, 3390-65535 from 0.0.0.0/0; all traffic becomes the TCP and
    UDP pieces plus ICMP. All traffic also carried other IP protocols, which no group rule short of all traffic can
    keep: that finding's change is disruptive (Assessment.disruptive) and needs the rule's own enforce.
    """

    rules: ClassVar[tuple[Rule, ...]] = (  # (annotated: EC2.19's subclass declares fewer)
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
    read_permissions = ("ec2:DescribeSecurityGroups",)
    # Narrowing authorizes the kept pieces before revoking the wide permission; restore does the reverse.
    write_permissions = ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress")
    restore_permissions = ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress")
    reversible = True
    side_effects = "the rest of an open range stays open to the same source, as separate rules"
    # The runbook revokes 22 and 3389 from 0.0.0.0/0 and ::/0 whatever the rule (EC2.13 also loses 3389), only
    # for rules on exactly those ports, and fails with InvalidPermission.NotFound in a non-default VPC unless all
    # four patterns exist. The boto3 path has none of these limits.
    runbook: ClassVar[Runbook | None] = _resource_runbook(
        "AWS-DisablePublicAccessForSecurityGroup",
        "GroupId",
        ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress"),
    )

    def prefetch(self, target: Target, findings: Sequence[Finding]) -> None:
        _GROUPS.prefetch(target, _ids(findings))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        exposure = _exposure_for(self, finding, EXPOSURES)
        group = _describe_group(target, finding.resource_id, cached=True)
        revoke = offending_permissions(group.get("IpPermissions", []), exposure)
        if not revoke:
            return Assessment(compliant=True, tags=_tags(group))
        narrowings = [narrow(permission, exposure) for permission in revoke]
        # Each piece once, and none the group already has: one authorize call, and only our own pieces recorded.
        present = {_entry_identity(e) for e in _single_entries(group.get("IpPermissions", []))}
        keep = {_entry_identity(e): e for n in narrowings for e in _single_entries(n.keep)}
        return Assessment(
            compliant=False,
            changes=[line for narrowing in narrowings for line in narrowing_lines(narrowing)],
            pre_state={"GroupId": finding.resource_id, "IpPermissions": revoke},
            tags=_tags(group),
            context={
                "revoke": revoke,
                "keep": [e for key, e in keep.items() if key not in present],
                # The runbook revokes 22 and 3389 whatever the rule (EC2.13 also loses 3389), and no range: that is
                # what an SSM execution records for rollback.
                "runbook_pre_state": {
                    "GroupId": finding.resource_id,
                    "IpPermissions": runbook_revokes(group.get("IpPermissions", [])),
                },
            },
            disruptive="; ".join(n.lost for n in narrowings if n.lost),
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        """Authorize the kept pieces first, then revoke the wide permission: the allowed ports never have a gap.

        Only the pieces this call added are recorded (context["created"], kept by the engine for rollback); a piece
        someone already had stays theirs. When a piece cannot be added (the group's rule quota), the pieces added so
        far are revoked again and nothing is revoked: the group is left exactly as it was.
        """
        created: dict[str, Any] = {"IpPermissions": []}
        assessment.context["created"] = created
        authorize = target.client("ec2").authorize_security_group_ingress
        try:
            _change_rules(
                authorize, finding.resource_id, assessment.context["keep"], "InvalidPermission.Duplicate",
                created["IpPermissions"],
            )
        except ClientError as error:
            _revoke(target, finding.resource_id, INGRESS, created["IpPermissions"])
            created["IpPermissions"] = []
            raise RemediationError(
                f"cannot keep the rest of the range open on {finding.resource_id} ({aws_error_code(error)}); "
                "nothing was revoked"
            ) from error
        _revoke(target, finding.resource_id, INGRESS, assessment.context["revoke"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Put back each original permission, then remove the narrower pieces apply added: exactly the original."""
        group = _describe_group(target, finding.resource_id)
        lines = _reauthorize(target, group, INGRESS, pre_state["IpPermissions"])
        added = (pre_state.get("created") or {}).get("IpPermissions", [])
        present = {_entry_identity(entry) for entry in _single_entries(group.get("IpPermissions", []))}
        added = [entry for entry in _single_entries(added) if _entry_identity(entry) in present]
        _revoke(target, finding.resource_id, INGRESS, added)
        if added:
            lines.append(f"revoked the {len(added)} narrower ingress rule(s) added in their place")
        return lines or [f"{finding.resource_id}: every revoked entry is present; nothing to restore"]


class SecurityGroupHighRiskPorts(SecurityGroupAdminPorts):
    """EC2.19: the same surgical revoke, over the control's list of high-risk ports.

    Disruptive, unlike the admin ports: 25, 3000, 5000 or 8080 often serve the public on purpose.
    """

    rules = (
        Rule(
            "EC2.19",
            "Security groups should not allow unrestricted access to ports with high risk",
            disruptive=True,
            disruption="traffic",
            because="ports such as 25, 3000, 5000 or 8080 often serve the public on purpose",
        ),
    )
    # AWS-DisablePublicAccessForSecurityGroup only knows 22 and 3389, and RemoveUnrestrictedSourceIngressRules
    # removes every world-open rule whatever the port: neither is this rule's change.
    runbook = None


class DefaultSecurityGroupClosed(Remediator):
    """EC2.2: a VPC's default security group should have no rules at all; revoke them all, recording each.

    Disruptive: instances that still use the default group lose the connectivity those rules gave them.
    """

    rules = (
        Rule(
            "EC2.2",
            "VPC default security groups should not allow inbound or outbound traffic",
            cis=("5.4",),
            disruptive=True,
            disruption="traffic",
            because="instances still using the default group lose the traffic its rules allowed",
        ),
    )
    resource_types = ("AwsEc2SecurityGroup",)
    read_permissions = ("ec2:DescribeSecurityGroups",)
    write_permissions = ("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress")
    restore_permissions = ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress")
    reversible = True
    runbook = _resource_runbook(
        "AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules",
        "GroupId",
        ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
    )
    _DIRECTIONS = (INGRESS, EGRESS)

    def prefetch(self, target: Target, findings: Sequence[Finding]) -> None:
        _GROUPS.prefetch(target, _ids(findings))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        group = _describe_group(target, finding.resource_id, cached=True)
        if group.get("GroupName") != "default":
            raise RemediationError(
                f"security group {finding.resource_id} is {group.get('GroupName')!r}, not a VPC's default group"
            )
        rules = {d.key: [_compact(p) for p in group.get(d.key, [])] for d in self._DIRECTIONS}
        if not any(rules.values()):
            return Assessment(compliant=True, tags=_tags(group))
        return Assessment(
            compliant=False,
            changes=[
                line for d in self._DIRECTIONS for p in rules[d.key] for line in rule_lines(f"revoke {d.name}", p, d)
            ],
            pre_state={"GroupId": finding.resource_id, **rules},
            tags=_tags(group),
            context=rules,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        for direction in self._DIRECTIONS:
            _revoke(target, finding.resource_id, direction, assessment.context[direction.key])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        group = _describe_group(target, finding.resource_id)
        lines = [line for d in self._DIRECTIONS for line in _reauthorize(target, group, d, pre_state.get(d.key, []))]
        return lines or [f"{finding.resource_id}: every revoked rule is present; nothing to restore"]


# -- network ACLs ------------------------------------------------------------------------------------------------

# What create_network_acl_entry takes, and so what is recorded of a removed entry.
_NACL_ENTRY_FIELDS = (
    "RuleNumber", "Protocol", "RuleAction", "Egress", "CidrBlock", "Ipv6CidrBlock", "PortRange", "IcmpTypeCode",
)  # fmt: skip
_LAST_USER_RULE = 32766  # above: the built-in "*" deny entries, which cannot be changed


def _nacl_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {field: entry[field] for field in _NACL_ENTRY_FIELDS if field in entry}


def _nacl_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """An entry as compared after a read (without IcmpTypeCode, which emulators do not echo)."""
    return tuple(entry.get(field) for field in _NACL_ENTRY_FIELDS if field != "IcmpTypeCode")


def _nacl_port_range(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    port_range = entry.get("PortRange")
    return (int(port_range["From"]), int(port_range["To"])) if port_range else None


def _nacl_offends(entry: Mapping[str, Any], exposure: Exposure) -> bool:
    return (
        not entry.get("Egress")
        and entry.get("RuleAction") == "allow"
        and int(entry["RuleNumber"]) <= _LAST_USER_RULE
        and (entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")) in exposure.cidrs
        and exposure.covers(_protocol_name(entry.get("Protocol", "")), _nacl_port_range(entry))
    )


def _nacl_text(entry: Mapping[str, Any]) -> str:
    """e.g. "ingress rule 100: allow tcp 22 from 0.0.0.0/0"."""
    what = _traffic_text(_protocol_name(entry.get("Protocol", "")), _nacl_port_range(entry))
    direction, preposition = ("egress", "to") if entry.get("Egress") else ("ingress", "from")
    cidr = entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")
    return f"{direction} rule {entry['RuleNumber']}: {entry.get('RuleAction')} {what} {preposition} {cidr}"


def nacl_pieces(entry: Mapping[str, Any], exposure: Exposure) -> tuple[list[dict[str, Any]], str]:
    """The allow entries (without rule numbers) that keep what `entry` allowed minus the ports the rule objects to,
    and what they cannot keep. An entry the rule objects to whatever its ports (Netskope's all traffic) has none."""
    if not exposure.ports:
        return [], ""
    base = {k: entry[k] for k in ("RuleAction", "Egress", "CidrBlock", "Ipv6CidrBlock") if k in entry}
    protocol = _protocol_name(entry.get("Protocol", ""))
    if protocol == ALL_TRAFFIC:
        pieces = [
            {**base, "Protocol": number, "PortRange": {"From": low, "To": high}}
            for name, number in (("tcp", "6"), ("udp", "17"))
            for low, high in (remaining_ranges(*PORTS, exposure.ports) if name in exposure.protocols else [PORTS])
        ]
        icmp = "58" if "Ipv6CidrBlock" in entry else "1"
        pieces.append({**base, "Protocol": icmp, "IcmpTypeCode": {"Code": -1, "Type": -1}})
        cidr = entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")
        return pieces, f"IP protocols other than TCP, UDP and ICMP (GRE, ESP, …) from {cidr} are no longer allowed"
    port_range = _nacl_port_range(entry)
    if port_range is None:
        return [], f"{_nacl_text(entry)} is deleted whole"
    number = entry["Protocol"]
    pieces = [
        {**base, "Protocol": number, "PortRange": {"From": low, "To": high}}
        for low, high in remaining_ranges(*port_range, exposure.ports)
    ]
    return pieces, ""


def _free_numbers(entry: Mapping[str, Any], taken: set[int], count: int) -> list[int] | None:
    """`count` rule numbers for the pieces replacing `entry`: its own first, then free numbers between its neighbours
    (so the pieces keep its place relative to every other entry, deny entries included); None when there is no room.
    """
    own = int(entry["RuleNumber"])
    lower = max((n for n in taken if n < own), default=0)
    upper = min((n for n in taken if n > own), default=_LAST_USER_RULE + 1)
    numbers = [own] + [n for n in range(own + 1, upper)] + [n for n in range(own - 1, lower, -1)]
    return sorted(numbers[:count]) if len(numbers) >= count else None


def _with_numbers(pieces: list[dict[str, Any]], numbers: list[int]) -> list[dict[str, Any]]:
    return [{"RuleNumber": number, **piece} for number, piece in zip(numbers, pieces, strict=True)]


class NetworkAclOpenIngress(Remediator):
    """Take out of a network ACL exactly the ALLOW ingress the rule objects to; deny entries, narrow CIDRs, other
    ports and the built-in entries stay.

    EC2.21 (AWS Config nacl-no-unrestricted-ssh-rdp) fails any inbound allow entry from 0.0.0.0/0 or ::/0 that
    reaches 22 or 3389 over TCP or UDP, whatever comes before it, so a deny entry in front would not pass it: the
    entry is replaced, in its place, by allow entries that skip those ports. The default ACL's allow-all rule 100
    becomes tcp and udp 0-21, 23-3388, 3390-65535 and icmp at 100, 101, … — subnets keep every other port. The
    entry's own number is rewritten in place (ReplaceNetworkAclEntry) after the other pieces exist, so traffic never
    has a gap. Where the rule numbers leave no room, or the entry carried traffic no entry can keep (all traffic's
    other IP protocols), the finding's change is disruptive and the plan says so. Netskope's allow-all rule is about
    all traffic from 0.0.0.0/0: that entry is deleted.

    Disruptive: a NACL is stateless and shared by whole subnets; return traffic to an ephemeral port 22 or 3389
    (NAT gateways use 1024-65535) is dropped as well.
    """

    rules = (
        Rule(
            "EC2.21",
            "Network ACLs should not allow ingress from 0.0.0.0/0 to port 22 or port 3389",
            cis=("5.1",),
            disruptive=True,
            disruption="traffic",
            because="admin access from anywhere through the ACL stops",
        ),
        Rule(
            NACL_RULE_ID,
            "Network ACL should not allow all ingress traffic",
            disruptive=True,
            disruption="traffic",
            because="traffic the allow-all entry let in stops unless other entries allow it",
        ),
    )
    resource_types = ("AwsEc2NetworkAcl",)
    read_permissions = ("ec2:DescribeNetworkAcls",)
    # Pieces are created, the entry's own number rewritten in place, entries the rule objects to whole deleted.
    write_permissions = ("ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclEntry", "ec2:DeleteNetworkAclEntry")
    restore_permissions = ("ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclEntry", "ec2:DeleteNetworkAclEntry")
    reversible = True

    def prefetch(self, target: Target, findings: Sequence[Finding]) -> None:
        _ACLS.prefetch(target, _ids(findings))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        exposure = _exposure_for(self, finding, NACL_EXPOSURES)
        acl = self._describe(target, finding.resource_id, cached=True)
        entries = acl.get("Entries", [])
        offending = [_nacl_entry(e) for e in entries if _nacl_offends(e, exposure)]
        if not offending:
            return Assessment(compliant=True, tags=_tags(acl))
        taken = {int(e["RuleNumber"]) for e in entries if not e.get("Egress")}
        plans, changes, lost = [], [], []
        for entry in offending:
            pieces, lose = nacl_pieces(entry, exposure)
            numbers = _free_numbers(entry, taken, len(pieces)) if pieces else None
            if pieces and numbers is None:
                lose = f"no free rule numbers next to {_nacl_text(entry)} for {len(pieces)} narrower entries"
                pieces = []
            if pieces:
                replacement = _with_numbers(pieces, numbers or [])
                taken |= set(numbers or [])
                kept = ", ".join(
                    f"{_traffic_text(_protocol_name(p['Protocol']), _nacl_port_range(p))} (rule {p['RuleNumber']})"
                    for p in replacement
                )
                changes.append(f"replace {_nacl_text(entry)} with allow {kept}")
            else:
                replacement = []
                changes.append(f"delete {_nacl_text(entry)}")
            plans.append({"entry": entry, "replacement": replacement})
            if lose and exposure.ports:
                lost.append(lose)
        return Assessment(
            compliant=False,
            changes=changes,
            pre_state={"NetworkAclId": finding.resource_id, "Entries": offending},
            tags=_tags(acl),
            context={"plans": plans},
            disruptive="; ".join(lost),
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        ec2, acl_id = target.client("ec2"), finding.resource_id
        created: dict[str, Any] = {"Entries": []}
        assessment.context["created"] = created  # the extra pieces, for rollback
        for plan in assessment.context["plans"]:
            entry, replacement = plan["entry"], plan["replacement"]
            own = [p for p in replacement if p["RuleNumber"] == entry["RuleNumber"]]
            for piece in replacement:
                if piece not in own:
                    self._call(ec2.create_network_acl_entry, acl_id, piece)
                    created["Entries"].append(piece)
            if own:
                self._call(ec2.replace_network_acl_entry, acl_id, own[0])
            else:
                try:
                    ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=entry["RuleNumber"], Egress=False)
                except ClientError as error:
                    self._raise_if_missing(error, acl_id)
                    if not _error_is(error, "InvalidNetworkAclEntry.NotFound"):  # gone already: fine
                        raise

    def _call(self, call: Callable[..., Any], acl_id: str, entry: Mapping[str, Any]) -> None:
        try:
            call(NetworkAclId=acl_id, **entry)
        except ClientError as error:
            self._raise_if_missing(error, acl_id)
            raise

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Put each recorded entry back at its number — rewriting a narrower piece apply left there, never anything
        else — then delete the other pieces apply added. A rule number now holding something else is reported."""
        acl_id = finding.resource_id
        ec2 = target.client("ec2")
        current = {
            (e["RuleNumber"], e["Egress"]): _nacl_entry(e) for e in self._describe(target, acl_id).get("Entries", [])
        }
        added = [_nacl_entry(e) for e in (pre_state.get("created") or {}).get("Entries", [])]
        lines = []
        for entry in pre_state["Entries"]:
            now = current.get((entry["RuleNumber"], entry["Egress"]))
            if now == entry:
                lines.append(f"{acl_id} {_nacl_text(entry)} is present; left as is")
            elif now is None:
                ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry)
                lines.append(f"re-created {acl_id} {_nacl_text(entry)}")
            elif self._is_piece_of(now, entry):
                ec2.replace_network_acl_entry(NetworkAclId=acl_id, **entry)
                lines.append(f"put back {acl_id} {_nacl_text(entry)}")
            else:
                lines.append(f"not restored: {acl_id} {_nacl_text(entry)}; the rule number now holds {_nacl_text(now)}")
        for piece in added:
            if _nacl_key(current.get((piece["RuleNumber"], piece["Egress"])) or {}) == _nacl_key(piece):
                ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=piece["RuleNumber"], Egress=False)
                lines.append(f"deleted the added {acl_id} {_nacl_text(piece)}")
        return lines

    @staticmethod
    def _is_piece_of(now: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
        """Whether `now` is a narrower allow entry apply wrote in `entry`'s place (same source, within its traffic)."""
        same_source = (now.get("CidrBlock"), now.get("Ipv6CidrBlock")) == (
            entry.get("CidrBlock"), entry.get("Ipv6CidrBlock"),
        )
        within = entry.get("Protocol") == ALL_TRAFFIC or now.get("Protocol") == entry.get("Protocol")
        return same_source and within and now.get("RuleAction") == "allow"

    @classmethod
    def _describe(cls, target: Target, acl_id: str, cached: bool = False) -> dict[str, Any]:
        """cached=True (assess only): from the run's cache or a batched describe (prefetch)."""
        def describe() -> list[dict[str, Any]]:
            try:
                acls: list[dict[str, Any]] = \
                    target.client("ec2").describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"]
            except ClientError as error:
                cls._raise_if_missing(error, acl_id)
                raise
            return acls

        acls = target.read((_ACLS.key, acl_id), describe) if cached else describe()
        if not acls:
            raise _gone(f"network ACL {acl_id}", "InvalidNetworkAclID.NotFound")
        return acls[0]

    @staticmethod
    def _raise_if_missing(error: ClientError, acl_id: str) -> None:
        if _error_is(error, "InvalidNetworkAclID.NotFound", "InvalidNetworkAclId.Malformed"):
            raise RemediationError(f"network ACL {acl_id} not found") from error


# -- instances ---------------------------------------------------------------------------------------------------


class InstanceMetadataV2(Remediator):
    """EC2.8: require IMDSv2 session tokens (HttpTokens=required) on the instance.

    The metadata endpoint is left as it is: turning it on where someone turned IMDS off would widen access.
    Disruptive: software still calling IMDSv1 (old SDKs, agents) loses instance credentials and metadata.
    """

    rules = (
        Rule(
            "EC2.8",
            "EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)",
            cis=("5.6",),
            disruptive=True,
            disruption="access",
            because="software still calling IMDSv1 loses instance credentials and metadata",
        ),
    )
    resource_types = ("AwsEc2Instance",)
    read_permissions = ("ec2:DescribeInstances",)
    write_permissions = ("ec2:ModifyInstanceMetadataOptions",)
    restore_permissions = ("ec2:ModifyInstanceMetadataOptions",)
    reversible = True
    state_keys = ("HttpTokens",)
    runbook = _resource_runbook(
        "AWSConfigRemediation-EnforceEC2InstanceIMDSv2",
        "InstanceId",
        ("ec2:DescribeInstances", "ec2:ModifyInstanceMetadataOptions"),
    )

    def prefetch(self, target: Target, findings: Sequence[Finding]) -> None:
        _INSTANCES.prefetch(target, _ids(findings))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        instance = self._describe(target, finding.resource_id, cached=True)
        options = instance.get("MetadataOptions", {})
        tokens = options.get("HttpTokens", "optional")
        if tokens == "required":
            return Assessment(compliant=True, pre_state={"InstanceId": finding.resource_id, "HttpTokens": tokens},
                              tags=_tags(instance))
        return Assessment(
            compliant=False,
            changes=[f"require IMDSv2 on {finding.resource_id} (HttpTokens {tokens} → required)"],
            pre_state={"InstanceId": finding.resource_id, "HttpTokens": tokens},
            tags=_tags(instance),
            context={"HttpEndpoint": options.get("HttpEndpoint")},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set_tokens(target, finding.resource_id, "required", assessment.context["HttpEndpoint"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        options = self._describe(target, finding.resource_id).get("MetadataOptions", {})
        tokens = pre_state["HttpTokens"]
        if options.get("HttpTokens") == tokens:
            return [f"{finding.resource_id}: HttpTokens is {tokens}; nothing to restore"]
        self._set_tokens(target, finding.resource_id, tokens, options.get("HttpEndpoint"))
        return [f"set HttpTokens back to {tokens} on {finding.resource_id}"]

    @staticmethod
    def _set_tokens(target: Target, instance_id: str, tokens: str, endpoint: str | None) -> None:
        # The endpoint state is sent as it is: AWS keeps omitted options, but emulators (moto) reset them.
        endpoint_arg = {"HttpEndpoint": endpoint} if endpoint else {}
        target.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpTokens=tokens, **endpoint_arg)

    @staticmethod
    def _describe(target: Target, instance_id: str, cached: bool = False) -> dict[str, Any]:
        """cached=True (assess only): from the run's cache or a batched describe (prefetch)."""
        def describe() -> list[dict[str, Any]]:
            try:
                reservations = target.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
            except ClientError as error:
                if _error_is(error, "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
                    raise RemediationError(f"instance {instance_id} not found") from error
                raise
            return [i for r in reservations for i in r.get("Instances", [])]

        instances = target.read((_INSTANCES.key, instance_id), describe) if cached else describe()
        if not instances:
            raise _gone(f"instance {instance_id}", "InvalidInstanceID.NotFound")
        state = instances[0].get("State", {}).get("Name")
        if state in ("shutting-down", "terminated"):
            raise RemediationError(f"instance {instance_id} is {state}")
        return instances[0]


# -- EBS snapshots -----------------------------------------------------------------------------------------------

_SNAPSHOT_MISSING = ("InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed")


class EbsSnapshotNotPublic(Remediator):
    """EC2.1: remove the public ("all") create-volume permission from the account's EBS snapshots.

    Security Hub reports EC2.1 on the account (AwsAccount: every public snapshot the account owns in the region);
    other sources may name one snapshot (resource id snap-…). Permissions for named accounts stay.
    """

    rules = (Rule("EC2.1", "Amazon EBS snapshots should not be publicly restorable"),)
    # ASFF has no snapshot resource type: "AwsEc2Snapshot" is the name used for a finding on one snapshot.
    resource_types = ("AwsAccount", "AwsEc2Snapshot")
    read_permissions = ("ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute")
    write_permissions = ("ec2:ModifySnapshotAttribute",)
    restore_permissions = ("ec2:ModifySnapshotAttribute",)
    reversible = True

    def assess(self, target: Target, finding: Finding) -> Assessment:
        ec2 = target.client("ec2")
        if finding.resource_type == "AwsAccount":
            candidates, tags = self._public_candidates(ec2, target.account_id), None
        else:
            candidates = [self._describe(ec2, finding.resource_id)]
            tags = _tags(candidates[0])
        public = [s for s in candidates if self._is_public(ec2, s["SnapshotId"])]
        left: list[str] = []
        if finding.resource_type == "AwsAccount":  # each snapshot's own exclusion tag (describe returns its tags)
            ids, left = split_excluded(target, ((s["SnapshotId"], functools.partial(_tags, s)) for s in public))
        else:
            ids = [s["SnapshotId"] for s in public]
        if not ids:
            excluded = f"every public snapshot carries the exclusion tag: {', '.join(left)}" if left else ""
            return Assessment(compliant=True, tags=tags, excluded=excluded)
        return Assessment(
            compliant=False,
            changes=[f"make {snapshot_id} private (remove createVolumePermission group all)" for snapshot_id in ids]
            + left_alone("public snapshot", left),
            pre_state={"PublicSnapshotIds": ids},
            tags=tags,
            context={"public": ids},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        for snapshot_id in assessment.context["public"]:
            self._set_public(target, snapshot_id, "remove")  # a snapshot deleted since is not public either

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        return [
            f"made {snapshot_id} publicly restorable again"
            if self._set_public(target, snapshot_id, "add")
            else f"{snapshot_id} no longer exists; nothing to restore"
            for snapshot_id in pre_state["PublicSnapshotIds"]
        ]

    @staticmethod
    def _public_candidates(ec2: Any, account_id: str) -> list[dict[str, Any]]:
        """The account's snapshots AWS reports as restorable by everyone; each is confirmed by its attribute."""
        pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], RestorableByUserIds=["all"])
        return [s for page in pages for s in page.get("Snapshots", []) if s.get("OwnerId") == account_id]

    @staticmethod
    def _describe(ec2: Any, snapshot_id: str) -> dict[str, Any]:
        try:
            snapshots: list[dict[str, Any]] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        except ClientError as error:
            if _error_is(error, *_SNAPSHOT_MISSING):
                raise RemediationError(f"snapshot {snapshot_id} not found") from error
            raise
        if not snapshots:
            raise RemediationError(f"snapshot {snapshot_id} not found")
        return snapshots[0]

    @staticmethod
    def _is_public(ec2: Any, snapshot_id: str) -> bool:
        try:
            attribute = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
        except ClientError as error:
            if _error_is(error, *_SNAPSHOT_MISSING):  # deleted since it was listed
                return False
            raise
        return any(p.get("Group") == "all" for p in attribute.get("CreateVolumePermissions", []))

    @staticmethod
    def _set_public(target: Target, snapshot_id: str, operation: str) -> bool:
        """Add or remove the "all" group; False when the snapshot no longer exists."""
        try:
            target.client("ec2").modify_snapshot_attribute(
                SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType=operation, GroupNames=["all"]
            )
        except ClientError as error:
            if _error_is(error, *_SNAPSHOT_MISSING):
                return False
            raise
        return True


# -- VPC flow logs -----------------------------------------------------------------------------------------------

# Retention values CloudWatch Logs accepts (PutRetentionPolicy).
RETENTION_DAYS = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
)


# The flow-log traffic types that log rejected traffic, which is what EC2.6 checks.
_LOGS_REJECTED = ("REJECT", "ALL")


class VpcFlowLogs(Remediator):
    """Create one VPC flow log (CloudWatch Logs with retention, or S3) where no active one logs rejected traffic.

    Security Hub's EC2.6 checks for a flow log of trafficType REJECT (CIS 3.7: at least REJECT); one of ALL traffic
    logs the rejected packets too and counts. So compliance never depends on `traffic_type`, which only says what
    to create (REJECT or ALL: an ACCEPT flow log would leave the control failing): an existing REJECT flow log is
    never joined by a second ALL one. An existing flow log is never modified. The VPC's tags are read when the
    finding carries none, for the exclusion tag: from the engine's batched tag read (tagging.py), else one
    DescribeVpcs, which also finds a VPC gone (one the batch settled and that is gone since is found by
    CreateFlowLogs at apply).
    """

    rules = (
        # Disruptive: flow logs cost money (ingestion and storage), so they need an explicit per-rule enforce.
        Rule(
            "EC2.6",
            "VPC flow logging should be enabled in all VPCs",
            cis=("3.7",),
            disruptive=True,
            disruption="cost",
            because="flow logs bill ingestion and storage",
        ),
    )
    resource_types = ("AwsEc2Vpc",)
    read_permissions = ("ec2:DescribeFlowLogs", "ec2:DescribeVpcs", "tag:GetResources")
    write_permissions = (
        "ec2:CreateFlowLogs",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:CreateLogDelivery",  # publishing to S3
        "logs:DeleteLogDelivery",
    )
    restore_permissions = (
        "ec2:DeleteFlowLogs",
        "logs:DeleteLogGroup",  # only a group this remediator created
    )
    reversible = True
    side_effects = "the flow log's CloudWatch Logs group (or S3 bucket) is billed per GB"
    params_schema = {
        "traffic_type": Param("REJECT", str, allowed=("REJECT", "ALL"), description="what a created flow log logs"),
        "destination_type": Param("cloud-watch-logs", str, allowed=("cloud-watch-logs", "s3")),
        "log_group_name": Param("/cspm-remediation/vpc-flow-logs", str, pattern=r"[\w#/.-]{1,512}"),
        "retention_days": Param(365, int, allowed=tuple(sorted(RETENTION_DAYS))),
        "delivery_role_name": Param("CSPMRemediationFlowLogsDelivery", str, pattern=ROLE_NAME),
        "s3_bucket_arn": Param(None, str, pattern=r"arn:aws[\w-]*:s3:::[a-z0-9.-]{3,63}(/.*)?"),
    }
    # CloudWatch Logs delivery (AWS's documented flow-logs role): the role and its group follow the params.
    service_roles = (ServiceRole(
        logical_id="FlowLogsDeliveryRole",
        name_param="delivery_role_name",
        service="vpc-flow-logs.amazonaws.com",
        statements=(
            (("logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"),
             ("arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:{log_group_name}",
              "arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:{log_group_name}:*")),
            (("logs:DescribeLogGroups",), ("*",)),
        ),
    ),)

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        # (account, region) whose log group is known to exist this run: the engine keeps one instance per rule
        # and run, so only the first VPC of an account and region touches the log group at all.
        self._log_group_ready: set[tuple[str, str]] = set()
        p = self.params
        if p["traffic_type"] not in _LOGS_REJECTED:
            raise ValueError(f"VpcFlowLogs: traffic_type must be REJECT or ALL, got {p['traffic_type']!r}")
        if p["destination_type"] not in ("cloud-watch-logs", "s3"):
            raise ValueError(
                f"VpcFlowLogs: destination_type must be cloud-watch-logs or s3, got {p['destination_type']!r}"
            )
        if p["destination_type"] == "s3" and not p["s3_bucket_arn"]:
            raise ValueError("VpcFlowLogs: destination_type s3 needs s3_bucket_arn")
        if p["destination_type"] == "cloud-watch-logs" and p["retention_days"] not in RETENTION_DAYS:
            raise ValueError(f"VpcFlowLogs: retention_days must be one of {sorted(RETENTION_DAYS)}")

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        arn = finding.resource_arn or ""
        if arn.startswith("arn:") and arn.endswith(f":vpc/{finding.resource_id}"):
            return arn
        return f"arn:{target.partition}:ec2:{target.api_region}:{target.account_id}:vpc/{finding.resource_id}"

    def prefetch(self, target: Target, findings: Sequence[Finding]) -> None:
        _FLOW_LOGS.prefetch(target, _ids(findings))
        # For their tags, the VPCs the engine's batched tag read (tagging.py) did not settle.
        _VPCS.prefetch(target, _ids([finding for finding in findings if not finding.tags and not target.cached(
            (TAGS, self.tagging_arn(target, finding)))]))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        vpc_id = finding.resource_id
        flow_logs = target.read((_FLOW_LOGS.key, vpc_id), lambda: list(_FLOW_LOGS.by_filter(
            target.client("ec2"), [vpc_id])))
        tags = self.resource_tags(target, finding, lambda: self._vpc_tags(target, vpc_id))
        if any(fl.get("FlowLogStatus") == "ACTIVE" and fl.get("TrafficType") in _LOGS_REJECTED for fl in flow_logs):
            return Assessment(compliant=True, tags=tags)
        return Assessment(
            compliant=False,
            changes=[f"create {self.params['traffic_type']} flow log for {vpc_id} to {self._destination_text()}"],
            pre_state={"FlowLogIds": [fl["FlowLogId"] for fl in flow_logs]},
            tags=tags,
        )

    @staticmethod
    def _vpc_tags(target: Target, vpc_id: str) -> dict[str, str]:
        def describe() -> list[dict[str, Any]]:
            try:
                vpcs: list[dict[str, Any]] = target.client("ec2").describe_vpcs(VpcIds=[vpc_id]).get("Vpcs", [])
            except ClientError as error:
                if _error_is(error, "InvalidVpcID.NotFound"):
                    raise RemediationError(f"vpc {vpc_id} not found") from error
                raise
            return vpcs

        vpcs = target.read((_VPCS.key, vpc_id), describe)
        if not vpcs:
            raise _gone(f"vpc {vpc_id}", "InvalidVpcID.NotFound")
        return _tags(vpcs[0])

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

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Delete what apply created (pre_state["created"], as the engine records it): the flow logs, then the log
        group — only when this remediator created it and no other flow log still delivers to it."""
        created = pre_state.get("created") or {}
        ec2 = target.client("ec2")
        lines = []
        flow_log_ids = created.get("FlowLogIds", [])
        if flow_log_ids:
            found = ec2.describe_flow_logs(Filters=[{"Name": "flow-log-id", "Values": flow_log_ids}])
            existing = [fl["FlowLogId"] for fl in found.get("FlowLogs", [])]
            if existing:
                ec2.delete_flow_logs(FlowLogIds=existing)
            lines += [f"deleted flow log {i}" if i in existing else f"flow log {i} already gone" for i in flow_log_ids]
        if created.get("LogGroupName"):
            lines.append(self._delete_log_group(target, created["LogGroupName"]))
        return lines or [f"nothing was created for {finding.resource_id}; nothing to restore"]

    @staticmethod
    def _delete_log_group(target: Target, name: str) -> str:
        users = target.client("ec2").describe_flow_logs(Filters=[{"Name": "log-group-name", "Values": [name]}])
        still_used = [fl["FlowLogId"] for fl in users.get("FlowLogs", [])]
        if still_used:
            return f"kept log group {name}: still used by {', '.join(still_used)}"
        try:
            target.client("logs").delete_log_group(logGroupName=name)
        except ClientError as error:
            if _error_is(error, "ResourceNotFoundException"):
                return f"log group {name} already gone"
            raise
        return f"deleted log group {name}"

    def _ensure_log_group(self, target: Target) -> bool:
        """Create the log group with its retention if it does not exist. True when this call created it.

        An existing group is left as it is: shortening someone's retention would delete their logs.
        """
        where = (target.account_id, target.api_region)
        if where in self._log_group_ready:
            return False
        logs = target.client("logs")
        name = self.params["log_group_name"]
        try:  # no describe first: CreateLogGroup itself says whether the group exists (one call, not two)
            logs.create_log_group(logGroupName=name)
        except ClientError as error:
            if aws_error_code(error) == "ResourceAlreadyExistsException":
                self._log_group_ready.add(where)
                return False
            raise
        self._log_group_ready.add(where)
        logs.put_retention_policy(logGroupName=name, retentionInDays=self.params["retention_days"])
        return True

    def _destination_text(self) -> str:
        if self.params["destination_type"] == "s3":
            return f"S3 {self.params['s3_bucket_arn']}"
        return (
            f"CloudWatch Logs group {self.params['log_group_name']} (created if missing, retention "
            f"{self.params['retention_days']} days)"
        )


# -- EBS default encryption --------------------------------------------------------------------------------------


class EbsDefaultEncryption(Remediator):
    """Turn on EBS encryption by default for the account in the finding's region.

    Only new volumes are affected; existing volumes keep their encryption state.
    """

    rules = (Rule("EC2.7", "EBS default encryption should be enabled", cis=("2.2.1",)),)
    resource_types = ("AwsAccount",)
    read_permissions = ("ec2:GetEbsEncryptionByDefault",)
    write_permissions = ("ec2:EnableEbsEncryptionByDefault",)
    restore_permissions = ("ec2:DisableEbsEncryptionByDefault",)
    reversible = True
    side_effects = (
        "every new EBS volume in the region is encrypted (aws/ebs unless another default key is set): "
        "snapshots and AMIs shared with other accounts then need a customer managed key shared with them, and "
        "instance types without EBS encryption support cannot launch"
    )
    state_keys = ("EbsEncryptionByDefault",)
    runbook = Runbook(
        document="AWSConfigRemediation-EnableEbsEncryptionByDefault",
        parameters=lambda finding, role_arn: {"AutomationAssumeRole": [role_arn]},
        permissions=("ec2:GetEbsEncryptionByDefault", "ec2:EnableEbsEncryptionByDefault"),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        enabled = target.read(("ec2.GetEbsEncryptionByDefault",), lambda: bool(
            target.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"]))
        if enabled:
            return Assessment(compliant=True, pre_state={"EbsEncryptionByDefault": True})
        return Assessment(
            compliant=False,
            changes=[f"enable EBS encryption by default in {target.api_region}"],
            pre_state={"EbsEncryptionByDefault": False},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("ec2").enable_ebs_encryption_by_default()

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if pre_state.get("EbsEncryptionByDefault") is not False:
            return [f"EBS encryption by default was not off before in {target.api_region}; nothing to restore"]
        target.client("ec2").disable_ebs_encryption_by_default()  # idempotent
        return [f"disabled EBS encryption by default in {target.api_region}"]
