"""The exclusion tag for the remediators the other tag tests leave out (issue #14, "a test per remediator"): a
Netskope-shaped finding carries no tags, so assess reads the resource's live ones and the engine reports
`excluded` under a global enforce (the rule's own enforce too), writing nothing; the same resource without the tag
is planned, so the tag, not something else, excludes it. The meta-test at the end names, for every remediator of
the catalog, the test that proves this for it (or why its findings have no resource to tag), so a new remediator
without one fails there."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.engine.catalog import REMEDIATORS
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.remediators.base import NotifyOnlyRemediator
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import create_trail, make_trail_bucket, trail_arn

EXCLUDE = {"cspm-remediation:exclude": "true"}
Made = tuple[str, Callable[[], bool], dict[str, Any]]  # resource id, still as it was?, finding overrides


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ec2_tags(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": tag_list(tags)}] if tags else []


def ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def rds() -> Any:
    return boto3.client("rds", region_name=REGION)


def redshift() -> Any:
    return boto3.client("redshift", region_name=REGION)


def vpc(n: int) -> str:
    return ec2().create_vpc(CidrBlock=f"10.{40 + n}.0.0/16")["Vpc"]["VpcId"]


def open_group(ports: tuple[int, int]) -> Callable[[dict[str, str]], Made]:
    def make(tags: dict[str, str]) -> Made:
        client = ec2()
        group = client.create_security_group(GroupName=f"web{len(tags)}", Description="web", VpcId=vpc(len(tags)),
                                             TagSpecifications=ec2_tags("security-group", tags))["GroupId"]
        client.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": ports[0], "ToPort": ports[1], "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

        def unchanged() -> bool:
            permissions = client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
            return [(p["FromPort"], p["ToPort"]) for p in permissions] == [ports]
        return group, unchanged, {}
    return make


def default_group(tags: dict[str, str]) -> Made:
    client, vpc_id = ec2(), vpc(len(tags))
    group = client.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                     {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]["GroupId"]
    if tags:
        client.create_tags(Resources=[group], Tags=tag_list(tags))
    client.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    return group, lambda: bool(
        client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]), {}


def default_acl(tags: dict[str, str]) -> Made:
    client, vpc_id = ec2(), vpc(len(tags))
    acl = client.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    if tags:
        client.create_tags(Resources=[acl["NetworkAclId"]], Tags=tag_list(tags))
    entries = acl["Entries"]
    return acl["NetworkAclId"], lambda: client.describe_network_acls(NetworkAclIds=[acl["NetworkAclId"]])[
        "NetworkAcls"][0]["Entries"] == entries, {}


def instance(tags: dict[str, str]) -> Made:
    client = ec2()
    instance_id = client.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                       TagSpecifications=ec2_tags("instance", tags))["Instances"][0]["InstanceId"]
    client.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="optional")
    return instance_id, lambda: client.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["MetadataOptions"]["HttpTokens"] == "optional", {}


def subnet(tags: dict[str, str]) -> Made:
    client = ec2()
    subnet_id = client.create_subnet(VpcId=vpc(len(tags)), CidrBlock=f"10.{40 + len(tags)}.1.0/24",
                                     TagSpecifications=ec2_tags("subnet", tags))["Subnet"]["SubnetId"]
    client.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    return subnet_id, lambda: client.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0][
        "MapPublicIpOnLaunch"] is True, {}


def transit_gateway(tags: dict[str, str]) -> Made:
    client = ec2()
    gateway = client.create_transit_gateway(Options={"AutoAcceptSharedAttachments": "enable"},
                                            TagSpecifications=ec2_tags("transit-gateway", tags))[
        "TransitGateway"]["TransitGatewayId"]
    return gateway, lambda: client.describe_transit_gateways(TransitGatewayIds=[gateway])["TransitGateways"][0][
        "Options"]["AutoAcceptSharedAttachments"] == "enable", {}


def autoscaling_group(tags: dict[str, str]) -> Made:
    n, autoscaling = len(tags), boto3.client("autoscaling", region_name=REGION)
    vpc_id = vpc(n)
    subnet_id = ec2().create_subnet(VpcId=vpc_id, CidrBlock=f"10.{40 + n}.1.0/24")["Subnet"]["SubnetId"]
    target_group = boto3.client("elbv2", region_name=REGION).create_target_group(
        Name=f"web{n}", Protocol="HTTP", Port=80, VpcId=vpc_id)["TargetGroups"][0]["TargetGroupArn"]
    autoscaling.create_launch_configuration(LaunchConfigurationName=f"web{n}", ImageId="ami-12c6146b",
                                            InstanceType="t3.micro")
    name = f"web{n}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0, MaxSize=1, DesiredCapacity=0,
        VPCZoneIdentifier=subnet_id, HealthCheckType="EC2", TargetGroupARNs=[target_group],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": False} for k, v in tags.items()])
    return name, lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"][0]["HealthCheckType"] == "EC2", {}


def api_stage(tags: dict[str, str]) -> Made:
    client = boto3.client("apigateway", region_name=REGION)
    api = client.create_rest_api(name=f"shop{len(tags)}")["id"]
    root = client.get_resources(restApiId=api)["items"][0]["id"]
    client.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = client.create_deployment(restApiId=api)["id"]
    client.create_stage(restApiId=api, stageName="prod", deploymentId=deployment, cacheClusterEnabled=True,
                        cacheClusterSize="0.5", tags=tags)
    client.update_stage(restApiId=api, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"}])

    def unchanged() -> bool:
        return client.get_stage(restApiId=api, stageName="prod")["methodSettings"]["*/*"][
            "cacheDataEncrypted"] is False
    return f"{api}/prod", unchanged, {"resource_arn": f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/prod"}


def db_instance(setting: str, value: Any, **create: Any) -> Callable[[dict[str, str]], Made]:
    def make(tags: dict[str, str]) -> Made:
        name = f"db{len(tags)}"
        rds().create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.small", Engine="postgres", AllocatedStorage=20,
            MasterUsername="admin_user", MasterUserPassword="not-a-real-password", Tags=tag_list(tags),
            **{setting: value, **create})
        return name, lambda: rds().describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0][
            setting] == value, {}
    return make


def db_cluster(setting: str) -> Callable[[dict[str, str]], Made]:
    def make(tags: dict[str, str]) -> Made:
        name = f"aurora{len(tags)}"
        rds().create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="admin1",
                                MasterUserPassword="correct-horse-9", Tags=tag_list(tags), **{setting: False})
        return name, lambda: rds().describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0][
            setting] is False, {}
    return make


def redshift_cluster(setting: str, value: Any) -> Callable[[dict[str, str]], Made]:
    def make(tags: dict[str, str]) -> Made:
        name = f"analytics{len(tags)}"
        settings = {"PubliclyAccessible": False, "AutomatedSnapshotRetentionPeriod": 7, "AllowVersionUpgrade": True,
                    setting: value}
        redshift().create_cluster(ClusterIdentifier=name, NodeType="ra3.xlplus", MasterUsername="admin",
                                  MasterUserPassword="Correct9Horse", ClusterType="single-node",
                                  Tags=tag_list(tags), **settings)
        return name, lambda: redshift().describe_clusters(ClusterIdentifier=name)["Clusters"][0][
            setting] == value, {}
    return make


def trail_to_s3_only(tags: dict[str, str]) -> Made:
    name = f"audit{len(tags)}"
    create_trail(name, make_trail_bucket(f"audit-logs-{len(tags)}"), IsMultiRegionTrail=True,
                 TagsList=tag_list(tags))

    def unchanged() -> bool:
        (found,) = boto3.client("cloudtrail", region_name=REGION).describe_trails(trailNameList=[name])["trailList"]
        return not found.get("CloudWatchLogsLogGroupArn")
    return name, unchanged, {"resource_arn": trail_arn(name)}


def public_bucket(tags: dict[str, str]) -> Made:
    s3, bucket = boto3.client("s3", region_name=REGION), f"press-kit-{len(tags)}"
    s3.create_bucket(Bucket=bucket)
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [
        {"ObjectOwnership": "ObjectWriter"}]})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    if tags:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(tags)})

    def unchanged() -> bool:
        try:
            s3.get_public_access_block(Bucket=bucket)
        except s3.exceptions.ClientError:
            return True
        return False
    return bucket, unchanged, {}


def iam_user(tags: dict[str, str]) -> Made:
    iam, name = boto3.client("iam", region_name=REGION), f"etl{len(tags)}"
    iam.create_user(UserName=name, Tags=tag_list(tags))
    iam.create_access_key(UserName=name)
    return name, lambda: [k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]] == [
        "Active"], {}


CASES: list[tuple[str, str, Callable[[dict[str, str]], Made]]] = [
    ("EC2.53", "AwsEc2SecurityGroup", open_group((0, 65535))),
    ("EC2.19", "AwsEc2SecurityGroup", open_group((0, 65535))),
    ("EC2.2", "AwsEc2SecurityGroup", default_group),
    ("EC2.21", "AwsEc2NetworkAcl", default_acl),
    ("EC2.8", "AwsEc2Instance", instance),
    ("EC2.15", "AwsEc2Subnet", subnet),
    ("EC2.23", "AwsEc2TransitGateway", transit_gateway),
    ("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", autoscaling_group),
    ("APIGateway.5", "AwsApiGatewayStage", api_stage),
    ("RDS.2", "AwsRdsDbInstance", db_instance("PubliclyAccessible", True)),
    ("RDS.3", "AwsRdsDbInstance", db_instance("StorageEncrypted", False)),
    ("RDS.5", "AwsRdsDbInstance", db_instance("MultiAZ", False)),
    ("RDS.8", "AwsRdsDbInstance", db_instance("DeletionProtection", False)),
    ("RDS.13", "AwsRdsDbInstance", db_instance("AutoMinorVersionUpgrade", False)),
    ("RDS.7", "AwsRdsDbCluster", db_cluster("DeletionProtection")),
    ("RDS.16", "AwsRdsDbCluster", db_cluster("CopyTagsToSnapshot")),
    ("Redshift.1", "AwsRedshiftCluster", redshift_cluster("PubliclyAccessible", True)),
    ("Redshift.3", "AwsRedshiftCluster", redshift_cluster("AutomatedSnapshotRetentionPeriod", 1)),
    ("Redshift.6", "AwsRedshiftCluster", redshift_cluster("AllowVersionUpgrade", False)),
    ("CloudTrail.5", "AwsCloudTrailTrail", trail_to_s3_only),
    ("S3.2", "AwsS3Bucket", public_bucket),
    ("IAM.8", "AwsIamUser", iam_user),
]
IDS = [rule for rule, _, _ in CASES]
# A fresh access key is neither old nor unused: IAM.8's untagged twin is compliant (noop), but it was assessed.
COMPLIANT_TWIN = {"IAM.8"}


def run(rule_id: str, resource_type: str, resource_id: str, mode: str, overrides: dict[str, Any]) -> Any:
    finding = make_finding(rule_id, resource_type, resource_id, source="netskope", tags={}, **overrides)
    config = config_from_dict({"mode": "enforce", "rules": {rule_id: {"mode": mode}}})
    (result,) = Engine(config, AssumedSessions(), stage="apply").run([finding])
    return result


@pytest.mark.parametrize(("rule_id", "resource_type", "make"), CASES, ids=IDS)
def test_tagged_resource_is_excluded_and_left_alone(moto_aws: None, rule_id: str, resource_type: str,
                                                    make: Callable[[dict[str, str]], Made]) -> None:
    resource_id, unchanged, overrides = make(EXCLUDE)

    result = run(rule_id, resource_type, resource_id, "enforce", overrides)

    assert (result.outcome, result.reason) == ("excluded", "resource has tag cspm-remediation:exclude=true")
    assert unchanged()


@pytest.mark.parametrize(("rule_id", "resource_type", "make"), CASES, ids=IDS)
def test_the_same_resource_without_the_tag_is_planned(moto_aws: None, rule_id: str, resource_type: str,
                                                      make: Callable[[dict[str, str]], Made]) -> None:
    resource_id, unchanged, overrides = make({})

    result = run(rule_id, resource_type, resource_id, "dry-run", overrides)

    assert result.outcome == ("noop" if rule_id in COMPLIANT_TWIN else "planned"), result.reason
    assert result.account_id == ACCOUNT
    assert unchanged()


# -- meta-test: every remediator has its exclusion test --------------------------------------------------------

UNIT = Path(__file__).resolve().parent
# Where each remediator's exclusion tag is proven for a finding that carries no tags (module: rules it covers).
PROVEN_IN = {
    "test_tags_every_remediator.py": set(IDS),
    "test_tags_everywhere.py": {"SQS.3", "Lambda.1", "IAM.3", "IAM.22", "IAM.2", "IAM.27", "KMS.4", "CloudTrail.4",
                                "CloudTrail.2", "CloudTrail.7", "EC2.6"},
    "test_tags_new_rules.py": {"SQS.1", "SNS.1", "DynamoDB.6", "ECR.1", "CloudWatch.16", "SSM.4"},
    "test_remediators_s3_tags.py": {"S3.8", "S3.5"},
    "test_remediators_s3_encryption.py": {"S3.4"},
    "test_batched_tags_more.py": {"Athena.4"},
    "test_remediators_rds.py": {"RDS.1"},
    "test_account_level_exclusions.py": {"EC2.1", "IAM.26", "IAM.27"},
}
# Findings on the account (or an account-wide setting): no resource of theirs carries the exclusion tag; the
# config's account exclusions apply to them instead.
ACCOUNT_LEVEL = {
    "S3.1", "EC2.7", "SSM.7", "IAM.7", "IAM.10", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16",
    "IAM.17", "IAM.18", "IAM.28", "Account.1", "GuardDuty.1", "Macie.1", "CloudTrail.1", "S3.22", "S3.23",
    *(f"CloudWatch.{n}" for n in range(1, 15)),  # metric filters and alarms on the account's trail
}


def test_every_remediator_that_acts_on_a_resource_has_an_exclusion_test() -> None:
    proven = set().union(*PROVEN_IN.values())
    missing = {}
    for cls in REMEDIATORS:
        if issubclass(cls, NotifyOnlyRemediator):
            continue  # notify-only: nothing is ever written, so there is no change to exclude
        rules = {rule.rule_id for rule in cls.rules}  # one assess serves them all: one rule proves the class
        if not (rules & proven or rules <= ACCOUNT_LEVEL):
            missing[cls.__name__] = sorted(rules)
    assert not missing, f"remediators without a test that their exclusion tag holds: {missing}"


def test_each_named_module_holds_exclusion_tests() -> None:
    for module in PROVEN_IN:
        tree = ast.parse((UNIT / module).read_text(encoding="utf-8"))
        tests = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
                 and "exclu" in ast.unparse(n)]
        assert tests, module
