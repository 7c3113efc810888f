"""Security Hub puller: GetFindings with server-side filters, paged at the API maximum.

GetFindings is limited to 3 requests/s (burst 6) and 100 findings per page; a filter takes at most 20 values,
so the control ids of the selected rules are queried in chunks of 20. Filters are re-checked client-side
because not every backend honours them (moto ignores them), and a finding must never be acted on just
because a filter was dropped. Throttling is retried by the client's standard retry mode (give it
functions.engine.sessions.CLIENT_CONFIG), not again here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from connectors.asff import Provenance, parse_payload
from connectors.finding import Finding, FindingError

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # GetFindings MaxResults maximum
FILTER_VALUES_MAX = 20  # values per filter attribute
OPEN_WORKFLOW_STATUSES = ("NEW", "NOTIFIED")


def build_filters(control_ids: Sequence[str] = ()) -> dict[str, Any]:
    """The AwsSecurityFindingFilters for open, failed, active findings (of these controls, when given)."""
    filters: dict[str, Any] = {
        "ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        "WorkflowStatus": [{"Value": status, "Comparison": "EQUALS"} for status in OPEN_WORKFLOW_STATUSES],
    }
    if control_ids:
        if len(control_ids) > FILTER_VALUES_MAX:
            raise ValueError(f"at most {FILTER_VALUES_MAX} control ids per filter")
        filters["ComplianceSecurityControlId"] = [{"Value": c, "Comparison": "EQUALS"} for c in control_ids]
    return filters


def is_open_failed(finding: Finding, rule_ids: frozenset[str] | None = None) -> bool:
    """Client-side twin of build_filters."""
    return (
        finding.compliance_status == "FAILED"
        and finding.record_state in (None, "ACTIVE")
        and finding.workflow_status in (None, *OPEN_WORKFLOW_STATUSES)
        and (rule_ids is None or finding.rule_id in rule_ids)
    )


class SecurityHubConnector:
    """Pulls open failed findings from one Security Hub (an aggregator or a single account/region)."""

    def __init__(self, client: Any) -> None:  # a securityhub client (botocore: methods made at run time)
        self._client = client
        self.requests_made = 0

    def fetch(self, rule_ids: Iterable[str] | None = None) -> Iterator[Finding | FindingError]:
        """Stream findings page by page (memory flat in the number of findings)."""
        wanted = sorted(set(rule_ids)) if rule_ids else []
        chunks: list[list[str]] = (
            [wanted[i : i + FILTER_VALUES_MAX] for i in range(0, len(wanted), FILTER_VALUES_MAX)] if wanted else [[]]
        )
        reported: set[str] = set()  # a malformed finding matches no chunk's re-check: report it once
        for chunk in chunks:
            # Re-check against this chunk's ids (not all wanted ones): chunks are disjoint, so even a backend
            # that ignores the filter yields each finding once.
            chunk_ids = frozenset(chunk) if chunk else None
            for page in self._pages(build_filters(chunk)):
                for item in parse_payload(page, Provenance.from_env()):
                    if isinstance(item, FindingError):
                        if str(item) not in reported:
                            reported.add(str(item))
                            yield item
                    elif is_open_failed(item, chunk_ids):
                        yield item

    def _pages(self, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for response in self._client.get_paginator("get_findings").paginate(Filters=filters, MaxResults=PAGE_SIZE):
            self.requests_made += 1
            yield {"Findings": response.get("Findings", [])}
