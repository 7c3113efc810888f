"""Each watched CloudTrail event, made for real against moto and recorded in CloudTrail's shape, then translated and
run through the engine: `assess` decides. A call that broke the control is planned (enforce would act); one that
left the resource compliant is a `noop` — an event never acts on its own say-so.

moto in-process; the record is built from what the moto call returned (ids, ARNs), as CloudTrail would log it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from connectors import cloudtrail
from demo import cloudtrail_records as ct
from functions.engine.config import Config
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from tests.unit.test_cloudtrail_events import CASES
from tests.unit.test_remediators_s3_helpers import make_trail_bucket

R = ct.REGION
WORLD = "0.0.0.0/0"
Case = Callable[[], tuple[dict[str, Any], dict[str, str]]]  # → (record, {rule: outcome})


def c(service: str) -> Any:
    return boto3.client(service, region_name=R)


def _vpc() -> str:
    return c("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


def security_group() -> tuple[dict, dict]:
    ec2 = c("ec2")
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=_vpc())["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}])
    return ct.authorize_security_group_ingress(group, 22, WORLD), {
        "EC2.13": "planned", "EC2.53": "planned", "EC2.19": "planned", "EC2.14": "noop", "EC2.54": "noop"}


def security_group_private() -> tuple[dict, dict]:
    ec2 = c("ec2")
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=_vpc())["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    return ct.authorize_security_group_ingress(group, 22, "10.0.0.0/8"), dict.fromkeys(
        ("EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54"), "noop")


def network_acl(name: str = "CreateNetworkAclEntry") -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        ec2 = c("ec2")
        acl = ec2.create_network_acl(VpcId=_vpc())["NetworkAcl"]["NetworkAclId"]
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="6", RuleAction="allow", Egress=False,
                                     CidrBlock=WORLD, PortRange={"From": 22, "To": 22})
        if name == "ReplaceNetworkAclEntry":
            ec2.replace_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="6", RuleAction="deny",
                                          Egress=False, CidrBlock=WORLD, PortRange={"From": 22, "To": 22})
            return ct.network_acl_entry(acl, name), {"EC2.21": "noop", "netskope:nacl-allow-all-ingress": "noop"}
        # port 22 from anywhere breaks EC2.21; Netskope's rule is about all traffic, so it stays compliant
        return ct.network_acl_entry(acl, name), {"EC2.21": "planned", "netskope:nacl-allow-all-ingress": "noop"}
    return case


def snapshot() -> tuple[dict, dict]:
    ec2 = c("ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{R}a", Size=1)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add",
                                  GroupNames=["all"])
    return ct.modify_snapshot_attribute(snap), {"EC2.1": "planned"}


def ebs_default() -> tuple[dict, dict]:
    c("ec2").disable_ebs_encryption_by_default()
    return ct.disable_ebs_encryption_by_default(), {"EC2.7": "planned"}


def _instance(tokens: str) -> str:
    return c("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                  MetadataOptions={"HttpTokens": tokens})["Instances"][0]["InstanceId"]


def metadata_options() -> tuple[dict, dict]:
    instance = _instance("required")
    c("ec2").modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional", HttpEndpoint="enabled")
    return ct.modify_instance_metadata_options(instance, "optional"), {"EC2.8": "planned"}


def run_instances_v2() -> tuple[dict, dict]:
    return ct.run_instances([_instance("required")]), {"EC2.8": "noop"}


def create_vpc() -> tuple[dict, dict]:
    return ct.create_vpc(_vpc()), {"EC2.6": "planned"}


def _bucket(name: str = "app-data-events") -> str:
    c("s3").create_bucket(Bucket=name)
    return name


def bucket_policy() -> tuple[dict, dict]:
    bucket = _bucket()
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "Partner", "Effect": "Allow", "Principal": {
        "AWS": "arn:aws:iam::210987654321:root"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    c("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return ct.put_bucket_policy(bucket, policy), {"S3.5": "planned"}


def bucket_block(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        bucket = _bucket()
        block = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
                              True)
        c("s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
        if name == "DeleteBucketPublicAccessBlock":
            c("s3").delete_public_access_block(Bucket=bucket)
            return ct.bucket_public_access_block(bucket, name), {"S3.8": "planned"}
        return ct.bucket_public_access_block(bucket, name), {"S3.8": "noop"}
    return case


def account_block(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        s3control = c("s3control")
        if name == "PutAccountPublicAccessBlock":
            s3control.put_public_access_block(AccountId=ct.ACCOUNT, PublicAccessBlockConfiguration=dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True))
            return ct.account_public_access_block(name), {"S3.1": "noop"}
        return ct.account_public_access_block(name), {"S3.1": "planned"}  # no account block at all
    return case


def trail(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        bucket = make_trail_bucket("trail-logs-events")
        cloudtrail_client = c("cloudtrail")
        cloudtrail_client.create_trail(Name="org-trail", S3BucketName=bucket, IsMultiRegionTrail=True)
        if name == "CreateTrail":
            return ct.create_trail("org-trail", bucket), {"CloudTrail.2": "planned", "CloudTrail.4": "planned"}
        if name == "UpdateTrail":
            cloudtrail_client.update_trail(Name="org-trail", EnableLogFileValidation=True)
            cloudtrail_client.start_logging(Name="org-trail")
            return ct.update_trail("org-trail", bucket, by_arn=True), {
                "CloudTrail.2": "planned", "CloudTrail.4": "noop", "CloudTrail.1": "noop"}
        cloudtrail_client.start_logging(Name="org-trail")
        cloudtrail_client.stop_logging(Name="org-trail")
        return ct.stop_logging("org-trail"), {"CloudTrail.1": "planned"}
    return case


def delete_trail() -> tuple[dict, dict]:
    return ct.delete_trail("gone-trail"), {"CloudTrail.1": "planned"}  # no trail left at all


def kms(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        key = c("kms").create_key()["KeyMetadata"]
        if name == "CreateKey":
            return ct.create_key(key["KeyId"]), {"KMS.4": "planned"}
        c("kms").enable_key_rotation(KeyId=key["KeyId"])
        c("kms").disable_key_rotation(KeyId=key["KeyId"])
        return ct.disable_key_rotation(key["Arn"]), {"KMS.4": "planned"}
    return case


def db_instance(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        c("rds").create_db_instance(DBInstanceIdentifier="orders-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                                    MasterUsername="app", MasterUserPassword="Not-a-real-password1",
                                    AllocatedStorage=20, PubliclyAccessible=name == "CreateDBInstance",
                                    AutoMinorVersionUpgrade=True)
        if name == "ModifyDBInstance":
            c("rds").modify_db_instance(DBInstanceIdentifier="orders-db", AutoMinorVersionUpgrade=False,
                                        ApplyImmediately=True)
            return ct.db_instance("orders-db", name), {"RDS.2": "noop", "RDS.13": "planned"}
        return ct.db_instance("orders-db", name), {"RDS.2": "planned", "RDS.13": "noop"}
    return case


def db_snapshot(cluster: bool) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        rds = c("rds")
        if cluster:
            rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql", MasterUsername="app",
                                  MasterUserPassword="Not-a-real-password1")
            rds.create_db_cluster_snapshot(DBClusterIdentifier="aurora", DBClusterSnapshotIdentifier="aurora-snap")
            rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="aurora-snap",
                                                     AttributeName="restore", ValuesToAdd=["all"])
            return ct.modify_db_snapshot_attribute("aurora-snap", cluster=True), {"RDS.1": "planned"}
        db_instance("CreateDBInstance")()
        rds.create_db_snapshot(DBInstanceIdentifier="orders-db", DBSnapshotIdentifier="orders-snap")
        rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="orders-snap", AttributeName="restore",
                                         ValuesToAdd=["all"])
        return ct.modify_db_snapshot_attribute("orders-snap"), {"RDS.1": "planned"}
    return case


def redshift() -> tuple[dict, dict]:
    c("redshift").create_cluster(ClusterIdentifier="analytics", NodeType="dc2.large", MasterUsername="admin_user",
                                 MasterUserPassword="Not-a-real-password1", PubliclyAccessible=False)
    c("redshift").modify_cluster(ClusterIdentifier="analytics", PubliclyAccessible=True)
    return ct.modify_cluster("analytics"), {"Redshift.1": "planned"}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def lambda_permission() -> tuple[dict, dict]:
    role = c("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = c("lambda").create_function(FunctionName="resize", Runtime="python3.12", Role=role,
                                      Handler="handler.handler", Code={"ZipFile": _zip()})["FunctionArn"]
    c("lambda").add_permission(FunctionName="resize", StatementId="open", Action="lambda:InvokeFunction",
                               Principal="*")
    return ct.add_permission(arn), {"Lambda.1": "planned"}


def queue_policy() -> tuple[dict, dict]:
    url = c("sqs").create_queue(QueueName="orders")["QueueUrl"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}]})
    c("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return ct.set_queue_attributes(url, policy), {"SQS.3": "planned"}


def password_policy(name: str) -> Callable[[], tuple[dict, dict]]:
    def case() -> tuple[dict, dict]:
        if name == "UpdateAccountPasswordPolicy":
            c("iam").update_account_password_policy(MinimumPasswordLength=8)
            return ct.update_account_password_policy(), {"IAM.15": "planned"}
        return ct.delete_account_password_policy(), {"IAM.10": "planned", "IAM.15": "planned"}
    return case


SETUPS: dict[str, list[Case]] = {
    "AuthorizeSecurityGroupIngress": [security_group, security_group_private],
    "CreateNetworkAclEntry": [network_acl()],
    "ReplaceNetworkAclEntry": [network_acl("ReplaceNetworkAclEntry")],
    "ModifySnapshotAttribute": [snapshot],
    "DisableEbsEncryptionByDefault": [ebs_default],
    "ModifyInstanceMetadataOptions": [metadata_options],
    "RunInstances": [run_instances_v2],
    "CreateVpc": [create_vpc],
    "PutBucketPolicy": [bucket_policy],
    "PutBucketPublicAccessBlock": [bucket_block("PutBucketPublicAccessBlock")],
    "DeleteBucketPublicAccessBlock": [bucket_block("DeleteBucketPublicAccessBlock")],
    "PutAccountPublicAccessBlock": [account_block("PutAccountPublicAccessBlock")],
    "DeleteAccountPublicAccessBlock": [account_block("DeleteAccountPublicAccessBlock")],
    "CreateTrail": [trail("CreateTrail")],
    "UpdateTrail": [trail("UpdateTrail")],
    "StopLogging": [trail("StopLogging")],
    "DeleteTrail": [delete_trail],
    "DisableKeyRotation": [kms("DisableKeyRotation")],
    "CreateKey": [kms("CreateKey")],
    "CreateDBInstance": [db_instance("CreateDBInstance")],
    "ModifyDBInstance": [db_instance("ModifyDBInstance")],
    "ModifyDBSnapshotAttribute": [db_snapshot(cluster=False)],
    "ModifyDBClusterSnapshotAttribute": [db_snapshot(cluster=True)],
    "ModifyCluster": [redshift],
    "AddPermission20150331v2": [lambda_permission],
    "SetQueueAttributes": [queue_policy],
    "UpdateAccountPasswordPolicy": [password_policy("UpdateAccountPasswordPolicy")],
    "DeleteAccountPasswordPolicy": [password_policy("DeleteAccountPasswordPolicy")],
}


def test_every_event_of_the_table_has_a_moto_case() -> None:
    assert set(SETUPS) == set(CASES)


@pytest.mark.parametrize("setup", [s for cases in SETUPS.values() for s in cases],
                         ids=[f"{name}-{s.__name__}" for name, cases in SETUPS.items() for s in cases])
def test_assess_decides_what_an_event_means(moto_aws, setup: Case) -> None:
    body, expected = setup()
    findings = cloudtrail.translate(ct.event(body)).findings
    engine = Engine(Config(), AssumedSessions(), stage="plan")
    results = engine.run(findings)
    outcomes = {f.rule_id: r.outcome for f, r in zip(findings, results, strict=True)}
    reasons = {f.rule_id: f"{r.outcome}: {r.reason}" for f, r in zip(findings, results, strict=True)}
    assert {rule: outcomes.get(rule) for rule in expected} == expected, reasons
    assert not {o for o in outcomes.values()} & {"remediated", "started", "failed"}, reasons
