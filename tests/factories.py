"""Builders for test data."""

from __future__ import annotations

from typing import Any

from connectors.finding import Finding, stable_finding_id

ACCOUNT = "123456789012"
REGION = "us-east-1"


def make_finding(
    rule_id: str,
    resource_type: str,
    resource_id: str,
    *,
    account_id: str = ACCOUNT,
    region: str = REGION,
    **overrides: Any,
) -> Finding:
    """A FAILED, ACTIVE, NEW finding as a connector would produce it."""
    values: dict[str, Any] = {
        "source": "securityhub",
        "finding_id": stable_finding_id("test", rule_id, str(account_id), str(region), str(resource_id)),
        "rule_id": rule_id,
        "source_rule": rule_id,
        "account_id": account_id,
        "region": region,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "resource_arn": None,
        "severity": "HIGH",
        "title": f"{rule_id} test finding",
        "compliance_status": "FAILED",
        "workflow_status": "NEW",
        "record_state": "ACTIVE",
    }
    values.update(overrides)
    return Finding(**values)
