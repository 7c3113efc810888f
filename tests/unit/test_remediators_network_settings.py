"""EC2.23 and AutoScaling.1 against moto: the one setting changes and is read back, a second assess is compliant,
the other settings survive (transit gateway ASN and DNS support; group sizes, grace period, target groups), and
rollback puts the old value back (twice is harmless)."""

from __future__ import annotations

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.network_settings import GroupElbHealthChecks, TransitGatewayNoAutoAccept, group_name
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions


@pytest.fixture
def ec2(moto_aws):
    return boto3.client("ec2", region_name=REGION)


def test_transit_gateway_stops_auto_accepting(target: Target, sessions: AssumedSessions, ec2) -> None:
    gateway = ec2.create_transit_gateway(Options={"AutoAcceptSharedAttachments": "enable", "DnsSupport": "enable",
                                                  "AmazonSideAsn": 64600})["TransitGateway"]["TransitGatewayId"]
    remediator, finding = TransitGatewayNoAutoAccept(), make_finding("EC2.23", "AwsEc2TransitGateway", gateway)

    before = remediator.assess(target, finding)
    assert before.changes == [f"turn off automatic acceptance of shared attachments on {gateway}"]
    remediator.apply(target, finding, before)

    options = ec2.describe_transit_gateways(TransitGatewayIds=[gateway])["TransitGateways"][0]["Options"]
    assert (options["AutoAcceptSharedAttachments"], options["DnsSupport"], options["AmazonSideAsn"]) == (
        "disable", "enable", 64600)
    assert remediator.assess(target, finding).compliant
    assert remediator.restore(target, finding, before.pre_state) == [
        f"set AutoAcceptSharedAttachments back to enable on {gateway}"]
    assert remediator.restore(target, finding, before.pre_state) == [
        f"AutoAcceptSharedAttachments of {gateway} is already enable"]
    assert iam_actions(sessions.api_calls) == set(TransitGatewayNoAutoAccept.permissions)


def make_group(ec2, with_target_group: bool = True) -> str:
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    autoscaling.create_launch_configuration(LaunchConfigurationName="web", ImageId="ami-12c6146b",
                                            InstanceType="t3.micro")
    target_groups = []
    if with_target_group:
        target_groups = [boto3.client("elbv2", region_name=REGION).create_target_group(
            Name="web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="web", MinSize=1, MaxSize=4, DesiredCapacity=2,
        VPCZoneIdentifier=subnet, HealthCheckType="EC2", HealthCheckGracePeriod=240, TargetGroupARNs=target_groups)
    return "web"


def group(name: str) -> dict:
    return boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def test_group_behind_a_target_group_uses_elb_health_checks(target: Target, sessions: AssumedSessions, ec2) -> None:
    name = make_group(ec2)
    remediator, finding = GroupElbHealthChecks(), make_finding("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", name)

    before = remediator.assess(target, finding)
    assert not before.compliant and "grace period 240 s kept" in before.changes[0]
    remediator.apply(target, finding, before)

    now = group(name)
    assert (now["HealthCheckType"], now["HealthCheckGracePeriod"], now["DesiredCapacity"], now["MaxSize"]) == (
        "ELB", 240, 2, 4)
    assert len(now["TargetGroupARNs"]) == 1
    assert remediator.assess(target, finding).compliant
    assert remediator.restore(target, finding, before.pre_state) == [
        f"set HealthCheckType back to EC2 on Auto Scaling group {name}"]
    assert group(name)["HealthCheckType"] == "EC2"
    assert iam_actions(sessions.api_calls) == set(GroupElbHealthChecks.permissions)


def test_group_without_a_load_balancer_is_not_in_scope(target: Target, ec2) -> None:
    name = make_group(ec2, with_target_group=False)

    assert GroupElbHealthChecks().assess(target, make_finding("AutoScaling.1", "AwsAutoScalingAutoScalingGroup",
                                                              name)).compliant


def test_missing_resources_are_refused_and_arns_are_read(target: Target, ec2) -> None:
    with pytest.raises(RemediationError, match="Auto Scaling group gone not found"):
        GroupElbHealthChecks().assess(target, make_finding("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", "gone"))
    arn = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1a2b:autoScalingGroupName/web"
    assert group_name(make_finding("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", arn)) == "web"
