"""Service controls only a person can fix well, reported as `notified` with the exact steps (no AWS call).

Why not automated here: rotating a secret needs a rotation function that knows the database or API behind it
(SecretsManager.1, .4); deleting an unused secret loses it (SecretsManager.3); credentials in CodeBuild variables
are already exposed, so moving them is not enough: they must be rotated by whoever owns them (CodeBuild.2); a build
that needs Docker breaks without privileged mode (CodeBuild.5); a read-only root file system needs a new task
definition revision the service is then redeployed with (ECS.5); where S3 event notifications should go, and when
objects may expire, are the owner's decisions (S3.11, S3.13); and which statements of a full-admin policy are
needed is for the policy's owner to say (IAM.1). Guidance names the finding's resource with {resource_id},
{account_id}, {region} and {partition}.
"""

from __future__ import annotations

from typing import ClassVar

from functions.remediators.base import Rule
from functions.remediators.notify import ManualRemediation


class ServiceManualRemediation(ManualRemediation):
    """Secrets Manager rotation and unused secrets, CodeBuild credentials and privileged mode, ECS read-only root
    file systems, S3 event notifications and lifecycle, IAM full-admin policies."""

    rules = (
        Rule("SecretsManager.1", "Secrets Manager secrets should have automatic rotation enabled",
             default_mode="notify"),
        Rule("SecretsManager.3", "Remove unused Secrets Manager secrets", default_mode="notify"),
        Rule("SecretsManager.4", "Secrets Manager secrets should be rotated within a specified number of days",
             default_mode="notify"),
        Rule("CodeBuild.2", "CodeBuild project environment variables should not contain clear text credentials",
             default_mode="notify"),
        Rule("CodeBuild.5", "CodeBuild project environments should not have privileged mode enabled",
             default_mode="notify"),
        Rule("ECS.5", "ECS containers should be limited to read-only access to root filesystems",
             default_mode="notify"),
        Rule("S3.11", "S3 general purpose buckets should have event notifications enabled", default_mode="notify"),
        Rule("S3.13", "S3 general purpose buckets should have Lifecycle configurations", default_mode="notify"),
        Rule("IAM.1", "IAM policies should not allow full \"*\" administrative privileges", default_mode="notify"),
    )
    resource_types = ("AwsSecretsManagerSecret", "AwsCodeBuildProject", "AwsEcsTaskDefinition", "AwsS3Bucket",
                      "AwsIamPolicy")
    guidance: ClassVar[dict[str, str]] = {
        "SecretsManager.1": (
            "Turn on rotation for secret {resource_id}. For an RDS, Aurora, Redshift or DocumentDB credential, let "
            "the database manage it (RDS: modify-db-instance --manage-master-user-password) or use the matching "
            "AWS rotation function from the Secrets Manager console (Secret > Rotation > Edit rotation); for any "
            "other secret, write a rotation Lambda function for the system it unlocks. Then: aws secretsmanager "
            "rotate-secret --region {region} --secret-id {resource_id} --rotation-lambda-arn FUNCTION_ARN "
            "--rotation-rules AutomaticallyAfterDays=30. Check: aws secretsmanager describe-secret --region "
            "{region} --secret-id {resource_id} shows RotationEnabled true."
        ),
        "SecretsManager.3": (
            "Secret {resource_id} has not been read for longer than the control allows. Find who used it (CloudTrail "
            "GetSecretValue events, the LastAccessedDate of aws secretsmanager describe-secret --region {region} "
            "--secret-id {resource_id}); if nothing needs it, aws secretsmanager delete-secret --region {region} "
            "--secret-id {resource_id} --recovery-window-in-days 30 (restore-secret brings it back within the "
            "window; after it the value is gone)."
        ),
        "SecretsManager.4": (
            "Secret {resource_id} has not rotated within the control's number of days. Check the last rotation "
            "(aws secretsmanager describe-secret --region {region} --secret-id {resource_id}: LastRotatedDate, "
            "RotationRules) and the rotation function's CloudWatch logs for failures, fix them, then rotate now: "
            "aws secretsmanager rotate-secret --region {region} --secret-id {resource_id}."
        ),
        "CodeBuild.2": (
            "Project {resource_id} keeps AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in plain-text environment "
            "variables: treat them as leaked. Deactivate and replace the key (IAM console > Users > Security "
            "credentials), give the project's service role the permissions instead, or move any secret value to "
            "Secrets Manager or SSM Parameter Store and reference it with type SECRETS_MANAGER or PARAMETER_STORE "
            "(CodeBuild console > {resource_id} > Edit > Environment > Additional configuration). Check: aws "
            "codebuild batch-get-projects --region {region} --names {resource_id} shows no PLAINTEXT variable "
            "holding a credential."
        ),
        "CodeBuild.5": (
            "Project {resource_id} runs builds in privileged mode (full access to the build host's Docker). If it "
            "does not build Docker images, turn it off: CodeBuild console > {resource_id} > Edit > Environment > "
            "uncheck Privileged (or aws codebuild update-project --region {region} --name {resource_id} "
            "--environment with privilegedMode false and the other environment fields unchanged). If it does, "
            "suppress the finding with that reason."
        ),
        "ECS.5": (
            "Task definition {resource_id} lets containers write to their root file system. Register a new "
            "revision with readonlyRootFilesystem true in each container definition (mount a volume for paths the "
            "application writes, such as /tmp), test it, then update the services that use it (aws ecs "
            "update-service --region {region} --cluster CLUSTER --service SERVICE --task-definition FAMILY:REVISION)."
        ),
        "S3.11": (
            "Bucket {resource_id} has no event notifications. Decide where object events should go (an SNS topic, "
            "SQS queue, Lambda function or EventBridge) and enable them, for example with EventBridge: aws s3api "
            "put-bucket-notification-configuration --bucket {resource_id} --notification-configuration "
            "'{{\"EventBridgeConfiguration\": {{}}}}' (this replaces the configuration: merge any existing one "
            "from get-bucket-notification-configuration first)."
        ),
        "S3.13": (
            "Bucket {resource_id} has no lifecycle configuration. Decide with its owner how long objects and old "
            "versions are kept, then add a rule, for example one that only aborts incomplete multipart uploads "
            "after 7 days and deletes nothing else: aws s3api put-bucket-lifecycle-configuration --bucket "
            "{resource_id} --lifecycle-configuration '{{\"Rules\": [{{\"ID\": \"abort-incomplete-uploads\", "
            "\"Status\": \"Enabled\", \"Filter\": {{}}, \"AbortIncompleteMultipartUpload\": "
            "{{\"DaysAfterInitiation\": 7}}}}]}}' (this replaces any existing configuration)."
        ),
        "IAM.1": (
            "Customer managed policy {resource_id} allows \"Action\": \"*\" on \"Resource\": \"*\". List who has it "
            "(aws iam list-entities-for-policy --policy-arn {resource_id}) and, with the owners, replace it by a "
            "policy with the actions they use (IAM Access Analyzer > Generate policy from CloudTrail activity, or "
            "the last-accessed data: aws iam generate-service-last-accessed-details --arn ROLE_OR_USER_ARN). Give "
            "administrators the AWS managed AdministratorAccess policy through a group or role instead. Check: the "
            "policy's default version has no statement allowing * on *."
        ),
    }
