"""ASFF (AWS Security Finding Format) → Finding. Pure parsing, no I/O.

Accepted payload shapes (DESIGN §5 `normalize`): one ASFF finding; a list of them; a GetFindings response
`{"Findings": [...]}`; an EventBridge event `{"detail": {"findings": [...]}}` (`Security Hub Findings -
Imported` and `- Custom Action`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.arns import ArnError, resolve_resource
from connectors.finding import ACCOUNT_ID_RE, Finding, FindingError
from connectors.standards import security_control_id

SOURCE = "securityhub"
EVENT_DETAIL_TYPES = ("Security Hub Findings - Imported", "Security Hub Findings - Custom Action")

# GeneratorId forms that carry the control id:
#   security-control/EC2.53
#   aws-foundational-security-best-practices/v/1.0.0/EC2.2
#   cis-aws-foundations-benchmark/v/1.4.0/4.1
#   arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/4.1
#   pci-dss/v/3.2.1/PCI.KMS.1
_CONSOLIDATED_RE = re.compile(r"^security-control/(?P<control>[A-Za-z0-9]+\.\d+)$")
_STANDARD_RE = re.compile(
    r"(?:^|/)(?P<standard>[a-z0-9-]+/v/[0-9.]+)/(?:rule/)?(?P<control>[A-Za-z0-9.]+)$"
)
_CONTROL_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.\d+$")
_CIS_REQUIREMENT_RE = re.compile(r"^CIS AWS Foundations Benchmark v(?P<version>[0-9.]+)/(?P<control>[0-9.]+)$")


# Security Hub's own product (its security controls, the findings this framework remediates), in any partition and
# region. ASFF requires ProductArn and BatchImportFindings sets it from the importing product, so a member account
# importing findings cannot pass one off as Security Hub's.
SECURITY_HUB_PRODUCT = re.compile(r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+::product/aws/securityhub$")


class UntrustedFinding(FindingError):
    """The finding's origin is not trusted (foreign product, or a resource of another account): skipped."""


@dataclass(frozen=True)
class Provenance:
    """Which reporters are believed. product_arns: accepted besides Security Hub's own product; aggregators:
    accounts (the Security Hub administrator / aggregator) allowed to report a resource of another account —
    None (not configured) leaves that check off, an empty set lets no account speak for another."""

    product_arns: frozenset[str] = frozenset()
    aggregators: frozenset[str] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Provenance:
        """CSPM_SECURITYHUB_PRODUCT_ARNS and CSPM_SECURITYHUB_AGGREGATORS, comma-separated."""
        env = os.environ if environ is None else environ

        def items(name: str) -> frozenset[str]:
            return frozenset(v.strip() for v in env.get(name, "").split(",") if v.strip())

        aggregators = items("CSPM_SECURITYHUB_AGGREGATORS")
        bad = sorted(a for a in aggregators if not ACCOUNT_ID_RE.fullmatch(a) and a != "none")
        if bad:
            raise ValueError(f"CSPM_SECURITYHUB_AGGREGATORS must be 12-digit account ids or none, got {', '.join(bad)}")
        configured = "CSPM_SECURITYHUB_AGGREGATORS" in env
        return cls(items("CSPM_SECURITYHUB_PRODUCT_ARNS"), (aggregators - {"none"}) if configured else None)

    def problem(self, asff: Mapping[str, Any], resource_account: str | None) -> str | None:
        """Why this finding must not be acted on, or None."""
        product = _optional_str(asff, "ProductArn")
        if product is not None and not SECURITY_HUB_PRODUCT.match(product) and product not in self.product_arns:
            return f"untrusted ProductArn {product[:200]}: only Security Hub's own findings (or an allowlisted product)"
        reporter = _optional_str(asff, "AwsAccountId")
        if (self.aggregators is not None and resource_account and reporter and resource_account != reporter
                and reporter not in self.aggregators):
            return (f"account {reporter} reports a resource of account {resource_account}: only the Security Hub "
                    "administrator may (CSPM_SECURITYHUB_AGGREGATORS)")
        return None


DEFAULT_PROVENANCE = Provenance()


def iter_asff(payload: Any) -> Iterator[Any]:
    """The ASFF findings inside any accepted payload shape. Raises FindingError for an unknown shape."""
    if isinstance(payload, list):
        yield from payload
        return
    if not isinstance(payload, Mapping):
        raise FindingError(f"expected a finding, a list, a GetFindings response or an event; got {_kind(payload)}")
    if "detail" in payload:
        detail = payload["detail"]
        findings = detail.get("findings") if isinstance(detail, Mapping) else None
        if not isinstance(findings, list):
            raise FindingError("EventBridge event without detail.findings list")
        yield from findings
        return
    if "Findings" in payload:
        if not isinstance(payload["Findings"], list):
            raise FindingError("GetFindings response: Findings is not a list")
        yield from payload["Findings"]
        return
    if "Id" in payload or "SchemaVersion" in payload:
        yield payload
        return
    raise FindingError("not an ASFF payload: no Id, Findings or detail.findings")


def parse_payload(payload: Any, provenance: Provenance | None = None) -> Iterator[Finding | FindingError]:
    """Each finding in the payload, parsed; a bad or untrusted one yields a FindingError naming its index, the rest
    go on. `provenance`: whom to believe (default: Security Hub's product, no cross-account reporter)."""
    for index, item in enumerate(iter_asff(payload)):
        try:
            yield parse_finding(item, provenance)
        except FindingError as error:
            label = item.get("Id") if isinstance(item, Mapping) and isinstance(item.get("Id"), str) else None
            where = f"finding #{index}" + (f" ({label[:200]})" if label else "")
            yield FindingError(f"{where}: {error}")


def parse_finding(asff: Any, provenance: Provenance | None = None) -> Finding:
    if not isinstance(asff, Mapping):
        raise FindingError(f"an ASFF finding must be an object, got {_kind(asff)}")
    finding_id = _required_str(asff, "Id")
    resources = asff.get("Resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], Mapping):
        raise FindingError("Resources must be a non-empty list of objects")
    resource = resources[0]
    resource_type = _required_str(resource, "Type", "Resources[0].Type")
    raw_resource_id = _required_str(resource, "Id", "Resources[0].Id")
    details = resource.get("Details") if isinstance(resource.get("Details"), Mapping) else None
    try:
        ref = resolve_resource(resource_type, raw_resource_id, dict(details) if details else None)
    except ArnError as error:
        raise FindingError(f"Resources[0].Id: {error}") from None

    # The account and region of the *resource* win over the account that reported it, once that reporter is
    # trusted to speak for it (provenance).
    problem = (provenance or DEFAULT_PROVENANCE).problem(asff, ref.account)
    if problem:
        raise UntrustedFinding(problem)
    account_id = ref.account or _optional_str(asff, "AwsAccountId")
    region = _optional_str(resource, "Region") or ref.region or _optional_str(asff, "Region")
    if not account_id:
        raise FindingError("no account: neither the resource ARN nor AwsAccountId gives one")
    if not region:
        raise FindingError("no region: neither Resources[0].Region, the ARN nor Region gives one")

    rule_id, source_rule = control_ids(asff)
    compliance = got if isinstance(got := asff.get("Compliance"), Mapping) else {}
    workflow = got if isinstance(got := asff.get("Workflow"), Mapping) else {}
    tags = got if isinstance(got := resource.get("Tags"), Mapping) else {}
    return Finding(
        source=SOURCE,
        finding_id=finding_id,
        rule_id=rule_id,
        source_rule=source_rule,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_id=ref.resource_id,
        resource_arn=ref.arn,
        severity=_severity(asff.get("Severity")),
        title=_optional_str(asff, "Title") or rule_id,
        compliance_status=_optional_str(compliance, "Status") or "NOT_AVAILABLE",
        workflow_status=_optional_str(workflow, "Status"),
        record_state=_optional_str(asff, "RecordState"),
        standards=tuple(_standards(asff, compliance)),
        first_observed=_timestamp(asff.get("FirstObservedAt")),
        last_observed=_timestamp(asff.get("LastObservedAt") or asff.get("UpdatedAt")),
        tags={str(k): str(v) for k, v in tags.items()},
        product_arn=_optional_str(asff, "ProductArn"),
        raw=asff,
    )


def control_ids(asff: Mapping[str, Any]) -> tuple[str, str]:
    """(canonical rule id, the rule as the source names it).

    Order: Compliance.SecurityControlId (consolidated findings), ProductFields.ControlId / RuleId with the
    standard from GeneratorId, then GeneratorId alone; standard-specific ids are mapped through
    connectors.standards, unmapped ones are kept as they are.
    """
    compliance = got if isinstance(got := asff.get("Compliance"), Mapping) else {}
    security_control = _optional_str(compliance, "SecurityControlId")
    if security_control:
        return security_control, security_control
    generator = _optional_str(asff, "GeneratorId") or ""
    product_fields = got if isinstance(got := asff.get("ProductFields"), Mapping) else {}
    consolidated = _CONSOLIDATED_RE.match(generator)
    if consolidated:
        return consolidated.group("control"), generator
    standard_match = _STANDARD_RE.search(generator)
    standard = standard_match.group("standard") if standard_match else None
    control = (
        _optional_str(product_fields, "ControlId")
        or _optional_str(product_fields, "RuleId")
        or (standard_match.group("control") if standard_match else None)
    )
    if control:
        mapped = security_control_id(standard, control)
        if mapped:
            return mapped, generator or control
        if _CONTROL_ID_RE.match(control) and not (standard or "").startswith("cis-"):
            return control, generator or control  # FSBP ids are already security control ids
        return (f"{standard}/{control}" if standard else control), generator or control
    if generator:
        return generator, generator
    title = _optional_str(asff, "Title")
    if title:
        return title, title
    raise FindingError("no rule: Compliance.SecurityControlId, ProductFields.ControlId and GeneratorId are all missing")


def _standards(asff: Mapping[str, Any], compliance: Mapping[str, Any]) -> list[str]:
    """e.g. ["cis-aws-foundations-benchmark/v/3.0.0 5.2"]: standard id plus its requirement number when known."""
    numbers: dict[str, str] = {}
    requirements = compliance.get("RelatedRequirements")
    for requirement in requirements if isinstance(requirements, list) else []:
        match = _CIS_REQUIREMENT_RE.match(requirement) if isinstance(requirement, str) else None
        if match:
            numbers[f"cis-aws-foundations-benchmark/v/{match.group('version')}"] = match.group("control")
    result: list[str] = []
    associated = compliance.get("AssociatedStandards")
    for entry in associated if isinstance(associated, list) else []:
        standard_id = entry.get("StandardsId") if isinstance(entry, Mapping) else None
        if not isinstance(standard_id, str):
            continue
        standard = standard_id.split("/", 1)[1] if standard_id.startswith(("standards/", "ruleset/")) else standard_id
        result.append(f"{standard} {numbers.pop(standard)}" if standard in numbers else standard)
    result.extend(f"{standard} {number}" for standard, number in numbers.items())
    return result


def _severity(severity: Any) -> str:
    if not isinstance(severity, Mapping):
        return "INFORMATIONAL"
    label = severity.get("Label")
    if isinstance(label, str) and label.upper() in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"):
        return label.upper()
    normalized = severity.get("Normalized")
    if isinstance(normalized, int | float) and not isinstance(normalized, bool):
        # ASFF's documented Normalized → Label bands.
        for floor, name in ((90, "CRITICAL"), (70, "HIGH"), (40, "MEDIUM"), (1, "LOW")):
            if normalized >= floor:
                return name
    return "INFORMATIONAL"


def _timestamp(value: Any) -> str | None:
    """ISO-8601 UTC with a Z, or None; an unreadable timestamp is not worth rejecting a finding over."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):  # e.g. year 1 with a +01:00 offset: before the calendar starts in UTC
        return None


def _required_str(mapping: Mapping[str, Any], key: str, label: str | None = None) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FindingError(f"{label or key} must be a non-empty string")
    return value.strip()


def _optional_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _kind(value: Any) -> str:
    return type(value).__name__
