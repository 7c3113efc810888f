"""S3 remediators: Block Public Access for a bucket (S3.8) and the account (S3.1), TLS-only bucket policy (S3.5).

Block Public Access: all four settings on, nothing less makes the control pass. The previous configuration (None
when there was none) is recorded so the change can be undone.

Also the bucket helpers the CloudTrail remediators share: partition-aware ARNs, the TLS-only statement, region
lookup and creating a secured bucket (Block Public Access, default encryption, a policy).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators import tagging
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook

log = logging.getLogger(__name__)

SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALL_BLOCKED: dict[str, bool] = dict.fromkeys(SETTINGS, True)
_SSM_ALL_BLOCKED = {name: ["true"] for name in SETTINGS}

POLICY_VERSION = "2012-10-17"
TLS_SID = "DenyInsecureTransport"
SSE_S3 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def bucket_name(finding: Finding) -> str:
    """The bucket of a finding; tolerates an S3 ARN (`arn:aws:s3:::name`) in place of the name."""
    resource_id = finding.resource_id
    return resource_id.split(":::", 1)[1] if resource_id.startswith("arn:") else resource_id


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def _as_list(value: Any) -> list[Any]:
    """IAM policy elements may be a single value or a list."""
    return value if isinstance(value, list) else [value]


def secure_transport_statement(arn: str, sid: str = TLS_SID) -> dict[str, Any]:
    """Deny every S3 action on the bucket and its objects over plain HTTP (the statement S3.5 looks for)."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def denies_insecure_transport(statement: Mapping[str, Any], arn: str) -> bool:
    """True when the statement denies every principal every S3 action on the bucket and its objects without TLS.

    That is what the Config rule behind S3.5 (s3-bucket-ssl-requests-only) accepts. Any narrowing (Not* elements,
    named principals, some actions only, extra condition keys) means HTTP stays open somewhere, so it does not count.
    """
    if statement.get("Effect") != "Deny" or {"NotPrincipal", "NotAction", "NotResource"} & set(statement):
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, dict) and _as_list(principal.get("AWS")) == ["*"]):
        return False
    if not {"*", "s3:*"} & {str(action).lower() for action in _as_list(statement.get("Action"))}:
        return False
    resources = set(_as_list(statement.get("Resource")))
    if "*" not in resources and not {arn, f"{arn}/*"} <= resources:
        return False
    condition = statement.get("Condition") or {}
    values = condition.get("Bool") or {}
    if set(condition) != {"Bool"} or len(values) != 1:
        return False
    key, value = next(iter(values.items()))
    return key.lower() == "aws:securetransport" and [str(v).lower() for v in _as_list(value)] == ["false"]


def _missing_bucket(error: ClientError, bucket: str) -> None:
    if aws_error_code(error) == "NoSuchBucket":
        raise RemediationError(f"S3 bucket {bucket} does not exist") from error


def read_bucket_policy(s3: AwsClient, bucket: str, owner: str | None = None) -> str | None:
    """The bucket policy text exactly as stored, or None when the bucket has none."""
    try:
        policy: str = s3.get_bucket_policy(Bucket=bucket, **({"ExpectedBucketOwner": owner} if owner else {}))["Policy"]
        return policy
    except ClientError as error:
        _missing_bucket(error, bucket)
        if aws_error_code(error) == "NoSuchBucketPolicy":
            return None
        raise


def bucket_region(s3: AwsClient, bucket: str) -> str | None:
    """The bucket's region; None when this account may not read it (a bucket of another account)."""
    try:
        constraint: str | None = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as error:
        _missing_bucket(error, bucket)
        if aws_error_code(error) == "AccessDenied":
            return None
        raise
    # us-east-1 answers with no constraint; "EU" is the legacy name of eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)


def bucket_exists(s3: AwsClient, bucket: str) -> bool:
    """False when nobody owns the name; a name another account owns cannot be used, so it is refused."""
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as error:
        code = aws_error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            raise RemediationError(
                f"S3 bucket name {bucket} is taken by another account (or denies this one): choose another"
            ) from error
        raise


def create_secure_bucket(s3: AwsClient, bucket: str, region: str, policy: Mapping[str, Any]) -> None:
    """Create a private bucket: Block Public Access, SSE-S3 default encryption, then the given policy.

    `s3` must be a client of `region` (CreateBucket refuses a location constraint of another region).
    """
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=SSE_S3)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def secure_bucket_changes(bucket: str, purpose: str) -> list[str]:
    return [f"create S3 bucket {bucket} (Block Public Access, SSE-S3 default encryption, TLS only, {purpose})"]


# -- Block Public Access (S3.8, S3.1) ----------------------------------------------------------------------------


def _read_configuration(get: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, bool] | None:
    """The current PublicAccessBlockConfiguration, or None when none was ever set (all four are then off)."""
    try:
        configuration: dict[str, bool] = get(**kwargs)["PublicAccessBlockConfiguration"]
        return configuration
    except ClientError as error:
        if aws_error_code(error) == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise


ACCOUNT_CONFIGURATION = ("s3control.GetPublicAccessBlock",)


def account_configuration(target: Target, written: bool = True) -> dict[str, bool] | None:
    """The account-level Block Public Access configuration (one S3 Control read per account and run, whichever
    region asks; S3.1 changes it, S3.8 only consults it: written=False)."""
    return target.read(ACCOUNT_CONFIGURATION, lambda: _read_configuration(
        target.client("s3control").get_public_access_block, AccountId=target.account_id
    ), account_wide=True, written=written)


def in_effect(bucket: Mapping[str, bool] | None, account: Mapping[str, bool] | None) -> dict[str, bool]:
    """The settings S3 applies to the bucket: each one on where the bucket's or the account's configuration has it."""
    return {name: bool((bucket or {}).get(name)) or bool((account or {}).get(name)) for name in SETTINGS}


def owned(target: Target, bucket: str) -> dict[str, str]:
    """Bucket and ExpectedBucketOwner arguments: S3 refuses the call (403) when another account owns a bucket of
    that name, so a finding that names the wrong account's bucket never reads or changes it."""
    return {"Bucket": bucket, "ExpectedBucketOwner": target.account_id}


_ACL_EVERYONE = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


def public_now(s3: AwsClient, key: Mapping[str, str], configuration: Mapping[str, bool] | None = None) -> list[str]:
    """How the bucket is public right now (its policy, its ACL): what turning on the settings still off in
    `configuration` (those in effect: the bucket's or its account's, in_effect) would cut. Each is read only when
    the change can cut it: a public policy is already held back where RestrictPublicBuckets is on, a public ACL
    where IgnorePublicAcls is on (BlockPublicPolicy and BlockPublicAcls refuse only new ones)."""
    current = configuration or {}
    reasons = []
    if not current.get("RestrictPublicBuckets"):
        try:
            if s3.get_bucket_policy_status(**key)["PolicyStatus"].get("IsPublic"):
                reasons.append("its policy is public")
        except ClientError as error:
            if aws_error_code(error) != "NoSuchBucketPolicy":
                raise
    if not current.get("IgnorePublicAcls"):
        grants = s3.get_bucket_acl(**key).get("Grants", [])
        if any((grant.get("Grantee") or {}).get("URI") in _ACL_EVERYONE for grant in grants):
            reasons.append("its ACL grants everyone access")
    return reasons


def bucket_tags(s3: AwsClient, bucket: str, owner: str | None = None) -> dict[str, str]:
    """The bucket's live tags (one GetBucketTagging), so the exclusion tag works whatever the finding's source."""
    try:
        extra = {"ExpectedBucketOwner": owner} if owner else {}
        tag_set = s3.get_bucket_tagging(Bucket=bucket, **extra).get("TagSet", [])
    except ClientError as error:
        if aws_error_code(error) == "NoSuchTagSet":
            return {}
        _missing_bucket(error, bucket)
        raise
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def _assess(configuration: dict[str, bool] | None, where: str) -> Assessment:
    current = configuration or {}
    off = [name for name in SETTINGS if not current.get(name, False)]
    return Assessment(
        compliant=not off,
        changes=[f"turn on {', '.join(off)} for {where}"] if off else [],
        pre_state={"PublicAccessBlockConfiguration": configuration},
    )


def _restore_configuration(client: AwsClient, pre_state: Mapping[str, Any], where: str, **key: str) -> list[str]:
    """Put the recorded configuration back, or remove the one apply set when there was none (both idempotent)."""
    if "PublicAccessBlockConfiguration" not in pre_state:
        raise RemediationError(f"no previous Block Public Access configuration recorded for {where}")
    previous = pre_state["PublicAccessBlockConfiguration"]
    if previous is not None:
        client.put_public_access_block(PublicAccessBlockConfiguration=previous, **key)
        return [f"put back the previous Block Public Access configuration of {where}: {previous}"]
    try:
        client.delete_public_access_block(**key)
    except ClientError as error:
        if aws_error_code(error) != "NoSuchPublicAccessBlockConfiguration":
            raise
    return [f"removed the Block Public Access configuration of {where} (it had none before)"]


def _configuration_fields(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The four settings (no configuration: all off), for a rollback that restores only what the run turned on."""
    if "PublicAccessBlockConfiguration" not in state:
        return None
    configuration = state["PublicAccessBlockConfiguration"] or {}
    return {name: bool(configuration.get(name)) for name in SETTINGS}


def _restore_fields(client: AwsClient, pre_state: Mapping[str, Any], fields: Mapping[str, Any], where: str,
                    **key: str) -> list[str]:
    """The live configuration with only `fields` set back; removed when the run created it and all goes back."""
    live = _read_configuration(client.get_public_access_block, **key) or {}
    configuration = {name: bool(live.get(name)) for name in SETTINGS} | {k: bool(v) for k, v in fields.items()}
    if pre_state.get("PublicAccessBlockConfiguration") is None and not any(configuration.values()):
        return _restore_configuration(client, pre_state, where, **key)
    client.put_public_access_block(PublicAccessBlockConfiguration=configuration, **key)
    return [f"turned {', '.join(fields)} off again for {where}"]


def _bucket_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {
        "BucketName": [bucket_name(finding)],
        "AutomationAssumeRole": [automation_role_arn],
        **_SSM_ALL_BLOCKED,
    }


def _account_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {
        "AccountId": [finding.account_id],
        "AutomationAssumeRole": [automation_role_arn],
        **_SSM_ALL_BLOCKED,
    }


class BucketPublicAccessBlock(Remediator):
    """S3.8: turn on the four bucket-level Block Public Access settings.

    The bucket's live tags are read (one GetBucketTagging, or the engine's batched tag read) so the exclusion tag
    holds for sources whose findings carry no tags. A bucket that is public right now (its policy status, or an ACL
    grant to everyone; Netskope's rule reports exactly those) loses that access: the change is disruptive for that
    finding, and the plan says so (see public_now for when each is read). Where the account's own Block Public
    Access already holds a public policy or ACL back, nothing is cut and that read is not made: the account's
    settings are read once per account and run (shared with S3.1).
    """

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("S3.8", "S3 general purpose buckets should block public access", cis=("2.1.4.2",)),
    )
    resource_types = ("AwsS3Bucket",)
    # DeletePublicAccessBlock (restore when there was no configuration) is authorized by PutBucketPublicAccessBlock.
    read_permissions = (
        "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketPolicyStatus", "s3:GetBucketAcl",
        "s3:GetAccountPublicAccessBlock",  # the account's settings in effect too (public_now)
        "tag:GetResources", "s3:ListAllMyBuckets",  # the engine's batched tag read (tagging.py)
    )
    write_permissions = ("s3:PutBucketPublicAccessBlock",)
    restore_permissions = ("s3:PutBucketPublicAccessBlock",)
    reversible = True
    side_effects = "new public ACLs and public policies on the bucket are refused from then on"
    runbook = Runbook(
        document="AWSConfigRemediation-ConfigureS3BucketPublicAccessBlock",
        parameters=_bucket_runbook_parameters,
        permissions=("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    )

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return tagging.bucket_arn(target, finding, bucket_name(finding))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        bucket, s3 = bucket_name(finding), target.client("s3")
        key = owned(target, bucket)
        try:
            configuration = _read_configuration(s3.get_public_access_block, **key)
        except ClientError as error:
            _missing_bucket(error, bucket)
            raise
        assessment = _assess(configuration, f"bucket {bucket}")
        # The finding's own tags suffice when it carries them (Security Hub); otherwise one read of the live ones.
        assessment.tags = self.resource_tags(target, finding, lambda: bucket_tags(s3, bucket, target.account_id))
        # Whether the change cuts access in use decides only whether it is held as disruptive: not read for a
        # compliant bucket (noop) nor for one the exclusion tag leaves alone (the engine reports it excluded).
        if not assessment.compliant and not target.excluded(assessment.tags or finding.tags):
            public = public_now(s3, key, in_effect(configuration, self._account_configuration(target)))
            if public:
                assessment.disruptive = f"bucket {bucket} is public now ({', '.join(public)}): that access stops"
        return assessment

    @staticmethod
    def _account_configuration(target: Target) -> dict[str, bool] | None:
        """The account's settings, or None when they cannot be read (a role deployed before this read was granted):
        the bucket's policy status and ACL are then read as without them."""
        try:
            return account_configuration(target, written=False)
        except ClientError as error:
            log.info("s3:GetAccountPublicAccessBlock in %s: %s; reading the bucket's policy status and ACL",
                     target.account_id, aws_error_code(error))
            return None

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("s3").put_public_access_block(
            **owned(target, bucket_name(finding)), PublicAccessBlockConfiguration=ALL_BLOCKED
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        bucket = bucket_name(finding)
        return _restore_configuration(target.client("s3"), pre_state, f"bucket {bucket}", **owned(target, bucket))

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        return _configuration_fields(state)

    def restore_fields(
        self, target: Target, finding: Finding, pre_state: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> list[str]:
        bucket = bucket_name(finding)
        return _restore_fields(target.client("s3"), pre_state, fields, f"bucket {bucket}", **owned(target, bucket))


class AccountPublicAccessBlock(Remediator):
    """S3.1: turn on the four account-level Block Public Access settings (S3 Control API, any region)."""

    rules = (
        Rule(
            "S3.1",
            "S3 general purpose buckets should have block public access settings enabled",
            cis=("2.1.4.1",),
            disruptive=True,
            disruption="access",
            because="every bucket of the account loses the public access its ACLs or policy grant",
        ),
    )
    resource_types = ("AwsAccount",)
    # DeletePublicAccessBlock (restore) is authorized by PutAccountPublicAccessBlock.
    read_permissions = ("s3:GetAccountPublicAccessBlock",)
    write_permissions = ("s3:PutAccountPublicAccessBlock",)
    restore_permissions = ("s3:PutAccountPublicAccessBlock",)
    reversible = True
    side_effects = "public ACLs and public policies are refused on every bucket of the account, now and later"
    runbook = Runbook(
        document="AWSConfigRemediation-ConfigureS3PublicAccessBlock",
        parameters=_account_runbook_parameters,
        permissions=("s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock"),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        return _assess(account_configuration(target), f"account {target.account_id}")

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("s3control").put_public_access_block(
            AccountId=target.account_id, PublicAccessBlockConfiguration=ALL_BLOCKED
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        where = f"account {target.account_id}"
        return _restore_configuration(target.client("s3control"), pre_state, where, AccountId=target.account_id)

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        return _configuration_fields(state)

    def restore_fields(
        self, target: Target, finding: Finding, pre_state: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> list[str]:
        where = f"account {target.account_id}"
        return _restore_fields(target.client("s3control"), pre_state, fields, where, AccountId=target.account_id)


# -- TLS only (S3.5) ---------------------------------------------------------------------------------------------


def _statements(policy: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return _as_list(policy.get("Statement", [])) if policy else []


def _unique_sid(statements: list[dict[str, Any]], sid: str) -> str:
    """A Sid no existing statement uses (duplicate Sids make the whole policy invalid)."""
    taken = {statement.get("Sid") for statement in statements}
    return next(f"{sid}{n or ''}" for n in range(len(taken) + 1) if f"{sid}{n or ''}" not in taken)


def _ssl_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {"BucketName": [bucket_name(finding)], "AutomationAssumeRole": [automation_role_arn]}


class BucketSecureTransportPolicy(Remediator):
    """S3.5: the bucket policy denies requests that do not use TLS.

    One Deny statement is added to the existing policy; every existing statement stays as it is. The policy text
    is recorded as it was (None when the bucket had no policy) so a rollback puts exactly that back. Clients still
    using plain HTTP lose access: that is the point of the control, but it is why this is not a silent change.
    """

    rules = (Rule("S3.5", "S3 general purpose buckets should require requests to use SSL", cis=("2.1.1",)),)
    resource_types = ("AwsS3Bucket",)
    read_permissions = (
        "s3:GetBucketPolicy", "s3:GetBucketTagging",
        "tag:GetResources", "s3:ListAllMyBuckets",  # the engine's batched tag read (tagging.py)
    )
    write_permissions = ("s3:PutBucketPolicy",)
    restore_permissions = ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy")
    reversible = True
    side_effects = "clients still using plain HTTP get AccessDenied"
    # AWS's own script, not ours: AWS documents it as adding a statement, but it declares s3:DeleteBucketPolicy
    # and we cannot check that it keeps every existing statement or uses the bucket's partition in its ARNs. The
    # boto3 executor merges and records the exact previous policy; prefer it for buckets with a policy.
    runbook = Runbook(
        document="AWSConfigRemediation-RestrictBucketSSLRequestsOnly",
        parameters=_ssl_runbook_parameters,
        permissions=(
            "s3:DeleteBucketPolicy",
            "s3:GetBucketPolicy",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPolicy",
        ),
    )

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return tagging.bucket_arn(target, finding, bucket_name(finding))

    def assess(self, target: Target, finding: Finding) -> Assessment:
        bucket = bucket_name(finding)
        text = read_bucket_policy(target.client("s3"), bucket, target.account_id)
        policy = json.loads(text) if text else None
        statements = _statements(policy)
        arn = bucket_arn(target.partition, bucket)
        tags = self.resource_tags(target, finding, lambda: bucket_tags(target.client("s3"), bucket, target.account_id))
        if any(denies_insecure_transport(statement, arn) for statement in statements):
            return Assessment(compliant=True, tags=tags)
        kept = f", keeping its {len(statements)} statement(s)" if statements else " (it has no policy yet)"
        return Assessment(
            compliant=False,
            changes=[f"add a statement denying requests without TLS to the policy of bucket {bucket}{kept}"],
            pre_state={"Policy": text},
            tags=tags,
            context={"policy": policy, "arn": arn},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        policy = dict(assessment.context["policy"] or {"Version": POLICY_VERSION})
        statements = _statements(policy)
        statement = secure_transport_statement(assessment.context["arn"], _unique_sid(statements, TLS_SID))
        policy["Statement"] = [*statements, statement]
        target.client("s3").put_bucket_policy(**owned(target, bucket_name(finding)), Policy=json.dumps(policy))

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        bucket = bucket_name(finding)
        if "Policy" not in pre_state:
            raise RemediationError(f"no previous policy recorded for bucket {bucket}")
        s3 = target.client("s3")
        if pre_state["Policy"] is not None:
            s3.put_bucket_policy(**owned(target, bucket), Policy=pre_state["Policy"])
            return [f"put back the previous policy of bucket {bucket}"]
        s3.delete_bucket_policy(**owned(target, bucket))  # succeeds when there is none already
        return [f"deleted the policy of bucket {bucket} (it had none before)"]
