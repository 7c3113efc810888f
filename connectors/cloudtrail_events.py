"""Which CloudTrail management events can break which rules, and where the event names the resource.

One row per (eventSource, eventName): the rules the call can put out of compliance, the resource type the rules'
remediators take, and where the resource is in the CloudTrail record (first path that yields a value wins). The
translator (connectors/cloudtrail.py) turns a matching event into one finding per rule and resource; the
remediator's `assess` then decides, so a call that did not break the control ends `noop`.

Paths are dotted keys into the record; `[]` walks every item of a list (RunInstances starts several instances);
`@account` is the account the call was made in (`recipientAccountId`): account-level settings. The EventBridge
patterns of the admin stack and of the forwarding rule in the member accounts are derived from this table
(tools/templates), so adding a row here is all it takes to watch one more call.

The shapes follow CloudTrail's own serialisation: EC2's older APIs log their Query parameters in camelCase
(`groupId`, `ipPermissions.items`), its newer ones the request as an object (`ModifyInstanceMetadataOptionsRequest.
InstanceId`); Lambda's event names carry the API version (`AddPermission20150331v2`); S3 Control's account-wide
PutPublicAccessBlock / DeletePublicAccessBlock are logged by s3.amazonaws.com as `PutAccountPublicAccessBlock` /
`DeleteAccountPublicAccessBlock`.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT = "@account"
# How a value found in the record becomes the id the remediator's API takes (see connectors/cloudtrail.py).
ID_FORMS = ("id", "queue-url")


@dataclass(frozen=True)
class EventRow:
    event_source: str
    event_names: tuple[str, ...]
    rules: tuple[str, ...]
    resource_type: str
    paths: tuple[str, ...]  # where the resource id is; the first path with a value wins
    id_form: str = "id"
    arn_paths: tuple[str, ...] = ()  # where the resource's ARN is, when the record carries it
    note: str = ""  # why this row is shaped so (shown in DEPLOY.md's table)

    def __post_init__(self) -> None:
        if self.id_form not in ID_FORMS:
            raise ValueError(f"{self.event_names}: unknown id_form {self.id_form!r}")


EC2 = "ec2.amazonaws.com"
SG_RULES = ("EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54")

EVENT_TABLE: tuple[EventRow, ...] = (
    # -- EC2 / VPC ------------------------------------------------------------------------------------------------
    EventRow(EC2, ("AuthorizeSecurityGroupIngress",), SG_RULES, "AwsEc2SecurityGroup",
             ("requestParameters.groupId", "responseElements.securityGroupRuleSet.items[].groupId")),
    EventRow(EC2, ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry"), ("EC2.21", "netskope:nacl-allow-all-ingress"),
             "AwsEc2NetworkAcl", ("requestParameters.networkAclId",)),
    EventRow(EC2, ("ModifySnapshotAttribute",), ("EC2.1",), "AwsEc2Snapshot", ("requestParameters.snapshotId",)),
    EventRow(EC2, ("DisableEbsEncryptionByDefault",), ("EC2.7",), "AwsAccount", (ACCOUNT,),
             note="a per-Region account setting"),
    EventRow(EC2, ("ModifyInstanceMetadataOptions",), ("EC2.8",), "AwsEc2Instance",
             ("requestParameters.ModifyInstanceMetadataOptionsRequest.InstanceId",
              "responseElements.ModifyInstanceMetadataOptionsResponse.instanceId")),
    EventRow(EC2, ("RunInstances",), ("EC2.8",), "AwsEc2Instance",
             ("responseElements.instancesSet.items[].instanceId",)),
    EventRow(EC2, ("CreateVpc",), ("EC2.6",), "AwsEc2Vpc", ("responseElements.vpc.vpcId",)),
    # DeleteFlowLogs names only the flow log ids, not their VPCs (the log is gone by the time we could ask): the
    # record has no resource to re-check, so it is translated to nothing and the scheduled scan covers it.
    EventRow(EC2, ("DeleteFlowLogs",), ("EC2.6",), "AwsEc2Vpc", (),
             note="names only the flow log ids, never the VPC: recognised, left to the scheduled scan"),
    # -- S3 -------------------------------------------------------------------------------------------------------
    EventRow("s3.amazonaws.com", ("PutBucketPolicy",), ("S3.5",), "AwsS3Bucket", ("requestParameters.bucketName",)),
    EventRow("s3.amazonaws.com", ("PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"), ("S3.8",),
             "AwsS3Bucket", ("requestParameters.bucketName",)),
    EventRow("s3.amazonaws.com", ("PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock"), ("S3.1",),
             "AwsAccount", (ACCOUNT,), note="S3 Control PutPublicAccessBlock / DeletePublicAccessBlock"),
    # -- CloudTrail -----------------------------------------------------------------------------------------------
    EventRow("cloudtrail.amazonaws.com", ("CreateTrail",), ("CloudTrail.2", "CloudTrail.4"), "AwsCloudTrailTrail",
             ("responseElements.name", "requestParameters.name"), arn_paths=("responseElements.trailARN",)),
    EventRow("cloudtrail.amazonaws.com", ("UpdateTrail",), ("CloudTrail.2", "CloudTrail.4"), "AwsCloudTrailTrail",
             ("responseElements.name", "requestParameters.name"), arn_paths=("responseElements.trailARN",)),
    EventRow("cloudtrail.amazonaws.com", ("UpdateTrail", "StopLogging", "DeleteTrail"), ("CloudTrail.1",),
             "AwsAccount", (ACCOUNT,),
             note="CloudTrail.1 is judged on the account's trails as a whole"),
    # -- KMS ------------------------------------------------------------------------------------------------------
    EventRow("kms.amazonaws.com", ("DisableKeyRotation",), ("KMS.4",), "AwsKmsKey", ("requestParameters.keyId",)),
    EventRow("kms.amazonaws.com", ("CreateKey",), ("KMS.4",), "AwsKmsKey", ("responseElements.keyMetadata.keyId",),
             arn_paths=("responseElements.keyMetadata.arn",)),
    # -- RDS ------------------------------------------------------------------------------------------------------
    EventRow("rds.amazonaws.com", ("CreateDBInstance", "ModifyDBInstance"), ("RDS.2", "RDS.13"), "AwsRdsDbInstance",
             ("responseElements.dBInstanceIdentifier", "requestParameters.dBInstanceIdentifier"),
             arn_paths=("responseElements.dBInstanceArn",)),
    EventRow("rds.amazonaws.com", ("ModifyDBSnapshotAttribute",), ("RDS.1",), "AwsRdsDbSnapshot",
             ("requestParameters.dBSnapshotIdentifier",)),
    EventRow("rds.amazonaws.com", ("ModifyDBClusterSnapshotAttribute",), ("RDS.1",), "AwsRdsDbClusterSnapshot",
             ("requestParameters.dBClusterSnapshotIdentifier",)),
    # -- Redshift, Lambda, SQS ------------------------------------------------------------------------------------
    EventRow("redshift.amazonaws.com", ("ModifyCluster",), ("Redshift.1",), "AwsRedshiftCluster",
             ("requestParameters.clusterIdentifier",)),
    EventRow("lambda.amazonaws.com", ("AddPermission20150331v2", "AddPermission20150331"), ("Lambda.1",),
             "AwsLambdaFunction", ("requestParameters.functionName",)),
    EventRow("sqs.amazonaws.com", ("SetQueueAttributes",), ("SQS.3",), "AwsSqsQueue", ("requestParameters.queueUrl",),
             id_form="queue-url"),
    # -- IAM (global: logged in us-east-1) -------------------------------------------------------------------------
    EventRow("iam.amazonaws.com", ("UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy"),
             ("IAM.7", "IAM.10", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17"),
             "AwsAccount",
             (ACCOUNT,)),
)


def rows_for(event_source: str, event_name: str) -> tuple[EventRow, ...]:
    return tuple(r for r in EVENT_TABLE if r.event_source == event_source and event_name in r.event_names)


def watched_events() -> dict[str, list[str]]:
    """eventSource → sorted eventNames: what the EventBridge rules match."""
    result: dict[str, set[str]] = {}
    for row in EVENT_TABLE:
        if not row.paths:  # recognised but never translated: not worth an event
            continue
        result.setdefault(row.event_source, set()).update(row.event_names)
    return {source: sorted(names) for source, names in sorted(result.items())}


def event_rules() -> tuple[str, ...]:
    """Every rule some event can break."""
    return tuple(dict.fromkeys(rule for row in EVENT_TABLE for rule in row.rules))
