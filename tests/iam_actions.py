"""API operation → IAM action, for checking that remediators declare every action they call.

Most operations are authorized by an action of the same name under the service's signing name
(`ec2:DescribeSecurityGroups`); the exceptions below are the ones AWS's Service Authorization Reference
names differently.
"""

from __future__ import annotations

# (signing name, operation) → IAM action, where the two differ.
ACTION_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "GetBucketOwnershipControls"): "s3:GetBucketOwnershipControls",
    ("s3", "DeleteBucketOwnershipControls"): "s3:PutBucketOwnershipControls",
    ("s3", "DeleteBucketTagging"): "s3:PutBucketTagging",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("lambda", "GetFunction"): "lambda:GetFunction",
    # API Gateway's management API is authorized by HTTP method on the resource path.
    ("apigateway", "GetStage"): "apigateway:GET",
    ("apigateway", "UpdateStage"): "apigateway:PATCH",
}

# The S3 Control API signs as "s3" but its public-access-block operations are account-level actions.
S3_CONTROL_ACTIONS: dict[str, str] = {
    "GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutAccountPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutAccountPublicAccessBlock",
}

# Signing names that are not the service's IAM prefix (CloudWatch signs as "monitoring", its actions are cloudwatch:…).
IAM_PREFIXES: dict[str, str] = {"monitoring": "cloudwatch", "tagging": "tag"}  # Tagging API: tag:GetResources


def iam_action(service_name: str, signing_name: str, operation: str) -> str:
    """The IAM action that authorizes `operation` of the botocore service `service_name`."""
    if service_name == "s3control" and operation in S3_CONTROL_ACTIONS:
        return S3_CONTROL_ACTIONS[operation]
    prefix = IAM_PREFIXES.get(signing_name, signing_name)
    return ACTION_EXCEPTIONS.get((signing_name, operation), f"{prefix}:{operation}")
