"""Prowler scan output → Finding. Pure parsing, plus reading an output file; no network.

Prowler (`prowler aws -M json-ocsf json-asff`) writes a JSON array per format:
- **json-ocsf**: OCSF Detection Findings (class_uid 2004). Used here: `metadata.event_code` (the check id),
  `status_code` (`FAIL` / `PASS` / `MANUAL`), `status` (`New`, or `Suppressed` when muted), `finding_info.uid` /
  `.title` / `.created_time_dt`, `time_dt`, `severity`, `resources[0]` (`uid` = ARN, `type` = ASFF type name,
  `region`, `labels` = `["key:value"]`), `cloud.account.uid`, `cloud.provider`, and `unmapped.compliance`
  (`{"AWS-Foundational-Security-Best-Practices": ["EC2.13", …], "CIS-3.0": ["5.2"], …}`).
- **json-asff**: ASFF with `ProductArn …::product/prowler/prowler`, `GeneratorId "prowler-<check id>"` and
  `Compliance.RelatedRequirements` like `"AWS-Foundational-Security-Best-Practices EC2.13 EC2.19"`; parsed by
  connectors/asff.py, then given the same rule mapping as OCSF.

Rule id: the table in connectors/prowler_checks.py, else the first Security Hub control id in the FSBP
compliance list, else a CIS requirement mapped through connectors/standards, else `prowler:<check id>` (no
remediator: skipped). Older Prowler versions wrote FSBP section names (`"ec2"`) there; those are ignored.
Only `FAIL` findings that are not muted are open (the pipeline filters with `is_open`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from connectors.arns import ArnError, resolve_resource
from connectors.asff import Provenance, _timestamp
from connectors.asff import parse_finding as parse_asff_finding
from connectors.finding import SEVERITIES, Finding, FindingError, stable_finding_id
from connectors.prowler_checks import ACCOUNT_LEVEL_RULES, CHECK_RULES
from connectors.standards import security_control_id

SOURCE = "prowler"
FSBP = "AWS-Foundational-Security-Best-Practices"
OCSF_DETECTION_FINDING = 2004

_STATUS_CODES = {"FAIL": "FAILED", "PASS": "PASSED", "MANUAL": "NOT_AVAILABLE"}
# OCSF finding status (Prowler writes New, or Suppressed for a muted finding) → DESIGN §3 workflow status.
_OCSF_STATUSES = {"new": "NEW", "in progress": "NOTIFIED", "suppressed": "SUPPRESSED", "resolved": "RESOLVED"}
_CONTROL_ID = re.compile(r"^[A-Z][A-Za-z0-9]*\.\d+$")  # EC2.13, Lambda.1; not FSBP section names like "ec2"
_CIS_KEY = re.compile(r"^CIS-(?P<major>\d+)\.(?P<minor>\d+)$")
_PROWLER_PRODUCT = re.compile(r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+::product/prowler/prowler$")
_GENERATOR = re.compile(r"^prowler-(?P<check>[a-z0-9_]+)$")


def is_open(finding: Finding) -> bool:
    """A failed check that nobody muted."""
    return finding.compliance_status == "FAILED" and finding.workflow_status not in ("SUPPRESSED", "RESOLVED")


# -- reading files ------------------------------------------------------------------------------
def read_output(text: str, name: str) -> Any:
    """A Prowler output file's payload: a JSON array (what Prowler writes) or JSON Lines (one finding per line,
    what `jq -c '.[]'` makes of it). Raises FindingError naming the file and the line."""
    stripped = text.strip()
    if not stripped:
        raise FindingError(f"{name}: empty; expected Prowler json-ocsf or json-asff output")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as whole_error:
        if not stripped.startswith("{"):
            raise FindingError(f"{name}: not valid JSON at line {whole_error.lineno} column "
                               f"{whole_error.colno}: {whole_error.msg}") from None
    items = []
    for number, line in enumerate(stripped.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise FindingError(f"{name}: neither a JSON array nor JSON Lines: line {number} column "
                                   f"{error.colno}: {error.msg}") from None
    return items


# -- parsing ------------------------------------------------------------------------------------
def parse_payload(payload: Any) -> Iterator[Finding | FindingError]:
    """Each finding in a Prowler payload (array, or one finding), OCSF or ASFF item by item. A bad item yields
    a FindingError naming its position (and uid when it has one); the others go on. A payload of another shape
    raises FindingError at once."""
    if isinstance(payload, Mapping):
        items: list[Any] = list(payload["Findings"]) if isinstance(payload.get("Findings"), list) else [payload]
    elif isinstance(payload, list):
        items = payload
    else:
        raise FindingError(f"not Prowler output: expected a JSON array of findings, got {type(payload).__name__}")
    return _parse_items(items)


def _parse_items(items: list[Any]) -> Iterator[Finding | FindingError]:
    for index, item in enumerate(items):
        try:
            yield parse_item(item)
        except FindingError as error:
            label = _label(item)
            yield FindingError(f"finding #{index}" + (f" ({label})" if label else "") + f": {error}")


def parse_item(item: Any) -> Finding:
    if not isinstance(item, Mapping):
        raise FindingError(f"a finding must be a JSON object, got {type(item).__name__}")
    try:
        if "GeneratorId" in item or "ProductArn" in item or "SchemaVersion" in item:
            return _parse_asff(item)
        if "metadata" in item or "class_uid" in item or "finding_info" in item:
            return _parse_ocsf(item)
    except ArnError as error:
        raise FindingError(f"resource uid: {error}") from None
    except FindingError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:
        # Safety net: one odd finding must not stop the file. Every documented shape is checked above.
        raise FindingError(f"unreadable finding ({type(error).__name__})") from None
    raise FindingError("neither an OCSF detection finding (metadata.event_code) nor an ASFF finding (GeneratorId)")


def rule_for(check_id: str, compliance: Mapping[str, Any] | None) -> str:
    """Canonical rule id of a Prowler check (module docstring: table, FSBP ids, CIS, else prowler:<check>)."""
    mapped = CHECK_RULES.get(check_id)
    if mapped:
        return mapped
    compliance = compliance if isinstance(compliance, Mapping) else {}
    fsbp = compliance.get(FSBP)
    for control in fsbp if isinstance(fsbp, list) else []:
        if isinstance(control, str) and _CONTROL_ID.match(control.strip()):
            return control.strip()
    for key, requirements in compliance.items():
        match = _CIS_KEY.match(key) if isinstance(key, str) else None
        if match and isinstance(requirements, list):
            standard = f"cis-aws-foundations-benchmark/v/{match['major']}.{match['minor']}.0"
            for requirement in requirements:
                control = security_control_id(standard, requirement) if isinstance(requirement, str) else None
                if control:
                    return control
    return f"{SOURCE}:{check_id}"


def _parse_ocsf(item: Mapping[str, Any]) -> Finding:
    class_uid = item.get("class_uid")
    if class_uid is not None and class_uid != OCSF_DETECTION_FINDING:
        raise FindingError(f"class_uid {_short(class_uid)} is not an OCSF Detection Finding (2004)")
    metadata = _mapping(item, "metadata")
    check_id = _text(metadata, "event_code", "metadata.event_code")
    status_code = _text(item, "status_code")
    if status_code.upper() not in _STATUS_CODES:
        raise FindingError(f"status_code must be FAIL, PASS or MANUAL, got {_short(status_code)}")
    cloud = got if isinstance(got := item.get("cloud"), Mapping) else {}
    provider = cloud.get("provider")
    if isinstance(provider, str) and provider.lower() != "aws":
        raise FindingError(f"cloud.provider is {_short(provider)}: only AWS findings can be remediated")
    resources = item.get("resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], Mapping):
        raise FindingError("resources must be a non-empty list of objects")
    resource = resources[0]
    resource_type = _optional(resource, "type") or "Other"
    ref = resolve_resource(resource_type, _text(resource, "uid", "resources[0].uid"))
    account_obj = got if isinstance(got := cloud.get("account"), Mapping) else {}
    # The resource's own account (from its ARN) wins over the scanned account.
    account_id = ref.account or _optional(account_obj, "uid")
    if not account_id:
        raise FindingError("no account: neither resources[0].uid (an ARN) nor cloud.account.uid gives one")
    region = _optional(resource, "region") or ref.region or _optional(cloud, "region")
    if not region:
        raise FindingError("no region: neither resources[0].region, the ARN nor cloud.region gives one")
    unmapped = got if isinstance(got := item.get("unmapped"), Mapping) else {}
    compliance = got if isinstance(got := unmapped.get("compliance"), Mapping) else {}
    info = got if isinstance(got := item.get("finding_info"), Mapping) else {}
    rule_id = rule_for(check_id, compliance)
    resource_id, resource_arn = ref.resource_id, ref.arn
    if rule_id in ACCOUNT_LEVEL_RULES:
        resource_type, resource_id = "AwsAccount", account_id
    finding_id = _optional(info, "uid") or stable_finding_id(SOURCE, check_id, account_id, region, resource_id)
    status = _optional(item, "status")
    return Finding(
        source=SOURCE,
        finding_id=finding_id,
        rule_id=rule_id,
        source_rule=check_id,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_arn=resource_arn,
        severity=_severity(item.get("severity"), item.get("severity_id")),
        title=_optional(info, "title") or check_id,
        compliance_status=_STATUS_CODES[status_code.upper()],
        workflow_status=_OCSF_STATUSES.get(status.lower()) if status else None,
        record_state=None,
        standards=tuple(_standards(compliance)),
        first_observed=_timestamp(info.get("created_time_dt")),
        last_observed=_timestamp(item.get("time_dt")),
        tags=_tags(resource),
        product_arn=None,
        raw=item,
    )


def _parse_asff(item: Mapping[str, Any]) -> Finding:
    product = item.get("ProductArn")
    if not isinstance(product, str) or not _PROWLER_PRODUCT.match(product):
        raise FindingError(f"ProductArn {_short(product)} is not Prowler's (…::product/prowler/prowler)")
    generator = item.get("GeneratorId")
    match = _GENERATOR.match(generator) if isinstance(generator, str) else None
    if not match:
        raise FindingError(f"GeneratorId must be prowler-<check id>, got {_short(generator)}")
    # The file is the user's own scan output: Prowler's product is trusted here (not in the Security Hub pull).
    finding = parse_asff_finding(item, Provenance(product_arns=frozenset({product})))
    check_id = match["check"]
    compliance: dict[str, list[str]] = {}
    requirements = (item.get("Compliance") or {}).get("RelatedRequirements")
    for requirement in requirements if isinstance(requirements, list) else []:
        if isinstance(requirement, str) and " " in requirement:
            key, *values = requirement.split()
            compliance.setdefault(key, []).extend(values)
    rule_id = rule_for(check_id, compliance)
    resource_type, resource_id = finding.resource_type, finding.resource_id
    if rule_id in ACCOUNT_LEVEL_RULES:
        resource_type, resource_id = "AwsAccount", finding.account_id
    workflow = finding.workflow_status or ("SUPPRESSED" if finding.compliance_status == "WARNING" else None)
    return replace(
        finding, source=SOURCE, rule_id=rule_id, source_rule=check_id, resource_type=resource_type,
        resource_id=resource_id, workflow_status=workflow, standards=tuple(_standards(compliance)),
        product_arn=None,  # a Prowler file is not Security Hub: nothing to write back to
    )


def _standards(compliance: Mapping[str, Any]) -> list[str]:
    """`"CIS-3.0 5.2"`-style entries, one per requirement (the framework as Prowler names it)."""
    result: list[str] = []
    for key, values in compliance.items():
        if isinstance(key, str) and isinstance(values, list):
            result.extend(f"{key} {value}" for value in values if isinstance(value, str) and value)
    return result


def _severity(label: Any, severity_id: Any) -> str:
    if isinstance(label, str) and label.upper() in SEVERITIES:
        return label.upper()
    # OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal.
    by_id = {1: "INFORMATIONAL", 2: "LOW", 3: "MEDIUM", 4: "HIGH", 5: "CRITICAL", 6: "CRITICAL"}
    return by_id.get(severity_id, "INFORMATIONAL") if isinstance(severity_id, int) else "INFORMATIONAL"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    """The resource's tags. Prowler keeps them exactly in `data.metadata.tags` (`[{"Key", "Value"}]`) for most
    resources, and always as OCSF labels `"key:value"`. A label is ambiguous when the key itself has a colon (the
    default exclusion tag `cspm-remediation:exclude` does): every reading is kept, so an exclusion tag is seen
    whichever colon is the separator (wrongly excluding beats wrongly acting)."""
    data = got if isinstance(got := resource.get("data"), Mapping) else {}
    metadata = got if isinstance(got := data.get("metadata"), Mapping) else {}
    exact = metadata.get("tags")
    if isinstance(exact, list) and exact and all(isinstance(t, Mapping) and isinstance(t.get("Key"), str)
                                                 for t in exact):
        return {t["Key"]: str(t.get("Value", "")) for t in exact}
    tags: dict[str, str] = {}
    labels = resource.get("labels")
    for label in labels if isinstance(labels, list) else []:
        if not isinstance(label, str):
            continue
        for cut in (i for i, char in enumerate(label) if char == ":"):
            key, value = label[:cut].strip(), label[cut + 1 :].strip()
            if key:
                tags.setdefault(key, value)
    return tags


def _label(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    info = item.get("finding_info")
    uid = info.get("uid") if isinstance(info, Mapping) else item.get("Id")
    return uid[:200] if isinstance(uid, str) and uid else None


def _mapping(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    if not isinstance(value, Mapping):
        raise FindingError(f"{key} must be an object")
    return value


def _text(mapping: Mapping[str, Any], key: str, label: str | None = None) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FindingError(f"{label or key} must be a non-empty string")
    return value.strip()


def _optional(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
