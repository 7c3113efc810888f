"""Service controls only a person can fix well, reported as `notified` with the exact steps (no AWS call).

Why not automated here: rotating a secret needs a rotation function that knows the database or API behind it
(SecretsManager.1, .4); deleting an unused secret loses it (SecretsManager.3); credentials in CodeBuild variables
are already exposed, so moving them is not enough: they must be rotated by whoever owns them (CodeBuild.2); a build
that needs Docker breaks without privileged mode (CodeBuild.5); a read-only root file system needs a new task
definition revision the service is then redeployed with (ECS.5); where S3 event notifications should go, and when
objects may expire, are the owner's decisions (S3.11, S3.13). The rest need a change this tool does not make safely
on its own: a terminated instance, a new endpoint, launch template or role, a stack update, a snapshot copy, a new
origin, a redirect before an HTTPS listener is known to serve, or a setting moto cannot yet prove (EC2.4, EC2.10,
EC2.18, CloudFormation.1, CloudFront.1/.12, CloudTrail.6, RDS.4/.6, DynamoDB.1, SSM.1, AutoScaling.3/.5,
APIGateway.1, SNS.2, Redshift.4, ElastiCache.1/.2/.3, ELB.1, S3.6); tags are the owner's (DynamoDB.5, GuardDuty.2).
Security Hub retired CloudFormation.1, SNS.2 and CodeBuild.5 in April 2024; other sources still report them.
Guidance names the finding's resource with {resource_id}, {resource_arn}, {account_id}, {region} and {partition}.
"""

from __future__ import annotations

from typing import ClassVar

from functions.remediators.base import Rule
from functions.remediators.notify import ManualRemediation


class ServiceManualRemediation(ManualRemediation):
    """Secrets Manager rotation and unused secrets, CodeBuild credentials and privileged mode, ECS read-only root
    file systems, S3 event notifications and lifecycle."""

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
        Rule("ECS.5", "ECS task definitions should configure containers to be limited to read-only access to root "
             "filesystems", default_mode="notify"),
        Rule("S3.11", "S3 general purpose buckets should have event notifications enabled", default_mode="notify"),
        Rule("S3.13", "S3 general purpose buckets should have Lifecycle configurations", default_mode="notify"),
        Rule("EC2.4", "Stopped EC2 instances should be removed after a specified time period", default_mode="notify"),
        Rule("EC2.10", "Amazon EC2 should be configured to use VPC endpoints that are created for the Amazon EC2 "
             "service", default_mode="notify"),
        Rule("EC2.18", "Security groups should only allow unrestricted incoming traffic for authorized ports",
             default_mode="notify"),
        Rule("CloudFormation.1", "CloudFormation stacks should be integrated with Simple Notification Service (SNS)",
             default_mode="notify"),
        Rule("CloudFront.1", "CloudFront distributions should have a default root object configured",
             default_mode="notify"),
        Rule("CloudFront.12", "CloudFront distributions should not point to non-existent S3 origins",
             default_mode="notify"),
        Rule("CloudTrail.6", "Ensure the S3 bucket used to store CloudTrail logs is not publicly accessible",
             default_mode="notify"),
        Rule("RDS.4", "RDS cluster snapshots and database snapshots should be encrypted at rest",
             default_mode="notify"),
        Rule("RDS.6", "Enhanced monitoring should be configured for RDS DB instances", default_mode="notify"),
        Rule("DynamoDB.1", "DynamoDB tables should automatically scale capacity with demand", default_mode="notify"),
        Rule("SSM.1", "Amazon EC2 instances should be managed by AWS Systems Manager", default_mode="notify"),
        Rule("AutoScaling.3", "Auto Scaling group launch configurations should configure EC2 instances to require "
             "Instance Metadata Service Version 2 (IMDSv2)", default_mode="notify"),
        Rule("AutoScaling.5", "Amazon EC2 instances launched using Auto Scaling group launch configurations should "
             "not have Public IP addresses", default_mode="notify"),
        Rule("APIGateway.1", "API Gateway REST and WebSocket API execution logging should be enabled",
             default_mode="notify"),
        Rule("SNS.2", "Logging of delivery status should be enabled for notification messages sent to a topic",
             default_mode="notify"),
        Rule("Redshift.4", "Amazon Redshift clusters should have audit logging enabled", default_mode="notify"),
        Rule("ElastiCache.1", "ElastiCache (Redis OSS) clusters should have automatic backups enabled",
             default_mode="notify"),
        Rule("ElastiCache.2", "ElastiCache clusters should have automatic minor version upgrades enabled",
             default_mode="notify"),
        Rule("ElastiCache.3", "ElastiCache replication groups should have automatic failover enabled",
             default_mode="notify"),
        Rule("ELB.1", "Application Load Balancer should be configured to redirect all HTTP requests to HTTPS",
             default_mode="notify"),
        Rule("S3.6", "S3 general purpose bucket policies should restrict access to other AWS accounts",
             default_mode="notify"),
        Rule("DynamoDB.5", "DynamoDB tables should be tagged", default_mode="notify"),
        Rule("GuardDuty.2", "GuardDuty filters should be tagged", default_mode="notify"),
    )
    resource_types = ("AwsSecretsManagerSecret", "AwsCodeBuildProject", "AwsEcsTaskDefinition", "AwsS3Bucket",
                      "AwsEc2Instance", "AwsAccount", "AwsEc2SecurityGroup",
                      "AwsCloudFormationStack", "AwsCloudFrontDistribution", "AwsCloudTrailTrail",
                      "AwsRdsDbSnapshot", "AwsRdsDbClusterSnapshot", "AwsRdsDbInstance", "AwsDynamoDbTable",
                      "AwsAutoScalingLaunchConfiguration", "AwsApiGatewayStage", "AwsApiGatewayV2Stage",
                      "AwsSnsTopic", "AwsRedshiftCluster", "AwsElastiCacheCacheCluster",
                      "AwsElastiCacheReplicationGroup", "AwsElbv2LoadBalancer", "AwsGuardDutyFilter")
    guidance: ClassVar[dict[str, str]] = {
        "SecretsManager.1": (
            "Turn on rotation for secret {resource_id}. For an RDS, Aurora, Redshift or DocumentDB credential, let "
            "the database manage it (RDS: modify-db-instance --manage-master-user-password) or use the matching "
            "AWS rotation function from the Secrets Manager console (Secret > Rotation > Edit rotation); for any "
            "other secret, write a rotation Lambda function for the system it unlocks. Then: aws secretsmanager "
            "rotate-secret --region {region} --secret-id {resource_arn} --rotation-lambda-arn FUNCTION_ARN "
            "--rotation-rules AutomaticallyAfterDays=30 (at most the control's maximumAllowedRotationFrequency, when "
            "set). Check: aws secretsmanager describe-secret --region "
            "{region} --secret-id {resource_arn} shows RotationEnabled true."
        ),
        "SecretsManager.3": (
            "Secret {resource_id} has not been read for longer than the control allows (unusedForDays, 90 days by "
            "default). Find who used it (CloudTrail "
            "GetSecretValue events, the LastAccessedDate of aws secretsmanager describe-secret --region {region} "
            "--secret-id {resource_arn}); if nothing needs it, aws secretsmanager delete-secret --region {region} "
            "--secret-id {resource_arn} --recovery-window-in-days 30 (restore-secret brings it back within the "
            "window; after it the value is gone)."
        ),
        "SecretsManager.4": (
            "Secret {resource_id} has not rotated within the control's number of days (maxDaysSinceRotation, 90 by "
            "default). A secret without rotation needs it turned on first (as for SecretsManager.1). Check the last "
            "rotation "
            "(aws secretsmanager describe-secret --region {region} --secret-id {resource_arn}: LastRotatedDate, "
            "RotationRules) and the rotation function's CloudWatch logs for failures, fix them, then rotate now: "
            "aws secretsmanager rotate-secret --region {region} --secret-id {resource_arn}."
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
            "Security Hub retired this control in April 2024 (a finding comes from another source or an older "
            "export); the step still holds. "
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
            "Bucket {resource_id} has no event notifications. Decide with its owner where object events should go "
            "(an SNS topic, SQS queue or Lambda function; if the control's eventTypes parameter is set, those "
            "events) and enable them, for example to a queue whose policy lets s3.amazonaws.com send: aws s3api "
            "put-bucket-notification-configuration --bucket {resource_id} --notification-configuration "
            "'{{\"QueueConfigurations\": [{{\"QueueArn\": \"QUEUE_ARN\", \"Events\": [\"s3:ObjectCreated:*\", "
            "\"s3:ObjectRemoved:*\"]}}]}}' (this replaces the configuration: merge any existing one from aws s3api "
            "get-bucket-notification-configuration --bucket {resource_id} first). Sending events to EventBridge "
            "alone may not pass: the control's Config rule evaluates topic, queue and function destinations."
        ),
        "S3.13": (
            "Bucket {resource_id} has no lifecycle configuration. Decide with its owner how long objects and old "
            "versions are kept, then add a rule, for example one that only aborts incomplete multipart uploads "
            "after 7 days and deletes nothing else: aws s3api put-bucket-lifecycle-configuration --bucket "
            "{resource_id} --lifecycle-configuration '{{\"Rules\": [{{\"ID\": \"abort-incomplete-uploads\", "
            "\"Status\": \"Enabled\", \"Filter\": {{}}, \"AbortIncompleteMultipartUpload\": "
            "{{\"DaysAfterInitiation\": 7}}}}]}}' (this replaces any existing configuration)."
        ),
        "EC2.4": (
            "Instance {resource_id} has been stopped longer than the control allows (30 days by default). If it is "
            "not needed, keep what it holds first: aws ec2 create-image --region {region} --instance-id "
            "{resource_id} --name {resource_id}-final --no-reboot (snapshots every attached volume), check aws ec2 "
            "describe-instances --instance-ids {resource_id} for volumes with DeleteOnTermination true, then aws "
            "ec2 terminate-instances --region {region} --instance-ids {resource_id}."
        ),
        "EC2.10": (
            "VPC {resource_id} has no interface endpoint for the EC2 API. Create one (billed per hour per "
            "Availability Zone): aws ec2 create-vpc-endpoint --region {region} --vpc-id {resource_id} "
            "--vpc-endpoint-type Interface --service-name com.amazonaws.{region}.ec2 --subnet-ids SUBNETS "
            "--security-group-ids SG --private-dns-enabled (the security group must allow HTTPS from the VPC)."
        ),
        "EC2.18": (
            "Security group {resource_id} allows 0.0.0.0/0 or ::/0 on ports other than the authorized ones (80 and "
            "443 by default). Narrow each such rule to the sources that need it, or revoke it: aws ec2 "
            "revoke-security-group-ingress --region {region} --group-id {resource_id} --ip-permissions ... (copy the "
            "rule from aws ec2 describe-security-group-rules --filters Name=group-id,Values={resource_id})."
        ),
        "CloudFormation.1": (
            "Security Hub retired this control in April 2024 (a finding comes from another source or an older "
            "export); the step still holds. "
            "Stack {resource_id} sends no events to SNS. Add a topic without changing the template: aws "
            "cloudformation update-stack --region {region} --stack-name {resource_arn} --use-previous-template "
            "--notification-arns TOPIC_ARN --parameters ParameterKey=KEY,UsePreviousValue=true (one per parameter) "
            "and the --capabilities the stack needs; review the change set if resources would change."
        ),
        "CloudFront.1": (
            "Distribution {resource_id} has no default root object, so a request for / may list or expose the "
            "origin. aws cloudfront get-distribution-config --id {resource_id} > config.json, set "
            "DistributionConfig.DefaultRootObject (for example index.html), then aws cloudfront update-distribution "
            "--id {resource_id} --if-match ETAG --distribution-config file://config-only.json."
        ),
        "CloudFront.12": (
            "Distribution {resource_id} has an S3 origin whose bucket does not exist: anyone who creates a bucket "
            "of that name serves content through it. Remove or replace that origin now (aws cloudfront "
            "get-distribution-config --id {resource_id}, edit Origins, update-distribution with --if-match ETAG), or "
            "create the bucket in your own account with the name first."
        ),
        "CloudTrail.6": (
            "The log bucket of trail {resource_id} is public. Block public access on it: aws s3api "
            "put-public-access-block --bucket BUCKET --public-access-block-configuration BlockPublicAcls=true,"
            "IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true (the S3.8 rule does this for a "
            "bucket finding), and check its policy grants CloudTrail, not everyone."
        ),
        "RDS.4": (
            "Snapshot {resource_id} is not encrypted, and a snapshot cannot be encrypted in place. Copy it "
            "encrypted: aws rds copy-db-snapshot --region {region} --source-db-snapshot-identifier {resource_id} "
            "--target-db-snapshot-identifier {resource_id}-encrypted --kms-key-id KEY (copy-db-cluster-snapshot for "
            "a cluster snapshot), check the copy, then delete the unencrypted one once nothing needs it."
        ),
        "RDS.6": (
            "Instance {resource_id} has no enhanced monitoring. Create (once) a role trusted by "
            "monitoring.rds.amazonaws.com with the AWS managed policy AmazonRDSEnhancedMonitoringRole, then aws rds "
            "modify-db-instance --region {region} --db-instance-identifier {resource_id} --monitoring-interval 60 "
            "--monitoring-role-arn arn:{partition}:iam::{account_id}:role/ROLE (metrics go to CloudWatch Logs, "
            "billed)."
        ),
        "DynamoDB.1": (
            "Table {resource_id} has fixed provisioned capacity. Either switch it to on-demand: aws dynamodb "
            "update-table --region {region} --table-name {resource_id} --billing-mode PAY_PER_REQUEST (switching "
            "back is limited per day), or keep provisioned mode and register auto scaling for reads and writes "
            "(aws application-autoscaling register-scalable-target and put-scaling-policy with "
            "DynamoDBReadCapacityUtilization / DynamoDBWriteCapacityUtilization)."
        ),
        "SSM.1": (
            "Instance {resource_id} is not managed by Systems Manager. Give it an instance profile whose role has "
            "the AWS managed policy AmazonSSMManagedInstanceCore (aws ec2 associate-iam-instance-profile --region "
            "{region} --instance-id {resource_id} --iam-instance-profile Name=PROFILE, or add the policy to its "
            "current role), or turn on Default Host Management Configuration in Fleet Manager; the SSM Agent must "
            "run and reach the SSM endpoints."
        ),
        "AutoScaling.3": (
            "Launch configuration {resource_id} lets instances use IMDSv1, and a launch configuration cannot be "
            "changed. Create a launch template (or a new launch configuration) with MetadataOptions "
            "HttpTokens=required, check the application works with IMDSv2, point the group at it (aws autoscaling "
            "update-auto-scaling-group --launch-template ...) and start an instance refresh."
        ),
        "AutoScaling.5": (
            "Launch configuration {resource_id} gives instances public IP addresses. Create a launch template with "
            "AssociatePublicIpAddress false on its network interface, make sure the group's subnets reach the "
            "internet through a NAT gateway if the instances need it, point the group at the template and start "
            "an instance refresh."
        ),
        "APIGateway.1": (
            "Stage {resource_id} has no execution logging. Once per account and region, set the CloudWatch role: "
            "aws apigateway update-account --region {region} --patch-operations op=replace,path=/cloudwatchRoleArn,"
            "value=ROLE_ARN (a role trusted by apigateway.amazonaws.com with AmazonAPIGatewayPushToCloudWatchLogs); "
            "then aws apigateway update-stage --region {region} --rest-api-id API --stage-name STAGE "
            "--patch-operations op=replace,path=/*/*/logging/loglevel,value=ERROR (WebSocket: apigatewayv2 "
            "update-stage --default-route-settings LoggingLevel=ERROR)."
        ),
        "SNS.2": (
            "Security Hub retired this control in April 2024 (a finding comes from another source or an older "
            "export); the step still holds. "
            "Topic {resource_id} logs no delivery status. Create (once) a role trusted by sns.amazonaws.com that may "
            "logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents and logs:PutMetricFilter, then for each "
            "protocol the topic delivers to: aws sns set-topic-attributes --region {region} --topic-arn "
            "{resource_arn} --attribute-name HTTPFailureFeedbackRoleArn --attribute-value ROLE_ARN (and "
            "HTTPSuccessFeedbackRoleArn, SQS…, Lambda…, Firehose…, Application… as used)."
        ),
        "Redshift.4": (
            "Cluster {resource_id} has no audit logging. aws redshift enable-logging --region {region} "
            "--cluster-identifier {resource_id} --log-destination-type cloudwatch --log-exports connectionlog "
            "userlog useractivitylog (billed by CloudWatch Logs; or --bucket-name BUCKET with the Redshift bucket "
            "policy); user activity logs also need enable_user_activity_logging=true in the parameter group."
        ),
        "ElastiCache.1": (
            "Cluster {resource_id} keeps no automatic backups. aws elasticache modify-replication-group --region "
            "{region} --replication-group-id {resource_id} --snapshot-retention-limit 7 --apply-immediately (or "
            "modify-cache-cluster --cache-cluster-id for a single node; backup storage beyond the free allowance is "
            "billed)."
        ),
        "ElastiCache.2": (
            "Cluster {resource_id} does not take minor version upgrades. aws elasticache modify-cache-cluster "
            "--region {region} --cache-cluster-id {resource_id} --auto-minor-version-upgrade (Redis OSS 6 and "
            "later; upgrades happen in the maintenance window)."
        ),
        "ElastiCache.3": (
            "Replication group {resource_id} has no automatic failover. It needs at least one replica; then aws "
            "elasticache modify-replication-group --region {region} --replication-group-id {resource_id} "
            "--automatic-failover-enabled --apply-immediately."
        ),
        "ELB.1": (
            "Load balancer {resource_id} has an HTTP listener that does not redirect to HTTPS. First make sure an "
            "HTTPS listener with a certificate serves the same routes, then aws elbv2 modify-listener --region "
            "{region} --listener-arn HTTP_LISTENER_ARN --default-actions "
            "Type=redirect,RedirectConfig={{Protocol=HTTPS,Port=443,StatusCode=HTTP_301}} (and change listener "
            "rules that forward plain HTTP the same way)."
        ),
        "DynamoDB.5": (
            "Table {resource_id} lacks the tags the control requires (every key of its requiredTagKeys parameter, "
            "or any tag when none are set; keys starting with aws: do not count). Which tags, and their values, "
            "are your organization's: aws dynamodb tag-resource --region {region} --resource-arn {resource_arn} "
            "--tags Key=KEY,Value=VALUE. Check: aws dynamodb list-tags-of-resource --region {region} "
            "--resource-arn {resource_arn}."
        ),
        "GuardDuty.2": (
            "GuardDuty filter {resource_id} lacks the tags the control requires (every key of its requiredTagKeys "
            "parameter, or any tag when none are set; keys starting with aws: do not count). Which tags, and their "
            "values, are your organization's: aws guardduty tag-resource --region {region} --resource-arn "
            "{resource_arn} --tags KEY=VALUE. Check: aws guardduty list-tags-for-resource --region {region} "
            "--resource-arn {resource_arn}."
        ),
        "S3.6": (
            "The policy of bucket {resource_id} lets another account change the bucket's access (s3:DeleteBucketPolicy"
            ", s3:PutBucketAcl, s3:PutBucketPolicy, s3:PutEncryptionConfiguration or s3:PutObjectAcl). Remove those "
            "actions from the statements naming other accounts: aws s3api get-bucket-policy --bucket {resource_id}, "
            "edit, aws s3api put-bucket-policy --bucket {resource_id} --policy file://policy.json."
        ),
    }
