"""Prowler check id → canonical rule id (a Security Hub control id): data, read by connectors/prowler.py.

Prowler's own compliance mapping (`unmapped.compliance["AWS-Foundational-Security-Best-Practices"]` in OCSF,
`Compliance.RelatedRequirements` in ASFF) is the fallback, but it is coarse where this catalog needs precision:
it files every password-policy check under IAM.7/IAM.10 (Security Hub's CIS controls IAM.11 to IAM.17 each check
one setting), and the unused-credentials checks under IAM.8, IAM.22 and IAM.26 at once. A check listed here wins.

Check ids are Prowler's (`prowler aws --list-checks`, prowler/providers/aws/services/*/<check>/); the controls are
Security Hub's consolidated control ids. Add a line to teach the connector a check; nothing else changes.
"""

from __future__ import annotations

CHECK_RULES: dict[str, str] = {
    # CloudTrail
    "cloudtrail_multi_region_enabled": "CloudTrail.1",
    "cloudtrail_kms_encryption_enabled": "CloudTrail.2",
    "cloudtrail_log_file_validation_enabled": "CloudTrail.4",
    "cloudtrail_logs_s3_bucket_access_logging_enabled": "CloudTrail.7",
    "cloudtrail_s3_dataevents_write_enabled": "S3.22",
    "cloudtrail_s3_dataevents_read_enabled": "S3.23",
    # Config
    "config_recorder_all_regions_enabled": "Config.1",
    # EC2 / VPC
    "ec2_ebs_public_snapshot": "EC2.1",
    "ec2_securitygroup_default_restrict_traffic": "EC2.2",
    "vpc_flow_logs_enabled": "EC2.6",
    "ec2_ebs_default_encryption": "EC2.7",
    "ec2_instance_imdsv2_enabled": "EC2.8",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22": "EC2.13",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389": "EC2.14",
    "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports": "EC2.19",
    "ec2_networkacl_allow_ingress_tcp_port_22": "EC2.21",
    "ec2_networkacl_allow_ingress_tcp_port_3389": "EC2.21",
    # EFS, KMS, Lambda
    "efs_encryption_at_rest_enabled": "EFS.1",
    "kms_cmk_rotation_enabled": "KMS.4",
    "awslambda_function_not_publicly_accessible": "Lambda.1",
    # IAM
    "iam_policy_attached_only_to_group_or_roles": "IAM.2",
    "iam_rotate_access_key_90_days": "IAM.3",
    "iam_no_root_access_key": "IAM.4",
    "iam_user_mfa_enabled_console_access": "IAM.5",
    "iam_root_hardware_mfa_enabled": "IAM.6",
    "iam_root_mfa_enabled": "IAM.9",
    "iam_password_policy_uppercase": "IAM.11",
    "iam_password_policy_lowercase": "IAM.12",
    "iam_password_policy_symbol": "IAM.13",
    "iam_password_policy_number": "IAM.14",
    "iam_password_policy_minimum_length_14": "IAM.15",
    "iam_password_policy_reuse_24": "IAM.16",
    "iam_password_policy_expires_passwords_within_90_days_or_less": "IAM.17",
    "iam_support_role_created": "IAM.18",
    "iam_user_accesskey_unused": "IAM.22",
    "iam_user_two_active_access_key": "netskope:iam-one-active-access-key",  # CIS 1.13: no Security Hub control
    "iam_user_console_access_unused": "IAM.22",
    "iam_no_expired_server_certificates_stored": "IAM.26",
    "iam_policy_cloudshell_admin_not_attached": "IAM.27",
    "accessanalyzer_enabled": "IAM.28",
    # RDS, Redshift
    "rds_snapshots_public_access": "RDS.1",
    "rds_instance_no_public_access": "RDS.2",
    "rds_instance_storage_encrypted": "RDS.3",
    "rds_instance_minor_version_upgrade_enabled": "RDS.13",
    "redshift_cluster_public_access": "Redshift.1",
    # S3, SQS
    "s3_account_level_public_access_blocks": "S3.1",
    "s3_bucket_secure_transport_policy": "S3.5",
    "s3_bucket_level_public_access_block": "S3.8",
    "s3_bucket_no_mfa_delete": "S3.20",
    "sqs_queues_not_publicly_accessible": "SQS.3",
}

# Controls Security Hub reports on the account (resource type AwsAccount), where Prowler names a trail, a policy
# or a pseudo-ARN (`arn:aws:iam:us-east-1:123456789012:password-policy`): the finding is rewritten to the account,
# so the remediator that fixes the account-wide setting takes it.
ACCOUNT_LEVEL_RULES: frozenset[str] = frozenset({
    "CloudTrail.1", "Config.1", "EC2.7", "IAM.4", "IAM.6", "IAM.7", "IAM.9", "IAM.10", "IAM.11", "IAM.12", "IAM.13",
    "IAM.14", "IAM.15", "IAM.16", "IAM.17", "IAM.18", "IAM.28", "S3.1", "S3.22", "S3.23",
})
