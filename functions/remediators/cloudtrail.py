"""CloudTrail remediators: a logging multi-Region trail (CloudTrail.1), log file validation (CloudTrail.4), KMS
encryption (CloudTrail.2), access logging on the trail bucket (CloudTrail.7) and S3 data events (S3.22, S3.23).

Trails are changed in their home region (UpdateTrail and friends refuse other regions), and only in the account
that owns them: an organization trail shows up in member accounts but can only be changed in the management one.
Nothing here ever deletes log data: rollbacks stop or remove what was configured and keep buckets and keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.arns import ArnError, parse_arn
from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import AwsClient, Target
from functions.remediators.base import (
    BUCKET_NAME,
    ROLE_NAME,
    Assessment,
    Param,
    RemediationError,
    Remediator,
    Rule,
    Runbook,
    ServiceRole,
    live_tags,
    tag_dict,
)
from functions.remediators.kms import create_cloudtrail_key, find_key
from functions.remediators.s3 import (
    POLICY_VERSION,
    bucket_arn,
    bucket_exists,
    bucket_name,
    bucket_region,
    bucket_tags,
    create_secure_bucket,
    secure_bucket_changes,
    secure_transport_statement,
)
from functions.remediators.tagging import TAGS

# -- trails --------------------------------------------------------------------------------------------------------


def _in_region(target: Target, region: str) -> Target:
    """The same account and session, another region (a trail's home region, a bucket's region)."""
    return dataclasses.replace(target, region=region)


def _trail_client(target: Target, trail: Mapping[str, Any]) -> AwsClient:
    """CloudTrail client of the trail's home region; `trail` is a trail, or a pre_state/context naming one."""
    return _in_region(target, trail.get("HomeRegion") or target.api_region).client("cloudtrail")


def _describe_trails(target: Target) -> list[dict[str, Any]]:
    """Every trail visible here, shadow trails of other regions' multi-Region trails included (one call, shared by
    the run's trail rules in this account and region)."""
    return target.read(("cloudtrail.DescribeTrails",), lambda: target.client("cloudtrail").describe_trails(
        includeShadowTrails=True)["trailList"])


def _find_trail(trails: list[dict[str, Any]], finding: Finding, region: str) -> dict[str, Any] | None:
    """The trail the finding names: by ARN when the finding has one, else by name (or an ARN as resource_id).

    A local trail and another region's multi-Region trail may share a name: the one homed here wins.
    """
    if finding.resource_arn:
        matches = [t for t in trails if t.get("TrailARN") == finding.resource_arn]
    else:
        matches = [t for t in trails if finding.resource_id in (t.get("Name"), t.get("TrailARN"))]
        matches.sort(key=lambda t: t.get("HomeRegion") != region)
    return matches[0] if matches else None


def _arn_account(arn: str) -> str | None:
    try:
        return parse_arn(arn).account or None
    except ArnError:
        return None


def _owned(target: Target, trail: Mapping[str, Any]) -> bool:
    return _arn_account(trail["TrailARN"]) in (None, target.account_id)


def _multi_region_trails(target: Target, trails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The multi-Region trails, this account's own first: they can always be read, an organization trail of the
    management account perhaps not."""
    return sorted((t for t in trails if t.get("IsMultiRegionTrail")), key=lambda t: not _owned(target, t))


def _trail_ref(target: Target, trail: Mapping[str, Any]) -> dict[str, str]:
    """What identifies a trail for later calls (and for rollback): its ARN and home region."""
    return {"TrailARN": trail["TrailARN"], "HomeRegion": trail.get("HomeRegion") or target.api_region}


def resolve_trail(target: Target, finding: Finding) -> dict[str, Any]:
    """The finding's trail, refused when it does not exist or belongs to another account."""
    # No trailNameList: with a plain name AWS only matches trails homed in this region, and a multi-Region
    # trail may be reported in any region. All trails plus shadow trails is one call; we pick ours locally.
    trail = _find_trail(_describe_trails(target), finding, target.api_region)
    if trail is None:
        raise RemediationError(f"trail {finding.resource_arn or finding.resource_id} not found")
    if not _owned(target, trail):
        raise RemediationError(
            f"trail {trail['TrailARN']} belongs to account {_arn_account(trail['TrailARN'])} (organization trail): "
            "it can only be updated there"
        )
    return trail


def _read_trail(target: Target, trail: Mapping[str, Any], operation: str, **kwargs: Any) -> dict[str, Any]:
    """A read about a trail, in its home region. Another account's (organization) trail that this account may not
    read is a refusal: acting on a guess could duplicate a trail that already covers the account."""
    try:
        response: dict[str, Any] = getattr(_trail_client(target, trail), operation)(**kwargs)
        return response
    except ClientError as error:
        if _owned(target, trail):
            raise
        raise RemediationError(
            f"trail {trail['TrailARN']} of another account covers this one but cannot be read from it "
            f"({aws_error_code(error)}); not acting on a guess"
        ) from error

def trail_tags(target: Target, finding: Finding, trail: Mapping[str, Any]) -> dict[str, str] | None:
    """The trail's live tags (one ListTags in its home region) when the finding carries none, for the exclusion tag."""
    def read() -> dict[str, str]:
        response = _read_trail(target, trail, "list_tags", ResourceIdList=[trail["TrailARN"]])
        entries = response.get("ResourceTagList", [])
        return {key: value for entry in entries for key, value in tag_dict(entry.get("TagsList")).items()}
    # Once per run and trail, or from the engine's batched tag read (tagging.py) when it settled this trail.
    return live_tags(finding, lambda: target.read((TAGS, trail["TrailARN"]), read))


def _trail_arn(finding: Finding) -> str | None:
    """The trail's ARN when the finding names it (a name alone may be a trail of another Region: no batch)."""
    for name in (finding.resource_arn or "", finding.resource_id):
        if name.startswith("arn:") and ":cloudtrail:" in name and ":trail/" in name:
            return name
    return None


TRAIL_NAME = r"[A-Za-z0-9][\w.-]{2,127}"  # CloudTrail's trail-name rule (params_schema)

# -- event selectors -----------------------------------------------------------------------------------------------

READ, WRITE = "read", "write"
MANAGEMENT, S3_DATA = "management", "S3 object-level"
_S3_OBJECT = "AWS::S3::Object"
_READ_WRITE_TYPES = {"All": {READ, WRITE}, "ReadOnly": {READ}, "WriteOnly": {WRITE}}
_READ_ONLY_VALUES = {"true": READ, "false": WRITE}
# What a trail logs when nobody set selectors: all management events, no data events.
DEFAULT_EVENT_SELECTOR: dict[str, Any] = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [],
    "ExcludeManagementEventSources": [],
}


def _all_buckets(partition: str) -> set[str]:
    """The DataResources values that mean every bucket, current and future."""
    return {f"arn:{partition}:s3", f"arn:{partition}:s3:::"}


def _classic_coverage(selector: Mapping[str, Any], kind: str, partition: str) -> set[str]:
    if kind == MANAGEMENT:
        applies = selector.get("IncludeManagementEvents", True) and not selector.get("ExcludeManagementEventSources")
    else:
        applies = any(
            resource.get("Type") == _S3_OBJECT and _all_buckets(partition) & set(resource.get("Values") or [])
            for resource in selector.get("DataResources") or []
        )
    return set(_READ_WRITE_TYPES.get(selector.get("ReadWriteType", "All"), ())) if applies else set()


def _advanced_coverage(selector: Mapping[str, Any]) -> tuple[str | None, set[str]]:
    """(kind, read/write) an advanced selector logs in full; any field that narrows it (an event source, some
    buckets, NotEquals…) makes it count for nothing, as the controls treat it."""
    fields = {
        item.get("Field"): {op: values for op, values in item.items() if op != "Field" and values}
        for item in selector.get("FieldSelectors") or []
    }
    category, resource_type = fields.pop("eventCategory", None), fields.pop("resources.type", None)
    read_only = fields.pop("readOnly", None)
    if category == {"Equals": ["Management"]} and resource_type is None:
        kind = MANAGEMENT
    elif category == {"Equals": ["Data"]} and resource_type == {"Equals": [_S3_OBJECT]}:
        kind = S3_DATA
    else:
        return None, set()
    if fields or (read_only is not None and set(read_only) != {"Equals"}):
        return None, set()
    if read_only is None:
        return kind, {READ, WRITE}
    return kind, {_READ_ONLY_VALUES[v.lower()] for v in read_only["Equals"] if v.lower() in _READ_ONLY_VALUES}


def event_coverage(selectors: Mapping[str, Any], kind: str, partition: str) -> set[str]:
    """Which of read/write events of `kind` (MANAGEMENT, or S3_DATA for all buckets) the selectors log."""
    covered: set[str] = set()
    for selector in selectors.get("EventSelectors") or []:
        covered |= _classic_coverage(selector, kind, partition)
    for selector in selectors.get("AdvancedEventSelectors") or []:
        selector_kind, access = _advanced_coverage(selector)
        if selector_kind == kind:
            covered |= access
    return covered


def _read_selectors(target: Target, trail: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The trail's effective selectors. A trail nobody configured reports none (moto) or AWS's default selector;
    both mean DEFAULT_EVENT_SELECTOR, and that is what is recorded so a rollback can put it back."""
    response = _read_trail(target, trail, "get_event_selectors", TrailName=trail["TrailARN"])
    selectors = {
        "EventSelectors": response.get("EventSelectors") or [],
        "AdvancedEventSelectors": response.get("AdvancedEventSelectors") or [],
    }
    if not (selectors["EventSelectors"] or selectors["AdvancedEventSelectors"] or trail.get("HasCustomEventSelectors")):
        selectors["EventSelectors"] = [dict(DEFAULT_EVENT_SELECTOR)]
    return selectors


def _put_selectors(target: Target, trail: Mapping[str, Any], selectors: Mapping[str, Any]) -> None:
    """Advanced and classic selectors exclude each other: put whichever kind the trail uses."""
    kind = "AdvancedEventSelectors" if selectors.get("AdvancedEventSelectors") else "EventSelectors"
    _trail_client(target, trail).put_event_selectors(TrailName=trail["TrailARN"], **{kind: selectors.get(kind, [])})


def _logs_management_events(target: Target, trail: Mapping[str, Any]) -> tuple[bool, bool]:
    """(is logging, logs all read and write management events) for a multi-Region trail."""
    logging = bool(_read_trail(target, trail, "get_trail_status", Name=trail["TrailARN"]).get("IsLogging"))
    covered = event_coverage(_read_selectors(target, trail), MANAGEMENT, target.partition) == {READ, WRITE}
    return logging, covered


# -- CloudTrail.1 --------------------------------------------------------------------------------------------------


def cloudtrail_bucket_policy(partition: str, account_id: str, bucket: str, trail_arn: str) -> dict[str, Any]:
    """The documented CloudTrail bucket policy, limited to the one trail (aws:SourceArn), plus TLS only."""
    arn = bucket_arn(partition, bucket)
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "s3:GetBucketAcl",
                "Resource": arn,
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": cloudtrail,
                "Action": "s3:PutObject",
                "Resource": f"{arn}/AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
                },
            },
            secure_transport_statement(arn),
        ],
    }


_MANAGEMENT_SELECTOR_NAME = "All management events (cspm-remediation)"


def with_all_management_events(current: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]] | None:
    """The trail's selectors changed as little as possible to log every read and write management event; None when
    classic selectors leave no room (five, each mixing data events).

    Advanced selectors: the management selectors (which narrow what they log, or the trail would count) give way
    to one logging all management events; every data selector stays. Classic: a management-only selector is
    widened to All with no excluded sources; without one, a management-only selector is added.
    """
    advanced = list(current.get("AdvancedEventSelectors") or [])
    if advanced:
        kept = [a for a in advanced if _advanced_coverage_kind(a) != MANAGEMENT]
        selector: dict[str, Any] = {"Name": _MANAGEMENT_SELECTOR_NAME,
                                    "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
        return {"EventSelectors": [], "AdvancedEventSelectors": [*kept, selector]}
    classic: list[dict[str, Any]] = [dict(selector) for selector in current.get("EventSelectors") or []]
    for selector in classic:
        if selector.get("IncludeManagementEvents", True) and not selector.get("DataResources"):
            selector.update(ReadWriteType="All", IncludeManagementEvents=True, ExcludeManagementEventSources=[])
            return {"EventSelectors": classic, "AdvancedEventSelectors": []}
    if len(classic) >= _MAX_EVENT_SELECTORS:
        return None
    return {"EventSelectors": [*classic, dict(DEFAULT_EVENT_SELECTOR)], "AdvancedEventSelectors": []}


def _advanced_coverage_kind(selector: Mapping[str, Any]) -> str | None:
    """MANAGEMENT for an advanced selector about management events (narrowed or not), else its data kind or None."""
    for item in selector.get("FieldSelectors") or []:
        if item.get("Field") == "eventCategory" and item.get("Equals") == ["Management"]:
            return MANAGEMENT
    return None


class MultiRegionTrail(Remediator):
    """CloudTrail.1: at least one multi-Region trail that logs read and write management events and is logging.

    An existing multi-Region trail of this account that is stopped, or logs only some management events (write
    only, some sources excluded), is fixed in place — started, and its selectors widened with every data selector
    kept — instead of a second billed trail being created beside it. Only when the account has no multi-Region
    trail of its own is one created, set up to pass the other CloudTrail controls as well: log file validation
    (CloudTrail.4), SSE-KMS with the key behind key_alias (CloudTrail.2; created with rotation on if missing),
    delivery to a CloudWatch Logs group (CloudTrail.5; the service role lets CloudTrail write to that group only),
    and server access logging on the bucket it creates (CloudTrail.7). Rollback stops logging / puts the
    selectors back on a fixed trail, or deletes the trail it created; buckets, logs, key and log group stay.

    AWS-EnableCloudTrail is not offered as a runbook: it only calls CreateTrail with a name and a bucket, which
    gives a single-Region trail that is not logging, into a bucket that must already exist with the policy; the
    control would still fail while the execution reports success.
    """

    rules = (
        # Disruptive: a trail costs money (S3 storage; management events beyond the first copy are billed).
        Rule(
            "CloudTrail.1",
            "CloudTrail should be enabled and configured with at least one multi-Region trail that includes read "
            "and write management events",
            cis=("3.1",),
            disruptive=True,
            disruption="cost",
            because="a trail bills S3 storage, KMS requests and CloudWatch Logs ingestion",
        ),
    )
    resource_types = ("AwsAccount",)
    read_permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:ListTags",  # the exclusion tag on a trail it would fix
        "s3:ListBucket",  # HeadBucket: does the log bucket exist?
        "s3:GetBucketLocation",  # an existing log bucket's region (the KMS key must be there)
        "kms:DescribeKey",  # is there a key behind key_alias?
    )
    write_permissions = (
        "s3:CreateBucket",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutBucketLogging",
        "kms:CreateKey",
        "kms:CreateAlias",
        "kms:EnableKeyRotation",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "cloudtrail:CreateTrail",
        "cloudtrail:StartLogging",
        "cloudtrail:PutEventSelectors",
    )
    restore_permissions = (
        "cloudtrail:StopLogging",  # rollback of a restart
        "cloudtrail:PutEventSelectors",  # rollback of widened selectors
        "cloudtrail:DeleteTrail",  # rollback of a creation
    )
    reversible = True
    side_effects = (
        "a created trail comes with a log bucket, an access log bucket, a KMS key and a CloudWatch Logs "
        "group, all billed; log readers need kms:Decrypt"
    )
    params_schema = {
        "trail_name": Param("cspm-remediation-trail", str, pattern=TRAIL_NAME),
        "bucket_name": Param(None, str, pattern=BUCKET_NAME, description="log bucket (default: derived)"),
        "key_alias": Param("alias/cspm-cloudtrail", str, pattern=r"alias/(?!aws/)[\w/-]{1,250}",
                           description="KMS key of a created trail (CloudTrail.2)"),
        "log_group_name": Param("/cspm-remediation/cloudtrail", str, pattern=r"[\w#/.-]{1,512}",
                                description="CloudWatch Logs group of a created trail (CloudTrail.5)"),
        "retention_days": Param(365, int, allowed=(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                                                   1096, 1827, 2192, 2557, 2922, 3288, 3653)),
        "logs_role_name": Param("CSPMRemediationCloudTrailLogs", str, pattern=ROLE_NAME),
    }
    # CloudTrail → CloudWatch Logs delivery (AWS's documented role for CloudTrail.5): that log group only.
    service_roles = (ServiceRole(
        logical_id="CloudTrailLogsDeliveryRole",
        name_param="logs_role_name",
        service="cloudtrail.amazonaws.com",
        statements=(
            (("logs:CreateLogStream", "logs:PutLogEvents"),
             ("arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:{log_group_name}:*",)),
        ),
    ),)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        trails = _describe_trails(target)
        fixable = None
        for trail in _multi_region_trails(target, trails):
            logging = bool(_read_trail(target, trail, "get_trail_status", Name=trail["TrailARN"]).get("IsLogging"))
            selectors = _read_selectors(target, trail)
            covered = event_coverage(selectors, MANAGEMENT, target.partition) == {READ, WRITE}
            if logging and covered:
                return Assessment(compliant=True, context=_trail_ref(target, trail))
            if fixable is None and _owned(target, trail):
                fixable = (trail, logging, covered, selectors)
            elif _owned(target, trail) and trail.get("Name") == self.params["trail_name"]:
                fixable = (trail, logging, covered, selectors)  # ours first
        if fixable is not None:
            return self._fix(target, finding, *fixable)
        name = self.params["trail_name"]
        if any(t.get("Name") == name and _owned(target, t) for t in trails):
            raise RemediationError(
                f"trail {name} exists but is not a multi-Region trail; not changing it: set trail_name to another "
                "name or make that trail multi-Region"
            )
        return self._create(target)

    def _fix(self, target: Target, finding: Finding, trail: Mapping[str, Any], logging: bool, covered: bool,
             selectors: Mapping[str, Any]) -> Assessment:
        ref, changes = _trail_ref(target, trail), []
        pre_state: dict[str, Any] = {**ref, "IsLogging": logging}
        context: dict[str, Any] = {**ref, "start": not logging, "selectors": None}
        if not covered:
            widened = with_all_management_events(selectors)
            if widened is None:
                raise RemediationError(
                    f"trail {ref['TrailARN']} has {_MAX_EVENT_SELECTORS} event selectors mixing data events: add "
                    "all management events to it by hand"
                )
            context["selectors"] = widened
            pre_state.update(selectors)
            changes.append(f"log all read and write management events on multi-Region trail {ref['TrailARN']} "
                           "(its data event selectors kept)")
        if not logging:
            changes.append(f"start logging on multi-Region trail {ref['TrailARN']}")
        return Assessment(compliant=False, changes=changes, pre_state=pre_state,
                          tags=trail_tags(target, finding, trail), context=context)

    def _create(self, target: Target) -> Assessment:
        name, region = self.params["trail_name"], target.api_region
        bucket = self.params["bucket_name"] or f"cspm-cloudtrail-{target.account_id}-{region}"
        s3 = target.client("s3")
        exists = bucket_exists(s3, bucket)
        bucket_home = (bucket_region(s3, bucket) or region) if exists else region
        alias = self.params["key_alias"]
        key = find_key(_in_region(target, bucket_home).client("kms"), alias)
        if key is not None and key.get("KeyState") != "Enabled":
            raise RemediationError(f"KMS key {alias} ({key['Arn']}) is {key.get('KeyState')}: it cannot encrypt logs")
        log_bucket = f"{bucket}-access-logs"
        changes = []
        if not exists:
            changes += secure_bucket_changes(bucket, "only this trail may write")
            changes += [*secure_bucket_changes(log_bucket, "S3 log delivery may write"),
                        f"turn on server access logging of bucket {bucket} to s3://{log_bucket}/{bucket}/"]
        if key is None:
            changes.append(f"create KMS key {alias} in {bucket_home} for CloudTrail (rotation on)")
        group = self.params["log_group_name"]
        changes.append(
            f"create multi-Region trail {name} in {region} logging all management events to s3://{bucket} "
            f"with log file validation, SSE-KMS ({alias}) and CloudWatch Logs group {group} (created if missing, "
            f"retention {self.params['retention_days']} days), and start logging"
        )
        return Assessment(
            compliant=False,
            changes=changes,
            pre_state={"TrailName": name, "Trail": None},
            context={"TrailName": name, "BucketName": bucket, "BucketExists": exists, "LogBucket": log_bucket,
                     "KeyArn": key["Arn"] if key else None, "KeyRegion": bucket_home},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        if "TrailARN" in context:  # an existing trail, fixed in place
            client = _trail_client(target, context)
            if context["selectors"] is not None:
                _put_selectors(target, context, context["selectors"])
            if context["start"]:
                client.start_logging(Name=context["TrailARN"])
            return
        self._create_trail(target, assessment)

    def _create_trail(self, target: Target, assessment: Assessment) -> None:
        context = assessment.context
        name, bucket, region = context["TrailName"], context["BucketName"], target.api_region
        trail_arn = f"arn:{target.partition}:cloudtrail:{region}:{target.account_id}:trail/{name}"
        created: dict[str, str] = {}
        assessment.context["created"] = created  # recorded even when a later step fails
        s3 = target.client("s3")
        if not context["BucketExists"]:
            policy = cloudtrail_bucket_policy(target.partition, target.account_id, bucket, trail_arn)
            create_secure_bucket(s3, bucket, region, policy)
            created["BucketName"] = bucket
            log_bucket = context["LogBucket"]
            if not bucket_exists(s3, log_bucket):
                create_secure_bucket(s3, log_bucket, region,
                                     access_log_bucket_policy(target.partition, target.account_id, log_bucket))
                created["LogBucketName"] = log_bucket
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": f"{bucket}/"}})
        key_arn = context["KeyArn"]
        if key_arn is None:
            kms = _in_region(target, context["KeyRegion"]).client("kms")
            key_arn = create_cloudtrail_key(kms, self.params["key_alias"], target.partition, target.account_id)
            created["KeyArn"] = key_arn
        group = self.params["log_group_name"]
        if self._ensure_log_group(target, group):
            created["LogGroupName"] = group
        role = f"arn:{target.partition}:iam::{target.account_id}:role/{self.params['logs_role_name']}"
        cloudtrail = target.client("cloudtrail")
        try:
            trail = cloudtrail.create_trail(
                Name=name,
                S3BucketName=bucket,
                IsMultiRegionTrail=True,
                IncludeGlobalServiceEvents=True,
                EnableLogFileValidation=True,
                KmsKeyId=key_arn,
                CloudWatchLogsLogGroupArn=f"arn:{target.partition}:logs:{region}:{target.account_id}:log-group:{group}:*",
                CloudWatchLogsRoleArn=role,
            )
        except ClientError as error:
            if aws_error_code(error) == "InsufficientS3BucketPolicyException":
                raise RemediationError(
                    f"S3 bucket {bucket} does not let CloudTrail write: its policy needs the AWSCloudTrailAclCheck "
                    "and AWSCloudTrailWrite statements (or leave bucket_name unset to get a bucket made for it)"
                ) from error
            raise
        created.update(TrailName=name, TrailARN=trail["TrailARN"], HomeRegion=region)
        cloudtrail.start_logging(Name=trail["TrailARN"])

    def _ensure_log_group(self, target: Target, name: str) -> bool:
        """Create the log group with its retention unless it exists (then it is left as it is). True if created."""
        logs = target.client("logs")
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as error:
            if aws_error_code(error) == "ResourceAlreadyExistsException":
                return False
            raise
        logs.put_retention_policy(logGroupName=name, retentionInDays=self.params["retention_days"])
        return True

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        created = pre_state.get("created") or {}
        lines = []
        if "TrailName" in created:
            # By name: DeleteTrail takes a name or an ARN, and an already deleted trail is not an error here.
            try:
                _trail_client(target, created).delete_trail(Name=created["TrailName"])
            except ClientError as error:
                if aws_error_code(error) != "TrailNotFoundException":
                    raise
            lines.append(f"deleted trail {created['TrailARN']}")
        elif "TrailARN" in pre_state:
            if "EventSelectors" in pre_state:
                _put_selectors(target, pre_state, pre_state)
                lines.append(f"put back the previous event selectors of trail {pre_state['TrailARN']}")
            if pre_state.get("IsLogging") is False:
                _trail_client(target, pre_state).stop_logging(Name=pre_state["TrailARN"])
                lines.append(f"stopped logging on trail {pre_state['TrailARN']} again")
        for key, what in (("BucketName", "S3 bucket"), ("LogBucketName", "access log bucket")):
            if key in created:
                lines.append(f"kept {what} {created[key]} and the logs in it (log data is never deleted)")
        if "KeyArn" in created:
            lines.append(f"kept KMS key {created['KeyArn']}: logs written meanwhile need it")
        if "LogGroupName" in created:
            lines.append(f"kept CloudWatch Logs group {created['LogGroupName']} and its logs")
        if not lines:
            raise RemediationError("nothing recorded to undo for CloudTrail.1")
        return lines


# -- CloudTrail.4 --------------------------------------------------------------------------------------------------


def _log_validation_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    # The runbook takes a name or an ARN; the ARN is unambiguous across regions.
    return {"TrailName": [finding.resource_arn or finding.resource_id], "AutomationAssumeRole": [automation_role_arn]}


class TrailLogFileValidation(Remediator):
    """CloudTrail.4: turn on log file integrity validation (signed hourly digests) for a trail.

    Only adds digest files next to the logs; turning it off again (EnableLogFileValidation=False) undoes it.
    """

    rules = (Rule("CloudTrail.4", "CloudTrail log file validation should be enabled", cis=("3.2",)),)
    resource_types = ("AwsCloudTrailTrail",)
    read_permissions = ("cloudtrail:DescribeTrails", "cloudtrail:ListTags", "tag:GetResources")
    write_permissions = ("cloudtrail:UpdateTrail",)
    restore_permissions = ("cloudtrail:UpdateTrail",)
    reversible = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableCloudTrailLogFileValidation",
        parameters=_log_validation_parameters,
        permissions=("cloudtrail:GetTrail", "cloudtrail:UpdateTrail"),
    )

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return _trail_arn(finding)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        trail = resolve_trail(target, finding)
        ref, tags = _trail_ref(target, trail), trail_tags(target, finding, trail)
        if trail.get("LogFileValidationEnabled"):
            return Assessment(compliant=True, tags=tags, context=ref)
        return Assessment(
            compliant=False,
            tags=tags,
            changes=[f"enable log file validation on trail {ref['TrailARN']}"],
            pre_state={**ref, "LogFileValidationEnabled": False},
            context=ref,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        _trail_client(target, context).update_trail(Name=context["TrailARN"], EnableLogFileValidation=True)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if pre_state.get("LogFileValidationEnabled") is not False or "TrailARN" not in pre_state:
            raise RemediationError(f"no previous log file validation state recorded for {finding.resource_id}")
        _trail_client(target, pre_state).update_trail(Name=pre_state["TrailARN"], EnableLogFileValidation=False)
        return [f"disabled log file validation on trail {pre_state['TrailARN']} again (digests written stay)"]


# -- CloudTrail.2 --------------------------------------------------------------------------------------------------


class TrailKmsEncryption(Remediator):
    """CloudTrail.2: encrypt a trail's log files with a customer managed KMS key (SSE-KMS).

    Reuses the key behind key_alias, or creates it (rotation on, a key policy letting only this account's trails
    use it) in the region of the trail's bucket, where CloudTrail needs it. Readers of the logs then also need
    kms:Decrypt. Rollback turns SSE-KMS off again (UpdateTrail with an empty KmsKeyId, as the console and
    Terraform do) and keeps the key: log files written meanwhile can only be read with it.
    """

    rules = (Rule("CloudTrail.2", "CloudTrail should have encryption at-rest enabled", cis=("3.5",)),)
    resource_types = ("AwsCloudTrailTrail",)
    read_permissions = ("cloudtrail:DescribeTrails", "cloudtrail:ListTags", "s3:GetBucketLocation", "kms:DescribeKey")
    write_permissions = ("kms:CreateKey", "kms:CreateAlias", "kms:EnableKeyRotation", "cloudtrail:UpdateTrail")
    restore_permissions = ("cloudtrail:UpdateTrail",)
    reversible = True
    side_effects = (
        "whoever reads the log files (people, SIEM, Athena) also needs kms:Decrypt on the key; the key bills "
        "a monthly fee and its requests"
    )
    params_schema = {"key_alias": Param("alias/cspm-cloudtrail", str)}  # its form is checked on construction

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        alias = self.params["key_alias"]
        if not str(alias).startswith("alias/") or str(alias).startswith("alias/aws/"):
            raise ValueError(f"TrailKmsEncryption: key_alias must be alias/<name> (not alias/aws/…), got {alias!r}")

    def assess(self, target: Target, finding: Finding) -> Assessment:
        trail = resolve_trail(target, finding)
        ref, tags = _trail_ref(target, trail), trail_tags(target, finding, trail)
        if trail.get("KmsKeyId"):
            return Assessment(compliant=True, tags=tags, context=ref)
        # A bucket of another account (central log archive) may not tell its region: assume the trail's.
        region = bucket_region(target.client("s3"), trail["S3BucketName"]) or ref["HomeRegion"]
        alias = self.params["key_alias"]
        key = find_key(_in_region(target, region).client("kms"), alias)
        if key is not None and key.get("KeyState") != "Enabled":
            raise RemediationError(f"KMS key {alias} ({key['Arn']}) is {key.get('KeyState')}: it cannot encrypt logs")
        changes = [] if key else [f"create KMS key {alias} in {region} for CloudTrail (rotation on)"]
        changes.append(f"encrypt the log files of trail {ref['TrailARN']} with KMS key {alias}")
        return Assessment(
            compliant=False,
            changes=changes,
            tags=tags,
            pre_state={**ref, "KmsKeyId": None},
            context={**ref, "KeyArn": key["Arn"] if key else None, "KeyRegion": region},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        key_arn = context["KeyArn"]
        if key_arn is None:
            kms = _in_region(target, context["KeyRegion"]).client("kms")
            alias = self.params["key_alias"]
            key_arn = create_cloudtrail_key(kms, alias, target.partition, target.account_id)
            assessment.context["created"] = {"KeyArn": key_arn, "AliasName": alias}
        try:
            _trail_client(target, context).update_trail(Name=context["TrailARN"], KmsKeyId=key_arn)
        except ClientError as error:
            if aws_error_code(error) in ("InsufficientEncryptionPolicyException", "KmsKeyNotFoundException"):
                raise RemediationError(
                    f"CloudTrail cannot use KMS key {key_arn} ({aws_error_code(error)}): its key policy must let "
                    "cloudtrail.amazonaws.com call kms:GenerateDataKey* for this trail, in the bucket's region"
                ) from error
            raise

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if "KmsKeyId" not in pre_state or "TrailARN" not in pre_state:
            raise RemediationError(f"no previous encryption state recorded for trail {finding.resource_id}")
        _trail_client(target, pre_state).update_trail(Name=pre_state["TrailARN"], KmsKeyId="")
        lines = [f"turned SSE-KMS off again for trail {pre_state['TrailARN']} (new log files get SSE-S3)"]
        created = pre_state.get("created") or {}
        if "KeyArn" in created:
            lines.append(f"kept KMS key {created['KeyArn']} ({created['AliasName']}): logs written meanwhile need it")
        return lines


# -- CloudTrail.7 --------------------------------------------------------------------------------------------------

LOG_DELIVERY_GROUP = "http://acs.amazonaws.com/groups/s3/LogDelivery"


def access_log_bucket_policy(partition: str, account_id: str, bucket: str) -> dict[str, Any]:
    """S3 server access log delivery may write into the bucket, for source buckets of this account only."""
    arn = bucket_arn(partition, bucket)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{arn}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            secure_transport_statement(arn),
        ],
    }


def _finding_trail_bucket(finding: Finding) -> str:
    """The trail bucket of a CloudTrail.7 finding without an AWS call: the bucket itself, or the S3BucketName
    Security Hub puts in a trail resource's details."""
    if finding.resource_type != "AwsCloudTrailTrail":
        return bucket_name(finding)
    for resource in (finding.raw or {}).get("Resources", []):
        details = (resource.get("Details") or {}).get("AwsCloudTrailTrail") or {}
        bucket: str | None = details.get("S3BucketName")
        if bucket:
            return bucket
    raise RemediationError(f"the finding does not name the bucket of trail {finding.resource_id}: use executor boto3")


def _access_logging_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    source = _finding_trail_bucket(finding)
    return {
        "BucketName": [source],
        "TargetBucket": [f"{source}-access-logs"],
        "TargetPrefix": [f"{source}/"],
        "GranteeType": ["Group"],
        "GranteeUri": [LOG_DELIVERY_GROUP],
        "GrantedPermission": ["READ"],
        "AutomationAssumeRole": [automation_role_arn],
    }


class TrailBucketAccessLogging(Remediator):
    """CloudTrail.7: S3 server access logging on the bucket a trail delivers to.

    Logs go to target_bucket (default `<bucket>-access-logs`, created private if missing, in the source bucket's
    region as S3 requires) under target_prefix (default `<bucket>/`). An existing target bucket is used as it is:
    it must let logging.s3.amazonaws.com write. Rollback turns logging off again and keeps the log bucket.
    """

    rules = (
        Rule(
            "CloudTrail.7",
            "Ensure S3 bucket access logging is enabled on the CloudTrail S3 bucket",
            cis=("3.4",),
        ),
    )
    resource_types = ("AwsS3Bucket", "AwsCloudTrailTrail")
    read_permissions = (
        "cloudtrail:DescribeTrails",  # trail findings: which bucket
        "cloudtrail:ListTags",  # trail findings without tags (exclusion tag); bucket findings: GetBucketTagging
        "s3:GetBucketTagging",
        "s3:GetBucketLocation",
        "s3:GetBucketLogging",
        "s3:ListBucket",  # HeadBucket: does the target bucket exist?
    )
    write_permissions = (
        "s3:CreateBucket",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutBucketLogging",
    )
    restore_permissions = ("s3:PutBucketLogging",)
    reversible = True
    side_effects = "a created log bucket is billed for the access logs it stores"
    params_schema = {
        "target_bucket": Param(None, str, pattern=BUCKET_NAME),
        "target_prefix": Param(None, str, pattern=r"[^\x00-\x1f]{0,512}"),
    }
    # The runbook's grant parameters are required, and S3 refuses any grant when the target bucket enforces
    # bucket-owner object ownership (the default for new buckets); it neither creates the target bucket nor lets
    # log delivery write to it. Only for an existing, ACL-enabled `<bucket>-access-logs`; the grant (READ on the
    # log objects to the log delivery group) exposes nothing to anyone else.
    runbook = Runbook(
        document="AWS-ConfigureS3BucketLogging",
        parameters=_access_logging_parameters,
        permissions=("s3:PutBucketLogging",),
        configured=lambda finding, params: {
            **({"TargetBucket": [params["target_bucket"]]} if params.get("target_bucket") else {}),
            **({"TargetPrefix": [params["target_prefix"]]} if params.get("target_prefix") else {}),
        },
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        if finding.resource_type == "AwsCloudTrailTrail":
            trail = resolve_trail(target, finding)
            source, tags = trail["S3BucketName"], trail_tags(target, finding, trail)
        else:
            source, tags = bucket_name(finding), None
        region = bucket_region(target.client("s3"), source)
        if region is None:
            raise RemediationError(f"S3 bucket {source} belongs to another account: its logging is set there")
        s3 = _in_region(target, region).client("s3")
        if finding.resource_type != "AwsCloudTrailTrail":
            tags = live_tags(finding, lambda: bucket_tags(s3, source, target.account_id))
        if s3.get_bucket_logging(Bucket=source, ExpectedBucketOwner=target.account_id).get("LoggingEnabled"):
            return Assessment(compliant=True, tags=tags)
        log_bucket = self.params["target_bucket"] or f"{source}-access-logs"
        if len(log_bucket) > 63 or log_bucket == source:
            raise RemediationError(f"cannot log bucket {source} to {log_bucket}: set target_bucket for this rule")
        prefix = self.params["target_prefix"] or f"{source}/"
        exists = bucket_exists(s3, log_bucket)
        changes = [] if exists else secure_bucket_changes(log_bucket, "S3 log delivery may write")
        changes.append(f"turn on server access logging of bucket {source} to s3://{log_bucket}/{prefix}")
        return Assessment(
            compliant=False,
            changes=changes,
            tags=tags,
            pre_state={"BucketName": source, "Region": region, "LoggingEnabled": None},
            context={
                "BucketName": source,
                "Region": region,
                "TargetBucket": log_bucket,
                "TargetPrefix": prefix,
                "TargetExists": exists,
            },
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context, source = assessment.context, assessment.context["BucketName"]
        s3 = _in_region(target, context["Region"]).client("s3")
        log_bucket = context["TargetBucket"]
        if not context["TargetExists"]:
            policy = access_log_bucket_policy(target.partition, target.account_id, log_bucket)
            create_secure_bucket(s3, log_bucket, context["Region"], policy)
            assessment.context["created"] = {"BucketName": log_bucket}
        status = {"LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": context["TargetPrefix"]}}
        try:
            s3.put_bucket_logging(Bucket=source, ExpectedBucketOwner=target.account_id, BucketLoggingStatus=status)
        except ClientError as error:
            if aws_error_code(error) in ("InvalidTargetBucketForLogging", "CrossLocationLoggingProhibited"):
                raise RemediationError(
                    f"S3 refuses {log_bucket} as the log bucket of {source} ({aws_error_code(error)}): it must be in "
                    f"{context['Region']} and let logging.s3.amazonaws.com write"
                ) from error
            raise

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if "LoggingEnabled" not in pre_state or "BucketName" not in pre_state:
            raise RemediationError(f"no previous logging state recorded for {finding.resource_id}")
        source, previous = pre_state["BucketName"], pre_state["LoggingEnabled"]
        s3 = _in_region(target, pre_state.get("Region") or target.api_region).client("s3")
        s3.put_bucket_logging(Bucket=source, ExpectedBucketOwner=target.account_id,
                              BucketLoggingStatus={"LoggingEnabled": previous} if previous else {})
        lines = [f"turned server access logging of bucket {source} {'back to ' + str(previous) if previous else 'off'}"]
        created = pre_state.get("created") or {}
        if "BucketName" in created:
            lines.append(f"kept log bucket {created['BucketName']} and the access logs in it")
        return lines


# -- S3.22 / S3.23 -------------------------------------------------------------------------------------------------

_DATA_ACCESS = {"S3.22": WRITE, "S3.23": READ}
_MAX_EVENT_SELECTORS = 5  # classic selectors per trail


def _s3_data_selectors(current: Mapping[str, Any], access: str, partition: str) -> dict[str, list[dict[str, Any]]]:
    """The trail's selectors plus one logging S3 object-level `access` events for all buckets, of the kind the
    trail already uses (putting one kind replaces the other, which would drop the existing selectors)."""
    advanced = current.get("AdvancedEventSelectors") or []
    if advanced:
        read_only = "true" if access == READ else "false"
        selector: dict[str, Any] = {
            "Name": f"S3 object-level {access} events, all buckets (cspm-remediation)",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": [_S3_OBJECT]},
                {"Field": "readOnly", "Equals": [read_only]},
            ],
        }
        return {"EventSelectors": [], "AdvancedEventSelectors": [*advanced, selector]}
    classic = current.get("EventSelectors") or []
    if len(classic) >= _MAX_EVENT_SELECTORS:
        raise RemediationError(f"the trail already has {len(classic)} event selectors, the most CloudTrail allows")
    selector = {
        "ReadWriteType": "ReadOnly" if access == READ else "WriteOnly",
        "IncludeManagementEvents": False,
        "DataResources": [{"Type": _S3_OBJECT, "Values": [f"arn:{partition}:s3"]}],
    }
    return {"EventSelectors": [*classic, selector], "AdvancedEventSelectors": []}


class S3DataEvents(Remediator):
    """S3.22 / S3.23: a multi-Region trail that is logging logs S3 object-level write / read events for all buckets.

    The Config rules behind both (cloudtrail-all-write/read-s3-data-event-check) count only an enabled (logging)
    trail, so a stopped trail neither passes nor is changed: starting it is CloudTrail.1's business. Adds one event
    selector to trail_name (default: the first logging multi-Region trail of the account) next to the selectors it
    has; the previous selectors are recorded so a rollback puts exactly them back. The exclusion tag on that trail
    holds (its tags are read).
    """

    rules = (
        # Disruptive: data events are billed per event, and busy buckets make many.
        Rule(
            "S3.22",
            "S3 general purpose buckets should log object-level write events",
            cis=("3.8",),
            disruptive=True,
            disruption="cost",
            because="data events are billed per event, and busy buckets make many",
        ),
        Rule(
            "S3.23",
            "S3 general purpose buckets should log object-level read events",
            cis=("3.9",),
            disruptive=True,
            disruption="cost",
            because="data events are billed per event, and busy buckets make many",
        ),
    )
    resource_types = ("AwsAccount",)
    read_permissions = (
        "cloudtrail:DescribeTrails", "cloudtrail:GetEventSelectors", "cloudtrail:GetTrailStatus", "cloudtrail:ListTags",
    )
    write_permissions = ("cloudtrail:PutEventSelectors",)
    restore_permissions = ("cloudtrail:PutEventSelectors",)
    reversible = True
    params_schema = {"trail_name": Param(None, str, pattern=TRAIL_NAME)}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        access = _DATA_ACCESS.get(finding.rule_id)
        if access is None:
            raise RemediationError(f"rule {finding.rule_id} is not handled by {type(self).__name__}")
        trails = [
            trail for trail in _multi_region_trails(target, _describe_trails(target))
            if _read_trail(target, trail, "get_trail_status", Name=trail["TrailARN"]).get("IsLogging")
        ]
        selectors = {}
        for trail in trails:
            selectors[trail["TrailARN"]] = _read_selectors(target, trail)
            if access in event_coverage(selectors[trail["TrailARN"]], S3_DATA, target.partition):
                return Assessment(compliant=True, context=_trail_ref(target, trail))
        trail = self._choose(target, trails)
        ref, current = _trail_ref(target, trail), selectors[trail["TrailARN"]]
        return Assessment(
            compliant=False,
            tags=trail_tags(target, finding, trail),
            changes=[
                f"add an event selector logging S3 object-level {access} events of all buckets to trail "
                f"{ref['TrailARN']} (billed per event)"
            ],
            pre_state={**ref, **current},
            context={**ref, "selectors": _s3_data_selectors(current, access, target.partition)},
        )

    def _choose(self, target: Target, trails: list[dict[str, Any]]) -> dict[str, Any]:
        name = self.params["trail_name"]
        own = [t for t in trails if _owned(target, t) and name in (None, t.get("Name"), t["TrailARN"])]
        if not own:
            wanted = f"multi-Region trail {name}" if name else "multi-Region trail"
            raise RemediationError(
                f"account {target.account_id} has no logging {wanted} to log S3 data events: a stopped trail does not "
                "count (CloudTrail.1 starts one)"
            )
        return own[0]

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        _put_selectors(target, assessment.context, assessment.context["selectors"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if "TrailARN" not in pre_state or "EventSelectors" not in pre_state:
            raise RemediationError("no previous event selectors recorded")
        _put_selectors(target, pre_state, pre_state)
        return [f"put back the previous event selectors of trail {pre_state['TrailARN']}"]
