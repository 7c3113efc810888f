"""One-setting remediators for Transit Gateways (EC2.23) and Auto Scaling groups (AutoScaling.1).

EC2.23: a transit gateway that accepts shared attachments automatically lets any account it is shared with attach
a VPC without review. Turning auto-accept off changes nothing for existing attachments; a new one waits in
pendingAcceptance until someone accepts it (said as a side effect). AutoScaling.1: a group behind a load balancer
that only uses EC2 status checks keeps instances the load balancer already considers unhealthy. With ELB health
checks the group replaces them, which is disruptive (traffic) where the target group's health check is wrong: every
instance could be replaced in turn. The grace period and everything else stay. Rollback puts the old value back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, tag_dict


class TransitGatewayNoAutoAccept(Remediator):
    """EC2.23: set AutoAcceptSharedAttachments=disable (one DescribeTransitGateways to check)."""

    rules = (Rule("EC2.23", "Amazon EC2 Transit Gateways should not automatically accept VPC attachment requests"),)
    resource_types = ("AwsEc2TransitGateway",)
    read_permissions = ("ec2:DescribeTransitGateways",)
    write_permissions = ("ec2:ModifyTransitGateway",)
    restore_permissions = ("ec2:ModifyTransitGateway",)
    reversible = True
    state_keys = ("AutoAcceptSharedAttachments",)
    side_effects = "new attachments from accounts the gateway is shared with wait for someone to accept them"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        gateway = self._describe(target, finding.resource_id.rsplit("/", 1)[-1])
        identifier = gateway["TransitGatewayId"]
        current = gateway.get("Options", {}).get("AutoAcceptSharedAttachments", "disable")
        state, tags = {"AutoAcceptSharedAttachments": current}, tag_dict(gateway.get("Tags", []))
        if current != "enable":
            return Assessment(compliant=True, pre_state=state, tags=tags, context={"TransitGatewayId": identifier})
        return Assessment(compliant=False, pre_state=state, tags=tags, context={"TransitGatewayId": identifier},
                          changes=[f"turn off automatic acceptance of shared attachments on {identifier}"])

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set(target, assessment.context["TransitGatewayId"], "disable")

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        identifier, previous = finding.resource_id.rsplit("/", 1)[-1], pre_state["AutoAcceptSharedAttachments"]
        if self._describe(target, identifier).get("Options", {}).get("AutoAcceptSharedAttachments") == previous:
            return [f"AutoAcceptSharedAttachments of {identifier} is already {previous}"]
        self._set(target, identifier, previous)
        return [f"set AutoAcceptSharedAttachments back to {previous} on {identifier}"]

    @staticmethod
    def _set(target: Target, identifier: str, value: str) -> None:
        target.client("ec2").modify_transit_gateway(TransitGatewayId=identifier,
                                                    Options={"AutoAcceptSharedAttachments": value})

    @staticmethod
    def _describe(target: Target, identifier: str) -> dict[str, Any]:
        gateways: list[dict[str, Any]] = target.client("ec2").describe_transit_gateways(
            TransitGatewayIds=[identifier]).get("TransitGateways", [])
        if not gateways:
            raise RemediationError(f"transit gateway {identifier} not found")
        return gateways[0]


def group_name(finding: Finding) -> str:
    """The group name: the finding's id, or what follows autoScalingGroupName/ in a group ARN."""
    resource = finding.resource_id
    return resource.split("autoScalingGroupName/", 1)[1] if "autoScalingGroupName/" in resource else resource


class GroupElbHealthChecks(Remediator):
    """AutoScaling.1: HealthCheckType=ELB for a group with a load balancer or target group."""

    rules = (Rule("AutoScaling.1", "Auto Scaling groups associated with a load balancer should use ELB health checks",
                  disruptive=True, disruption="traffic",
                  because="the group replaces instances the load balancer marks unhealthy, all of them if its "
                          "health check is wrong"),)
    resource_types = ("AwsAutoScalingAutoScalingGroup",)
    read_permissions = ("autoscaling:DescribeAutoScalingGroups",)
    write_permissions = ("autoscaling:UpdateAutoScalingGroup",)
    restore_permissions = ("autoscaling:UpdateAutoScalingGroup",)
    reversible = True
    state_keys = ("HealthCheckType",)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        group = self._describe(target, group_name(finding))
        name, current = group["AutoScalingGroupName"], group.get("HealthCheckType", "EC2")
        state, tags = {"HealthCheckType": current}, tag_dict(group.get("Tags", []))
        behind = [*group.get("LoadBalancerNames", []), *group.get("TargetGroupARNs", [])]
        if current == "ELB" or not behind:  # the control applies to groups behind a load balancer only
            return Assessment(compliant=True, pre_state=state, tags=tags, context={"name": name})
        grace = group.get("HealthCheckGracePeriod", 0)
        return Assessment(
            compliant=False, pre_state=state, tags=tags, context={"name": name},
            changes=[f"use ELB health checks for Auto Scaling group {name} ({', '.join(behind)}; grace period "
                     f"{grace} s kept): instances the load balancer marks unhealthy are replaced"],
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=assessment.context["name"],
                                                               HealthCheckType="ELB")

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name, previous = group_name(finding), pre_state["HealthCheckType"]
        if self._describe(target, name).get("HealthCheckType") == previous:
            return [f"HealthCheckType of Auto Scaling group {name} is already {previous}"]
        target.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, HealthCheckType=previous)
        return [f"set HealthCheckType back to {previous} on Auto Scaling group {name}"]

    @staticmethod
    def _describe(target: Target, name: str) -> dict[str, Any]:
        groups: list[dict[str, Any]] = target.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
        if not groups:
            raise RemediationError(f"Auto Scaling group {name} not found")
        return groups[0]
