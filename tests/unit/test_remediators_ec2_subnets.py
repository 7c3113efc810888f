"""EC2.15 against moto: a subnet that hands out public IPs stops doing so, read back; a second assess is compliant;
the subnet's CIDR, IPv6 setting and tags survive; the plan is disruptive only where the subnet routes to an
internet gateway; rollback turns it back on."""

from __future__ import annotations

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.ec2_subnets import SubnetNoAutoPublicIp, internet_gateways, subnet_id
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls


@pytest.fixture
def ec2(moto_aws):
    return boto3.client("ec2", region_name=REGION)


def make_subnet(ec2, public_route: bool) -> tuple[str, str | None]:
    """A subnet with MapPublicIpOnLaunch on; with `public_route`, its own route table routes 0.0.0.0/0 to an IGW."""
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": "tier", "Value": "web"}]}])["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    gateway = None
    if public_route:
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return subnet, gateway


def finding(subnet: str, **overrides):
    return make_finding("EC2.15", "AwsEc2Subnet", subnet, **overrides)


def maps_public_ip(ec2, subnet: str) -> bool:
    return ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["MapPublicIpOnLaunch"]


def test_private_subnet_is_fixed_without_being_disruptive(target: Target, ec2) -> None:
    subnet, _ = make_subnet(ec2, public_route=False)
    remediator = SubnetNoAutoPublicIp()
    calls = record_calls(target.client("ec2"))

    before = remediator.assess(target, finding(subnet))
    assert not before.compliant and not before.disruptive
    assert before.tags == {"tier": "web"}
    assert before.changes == [f"set MapPublicIpOnLaunch=False on subnet {subnet} (running instances keep their "
                              "addresses)"]
    assert maps_public_ip(ec2, subnet)

    remediator.apply(target, finding(subnet), before)

    assert not maps_public_ip(ec2, subnet)
    after = remediator.assess(target, finding(subnet))
    assert after.compliant and after.changes == []
    assert calls == ["DescribeSubnets", "DescribeRouteTables", "ModifySubnetAttribute", "DescribeSubnets"]
    kept = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
    assert kept["CidrBlock"] == "10.20.1.0/24" and kept["AssignIpv6AddressOnCreation"] is False


def test_subnet_routing_to_an_internet_gateway_is_a_disruptive_change(target: Target, ec2) -> None:
    subnet, gateway = make_subnet(ec2, public_route=True)

    assessment = SubnetNoAutoPublicIp().assess(target, finding(subnet))

    assert not assessment.compliant
    assert assessment.disruptive.startswith(f"subnet {subnet} routes to internet gateway {gateway}")


def test_restore_turns_it_back_on(target: Target, sessions: AssumedSessions, ec2) -> None:
    subnet, _ = make_subnet(ec2, public_route=False)
    remediator = SubnetNoAutoPublicIp()
    assessment = remediator.assess(target, finding(subnet))
    remediator.apply(target, finding(subnet), assessment)

    assert remediator.restore(target, finding(subnet), assessment.pre_state) == [
        f"set MapPublicIpOnLaunch back to True on subnet {subnet}"]
    assert remediator.restore(target, finding(subnet), assessment.pre_state) == [
        f"MapPublicIpOnLaunch of subnet {subnet} is already True"]
    assert maps_public_ip(ec2, subnet)
    assert iam_actions(sessions.api_calls) == set(SubnetNoAutoPublicIp.permissions)


def test_missing_subnet_is_refused(target: Target, ec2) -> None:
    with pytest.raises(RemediationError, match="subnet subnet-0123456789abcdef0 not found"):
        SubnetNoAutoPublicIp().assess(target, finding("subnet-0123456789abcdef0"))


def test_subnet_id_from_an_arn_and_the_main_route_table() -> None:
    assert subnet_id(finding(f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0abc")) == "subnet-0abc"
    main = {"Associations": [{"Main": True}], "Routes": [{"GatewayId": "igw-1", "State": "active"}]}
    own = {"Associations": [{"SubnetId": "subnet-0abc"}], "Routes": [{"GatewayId": "local"}]}
    assert internet_gateways([main], "subnet-0abc") == ["igw-1"]  # no table of its own: the main one
    assert internet_gateways([main, own], "subnet-0abc") == []  # its own table wins
