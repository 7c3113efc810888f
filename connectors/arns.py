"""ARN and resource-id parsing: the id the AWS API takes comes from the resource, never from a title.

ARN format: arn:partition:service:region:account-id:resource, where resource is `type/id`, `type:id` or
just `id` (S3 buckets). IAM names may carry a path (`user/engineering/alice` → `alice`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.finding import ACCOUNT_ID_RE

PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-eusc")
# `AWS::::Account:123456789012` is how ASFF names an account-level resource.
_ASFF_ACCOUNT_RE = re.compile(r"AWS::::Account:([0-9]{12})")  # fullmatch
# Plain ids that some sources give instead of an ARN.
_PLAIN_ID_RE = re.compile(r"^(sg|vpc|acl|i|subnet|snap|vol|eni)-[0-9a-f]{8,17}$")


class ArnError(ValueError):
    """The string is not an ARN this project understands."""


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def resource_type(self) -> str:
        """`security-group` in `security-group/sg-1`, `db` in `db:mydb`; empty for bare ids (S3)."""
        kind, _, rest = _split_resource(self.resource)
        return kind if rest else ""

    @property
    def resource_name(self) -> str:
        """The last component: the name or id most AWS APIs take."""
        kind, _, rest = _split_resource(self.resource)
        if not rest:
            return kind
        if self.service == "iam":
            return rest.rsplit("/", 1)[-1]  # IAM paths: user/path/to/name
        if self.service == "s3":
            return kind  # bucket/key → the bucket
        return rest


def parse_arn(text: str) -> Arn:
    if not isinstance(text, str):
        raise ArnError(f"an ARN must be a string, got {type(text).__name__}")
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ArnError(f"not an ARN: {text[:120]!r}")
    _, partition, service, region, account, resource = parts
    if partition not in PARTITIONS:
        raise ArnError(f"unknown partition {partition!r} in {text[:120]!r}")
    if not service or not resource:
        raise ArnError(f"ARN without service or resource: {text[:120]!r}")
    if account and not ACCOUNT_ID_RE.fullmatch(account):
        raise ArnError(f"ARN account is not 12 digits: {text[:120]!r}")
    return Arn(partition, service, region, account, resource)


@dataclass(frozen=True)
class ResourceRef:
    """What a finding's resource resolves to."""

    resource_id: str
    arn: str | None
    account: str | None  # the owning account when the id says it (ARN or AWS::::Account:…)
    region: str | None  # the resource's region when the ARN says it


def resolve_resource(resource_type: str, raw_id: str, details: dict[str, Any] | None = None) -> ResourceRef:
    """Turn an ASFF `Resources[].Id` (ARN, account id form, or plain id) into the id the API takes.

    `details` is `Resources[].Details`, consulted where the id alone is not what the API needs
    (an access key's owning user).
    """
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ArnError("resource id is empty")
    raw_id = raw_id.strip()
    account_match = _ASFF_ACCOUNT_RE.fullmatch(raw_id)
    if account_match:
        return ResourceRef(account_match.group(1), None, account_match.group(1), None)
    if ACCOUNT_ID_RE.fullmatch(raw_id) and resource_type == "AwsAccount":
        return ResourceRef(raw_id, None, raw_id, None)
    if raw_id.startswith("arn:"):
        arn = parse_arn(raw_id)
        name = arn.resource_name
        if resource_type == "AwsAccount" or (arn.service == "iam" and arn.resource == "root"):
            name = arn.account
        elif resource_type == "AwsIamAccessKey":
            name = _access_key_user(details) or name
        return ResourceRef(name, raw_id, arn.account or None, arn.region or None)
    if resource_type == "AwsIamAccessKey":
        user = _access_key_user(details)
        if user:
            return ResourceRef(user, None, None, None)
    if resource_type == "AwsS3Bucket" or _PLAIN_ID_RE.match(raw_id) or "/" not in raw_id:
        return ResourceRef(raw_id, None, None, None)
    raise ArnError(f"cannot read a resource id from {raw_id[:120]!r} ({resource_type})")


def _access_key_user(details: dict[str, Any] | None) -> str | None:
    """IAM.3-style findings on an access key: the API needs the user name that owns the key."""
    if not isinstance(details, dict):
        return None
    key = details.get("AwsIamAccessKey")
    if not isinstance(key, dict):
        return None
    for field_name in ("UserName", "PrincipalName"):
        value = key.get(field_name)
        if isinstance(value, str) and value:
            return value
    return None


def _split_resource(resource: str) -> tuple[str, str, str]:
    """Split at the first `/` or `:`, whichever comes first."""
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=-1)
    if cut < 0:
        return resource, "", ""
    return resource[:cut], resource[cut], resource[cut + 1 :]
