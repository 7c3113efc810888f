"""EC2 subnet remediators: no automatic public IPv4 addresses (EC2.15).

EC2.15 passes when a subnet's MapPublicIpOnLaunch is false. Turning it off never touches a running instance or an
address already assigned; it changes what instances launched later get when they do not ask: nothing. That is
harmless in a subnet without a route to an internet gateway (the address could not be used), and can cut an
instance off in one with such a route (an Auto Scaling group launching into a public subnet without
AssociatePublicIpAddress gets instances with no internet access). So the plan reads the subnet's route table and,
where it routes to an internet gateway, says the change is disruptive: it then needs the rule's own `enforce`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, tag_dict


def subnet_id(finding: Finding) -> str:
    """subnet-… from the finding's id or a subnet ARN (arn:…:ec2:r:a:subnet/subnet-…)."""
    return finding.resource_id.rsplit("/", 1)[-1]


def internet_gateways(route_tables: list[dict[str, Any]], subnet: str) -> list[str]:
    """The internet gateways the subnet routes to: through its own route table, else the VPC's main one."""
    own = [t for t in route_tables if any(a.get("SubnetId") == subnet for a in t.get("Associations", []))]
    main = [t for t in route_tables if any(a.get("Main") for a in t.get("Associations", []))]
    found = {
        route["GatewayId"]
        for table in (own or main)[:1]
        for route in table.get("Routes", [])
        if str(route.get("GatewayId", "")).startswith("igw-") and route.get("State", "active") == "active"
    }
    return sorted(found)


class SubnetNoAutoPublicIp(Remediator):
    """EC2.15: set MapPublicIpOnLaunch=false on the subnet (one ModifySubnetAttribute).

    One DescribeSubnets reads the setting and the tags; for a subnet that would change, one DescribeRouteTables (the
    VPC's) says whether the change is disruptive. Rollback turns it back on.
    """

    rules = (Rule("EC2.15", "Amazon EC2 subnets should not automatically assign public IP addresses"),)
    resource_types = ("AwsEc2Subnet",)
    read_permissions = ("ec2:DescribeSubnets", "ec2:DescribeRouteTables")
    write_permissions = ("ec2:ModifySubnetAttribute",)
    restore_permissions = ("ec2:ModifySubnetAttribute",)
    reversible = True
    side_effects = "instances launched later get a public IPv4 address only when they ask for one"
    state_keys = ("MapPublicIpOnLaunch",)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        subnet = self._describe(target, subnet_id(finding))
        state = {"MapPublicIpOnLaunch": bool(subnet.get("MapPublicIpOnLaunch"))}
        tags = tag_dict(subnet.get("Tags", []))
        identifier = subnet["SubnetId"]
        if not state["MapPublicIpOnLaunch"]:
            return Assessment(compliant=True, pre_state=state, tags=tags, context={"SubnetId": identifier})
        tables = target.client("ec2").describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [subnet["VpcId"]]}]).get("RouteTables", [])
        gateways = internet_gateways(tables, identifier)
        disruptive = (
            f"subnet {identifier} routes to internet gateway {', '.join(gateways)}: instances launched into it "
            "without asking for a public IP (Auto Scaling groups, launch templates without "
            "AssociatePublicIpAddress) would have no internet access"
        ) if gateways else ""
        return Assessment(
            compliant=False,
            changes=[f"set MapPublicIpOnLaunch=False on subnet {identifier} (running instances keep their addresses)"],
            pre_state=state,
            tags=tags,
            context={"SubnetId": identifier},
            disruptive=disruptive,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set(target, assessment.context["SubnetId"], False)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        identifier, previous = subnet_id(finding), bool(pre_state["MapPublicIpOnLaunch"])
        if bool(self._describe(target, identifier).get("MapPublicIpOnLaunch")) == previous:
            return [f"MapPublicIpOnLaunch of subnet {identifier} is already {previous}"]
        self._set(target, identifier, previous)
        return [f"set MapPublicIpOnLaunch back to {previous} on subnet {identifier}"]

    @staticmethod
    def _set(target: Target, identifier: str, value: bool) -> None:
        target.client("ec2").modify_subnet_attribute(SubnetId=identifier, MapPublicIpOnLaunch={"Value": value})

    @staticmethod
    def _describe(target: Target, identifier: str) -> dict[str, Any]:
        try:
            subnet: dict[str, Any] = target.client("ec2").describe_subnets(SubnetIds=[identifier])["Subnets"][0]
            return subnet
        except ClientError as error:
            if aws_error_code(error) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                raise RemediationError(f"subnet {identifier} not found") from error
            raise
