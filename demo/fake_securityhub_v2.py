"""A small fake of Security Hub's OCSF API (GetFindingsV2, BatchUpdateFindingsV2), which moto does not implement.

While installed, boto3 `securityhub` clients in this process send those two operations here; every other call
goes where it would have gone (moto, in the demo and tests). Requests are first validated against botocore's own
service model, so a request the real API would refuse with a ValidationException is refused here too.

What it does: filters (`CompositeFilters` of String/Number filters with EQUALS / NOT_EQUALS / PREFIX and
Eq / Gte / Lte / Gt / Lt, each composite's Operator, the CompositeOperator), paging (MaxResults, an opaque
NextToken), BatchUpdateFindingsV2 by MetadataUids (StatusId with its `status` caption, Comment), unknown uids
reported as unprocessed (ResourceNotFoundException). What it does not: Scopes, SortCriteria, Date/Boolean/Map/Ip
filters (refused loudly), FindingIdentifiers in updates, quotas and throttling.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import validate_parameters

STATUS_CAPTIONS = {0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 5: "Archived",
                   99: "Other"}


class FakeSecurityHubV2:
    def __init__(self, findings: list[dict[str, Any]] | None = None) -> None:
        self.findings: list[dict[str, Any]] = [copy.deepcopy(f) for f in findings or []]
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    # -- the two operations --------------------------------------------------------------------
    def get_findings_v2(self, params: dict[str, Any]) -> dict[str, Any]:
        for unsupported in ("Scopes", "SortCriteria"):
            if unsupported in params:
                raise NotImplementedError(f"FakeSecurityHubV2: {unsupported} is not faked")
        matching = [f for f in self.findings if _matches(f, params.get("Filters") or {})]
        start = int(params.get("NextToken") or 0)
        size = params.get("MaxResults", 100)
        page = matching[start : start + size]
        response: dict[str, Any] = {"Findings": copy.deepcopy(page)}
        if start + size < len(matching):
            response["NextToken"] = str(start + size)
        return response

    def batch_update_findings_v2(self, params: dict[str, Any]) -> dict[str, Any]:
        if "FindingIdentifiers" in params:
            raise NotImplementedError("FakeSecurityHubV2: updates by FindingIdentifiers are not faked")
        by_uid = {f["metadata"]["uid"]: f for f in self.findings}
        processed, unprocessed = [], []
        for uid in params.get("MetadataUids", []):
            finding = by_uid.get(uid)
            if finding is None:
                unprocessed.append({"MetadataUid": uid, "ErrorCode": "ResourceNotFoundException",
                                    "ErrorMessage": f"Finding {uid} not found"})
                continue
            if "StatusId" in params:
                finding["status_id"] = params["StatusId"]
                finding["status"] = STATUS_CAPTIONS.get(params["StatusId"], "Other")
            if "Comment" in params:
                finding["comment"] = params["Comment"]
            processed.append({"MetadataUid": uid})
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    # -- installing ----------------------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[FakeSecurityHubV2]:
        fake = self
        original = BaseClient._make_api_call
        handlers = {"GetFindingsV2": fake.get_findings_v2, "BatchUpdateFindingsV2": fake.batch_update_findings_v2}

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            handler = handlers.get(operation_name) if client.meta.service_model.service_name == "securityhub" \
                else None
            if handler is None:
                return original(client, operation_name, api_params)
            model = client.meta.service_model.operation_model(operation_name)
            try:
                validate_parameters(api_params, model.input_shape)
            except ParamValidationError as error:
                raise ClientError({"Error": {"Code": "ValidationException", "Message": str(error)}},
                                  operation_name) from None
            with fake._lock:
                fake.calls.append((operation_name, copy.deepcopy(api_params)))
                return handler(api_params)

        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]


def _matches(finding: dict[str, Any], filters: dict[str, Any]) -> bool:
    composites = filters.get("CompositeFilters") or []
    if not composites:
        return True
    results = [_composite(finding, c) for c in composites]
    return any(results) if filters.get("CompositeOperator") == "OR" else all(results)


def _composite(finding: dict[str, Any], composite: dict[str, Any]) -> bool:
    for unsupported in ("DateFilters", "BooleanFilters", "MapFilters", "IpFilters", "NestedCompositeFilters"):
        if composite.get(unsupported):
            raise NotImplementedError(f"FakeSecurityHubV2: {unsupported} are not faked")
    checks = [_string(_values(finding, f["FieldName"]), f["Filter"]) for f in composite.get("StringFilters", [])]
    checks += [_number(_values(finding, f["FieldName"]), f["Filter"]) for f in composite.get("NumberFilters", [])]
    if not checks:
        return True
    return any(checks) if composite.get("Operator") == "OR" else all(checks)


def _values(document: Any, path: str) -> list[Any]:
    """Every value at a dotted path; lists on the way are flattened (`resources.uid`)."""
    values = [document]
    for key in path.split("."):
        step: list[Any] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            step += [item[key] for item in items if isinstance(item, dict) and key in item]
        values = step
    return [v for value in values for v in (value if isinstance(value, list) else [value])]


def _string(values: list[Any], condition: dict[str, Any]) -> bool:
    wanted, comparison = condition["Value"], condition["Comparison"]
    strings = [v for v in values if isinstance(v, str)]
    if comparison == "EQUALS":
        return wanted in strings
    if comparison == "NOT_EQUALS":
        return wanted not in strings
    if comparison == "PREFIX":
        return any(v.startswith(wanted) for v in strings)
    raise NotImplementedError(f"FakeSecurityHubV2: string comparison {comparison} is not faked")


def _number(values: list[Any], condition: dict[str, Any]) -> bool:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    tests = {"Eq": lambda v, x: v == x, "Gte": lambda v, x: v >= x, "Lte": lambda v, x: v <= x,
             "Gt": lambda v, x: v > x, "Lt": lambda v, x: v < x}
    return any(all(tests[op](v, x) for op, x in condition.items()) for v in numbers)


def control_finding(control: str, account: str, region: str, resource_type: str, resource_uid: str, title: str,
                    status_id: int = 1, compliance_status_id: int = 3, activity_id: int = 1,
                    tags: dict[str, str] | None = None, product_name: str = "Security Hub CSPM") -> dict[str, Any]:
    """A Security Hub CSPM control finding as GetFindingsV2 returns it: an OCSF Compliance Finding (class 2003)."""
    digest = hashlib.sha256(f"{control}|{resource_uid}".encode()).hexdigest()
    finding_uid = f"arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{digest[:32]}"
    compliance = {1: "Pass", 2: "Warning", 3: "Fail"}[compliance_status_id]
    return {
        "activity_id": activity_id,
        "activity_name": {1: "Create", 2: "Update", 3: "Close"}[activity_id],
        "category_name": "Findings",
        "category_uid": 2,
        "class_name": "Compliance Finding",
        "class_uid": 2003,
        "type_uid": 200300 + activity_id,
        "time_dt": "2026-11-30T08:00:00.000Z",
        "severity": "High",
        "severity_id": 4,
        "status": STATUS_CAPTIONS[status_id],
        "status_id": status_id,
        "cloud": {"account": {"type": "AWS Account", "type_id": 10, "uid": account}, "provider": "AWS",
                  "region": region},
        "compliance": {
            "control": control,
            "status": compliance,
            "status_id": compliance_status_id,
            "standards": ["standards/aws-foundational-security-best-practices/v/1.0.0",
                          "standards/cis-aws-foundations-benchmark/v/3.0.0"],
        },
        "finding_info": {
            "uid": finding_uid,
            "title": title,
            "desc": title,
            "created_time_dt": "2026-11-20T08:00:00.000Z",
            "first_seen_time_dt": "2026-11-20T08:00:00.000Z",
            "last_seen_time_dt": "2026-11-30T08:00:00.000Z",
            "modified_time_dt": "2026-11-30T08:00:00.000Z",
            "types": ["Posture Management"],
        },
        "metadata": {
            "uid": f"{finding_uid}/metadata",
            "product": {"name": product_name, "uid": f"arn:aws:securityhub:{region}::product/aws/securityhub",
                        "vendor_name": "AWS"},
            "profiles": ["cloud", "datetime"],
            "version": "1.5.0",
        },
        "resources": [{
            "cloud_partition": "aws",
            "region": region,
            "type": resource_type,
            "uid": resource_uid,
            "tags": [{"name": k, "value": v} for k, v in (tags or {}).items()],
        }],
    }
