"""CloudTrail records in the shape CloudTrail writes them, for the events of connectors/cloudtrail_events.py.

The envelope follows the CloudTrail record contents reference (eventVersion 1.08+: userIdentity with a session
issuer for an assumed role, eventTime, eventSource, eventName, awsRegion, requestParameters, responseElements,
requestID, eventID, readOnly, eventType, managementEvent, recipientAccountId, eventCategory) and EventBridge's
"AWS API Call via CloudTrail" event around it. requestParameters / responseElements follow how CloudTrail
serialises each API (botocore's model names, with EC2's Query APIs in CloudTrail's camelCase `items` lists and
its newer APIs as `<Operation>Request` objects), as in the services' documented CloudTrail examples.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
_COUNTER = itertools.count(1)


def identity(role: str = "Admin", account: str = ACCOUNT, session: str = "alice") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEROLEID:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEKEYID",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLEID",
                              "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account, "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2026-12-02T13:55:00Z", "mfaAuthenticated": "false"},
        },
    }


def record(source: str, name: str, request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
           *, account: str = ACCOUNT, region: str = REGION, role: str = "Admin", error: str | None = None,
           user_identity: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity or identity(role, account),
        "eventTime": f"2026-12-02T14:02:{next(_COUNTER) % 60:02d}Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.22.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.6",
        "requestParameters": request,
        "responseElements": None if error else response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com"},
    }
    if error:
        body["errorCode"] = error
        body["errorMessage"] = "You are not authorized to perform this operation."
    return body


def event(body: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event CloudTrail delivers for a record (the forwarded copy keeps account and region)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + body["eventSource"].split(".")[0],
        "account": body["recipientAccountId"],
        "time": body["eventTime"],
        "region": body["awsRegion"],
        "resources": [],
        "detail": body,
    }


def _ec2_request_id() -> str:
    return str(uuid.uuid4())


# -- EC2 / VPC -----------------------------------------------------------------------------------------------------
def authorize_security_group_ingress(group_id: str, port: int = 22, cidr: str = "0.0.0.0/0", **kw: Any) -> dict:
    ranges = {"ipv6Ranges": {"items": [{"cidrIpv6": cidr}]}, "ipRanges": {}} if ":" in cidr else \
        {"ipRanges": {"items": [{"cidrIp": cidr}]}, "ipv6Ranges": {}}
    rule = {"groupOwnerId": kw.get("account", ACCOUNT), "groupId": group_id,
            "securityGroupRuleId": "sgr-0123456789abcdef0", "isEgress": False, "ipProtocol": "tcp",
            "fromPort": port, "toPort": port,
            ("cidrIpv6" if ":" in cidr else "cidrIpv4"): cidr}
    return record("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
                  {"groupId": group_id, "ipPermissions": {"items": [
                      {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {}, "prefixListIds": {},
                       **ranges}]}},
                  {"requestId": _ec2_request_id(), "_return": True, "securityGroupRuleSet": {"items": [rule]}}, **kw)


def network_acl_entry(acl_id: str, name: str = "CreateNetworkAclEntry", port: int = 22, cidr: str = "0.0.0.0/0",
                      **kw: Any) -> dict:
    return record("ec2.amazonaws.com", name,
                  {"networkAclId": acl_id, "ruleNumber": 90, "egress": False, "ruleAction": "allow",
                   "icmpTypeCode": {}, "portRange": {"from": port, "to": port}, "aclProtocol": "6",
                   "cidrBlock": cidr},
                  {"requestId": _ec2_request_id(), "_return": True}, **kw)


def modify_snapshot_attribute(snapshot_id: str, **kw: Any) -> dict:
    return record("ec2.amazonaws.com", "ModifySnapshotAttribute",
                  {"snapshotId": snapshot_id, "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
                   "attributeType": "CREATE_VOLUME_PERMISSION"},
                  {"requestId": _ec2_request_id(), "_return": True}, **kw)


def disable_ebs_encryption_by_default(**kw: Any) -> dict:
    return record("ec2.amazonaws.com", "DisableEbsEncryptionByDefault",
                  {"DisableEbsEncryptionByDefaultRequest": ""},
                  {"DisableEbsEncryptionByDefaultResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                                                              "ebsEncryptionByDefault": False,
                                                              "requestId": _ec2_request_id()}}, **kw)


def modify_instance_metadata_options(instance_id: str, tokens: str = "optional", **kw: Any) -> dict:
    return record("ec2.amazonaws.com", "ModifyInstanceMetadataOptions",
                  {"ModifyInstanceMetadataOptionsRequest": {"HttpTokens": tokens, "InstanceId": instance_id}},
                  {"ModifyInstanceMetadataOptionsResponse": {
                      "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": _ec2_request_id(),
                      "instanceId": instance_id,
                      "instanceMetadataOptions": {"state": "pending", "httpTokens": tokens,
                                                  "httpPutResponseHopLimit": 1, "httpEndpoint": "enabled",
                                                  "httpProtocolIpv4": "enabled",
                                                  "httpProtocolIpv6": "disabled", "instanceMetadataTags": "disabled"}}},
                  **kw)


def run_instances(instance_ids: list[str], image_id: str = "ami-0abcdef1234567890", **kw: Any) -> dict:
    items = [{"instanceId": i, "imageId": image_id, "currentInstanceBoot": None,
              "instanceState": {"code": 0, "name": "pending"}, "amiLaunchIndex": n, "instanceType": "t3.micro",
              "metadataOptions": {"state": "pending", "httpTokens": "optional", "httpPutResponseHopLimit": 1,
                                  "httpEndpoint": "enabled"}} for n, i in enumerate(instance_ids)]
    return record("ec2.amazonaws.com", "RunInstances",
                  {"instancesSet": {"items": [{"imageId": image_id, "minCount": len(instance_ids),
                                               "maxCount": len(instance_ids)}]},
                   "instanceType": "t3.micro", "blockDeviceMapping": {}, "monitoring": {"enabled": False},
                   "disableApiTermination": False, "disableApiStop": False, "clientToken": str(uuid.uuid4())},
                  {"requestId": _ec2_request_id(), "reservationId": "r-0123456789abcdef0",
                   "ownerId": kw.get("account", ACCOUNT), "groupSet": {}, "instancesSet": {"items": items}}, **kw)


def create_vpc(vpc_id: str, **kw: Any) -> dict:
    return record("ec2.amazonaws.com", "CreateVpc",
                  {"cidrBlock": "10.0.0.0/16", "amazonProvidedIpv6CidrBlock": False},
                  {"requestId": _ec2_request_id(), "vpc": {
                      "vpcId": vpc_id, "state": "pending", "ownerId": kw.get("account", ACCOUNT),
                      "cidrBlock": "10.0.0.0/16", "cidrBlockAssociationSet": {"items": [
                          {"cidrBlock": "10.0.0.0/16", "associationId": "vpc-cidr-assoc-0123456789abcdef0",
                           "cidrBlockState": {"state": "associated"}}]},
                      "ipv6CidrBlockAssociationSet": {}, "dhcpOptionsId": "dopt-0123456789abcdef0",
                      "instanceTenancy": "default", "tagSet": {}, "isDefault": False}}, **kw)


def delete_flow_logs(flow_log_id: str = "fl-0123456789abcdef0", **kw: Any) -> dict:
    return record("ec2.amazonaws.com", "DeleteFlowLogs",
                  {"DeleteFlowLogsRequest": {"FlowLogId": {"tag": 1, "content": flow_log_id}}},
                  {"DeleteFlowLogsResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                                              "requestId": _ec2_request_id(), "unsuccessful": ""}}, **kw)


# -- S3 --------------------------------------------------------------------------------------------------------------
def put_bucket_policy(bucket: str, policy: dict[str, Any] | None = None, **kw: Any) -> dict:
    policy = policy or {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadForPartner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    return record("s3.amazonaws.com", "PutBucketPolicy",
                  {"bucketPolicy": policy, "bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "policy": ""},
                  None, **kw)


def bucket_public_access_block(bucket: str, name: str = "DeleteBucketPublicAccessBlock", **kw: Any) -> dict:
    request: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "publicAccessBlock": ""}
    if name == "PutBucketPublicAccessBlock":
        request["PublicAccessBlockConfiguration"] = {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "RestrictPublicBuckets": True,
            "BlockPublicPolicy": True, "BlockPublicAcls": True, "IgnorePublicAcls": True}
    return record("s3.amazonaws.com", name, request, None, **kw)


def account_public_access_block(name: str = "DeleteAccountPublicAccessBlock", **kw: Any) -> dict:
    account = kw.get("account", ACCOUNT)
    request: dict[str, Any] = {"Host": f"{account}.s3-control.{kw.get('region', REGION)}.amazonaws.com"}
    if name == "PutAccountPublicAccessBlock":
        request["PublicAccessBlockConfiguration"] = {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/", "BlockPublicAcls": False,
            "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
    return record("s3.amazonaws.com", name, request, None, **kw)


# -- CloudTrail ------------------------------------------------------------------------------------------------------
def _trail_response(name: str, account: str, region: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "s3BucketName": bucket, "includeGlobalServiceEvents": True, "isMultiRegionTrail": True,
            "trailARN": f"arn:aws:cloudtrail:{region}:{account}:trail/{name}", "logFileValidationEnabled": False,
            "isOrganizationTrail": False, **extra}


def create_trail(name: str, bucket: str, **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    return record("cloudtrail.amazonaws.com", "CreateTrail",
                  {"name": name, "s3BucketName": bucket, "isMultiRegionTrail": True,
                   "includeGlobalServiceEvents": True},
                  _trail_response(name, account, region, bucket), **kw)


def update_trail(name: str, bucket: str, by_arn: bool = False, **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    arn = f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"
    return record("cloudtrail.amazonaws.com", "UpdateTrail",
                  {"name": arn if by_arn else name, "enableLogFileValidation": False, "kmsKeyId": ""},
                  _trail_response(name, account, region, bucket), **kw)


def stop_logging(name: str, **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    return record("cloudtrail.amazonaws.com", "StopLogging",
                  {"name": f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"}, None, **kw)


def delete_trail(name: str, **kw: Any) -> dict:
    return record("cloudtrail.amazonaws.com", "DeleteTrail", {"name": name}, None, **kw)


# -- KMS -------------------------------------------------------------------------------------------------------------
def disable_key_rotation(key_id: str, **kw: Any) -> dict:
    return record("kms.amazonaws.com", "DisableKeyRotation", {"keyId": key_id}, None, **kw)


def create_key(key_id: str, **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    return record("kms.amazonaws.com", "CreateKey",
                  {"keyUsage": "ENCRYPT_DECRYPT", "keySpec": "SYMMETRIC_DEFAULT", "description": "app data"},
                  {"keyMetadata": {
                      "aWSAccountId": account, "keyId": key_id, "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}",
                      "creationDate": "Dec 2, 2026, 2:02:00 PM", "enabled": True, "description": "app data",
                      "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Enabled", "origin": "AWS_KMS",
                      "keyManager": "CUSTOMER", "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
                      "keySpec": "SYMMETRIC_DEFAULT", "encryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
                      "multiRegion": False}}, **kw)


# -- RDS -------------------------------------------------------------------------------------------------------------
def db_instance(identifier: str, name: str = "CreateDBInstance", **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    request: dict[str, Any] = {"dBInstanceIdentifier": identifier, "publiclyAccessible": True,
                               "autoMinorVersionUpgrade": False}
    if name == "CreateDBInstance":
        request.update({"dBInstanceClass": "db.t3.micro", "engine": "postgres", "masterUsername": "app",
                        "masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS", "allocatedStorage": 20})
    return record("rds.amazonaws.com", name, request,
                  {"dBInstanceIdentifier": identifier, "dBInstanceClass": "db.t3.micro", "engine": "postgres",
                   "dBInstanceStatus": "creating" if name == "CreateDBInstance" else "available",
                   "publiclyAccessible": True, "autoMinorVersionUpgrade": False,
                   "dBInstanceArn": f"arn:aws:rds:{region}:{account}:db:{identifier}",
                   "dbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, **kw)


def modify_db_snapshot_attribute(snapshot: str, cluster: bool = False, **kw: Any) -> dict:
    kind = "dBClusterSnapshot" if cluster else "dBSnapshot"
    name = "ModifyDBClusterSnapshotAttribute" if cluster else "ModifyDBSnapshotAttribute"
    return record("rds.amazonaws.com", name,
                  {f"{kind}Identifier": snapshot, "attributeName": "restore", "valuesToAdd": ["all"]},
                  {f"{kind}Identifier": snapshot, f"{kind}Attributes": [
                      {"attributeName": "restore", "attributeValues": ["all"]}]}, **kw)


# -- Redshift, Lambda, SQS -------------------------------------------------------------------------------------------
def modify_cluster(identifier: str, **kw: Any) -> dict:
    return record("redshift.amazonaws.com", "ModifyCluster",
                  {"clusterIdentifier": identifier, "publiclyAccessible": True},
                  {"clusterIdentifier": identifier, "nodeType": "ra3.xlplus", "clusterStatus": "available",
                   "publiclyAccessible": True, "pendingModifiedValues": {"publiclyAccessible": True}}, **kw)


def add_permission(function: str, principal: str = "*", **kw: Any) -> dict:
    account, region = kw.get("account", ACCOUNT), kw.get("region", REGION)
    statement = {"Sid": "open", "Effect": "Allow", "Principal": principal if principal == "*" else
                 {"Service": principal}, "Action": "lambda:InvokeFunction",
                 "Resource": f"arn:aws:lambda:{region}:{account}:function:{function.rsplit(':', 1)[-1]}"}
    return record("lambda.amazonaws.com", "AddPermission20150331v2",
                  {"functionName": function, "statementId": "open", "action": "lambda:InvokeFunction",
                   "principal": principal},
                  {"statement": str(statement).replace("'", '"')}, **kw)


def set_queue_attributes(queue_url: str, policy: str, **kw: Any) -> dict:
    return record("sqs.amazonaws.com", "SetQueueAttributes",
                  {"queueUrl": queue_url, "attributes": {"Policy": policy}}, None, **kw)


# -- IAM -------------------------------------------------------------------------------------------------------------
def update_account_password_policy(**kw: Any) -> dict:
    return record("iam.amazonaws.com", "UpdateAccountPasswordPolicy",
                  {"minimumPasswordLength": 8, "requireSymbols": False, "requireNumbers": False,
                   "requireUppercaseCharacters": False, "requireLowercaseCharacters": False,
                   "allowUsersToChangePassword": True}, None, **kw)


def delete_account_password_policy(**kw: Any) -> dict:
    return record("iam.amazonaws.com", "DeleteAccountPasswordPolicy", None, None, **kw)
