"""Security Hub's OCSF findings (the new generation): GetFindingsV2 → Finding, paged at the API maximum.

GetFindingsV2 (botocore `securityhub` 2018-10-26: `POST /findingsv2`) returns OCSF documents. A control finding
is an OCSF Compliance Finding: `compliance.control` is the control id (`EC2.13`), `compliance.status_id` 3 / `status`
`Fail` means failed, `status_id` is the workflow (1 New, 2 In Progress, 3 Suppressed, 4 Resolved, 5 Archived),
`activity_id` 3 (Close) means no longer active, `resources[]` has `uid` (ARN), `type`, `region`,
`cloud.account.uid` is the owning account, `finding_info.uid` the finding id, `metadata.uid` the id that
BatchUpdateFindingsV2 takes (kept in `raw`).

Filters (`OcsfFindingFilters`): composite filters ANDed; in each, up to 20 filters per type. Failed
(`compliance.status_id` = 3), not closed, workflow New or In Progress, Security Hub CSPM's own findings, and the
wanted control ids in chunks of 20. As for V1, every filter is re-checked client-side: a backend that drops one
must never make a finding actionable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from connectors.arns import ArnError, resolve_resource
from connectors.asff import SECURITY_HUB_PRODUCT, UntrustedFinding, _timestamp
from connectors.finding import SEVERITIES, Finding, FindingError
from connectors.prowler_checks import ACCOUNT_LEVEL_RULES
from connectors.standards import security_control_id

log = logging.getLogger(__name__)

SOURCE = "securityhub-v2"
PAGE_SIZE = 100  # GetFindingsV2 MaxResults maximum
FILTER_VALUES_MAX = 20  # filters of one type in one composite filter
PRODUCT_NAME = "Security Hub CSPM"  # metadata.product.name of control findings (case-sensitive in filters)
EVENT_DETAIL_TYPE = "Findings Imported V2"  # EventBridge: detail.findings holds one OCSF finding
# IAM: GetFindingsV2 is authorized by securityhub:GetFindings and BatchUpdateFindingsV2 by
# securityhub:BatchUpdateFindings (botocore's model documents both): no new actions for the pull and remediate roles.
IAM_ACTIONS = {"GetFindingsV2": "securityhub:GetFindings", "BatchUpdateFindingsV2": "securityhub:BatchUpdateFindings"}

_COMPLIANCE = {1: "PASSED", 2: "WARNING", 3: "FAILED"}
_COMPLIANCE_NAMES = {"pass": "PASSED", "passed": "PASSED", "warning": "WARNING", "fail": "FAILED", "failed": "FAILED"}
_WORKFLOW = {1: "NEW", 2: "NOTIFIED", 3: "SUPPRESSED", 4: "RESOLVED", 5: "RESOLVED"}
_WORKFLOW_NAMES = {"new": 1, "in progress": 2, "suppressed": 3, "resolved": 4, "archived": 5}
OPEN_STATUS_IDS = (1, 2)  # New, In Progress
CLOSE_ACTIVITY = 3
_SEVERITY = {1: "INFORMATIONAL", 2: "LOW", 3: "MEDIUM", 4: "HIGH", 5: "CRITICAL", 6: "CRITICAL"}
_CONTROL_ID = re.compile(r"^[A-Z][A-Za-z0-9]*\.\d+$")
# CloudFormation-style types (`AWS::EC2::SecurityGroup`) → the ASFF names the remediators declare.
_CFN_TYPE = re.compile(r"^AWS::(?P<service>[A-Za-z0-9]+)::(?P<kind>[A-Za-z0-9]+)$")
_CFN_KINDS = {"DBInstance": "DbInstance", "DBSnapshot": "DbSnapshot", "DBClusterSnapshot": "DbClusterSnapshot",
              "DBCluster": "DbCluster"}


def build_filters(control_ids: Sequence[str] = ()) -> dict[str, Any]:
    """The OcsfFindingFilters for open, failed, active Security Hub CSPM findings (of these controls)."""
    if len(control_ids) > FILTER_VALUES_MAX:
        raise ValueError(f"at most {FILTER_VALUES_MAX} control ids per filter")
    composites: list[dict[str, Any]] = [
        {"Operator": "AND",
         "NumberFilters": [{"FieldName": "compliance.status_id", "Filter": {"Eq": 3}},
                           {"FieldName": "activity_id", "Filter": {"Lte": 2}}],  # Create / Update, not Close
         "StringFilters": [{"FieldName": "metadata.product.name",
                            "Filter": {"Value": PRODUCT_NAME, "Comparison": "EQUALS"}}]},
        {"Operator": "OR",
         "NumberFilters": [{"FieldName": "status_id", "Filter": {"Eq": s}} for s in OPEN_STATUS_IDS]},
    ]
    if control_ids:
        composites.append({"Operator": "OR", "StringFilters": [
            {"FieldName": "compliance.control", "Filter": {"Value": c, "Comparison": "EQUALS"}} for c in control_ids]})
    return {"CompositeFilters": composites, "CompositeOperator": "AND"}


def is_open_failed(finding: Finding, rule_ids: frozenset[str] | None = None) -> bool:
    """Client-side twin of build_filters."""
    return (finding.compliance_status == "FAILED" and finding.record_state == "ACTIVE"
            and finding.workflow_status in ("NEW", "NOTIFIED")
            and (rule_ids is None or finding.rule_id in rule_ids))


def metadata_uid(finding: Finding) -> str | None:
    """The id BatchUpdateFindingsV2 takes (`metadata.uid` of the original document)."""
    raw = finding.raw if isinstance(finding.raw, Mapping) else {}
    metadata = got if isinstance(got := raw.get("metadata"), Mapping) else {}
    uid = metadata.get("uid")
    return uid if isinstance(uid, str) and uid.strip() else None


# -- parsing ------------------------------------------------------------------------------------
def iter_ocsf(payload: Any) -> list[Any]:
    """The OCSF findings of a payload: a GetFindingsV2 response, a `Findings Imported V2` event, a list, or one
    finding. Raises FindingError for another shape."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, Mapping):
        raise FindingError(f"expected a GetFindingsV2 response, an event or a finding; got {type(payload).__name__}")
    if "detail" in payload:
        detail = payload["detail"]
        findings = detail.get("findings") if isinstance(detail, Mapping) else None
        if not isinstance(findings, list):
            raise FindingError("EventBridge event without detail.findings list")
        return findings
    if "Findings" in payload:
        if not isinstance(payload["Findings"], list):
            raise FindingError("GetFindingsV2 response: Findings is not a list")
        return payload["Findings"]
    if "finding_info" in payload or "compliance" in payload:
        return [payload]
    raise FindingError("not an OCSF payload: no Findings, detail.findings or finding_info")


def parse_payload(payload: Any, product_uids: frozenset[str] | None = None) -> Iterator[Finding | FindingError]:
    """Each finding parsed; a bad or untrusted one is a FindingError naming its index (and uid), the rest go on."""
    items = iter_ocsf(payload)
    trusted = _trusted_products() if product_uids is None else product_uids
    return _parse_items(items, trusted)


def _parse_items(items: list[Any], trusted: frozenset[str]) -> Iterator[Finding | FindingError]:
    for index, item in enumerate(items):
        try:
            yield parse_finding(item, trusted)
        except FindingError as error:
            info = item.get("finding_info") if isinstance(item, Mapping) else None
            uid = info.get("uid") if isinstance(info, Mapping) else None
            label = f" ({uid[:200]})" if isinstance(uid, str) and uid else ""
            yield type(error)(f"finding #{index}{label}: {error}")


def parse_finding(item: Any, trusted: frozenset[str] = frozenset()) -> Finding:
    if not isinstance(item, Mapping):
        raise FindingError(f"an OCSF finding must be an object, got {type(item).__name__}")
    try:
        return _parse(item, trusted)
    except ArnError as error:
        raise FindingError(f"resources[0].uid: {error}") from None
    except FindingError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:
        raise FindingError(f"unreadable finding ({type(error).__name__})") from None


def _parse(item: Mapping[str, Any], trusted: frozenset[str]) -> Finding:
    info = _object(item, "finding_info")
    finding_id = _text(info, "uid", "finding_info.uid")
    metadata = _object(item, "metadata")
    _text(metadata, "uid", "metadata.uid")  # needed to write back: a finding without one is not Security Hub's
    product = got if isinstance(got := metadata.get("product"), Mapping) else {}
    product_uid, product_name = _optional(product, "uid"), _optional(product, "name")
    if not (product_name == PRODUCT_NAME or (product_uid and (SECURITY_HUB_PRODUCT.match(product_uid)
                                                              or product_uid in trusted))):
        raise UntrustedFinding(f"metadata.product {product_name or product_uid or '(none)'!r}: only Security Hub "
                               "CSPM's own findings (or an allowlisted product, CSPM_SECURITYHUB_PRODUCT_ARNS)")
    compliance = _object(item, "compliance")
    control = _text(compliance, "control", "compliance.control")
    resources = item.get("resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], Mapping):
        raise FindingError("resources must be a non-empty list of objects")
    resource = resources[0]
    resource_type = asff_resource_type(_optional(resource, "type") or "Other")
    ref = resolve_resource(resource_type, _text(resource, "uid", "resources[0].uid"))
    cloud = got if isinstance(got := item.get("cloud"), Mapping) else {}
    account = got if isinstance(got := cloud.get("account"), Mapping) else {}
    account_id = ref.account or _optional(account, "uid")
    if not account_id:
        raise FindingError("no account: neither resources[0].uid (an ARN) nor cloud.account.uid gives one")
    region = _optional(resource, "region") or ref.region or _optional(cloud, "region")
    if not region:
        raise FindingError("no region: neither resources[0].region, the ARN nor cloud.region gives one")
    standards = [s for s in compliance.get("standards") or [] if isinstance(s, str)] \
        if isinstance(compliance.get("standards"), list) else []
    rule_id = _rule_id(control, standards)
    resource_id = ref.resource_id
    if rule_id in ACCOUNT_LEVEL_RULES and resource_type != "AwsAccount":
        resource_type, resource_id = "AwsAccount", account_id
    activity = item.get("activity_id")
    return Finding(
        source=SOURCE,
        finding_id=finding_id,
        rule_id=rule_id,
        source_rule=control,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_arn=ref.arn,
        severity=_severity(item),
        title=_optional(info, "title") or rule_id,
        compliance_status=_compliance_status(compliance),
        workflow_status=_workflow_status(item),
        record_state="ARCHIVED" if activity == CLOSE_ACTIVITY or _optional(item, "activity_name") == "Close"
        else "ACTIVE",
        standards=tuple(s.split("/", 1)[1] if s.startswith("standards/") else s for s in standards),
        first_observed=_timestamp(info.get("first_seen_time_dt") or info.get("created_time_dt")),
        last_observed=_timestamp(info.get("last_seen_time_dt") or info.get("modified_time_dt")),
        tags=_tags(resource.get("tags")),
        product_arn=None,  # V1's identifier; a V2 finding is written back by metadata.uid (see metadata_uid)
        raw=item,
    )


def asff_resource_type(value: str) -> str:
    """`AWS::EC2::SecurityGroup` → `AwsEc2SecurityGroup`; ASFF names (`AwsS3Bucket`) are kept."""
    match = _CFN_TYPE.match(value)
    if not match:
        return "AwsAccount" if value in ("AWS::::Account", "AWS::Account") else value
    service = match["service"]
    service = service.capitalize() if service.isupper() else service  # EC2 → Ec2, CloudTrail stays
    return f"Aws{service}{_CFN_KINDS.get(match['kind'], match['kind'])}"


def _rule_id(control: str, standards: list[str]) -> str:
    if _CONTROL_ID.match(control):
        return control
    candidates: list[str | None] = [*standards] or [None]  # no standard: the control id alone
    for standard in candidates:
        mapped = security_control_id(standard, control)
        if mapped:
            return mapped
    return control


def _compliance_status(compliance: Mapping[str, Any]) -> str:
    status_id = compliance.get("status_id")
    if isinstance(status_id, int) and status_id in _COMPLIANCE:
        return _COMPLIANCE[status_id]
    name = compliance.get("status")
    return _COMPLIANCE_NAMES.get(name.strip().lower(), "NOT_AVAILABLE") if isinstance(name, str) else "NOT_AVAILABLE"


def _workflow_status(item: Mapping[str, Any]) -> str | None:
    status_id = item.get("status_id")
    if not (isinstance(status_id, int) and status_id in _WORKFLOW):
        name = item.get("status")
        status_id = _WORKFLOW_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
    return _WORKFLOW.get(status_id) if status_id is not None else None


def _severity(item: Mapping[str, Any]) -> str:
    label = item.get("severity")
    if isinstance(label, str) and label.upper() in SEVERITIES:
        return label.upper()
    severity_id = item.get("severity_id")
    return _SEVERITY.get(severity_id, "INFORMATIONAL") if isinstance(severity_id, int) else "INFORMATIONAL"


def _tags(tags: Any) -> dict[str, str]:
    """OCSF tags: a list of `{"name", "value"}` objects (or a plain mapping)."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    result: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, Mapping) and isinstance(tag.get("name"), str):
            result[tag["name"]] = str(tag.get("value", ""))
    return result


def _trusted_products() -> frozenset[str]:
    return frozenset(v.strip() for v in os.environ.get("CSPM_SECURITYHUB_PRODUCT_ARNS", "").split(",") if v.strip())


def _object(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    if not isinstance(value, Mapping):
        raise FindingError(f"{key} must be an object")
    return value


def _text(mapping: Mapping[str, Any], key: str, label: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FindingError(f"{label} must be a non-empty string")
    return value.strip()


def _optional(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


# -- pulling ------------------------------------------------------------------------------------
class SecurityHubV2Connector:
    """Pulls open failed control findings from Security Hub's OCSF API (one region: the home region of an
    organization's delegated administrator sees every member)."""

    def __init__(self, client: Any) -> None:  # a securityhub client (botocore: methods made at run time)
        """`client`: built with functions.engine.sessions.CLIENT_CONFIG, whose standard retry mode (with its
        quota) is the one retry layer for throttling (connectors/backoff.py)."""
        self._client = client
        self.requests_made = 0

    def fetch(self, rule_ids: Iterable[str] | None = None) -> Iterator[Finding | FindingError]:
        wanted = sorted(set(rule_ids)) if rule_ids else []
        chunks = [wanted[i : i + FILTER_VALUES_MAX] for i in range(0, len(wanted), FILTER_VALUES_MAX)] or [[]]
        trusted = _trusted_products()
        reported: set[str] = set()
        for chunk in chunks:
            chunk_ids = frozenset(chunk) if chunk else None
            for page in self._pages(build_filters(chunk)):
                for item in _parse_items(page, trusted):
                    if isinstance(item, FindingError):
                        if str(item) not in reported:
                            reported.add(str(item))
                            yield item
                    elif is_open_failed(item, chunk_ids):
                        yield item

    def _pages(self, filters: dict[str, Any]) -> Iterator[list[Any]]:
        pages = self._client.get_paginator("get_findings_v2").paginate(Filters=filters, MaxResults=PAGE_SIZE)
        for response in pages:
            self.requests_made += 1
            findings = response.get("Findings", [])
            yield findings if isinstance(findings, list) else []
