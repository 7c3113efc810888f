"""The common Finding model every connector produces and every remediator consumes (DESIGN §3).

The JSON form uses exactly the field names below; other tools parse it, so renaming a field is a breaking
change. Parsing outside input into a Finding is the connectors' job; this module only holds the shape, its
validation and its JSON round-trip.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
COMPLIANCE_STATUSES = ("FAILED", "PASSED", "WARNING", "NOT_AVAILABLE")
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
RECORD_STATES = ("ACTIVE", "ARCHIVED")
GLOBAL_REGION = "global"

# Both used with fullmatch (ASCII only, no trailing newline). A region code as botocore's partitions write them:
# "eu-west-1", "us-gov-west-1", "cn-north-1", and the European Sovereign Cloud's 4-letter "eusc-de-east-1".
ACCOUNT_ID_RE = re.compile(r"[0-9]{12}")
REGION_CODE_RE = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")


class FindingError(ValueError):
    """A payload could not become a Finding. The message says which field and why; it never echoes secrets."""


@dataclass(frozen=True)
class Finding:
    source: str
    finding_id: str
    rule_id: str
    source_rule: str
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    resource_arn: str | None
    severity: str
    title: str
    compliance_status: str
    workflow_status: str | None
    record_state: str | None
    standards: tuple[str, ...] = ()
    first_observed: str | None = None
    last_observed: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    product_arn: str | None = None
    raw: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("source", "finding_id", "rule_id", "resource_type", "resource_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise FindingError(f"{name} must be a non-empty string, got {_describe(value)}")
        if not isinstance(self.account_id, str) or not ACCOUNT_ID_RE.fullmatch(self.account_id):
            raise FindingError(f"account_id must be 12 digits, got {_describe(self.account_id)}")
        if not isinstance(self.region, str) or not (
            self.region == GLOBAL_REGION or REGION_CODE_RE.fullmatch(self.region)
        ):
            raise FindingError(f"region must be an AWS region code or 'global', got {_describe(self.region)}")
        _check_choice("severity", self.severity, SEVERITIES)
        _check_choice("compliance_status", self.compliance_status, COMPLIANCE_STATUSES)
        _check_choice("workflow_status", self.workflow_status, WORKFLOW_STATUSES, optional=True)
        _check_choice("record_state", self.record_state, RECORD_STATES, optional=True)
        # Freeze the containers too, so a Finding can be shared across threads without copies.
        object.__setattr__(self, "standards", tuple(self.standards))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    @property
    def partition(self) -> str:
        """AWS partition of the resource: from its ARN when known, else from the region."""
        if self.resource_arn and self.resource_arn.startswith("arn:"):
            return self.resource_arn.split(":", 2)[1]
        return partition_for_region(self.region)

    @property
    def resource_key(self) -> tuple[str, str, str, str]:
        """Identity of the (rule, resource) pair: two findings with the same key need one action."""
        return (self.rule_id, self.account_id, self.region, self.resource_id)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["standards"] = list(self.standards)
        data["tags"] = dict(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Rebuild a Finding from its JSON form (the output of `normalize`/`pull`)."""
        if not isinstance(data, Mapping):
            raise FindingError(f"a finding must be a JSON object, got {_describe(data)}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data and n not in _OPTIONAL_FIELDS]
        if missing:
            raise FindingError(f"missing field(s): {', '.join(missing)}")
        kwargs = {n: data[n] for n in names if n in data}
        if not isinstance(kwargs.get("standards", []), list | tuple):
            raise FindingError("standards must be a list of strings")
        if not isinstance(kwargs.get("tags", {}), Mapping):
            raise FindingError("tags must be an object")
        return cls(**kwargs)


_OPTIONAL_FIELDS = {"standards", "first_observed", "last_observed", "tags", "product_arn", "raw"}


def stable_finding_id(source: str, rule: str, account_id: str, region: str, resource: str) -> str:
    """Id for sources that have none: the same violation always hashes to the same id (for dedupe)."""
    digest = hashlib.sha256("\x1f".join((source, rule, account_id, region, resource)).encode()).hexdigest()
    return f"{source}:{digest[:32]}"


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("eusc-"):
        return "aws-eusc"
    return "aws"


def _check_choice(name: str, value: Any, choices: tuple[str, ...], optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in choices:
        raise FindingError(f"{name} must be one of {', '.join(choices)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    """A short, safe rendering of a bad value for error messages (bounded length)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
