"""Security Hub write-back for OCSF findings (BatchUpdateFindingsV2), and the dispatcher the handlers use.

Same policy as the ASFF path (functions/aws_lambda/writeback.py `update_for`): an action started → In Progress,
a verified fix → Resolved, anything else → a comment only. The V2 request names findings by `metadata.uid`
(MetadataUids, at most 100 per request), sets `StatusId` (OCSF: 2 In Progress, 4 Resolved) and `Comment`
(at most 512 characters, the note text). Unprocessed identifiers with a transient error code
(ConflictException, InternalServerException) are sent again a bounded number of times; the rest are reported.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.finding import Finding
from connectors.securityhub_v2 import SOURCE as V2_SOURCE
from connectors.securityhub_v2 import metadata_uid
from functions.aws_lambda.writeback import (
    BatchWriteBack,
    SecurityHubWriteBack,
    Unwritten,
    Update,
    WriteBackReport,
)
from functions.model import Result

log = logging.getLogger(__name__)

STATUS_IDS = {"NOTIFIED": 2, "RESOLVED": 4}  # OCSF status_id: 2 In Progress, 4 Resolved
RETRYABLE_UNPROCESSED = frozenset({"ConflictException", "InternalServerException"})


def request_v2(update: Update, uids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"MetadataUids": uids, "Comment": update.note}
    if update.status:
        body["StatusId"] = STATUS_IDS[update.status]
    return body


class SecurityHubV2WriteBack(BatchWriteBack[str]):
    """securityhub-v2 findings, named by metadata uid: BatchUpdateFindingsV2; other findings are ignored."""

    retryable = RETRYABLE_UNPROCESSED
    label = "Security Hub (OCSF) write-back"

    def _key(self, finding: Finding) -> str | None:
        return (metadata_uid(finding) or None) if finding.source == V2_SOURCE else None

    def _request(self, update: Update, keys: list[str]) -> dict[str, Any]:
        return request_v2(update, keys)

    def _call_api(self, request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self._client.batch_update_findings_v2(**request)
        return response

    def _unprocessed(self, item: dict[str, Any]) -> tuple[str, str, str]:
        return item.get("MetadataUid", ""), item.get("ErrorCode", ""), item.get("ErrorMessage", "")

    def _unwritten(self, key: str, finding_id: str, code: str, message: str) -> Unwritten:
        return Unwritten(finding_id or key, key, code, message)


class FindingWriteBack:
    """What the handlers use: ASFF findings go to BatchUpdateFindings, OCSF ones to BatchUpdateFindingsV2;
    findings of other sources are ignored. ``flush`` returns one report for both."""

    def __init__(self, client: Any, **options: Any) -> None:
        self.v1 = SecurityHubWriteBack(client, **options)
        self.v2 = SecurityHubV2WriteBack(client, **options)

    def add(self, finding: Finding, result: Result) -> bool:
        return (self.v2 if finding.source == V2_SOURCE else self.v1).add(finding, result)

    def flush(self) -> WriteBackReport:
        first, second = self.v1.flush(), self.v2.flush()
        return WriteBackReport(requests=first.requests + second.requests, updated=first.updated + second.updated,
                               ignored=first.ignored + second.ignored, failed=first.failed + second.failed)
