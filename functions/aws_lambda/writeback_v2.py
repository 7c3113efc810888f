"""Security Hub write-back for OCSF findings (BatchUpdateFindingsV2), and the dispatcher the handlers use.

Same policy as the ASFF path (functions/aws_lambda/writeback.py `update_for`): an action started → In Progress,
a verified fix → Resolved, anything else → a comment only. The V2 request names findings by `metadata.uid`
(MetadataUids, at most 100 per request), sets `StatusId` (OCSF: 2 In Progress, 4 Resolved) and `Comment`
(at most 512 characters, the note text). Unprocessed identifiers with a transient error code
(ConflictException, InternalServerException) are sent again a bounded number of times; the rest are reported.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from connectors.securityhub_v2 import SOURCE as V2_SOURCE
from connectors.securityhub_v2 import metadata_uid
from functions.aws_lambda.writeback import (
    _WEIGHT,
    BATCH_MAX,
    SecurityHubWriteBack,
    Unwritten,
    Update,
    WriteBackReport,
    failure_causes,
    update_for,
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


class SecurityHubV2WriteBack:
    """Collects updates of securityhub-v2 findings with ``add``, sends them with ``flush``; one per consumer."""

    def __init__(self, client: Any, max_attempts: int = 4, max_wait: float = 10.0, min_interval: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.max_attempts = max(1, max_attempts)
        self.max_wait, self.min_interval = max_wait, min_interval
        self._sleep, self._clock = sleep, clock
        self._pending: dict[str, tuple[int, Update, str]] = {}  # metadata uid → (weight, update, finding id)
        self._ignored = 0
        self._last_call: float | None = None

    def add(self, finding: Finding, result: Result) -> bool:
        if result.finding_id != finding.finding_id:
            raise ValueError(f"result of {result.finding_id} given for finding {finding.finding_id}")
        uid = metadata_uid(finding) if finding.source == V2_SOURCE else None
        if not uid:
            self._ignored += 1
            return False
        weight = _WEIGHT.get(result.outcome, 0)
        queued = self._pending.get(uid)
        if queued is None or weight >= queued[0]:
            self._pending[uid] = (weight, update_for(result), finding.finding_id)
        return True

    def flush(self) -> WriteBackReport:
        groups: dict[Update, list[str]] = defaultdict(list)
        ids = {uid: finding_id for uid, (_, _, finding_id) in self._pending.items()}
        for uid, (_, update, _) in self._pending.items():
            groups[update].append(uid)
        report = WriteBackReport(ignored=self._ignored)
        self._pending, self._ignored = {}, 0
        for update, uids in groups.items():
            for start in range(0, len(uids), BATCH_MAX):
                self._send(update, uids[start : start + BATCH_MAX], ids, report)
        if report.failed:
            log.warning("Security Hub (OCSF) write-back: %d finding(s) not updated: %s", len(report.failed),
                        failure_causes(report.failed))
        return report

    def _send(self, update: Update, uids: list[str], ids: dict[str, str], report: WriteBackReport) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._call(request_v2(update, uids))
            except (ClientError, BotoCoreError) as error:
                code = aws_error_code(error) or type(error).__name__
                report.failed += [Unwritten(ids.get(u, u), u, code, str(error)) for u in uids]
                return
            finally:
                report.requests += 1
            report.updated += len(response.get("ProcessedFindings", []))
            retry: list[str] = []
            for item in response.get("UnprocessedFindings", []):
                uid, code = item.get("MetadataUid", ""), item.get("ErrorCode", "")
                if code in RETRYABLE_UNPROCESSED and attempt < self.max_attempts:
                    retry.append(uid)
                else:
                    report.failed.append(Unwritten(ids.get(uid, uid), uid, code, item.get("ErrorMessage", "")))
            if not retry:
                return
            uids = retry
            self._sleep(random.uniform(0, min(self.max_wait, 0.5 * 2**attempt)))

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request, paced (throttling and transient errors are retried by the client's standard mode)."""
        if self._last_call is not None:
            wait = self._last_call + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()
        return self._client.batch_update_findings_v2(**request)


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
