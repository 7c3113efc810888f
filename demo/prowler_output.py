"""Findings in the shape `prowler aws -M json-ocsf` writes (an OCSF Detection Finding per check and resource).

The field set and nesting follow Prowler's OCSF output (prowler/lib/outputs/ocsf/ocsf.py and its
examples/output/example_output_aws.ocsf.json): the demo and the tests write a scan file from these, so the
connector reads what Prowler really produces. Values Prowler fills from its check metadata (risk text,
remediation, related URLs) are short stand-ins.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

PROWLER_VERSION = "5.10.0"


def ocsf_finding(
    check_id: str,
    account: str,
    region: str,
    resource_type: str,
    resource_uid: str,
    title: str,
    compliance: dict[str, list[str]] | None = None,
    status_code: str = "FAIL",
    muted: bool = False,
    tags: dict[str, str] | None = None,
    severity: str = "High",
    service: str | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(tzinfo=None)  # Prowler writes naive UTC timestamps
    name = resource_uid.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    uid = f"prowler-aws-{check_id}-{account}-{region}-{name}"
    severity_ids = {"Informational": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}
    status_detail = f"{title}: {'FAIL' if status_code == 'FAIL' else 'PASS'} for {name}."
    return {
        "message": status_detail,
        "metadata": {
            "event_code": check_id,
            "product": {"name": "Prowler", "uid": "prowler", "vendor_name": "Prowler", "version": PROWLER_VERSION},
            "profiles": ["cloud", "datetime"],
            "tenant_uid": "",
            "version": "1.5.0",
        },
        "severity_id": severity_ids[severity],
        "severity": severity,
        "status": "Suppressed" if muted else "New",
        "status_code": status_code,
        "status_detail": status_detail,
        "status_id": 3 if muted else 1,
        "unmapped": {
            "related_url": "", "categories": [], "depends_on": [], "related_to": [], "additional_urls": [],
            "notes": "",
            "compliance": compliance or {},
            "scan_id": hashlib.sha256(account.encode()).hexdigest()[:32],
            "provider_uid": account,
            "provider": "aws",
        },
        "activity_name": "Create",
        "activity_id": 1,
        "finding_info": {
            "created_time": int(now.replace(tzinfo=UTC).timestamp()),
            "created_time_dt": now.isoformat(),
            "desc": title,
            "product_uid": "prowler",
            "title": title,
            "types": ["Software and Configuration Checks"],
            "uid": uid,
            "name": name,
        },
        "resources": [{
            "cloud_partition": resource_uid.split(":")[1] if resource_uid.startswith("arn:") else "aws",
            "region": region,
            "data": {"details": "", "metadata": {}},
            "group": {"name": service or check_id.split("_", 1)[0]},
            "labels": [f"{key}:{value}" for key, value in (tags or {}).items()],
            "name": name,
            "type": resource_type,
            "uid": resource_uid,
        }],
        "category_name": "Findings",
        "category_uid": 2,
        "class_name": "Detection Finding",
        "class_uid": 2004,
        "cloud": {
            "account": {"name": "", "type": "AWS Account", "type_id": 10, "uid": account, "labels": []},
            "org": {"name": "", "uid": ""},
            "provider": "aws",
            "region": region,
        },
        "remediation": {"desc": "See the check's documentation.", "references": []},
        "risk_details": "",
        "time": int(now.replace(tzinfo=UTC).timestamp()),
        "time_dt": now.isoformat(),
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
    }
