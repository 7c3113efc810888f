"""The demo organization: a security account and three member accounts, each misconfigured on purpose.

Everything is created through the AWS APIs of the moto server (as a real org would be), except the age of
one access key: moto stamps new keys with "now" and has no API to change it, so the demo ages it in moto's
in-process backend to simulate a key created 120 days ago.

Each misconfiguration is recorded as a `Planted` item: the finding a CSPM would raise for it (Security Hub
ASFF or a Netskope violation), and an independent check of the resource's state used to verify the run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.prowler_checks import CHECK_RULES
from demo.fake_securityhub_v2 import control_finding
from demo.moto_org import (
    EXCLUDE_TAG,
    HOME,
    OTHER,
    SECURITY_ACCOUNT,
    WORLD_V4,
    WORLD_V6,
    admin_sessions,
    age_access_key,
    asff_finding,
    create_accounts,
    create_remediation_roles,
    ip_permission,
    netskope_violation,
    open_security_group,
    opens,
)
from demo.prowler_output import ocsf_finding
from functions.engine.sessions import AssumedSessions
from functions.remediators.iam_access_keys import RULE_ID as ONE_ACTIVE_KEY

_PROWLER_CHECKS = {rule: check for check, rule in reversed(list(CHECK_RULES.items()))}  # rule → a Prowler check


@dataclass
class Planted:
    """One deliberate misconfiguration and how to tell whether it is fixed."""

    label: str
    account: str
    rule_id: str
    resource_id: str
    expect: str  # "fixed" or "untouched" (excluded / no remediator / not ours to change)
    check: Callable[[], bool]  # True when the resource is compliant


@dataclass
class Org:
    accounts: dict[str, str]  # name → account id
    planted: list[Planted] = field(default_factory=list)
    asff: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    prowler: list[dict[str, Any]] = field(default_factory=list)  # a `prowler aws -M json-ocsf` scan file
    ocsf: list[dict[str, Any]] = field(default_factory=list)  # Security Hub's OCSF findings (GetFindingsV2)


def build_org() -> Org:
    """Create the organization and every misconfiguration; return what a CSPM would report about them."""
    members = ("prod", "dev", "sandbox")
    accounts = {"security": SECURITY_ACCOUNT, **dict(zip(members, create_accounts(members), strict=True))}
    org = Org(accounts=accounts)
    admin = admin_sessions()
    for name in ("prod", "dev", "sandbox"):
        create_remediation_roles(admin, accounts[name])

    prod, dev, sandbox = accounts["prod"], accounts["dev"], accounts["sandbox"]
    world = _World(org, admin)
    # prod: reported by Security Hub
    world.security_group(prod, HOME, "admin-open", [(22, WORLD_V4), (3389, WORLD_V4)], "EC2.53", "securityhub")
    world.security_group(prod, HOME, "bastion-approved", [(22, WORLD_V4)], "EC2.53", "securityhub",
                         tags={EXCLUDE_TAG: "approved by SEC-1234"}, expect="untouched")
    bucket = world.bucket(prod, f"prod-data-{prod}", "securityhub")
    world.netskope_duplicate_of_bucket(prod, bucket)
    world.account_public_access_block(prod, "securityhub")
    world.password_policy(prod)
    world.kms_key(prod, HOME)
    world.trail(prod, HOME, "prod-trail", "securityhub")
    world.vpc(prod, HOME, "securityhub")
    world.ebs_default_encryption(prod, HOME)
    world.old_access_key(prod, "legacy-ci", "securityhub")
    # dev: Security Hub, another region, IPv6
    world.security_group(dev, OTHER, "rdp-v6", [(3389, WORLD_V6)], "EC2.54", "securityhub")
    world.ebs_default_encryption(dev, OTHER)
    world.vpc(dev, OTHER, "securityhub")
    world.bucket(dev, f"dev-artifacts-{dev}", "securityhub")
    world.password_policy(dev)
    world.public_queue(dev)
    world.newer_services(dev)  # SQS.1, DynamoDB.6, ECR.1, CloudWatch.16 (issue 17)
    world.issue17_acting(dev)  # S3.4, SNS.1, SSM.4, APIGateway.5, GuardDuty.1, Macie.1, Account.1
    world.issue17_load_balanced_web(dev)  # AutoScaling.1; notified: AutoScaling.3/.5, ELB.1, CloudFront.1
    world.public_function(dev)
    world.db_without_minor_upgrades(dev)
    world.unencrypted_file_system(dev)  # notify-only: needs a migration a person plans
    world.root_without_mfa(dev)  # notify-only: only the root user can fix it
    world.config_not_recording(dev)  # notify-only: a recorder and delivery channel are an org-level decision
    # dev, also in Security Hub's new generation (OCSF findings through GetFindingsV2)
    world.security_group(dev, OTHER, "ssh-ocsf", [(22, WORLD_V4)], "EC2.13", "securityhub-v2")
    world.bucket(dev, f"dev-ocsf-{dev}", "securityhub-v2")
    # sandbox: reported by Netskope
    world.security_group(sandbox, OTHER, "ssh-world", [(22, WORLD_V4)], "EC2.13", "netskope")
    world.security_group(sandbox, HOME, "rdp-world", [(3389, WORLD_V4)], "EC2.14", "netskope")
    world.bucket(sandbox, f"sandbox-share-{sandbox}", "netskope")
    world.old_access_key(sandbox, "etl-service", "netskope")
    world.trail(sandbox, HOME, "sandbox-trail", "netskope")
    world.vpc(sandbox, HOME, "netskope")
    world.account_public_access_block(sandbox, "securityhub", expect="untouched")  # excluded per account
    world.public_redshift_cluster(sandbox)
    world.public_db_snapshot(sandbox)
    world.netskope_without_remediator(sandbox)
    world.malformed_asff(sandbox)
    # sandbox, also scanned by Prowler: its json-ocsf output file
    world.security_group(sandbox, HOME, "ssh-prowler", [(22, WORLD_V4)], "EC2.13", "prowler")
    world.password_policy(sandbox, "prowler")
    world.prowler_muted_group(sandbox)
    world.issue17_notify_only(sandbox)  # notify-only services: Secrets Manager, CodeBuild, ECS, ...
    return org


class _World:
    """Creates resources in member accounts and records the findings a CSPM would raise for them."""

    def __init__(self, org: Org, admin: AssumedSessions) -> None:
        self.org = org
        self.admin = admin

    def client(self, account: str, region: str, service: str):
        return self.admin.target(account, region).client(service)

    # -- findings -------------------------------------------------------------------------------
    def report(self, source: str, account: str, region: str, rule_id: str, resource_type: str,
               resource_id: str, arn: str | None, title: str) -> None:
        if source == "securityhub":
            self.org.asff.append(asff_finding(account, region, rule_id, resource_type, arn or resource_id, title))
        elif source == "securityhub-v2":
            self.org.ocsf.append(control_finding(rule_id, account, region, resource_type, arn or resource_id, title))
        elif source == "prowler":
            self.org.prowler.append(ocsf_finding(_PROWLER_CHECKS[rule_id], account, region, resource_type,
                                                 arn or resource_id, title))
        else:
            self.org.violations.append(netskope_violation(account, region, rule_id, arn or resource_id, title))

    def plant(self, label: str, account: str, rule_id: str, resource_id: str, check: Callable[[], bool],
              expect: str = "fixed") -> None:
        self.org.planted.append(Planted(label, account, rule_id, resource_id, expect, check))

    # -- resources ------------------------------------------------------------------------------
    def security_group(self, account: str, region: str, name: str, openings: list[tuple[int, str]], rule_id: str,
                       source: str, tags: dict[str, str] | None = None, expect: str = "fixed") -> None:
        ec2 = self.client(account, region, "ec2")
        # 443 is legitimate: it must survive remediation
        group = open_security_group(ec2, name, [*openings, (443, WORLD_V4)], f"demo {name}")
        if tags:
            ec2.create_tags(Resources=[group], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        arn = f"arn:aws:ec2:{region}:{account}:security-group/{group}"
        self.report(source, account, region, rule_id, "AwsEc2SecurityGroup", group, arn,
                    f"Security group {name} allows admin ports from the internet")

        def admin_ports_closed() -> bool:
            perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
            https_kept = any(p.get("FromPort") == 443 for p in perms)
            return https_kept and not any(opens(p, port, cidr) for p in perms for port, cidr in openings)

        self.plant(f"security group {name} ({region})", account, rule_id, group, admin_ports_closed, expect)

    def bucket(self, account: str, name: str, source: str, expect: str = "fixed") -> str:
        s3 = self.client(account, HOME, "s3")
        s3.create_bucket(Bucket=name)
        self.report(source, account, HOME, "S3.8", "AwsS3Bucket", name, f"arn:aws:s3:::{name}",
                    f"S3 bucket {name} does not block public access")

        def blocked() -> bool:
            try:
                config = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            except s3.exceptions.ClientError:
                return False
            return all(config.values())

        self.plant(f"bucket {name}", account, "S3.8", name, blocked, expect)
        return name

    def netskope_duplicate_of_bucket(self, account: str, bucket: str) -> None:
        """Both CSPMs report the same bucket: one action, the second finding is a duplicate."""
        self.report("netskope", account, HOME, "S3.8", "AwsS3Bucket", bucket, None, "bucket public")

    def account_public_access_block(self, account: str, source: str, expect: str = "fixed") -> None:
        s3control = self.client(account, HOME, "s3control")
        self.report(source, account, HOME, "S3.1", "AwsAccount", account, None,
                    "S3 Block Public Access should be enabled at the account level")

        def blocked() -> bool:
            try:
                config = s3control.get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"]
            except s3control.exceptions.ClientError:
                return False
            return all(config.values())

        self.plant("account-level S3 Block Public Access", account, "S3.1", account, blocked, expect)

    def password_policy(self, account: str, source: str = "securityhub") -> None:
        iam = self.client(account, HOME, "iam")
        iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=3,
                                           RequireSymbols=True, AllowUsersToChangePassword=True)
        for rule_id, title in (("IAM.15", "password policy minimum length"), ("IAM.16", "password reuse")):
            if source == "prowler":  # Prowler names the policy itself, not the account
                self.report(source, account, HOME, rule_id, "AwsIamPolicy", account,
                            f"arn:aws:iam:{HOME}:{account}:password-policy", title)
            else:
                self.report(source, account, HOME, rule_id, "AwsAccount", account, None, title)

        def strong(rule_id: str) -> Callable[[], bool]:
            def check() -> bool:
                policy = iam.get_account_password_policy()["PasswordPolicy"]
                kept = policy.get("RequireSymbols") is True  # an existing setting must survive
                if rule_id == "IAM.15":
                    return kept and policy["MinimumPasswordLength"] >= 14
                return kept and policy.get("PasswordReusePrevention", 0) >= 24
            return check

        self.plant("password policy length ≥ 14", account, "IAM.15", account, strong("IAM.15"))
        self.plant("password policy reuse ≥ 24", account, "IAM.16", account, strong("IAM.16"))

    def kms_key(self, account: str, region: str) -> None:
        kms = self.client(account, region, "kms")
        key = kms.create_key(Description="demo data key")["KeyMetadata"]
        self.report("securityhub", account, region, "KMS.4", "AwsKmsKey", key["KeyId"], key["Arn"],
                    "KMS key rotation should be enabled")
        self.plant("KMS key rotation", account, "KMS.4", key["KeyId"],
                   lambda: kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"])

    def trail(self, account: str, region: str, name: str, source: str) -> None:
        s3 = self.client(account, region, "s3")
        bucket = f"{name}-logs-{account}"
        s3.create_bucket(Bucket=bucket)
        cloudtrail = self.client(account, region, "cloudtrail")
        arn = cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True)["TrailARN"]
        self.report(source, account, region, "CloudTrail.4", "AwsCloudTrailTrail", name, arn,
                    "CloudTrail log file validation should be enabled")

        def validated() -> bool:
            trails = cloudtrail.describe_trails(trailNameList=[arn])["trailList"]
            return any(t["TrailARN"] == arn and t.get("LogFileValidationEnabled") for t in trails)

        self.plant(f"trail {name} log file validation", account, "CloudTrail.4", name, validated)

    def vpc(self, account: str, region: str, source: str) -> None:
        ec2 = self.client(account, region, "ec2")
        vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        self.report(source, account, region, "EC2.6", "AwsEc2Vpc", vpc,
                    f"arn:aws:ec2:{region}:{account}:vpc/{vpc}", "VPC flow logging should be enabled")

        def logged() -> bool:
            logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
            return len(logs) == 1  # exactly one: idempotent, never a second

        self.plant(f"VPC {vpc} flow logs ({region})", account, "EC2.6", vpc, logged)

    def ebs_default_encryption(self, account: str, region: str) -> None:
        ec2 = self.client(account, region, "ec2")
        self.report("securityhub", account, region, "EC2.7", "AwsAccount", account, None,
                    "EBS default encryption should be enabled")
        self.plant(f"EBS default encryption ({region})", account, "EC2.7", account,
                   lambda: ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])

    def old_access_key(self, account: str, user: str, source: str) -> None:
        iam = self.client(account, HOME, "iam")
        iam.create_user(UserName=user)
        key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        age_access_key(account, user, key_id, days=120)
        region = "global" if source == "netskope" else HOME
        self.report(source, account, region, "IAM.3", "AwsIamUser", user,
                    f"arn:aws:iam::{account}:user/{user}", "access keys should be rotated every 90 days")

        def deactivated_not_deleted() -> bool:
            keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            return [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key_id, "Inactive")]

        self.plant(f"user {user}'s 120-day-old key", account, "IAM.3", user, deactivated_not_deleted)

    def public_queue(self, account: str) -> None:
        sqs = self.client(account, HOME, "sqs")
        url = sqs.create_queue(QueueName="orders-events")["QueueUrl"]
        arn = f"arn:aws:sqs:{HOME}:{account}:orders-events"
        scoped = {"Sid": "FromOrderService", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn,
                  "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}
        anyone = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": arn}
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(
            {"Version": "2012-10-17", "Statement": [scoped, anyone]})})
        self.report("securityhub", account, HOME, "SQS.3", "AwsSqsQueue", arn, arn,
                    "SQS queue access policies should not allow public access")

        def private_and_scoped_kept() -> bool:
            policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"].get("Policy")
            statements = json.loads(policy)["Statement"] if policy else []
            return [st.get("Sid") for st in statements] == ["FromOrderService"]

        self.plant("queue orders-events policy", account, "SQS.3", arn, private_and_scoped_kept)

    def newer_services(self, account: str) -> None:
        """One finding per newer service (SQS.1, DynamoDB.6, ECR.1, CloudWatch.16), each read back after the fix."""
        sqs = self.client(account, HOME, "sqs")
        url = sqs.create_queue(QueueName="invoices", Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
        queue_arn = f"arn:aws:sqs:{HOME}:{account}:invoices"
        self.report("securityhub", account, HOME, "SQS.1", "AwsSqsQueue", queue_arn, queue_arn,
                    "Amazon SQS queues should be encrypted at rest")
        self.plant("queue invoices encryption", account, "SQS.1", queue_arn, lambda: sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["SqsManagedSseEnabled"])["Attributes"]["SqsManagedSseEnabled"] == "true")

        dynamodb = self.client(account, HOME, "dynamodb")
        table_arn = dynamodb.create_table(
            TableName="carts", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])["TableDescription"]["TableArn"]
        self.report("securityhub", account, HOME, "DynamoDB.6", "AwsDynamoDbTable", table_arn, table_arn,
                    "DynamoDB tables should have deletion protection enabled")
        self.plant("table carts deletion protection", account, "DynamoDB.6", table_arn, lambda: dynamodb.describe_table(
            TableName="carts")["Table"]["DeletionProtectionEnabled"])

        ecr = self.client(account, HOME, "ecr")
        repo_arn = ecr.create_repository(repositoryName="web/api")["repository"]["repositoryArn"]
        self.report("securityhub", account, HOME, "ECR.1", "AwsEcrRepository", repo_arn, repo_arn,
                    "ECR private repositories should have image scanning configured")
        self.plant("repository web/api scan on push", account, "ECR.1", repo_arn, lambda: ecr.describe_repositories(
            repositoryNames=["web/api"])["repositories"][0]["imageScanningConfiguration"]["scanOnPush"])

        logs = self.client(account, HOME, "logs")
        logs.create_log_group(logGroupName="/app/checkout")
        logs.put_retention_policy(logGroupName="/app/checkout", retentionInDays=14)
        group_arn = f"arn:aws:logs:{HOME}:{account}:log-group:/app/checkout"
        self.report("securityhub", account, HOME, "CloudWatch.16", "AwsLogsLogGroup", group_arn, group_arn,
                    "CloudWatch log groups should be retained for a specified period of time")
        self.plant("log group /app/checkout retention", account, "CloudWatch.16", group_arn,
                   lambda: logs.describe_log_groups(logGroupNamePrefix="/app/checkout")["logGroups"][0][
                       "retentionInDays"] == 365)

    def issue17_acting(self, account: str) -> None:
        """One finding per service issue 17 acts on and the demo did not plant yet, each read back after the fix:
        S3.4, SNS.1, SSM.4, APIGateway.5, GuardDuty.1, Macie.1, Account.1. (Not Athena.4: moto has no
        UpdateWorkGroup; its test stubs the documented shapes.)"""
        s3 = self.client(account, HOME, "s3")
        bucket = f"dev-exports-{account}"
        s3.create_bucket(Bucket=bucket)  # moto gives a new bucket no default encryption (AWS now does: SSE-S3)
        self.report("securityhub", account, HOME, "S3.4", "AwsS3Bucket", bucket, f"arn:aws:s3:::{bucket}",
                    "S3 buckets should have server-side encryption enabled")

        def sse_s3() -> bool:
            try:
                rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            except s3.exceptions.ClientError:
                return False
            return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

        self.plant(f"bucket {bucket} default encryption", account, "S3.4", bucket, sse_s3)

        sns = self.client(account, HOME, "sns")
        topic = sns.create_topic(Name="order-alerts")["TopicArn"]
        self.report("securityhub", account, HOME, "SNS.1", "AwsSnsTopic", topic, topic,
                    "SNS topics should be encrypted at-rest using AWS KMS")
        self.plant("topic order-alerts encryption", account, "SNS.1", topic, lambda: bool(
            sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("KmsMasterKeyId")))

        ssm = self.client(account, HOME, "ssm")
        ssm.create_document(Name="RotateLogs", DocumentType="Command", DocumentFormat="JSON", Content=json.dumps({
            "schemaVersion": "2.2", "description": "rotate logs", "mainSteps": [
                {"action": "aws:runShellScript", "name": "rotate", "inputs": {"runCommand": ["logrotate -f"]}}]}))
        ssm.modify_document_permission(Name="RotateLogs", PermissionType="Share", AccountIdsToAdd=["All"])
        self.report("securityhub", account, HOME, "SSM.4", "AwsSsmDocument", "RotateLogs",
                    f"arn:aws:ssm:{HOME}:{account}:document/RotateLogs", "SSM documents should not be public")
        self.plant("document RotateLogs sharing", account, "SSM.4", "RotateLogs", lambda: "all" not in {
            a.lower() for a in ssm.describe_document_permission(Name="RotateLogs", PermissionType="Share")[
                "AccountIds"]})

        apigateway = self.client(account, HOME, "apigateway")
        api = apigateway.create_rest_api(name="shop")["id"]
        root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
        apigateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
        deployment = apigateway.create_deployment(restApiId=api)["id"]
        apigateway.create_stage(restApiId=api, stageName="prod", deploymentId=deployment, cacheClusterEnabled=True,
                                cacheClusterSize="0.5")
        apigateway.update_stage(restApiId=api, stageName="prod", patchOperations=[
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
            {"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"}])
        self.report("securityhub", account, HOME, "APIGateway.5", "AwsApiGatewayStage", f"{api}/prod",
                    f"arn:aws:apigateway:{HOME}::/restapis/{api}/stages/prod",
                    "API Gateway REST API cache data should be encrypted at rest")
        self.plant("stage shop/prod cache encryption", account, "APIGateway.5", f"{api}/prod",
                   lambda: apigateway.get_stage(restApiId=api, stageName="prod")["methodSettings"]["*/*"][
                       "cacheDataEncrypted"])

        guardduty = self.client(account, HOME, "guardduty")
        self.report("securityhub", account, HOME, "GuardDuty.1", "AwsAccount", f"AWS::::Account:{account}", None,
                    "GuardDuty should be enabled")
        self.plant("GuardDuty detector", account, "GuardDuty.1", account, lambda: any(
            guardduty.get_detector(DetectorId=d)["Status"] == "ENABLED"
            for d in guardduty.list_detectors()["DetectorIds"]))

        macie = self.client(account, HOME, "macie2")
        macie.disable_macie()  # moto starts every account with Macie on
        self.report("securityhub", account, HOME, "Macie.1", "AwsAccount", f"AWS::::Account:{account}", None,
                    "Amazon Macie should be enabled")

        def macie_enabled() -> bool:
            try:
                return bool(macie.get_macie_session()["status"] == "ENABLED")
            except macie.exceptions.ClientError:
                return False

        self.plant("Amazon Macie", account, "Macie.1", account, macie_enabled)

        contacts = self.client(account, HOME, "account")
        self.report("securityhub", account, HOME, "Account.1", "AwsAccount", f"AWS::::Account:{account}", None,
                    "Security contact information should be provided for an AWS account")

        def security_contact() -> bool:
            try:
                contacts.get_alternate_contact(AlternateContactType="SECURITY")
            except contacts.exceptions.ClientError:
                return False
            return True

        self.plant("security contact (set from the config)", account, "Account.1", account, security_contact)

    def issue17_load_balanced_web(self, account: str) -> None:
        """A web tier behind a load balancer: AutoScaling.1 (fixed: ELB health checks), and notified, left as they
        are: its launch configuration (AutoScaling.3 IMDSv1, AutoScaling.5 public IPs), its HTTP listener that does
        not redirect (ELB.1), and a CloudFront distribution without a default root object (CloudFront.1)."""
        ec2 = self.client(account, HOME, "ec2")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=f"{HOME}{zone}")[
            "Subnet"]["SubnetId"] for n, zone in ((1, "a"), (2, "b"))]
        elbv2 = self.client(account, HOME, "elbv2")
        target_group = elbv2.create_target_group(Name="shop-web", Protocol="HTTP", Port=80, VpcId=vpc)[
            "TargetGroups"][0]["TargetGroupArn"]
        balancer = elbv2.create_load_balancer(Name="shop-alb", Subnets=subnets, Type="application")[
            "LoadBalancers"][0]["LoadBalancerArn"]
        listener = elbv2.create_listener(LoadBalancerArn=balancer, Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": target_group}])["Listeners"][0]["ListenerArn"]
        self.report("securityhub", account, HOME, "ELB.1", "AwsElbv2LoadBalancer", balancer, balancer,
                    "Application Load Balancer should be configured to redirect all HTTP requests to HTTPS")
        self.plant("load balancer shop-alb HTTP redirect (notify only)", account, "ELB.1", balancer,
                   lambda: elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0][
                       "Type"] == "redirect", expect="untouched")

        autoscaling = self.client(account, HOME, "autoscaling")
        autoscaling.create_launch_configuration(LaunchConfigurationName="shop-web-v1", ImageId="ami-12c6146b",
                                                InstanceType="t3.micro", AssociatePublicIpAddress=True)
        config_arn = autoscaling.describe_launch_configurations(LaunchConfigurationNames=["shop-web-v1"])[
            "LaunchConfigurations"][0]["LaunchConfigurationARN"]

        def launch_configuration() -> dict[str, Any]:
            return autoscaling.describe_launch_configurations(LaunchConfigurationNames=["shop-web-v1"])[
                "LaunchConfigurations"][0]

        for rule_id, title, label, compliant in (
            ("AutoScaling.3", "Auto Scaling group launch configurations should configure EC2 instances to require "
             "Instance Metadata Service Version 2 (IMDSv2)", "IMDSv2",
             lambda: (launch_configuration().get("MetadataOptions") or {}).get("HttpTokens") == "required"),
            ("AutoScaling.5", "Amazon EC2 instances launched using Auto Scaling group launch configurations should "
             "not have Public IP addresses", "public IPs",
             lambda: not launch_configuration().get("AssociatePublicIpAddress")),
        ):
            self.report("securityhub", account, HOME, rule_id, "AwsAutoScalingLaunchConfiguration", "shop-web-v1",
                        config_arn, title)
            self.plant(f"launch configuration shop-web-v1 {label} (notify only)", account, rule_id, "shop-web-v1",
                       compliant, expect="untouched")

        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="shop-web", LaunchConfigurationName="shop-web-v1", MinSize=0, MaxSize=2,
            DesiredCapacity=0, VPCZoneIdentifier=",".join(subnets), HealthCheckType="EC2", HealthCheckGracePeriod=300,
            TargetGroupARNs=[target_group])
        group_arn = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])[
            "AutoScalingGroups"][0]["AutoScalingGroupARN"]
        self.report("securityhub", account, HOME, "AutoScaling.1", "AwsAutoScalingAutoScalingGroup", "shop-web",
                    group_arn, "Auto Scaling groups associated with a load balancer should use ELB health checks")
        self.plant("Auto Scaling group shop-web health checks", account, "AutoScaling.1", "shop-web",
                   lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])[
                       "AutoScalingGroups"][0]["HealthCheckType"] == "ELB")

        cloudfront = self.client(account, HOME, "cloudfront")
        distribution = cloudfront.create_distribution(DistributionConfig={
            "CallerReference": "shop-cdn", "Comment": "shop", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "shop-alb", "DomainName": "shop.example.com",
                                                  "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                         "OriginProtocolPolicy": "https-only"}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "shop-alb", "ViewerProtocolPolicy": "redirect-to-https",
                                     "MinTTL": 0, "ForwardedValues": {"QueryString": False,
                                                                      "Cookies": {"Forward": "none"}}},
        })["Distribution"]
        self.report("securityhub", account, HOME, "CloudFront.1", "AwsCloudFrontDistribution", distribution["Id"],
                    distribution["ARN"], "CloudFront distributions should have a default root object configured")
        self.plant("distribution shop-cdn default root object (notify only)", account, "CloudFront.1",
                   distribution["Id"], lambda: bool(cloudfront.get_distribution_config(Id=distribution["Id"])[
                       "DistributionConfig"].get("DefaultRootObject")), expect="untouched")

    def issue17_notify_only(self, account: str) -> None:
        """One finding per notify-only service of issue 17 (a person must act): notified, and read back unchanged."""
        secrets = self.client(account, HOME, "secretsmanager")
        secret = secrets.create_secret(Name="payments/api-key", SecretString="not-a-real-key")["ARN"]
        self.report("securityhub", account, HOME, "SecretsManager.1", "AwsSecretsManagerSecret", secret, secret,
                    "Secrets Manager secrets should have automatic rotation enabled")
        self.plant("secret payments/api-key rotation (notify only)", account, "SecretsManager.1", secret,
                   lambda: bool(secrets.describe_secret(SecretId=secret).get("RotationEnabled")), expect="untouched")

        iam = self.client(account, HOME, "iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "codebuild.amazonaws.com"}}]}
        role = iam.create_role(RoleName="demo-build-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        codebuild = self.client(account, HOME, "codebuild")
        project = codebuild.create_project(
            name="image-builder", source={"type": "S3", "location": f"demo-build-sources-{account}/src.zip"},
            artifacts={"type": "NO_ARTIFACTS"}, serviceRole=role,
            environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                         "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True})["project"]["arn"]
        self.report("securityhub", account, HOME, "CodeBuild.5", "AwsCodeBuildProject", "image-builder", project,
                    "CodeBuild project environments should not have privileged mode enabled")
        self.plant("project image-builder privileged mode (notify only)", account, "CodeBuild.5", "image-builder",
                   lambda: not codebuild.batch_get_projects(names=["image-builder"])["projects"][0]["environment"][
                       "privilegedMode"], expect="untouched")

        ecs = self.client(account, HOME, "ecs")
        task = ecs.register_task_definition(family="web", containerDefinitions=[
            {"name": "web", "image": "nginx", "memory": 256, "readonlyRootFilesystem": False}])["taskDefinition"]
        self.report("securityhub", account, HOME, "ECS.5", "AwsEcsTaskDefinition", "web:1",
                    task["taskDefinitionArn"], "ECS containers should be limited to read-only access to root "
                    "filesystems")
        self.plant("task definition web:1 root file system (notify only)", account, "ECS.5", "web:1",
                   lambda: bool(ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"][
                       "containerDefinitions"][0].get("readonlyRootFilesystem")), expect="untouched")

        cloudformation = self.client(account, HOME, "cloudformation")
        stack = cloudformation.create_stack(StackName="network-base", TemplateBody=json.dumps(
            {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))["StackId"]
        self.report("securityhub", account, HOME, "CloudFormation.1", "AwsCloudFormationStack", stack, stack,
                    "CloudFormation stacks should be integrated with Simple Notification Service (SNS)")
        self.plant("stack network-base notifications (notify only)", account, "CloudFormation.1", stack,
                   lambda: bool(cloudformation.describe_stacks(StackName="network-base")["Stacks"][0].get(
                       "NotificationARNs")), expect="untouched")

        elasticache = self.client(account, HOME, "elasticache")
        elasticache.create_cache_cluster(CacheClusterId="sessions", Engine="redis", CacheNodeType="cache.t3.micro",
                                         NumCacheNodes=1, SnapshotRetentionLimit=0)
        self.report("securityhub", account, HOME, "ElastiCache.1", "AwsElastiCacheCacheCluster", "sessions",
                    f"arn:aws:elasticache:{HOME}:{account}:cluster:sessions",
                    "ElastiCache (Redis OSS) clusters should have automatic backups enabled")
        self.plant("cache cluster sessions backups (notify only)", account, "ElastiCache.1", "sessions",
                   lambda: bool(elasticache.describe_cache_clusters(CacheClusterId="sessions")["CacheClusters"][0].get(
                       "SnapshotRetentionLimit")), expect="untouched")

        user = "report-bot"
        iam.create_user(UserName=user)
        keys = [iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(2)]
        self.report("prowler", account, HOME, ONE_ACTIVE_KEY, "AwsIamUser", user,
                    f"arn:aws:iam::{account}:user/{user}", "IAM user has at most one active access key")
        self.plant(f"user {user}'s two active keys (notify only)", account, ONE_ACTIVE_KEY, user, lambda: [
            k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            if k["AccessKeyId"] in keys].count("Active") <= 1, expect="untouched")

        # IAM.1 reads live in notify mode: the notification names the user and role the policy is attached to
        admin = {"Version": "2012-10-17", "Statement": [{"Sid": "BreakGlass", "Effect": "Allow", "Action": "*",
                                                         "Resource": "*"}]}
        policy = iam.create_policy(PolicyName="demo-break-glass", PolicyDocument=json.dumps(admin))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=user, PolicyArn=policy)
        iam.attach_role_policy(RoleName="demo-build-role", PolicyArn=policy)
        self.report("securityhub", account, HOME, "IAM.1", "AwsIamPolicy", "demo-break-glass", policy,
                    "IAM policies should not allow full \"*\" administrative privileges")
        self.plant("policy demo-break-glass allows * on * (notify only, names its user and role)", account, "IAM.1",
                   "demo-break-glass", lambda: iam.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 0,
                   expect="untouched")

    def public_function(self, account: str) -> None:
        awslambda = self.client(account, HOME, "lambda")
        role = self.client(account, HOME, "iam").create_role(
            RoleName="demo-fn-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )["Role"]["Arn"]
        arn = awslambda.create_function(
            FunctionName="thumbnailer", Runtime="python3.12", Role=role, Handler="index.handler",
            Code={"ZipFile": _tiny_zip()},
        )["FunctionArn"]
        awslambda.add_permission(FunctionName="thumbnailer", StatementId="anyone", Action="lambda:InvokeFunction",
                                 Principal="*")
        self.report("securityhub", account, HOME, "Lambda.1", "AwsLambdaFunction", arn, arn,
                    "Lambda function policies should prohibit public access")

        def private() -> bool:
            try:
                policy = json.loads(awslambda.get_policy(FunctionName="thumbnailer")["Policy"])
            except awslambda.exceptions.ResourceNotFoundException:
                return True
            return not policy.get("Statement")

        self.plant("function thumbnailer policy", account, "Lambda.1", arn, private)

    def db_without_minor_upgrades(self, account: str) -> None:
        rds = self.client(account, HOME, "rds")
        db = rds.create_db_instance(
            DBInstanceIdentifier="billing-db", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin_user", MasterUserPassword="not-a-real-password-1", AllocatedStorage=20,
            AutoMinorVersionUpgrade=False,
        )["DBInstance"]
        self.report("securityhub", account, HOME, "RDS.13", "AwsRdsDbInstance", "billing-db", db["DBInstanceArn"],
                    "RDS automatic minor version upgrades should be enabled")
        self.plant("DB billing-db minor version upgrades", account, "RDS.13", "billing-db",
                   lambda: rds.describe_db_instances(DBInstanceIdentifier="billing-db")["DBInstances"][0][
                       "AutoMinorVersionUpgrade"])

    def unencrypted_file_system(self, account: str) -> None:
        efs = self.client(account, HOME, "efs")
        fs = efs.create_file_system(CreationToken="shared-home", Encrypted=False)
        self.report("securityhub", account, HOME, "EFS.1", "AwsEfsFileSystem", fs["FileSystemId"], fs["FileSystemArn"],
                    "Elastic File System should be configured to encrypt file data at-rest")
        self.plant("file system shared-home (notify only)", account, "EFS.1", fs["FileSystemId"],
                   lambda: efs.describe_file_systems(FileSystemId=fs["FileSystemId"])["FileSystems"][0]["Encrypted"],
                   expect="untouched")

    def root_without_mfa(self, account: str) -> None:
        self.report("securityhub", account, HOME, "IAM.9", "AwsAccount", account, None, "MFA should be enabled for "
                    "the root user")
        self.plant("root user MFA (notify only)", account, "IAM.9", account, lambda: False, expect="untouched")

    def config_not_recording(self, account: str) -> None:
        self.report("securityhub", account, HOME, "Config.1", "AwsAccount", account, None,
                    "AWS Config should be enabled and use the service-linked role for resource recording")
        self.plant("AWS Config recording (notify only)", account, "Config.1", account, lambda: False,
                   expect="untouched")

    def public_redshift_cluster(self, account: str) -> None:
        redshift = self.client(account, HOME, "redshift")
        redshift.create_cluster(ClusterIdentifier="analytics", NodeType="ra3.xlplus", MasterUsername="admin",
                                MasterUserPassword="Not-a-real-password-1", PubliclyAccessible=True,
                                ClusterType="single-node")
        self.report("netskope", account, HOME, "Redshift.1", "AwsRedshiftCluster", "analytics", None, "public")
        self.plant("Redshift cluster analytics", account, "Redshift.1", "analytics",
                   lambda: not redshift.describe_clusters(ClusterIdentifier="analytics")["Clusters"][0][
                       "PubliclyAccessible"])

    def public_db_snapshot(self, account: str) -> None:
        rds = self.client(account, HOME, "rds")
        rds.create_db_instance(DBInstanceIdentifier="orders-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="admin_user", MasterUserPassword="not-a-real-password-1",
                               AllocatedStorage=20)
        rds.create_db_snapshot(DBSnapshotIdentifier="orders-db-2026-11-01", DBInstanceIdentifier="orders-db")
        rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="orders-db-2026-11-01", AttributeName="restore",
                                         ValuesToAdd=["all"])
        # Netskope's rule ("RDS Instances do not have Publicly Accessible Snapshots") names the instance.
        self.report("netskope", account, HOME, "RDS.1", "AwsRdsDbInstance", "orders-db", None, "public")

        def private() -> bool:
            attributes = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier="orders-db-2026-11-01")[
                "DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
            return not any("all" in a.get("AttributeValues", []) for a in attributes if a["AttributeName"] == "restore")

        self.plant("DB snapshot orders-db-2026-11-01 (of orders-db)", account, "RDS.1", "orders-db", private)

    def prowler_muted_group(self, account: str) -> None:
        """A finding muted in Prowler (its mutelist): reported, never acted on."""
        ec2 = self.client(account, HOME, "ec2")
        vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="ssh-muted", Description="demo muted", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ip_permission(22, WORLD_V4)])
        self.org.prowler.append(ocsf_finding(
            _PROWLER_CHECKS["EC2.13"], account, HOME, "AwsEc2SecurityGroup",
            f"arn:aws:ec2:{HOME}:{account}:security-group/{group}", "SSH open, muted in Prowler", muted=True))

        def closed() -> bool:
            perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
            return not any(opens(p, 22, WORLD_V4) for p in perms)

        self.plant("security group ssh-muted (muted in Prowler)", account, "EC2.13", group, closed, "untouched")

    def netskope_without_remediator(self, account: str) -> None:
        """Rules we have no remediator for are reported as such, never dropped."""
        self.org.violations.append({
            **netskope_violation(account, HOME, "EC2.13", "i-0abc1234def567890", "public ip"),
            "rule_name": "Ensure EC2 instances do not have a public IP address",
            "resource_type": "Instance",
        })

    def malformed_asff(self, account: str) -> None:
        """A finding whose resource ARN is broken: reported and skipped, the rest of the batch goes on."""
        bad = asff_finding(account, HOME, "EC2.53", "AwsEc2SecurityGroup",
                    "arn:aws:ec2:us-east-1:not-an-account:security-group/sg-0bad", "broken producer")
        self.org.asff.append(bad)


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()
