"""Security Hub write-back: each finding says what the remediation did to it (BatchUpdateFindings).

Policy, in one table (``update_for``): an action started → workflow NOTIFIED; a verified fix → RESOLVED; every
other outcome → a note only, the workflow status is left to Security Hub and people. Findings without a
ProductArn (other sources) are ignored.

Calls: updates with the same (status, note) share one request of up to 100 identifiers, paced to at most
10 requests/s (the API quota). A throttled or failed request is retried by the client's standard retry mode
(CLIENT_CONFIG), not again here. A request that succeeds can still leave some identifiers unprocessed: those
with a transient reason, and only those, are sent again with jittered backoff, a bounded number of times;
what never got through is in the report.

Use a client in the region the findings were read from (the aggregation region for an org-wide view).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.model import Result
from functions.report import first_sentence

log = logging.getLogger(__name__)

UPDATED_BY = "cspm-remediation"
NOTE_MAX_CHARS = 512
BATCH_MAX = 100
# UnprocessedFindings error codes worth another try; the others (FindingNotFound, InvalidInput, ...) are final.
RETRYABLE_UNPROCESSED = frozenset({"ConcurrentUpdateError", "InternalFailure"})

_STATUS = {"started": "NOTIFIED", "remediated": "RESOLVED"}
_LABEL = {
    "remediated": "Remediated",
    "started": "Remediation started",
    "failed": "Remediation failed",
    "notified": "Needs manual action",
    "planned": "Planned",
    "skipped": "Not remediated",
    "excluded": "Excluded from remediation",
}
# When one finding gets two results before a flush (a duplicate delivery), the weightier one is written.
_WEIGHT = {o: i for i, o in enumerate(("skipped", "excluded", "noop", "planned", "notified", "failed", "started",
                                       "remediated"))}
_SECRETISH = re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key)\b(\s*[=:]\s*)\S+")
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


@dataclass(frozen=True)
class Update:
    """One BatchUpdateFindings body minus the identifiers: findings with equal Updates share a request."""

    status: str | None
    note: str

    def request(self, identifiers: Sequence[tuple[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "FindingIdentifiers": [{"Id": i, "ProductArn": arn} for i, arn in identifiers],
            "Note": {"Text": self.note, "UpdatedBy": UPDATED_BY},
        }
        if self.status:
            body["Workflow"] = {"Status": self.status}
        return body


def update_for(result: Result) -> Update:
    """The write-back policy for one result (pure)."""
    if result.outcome == "noop":
        return Update(None, note_text("Already compliant", "no change made", result.run_id))
    detail = "; ".join(result.changes) if result.outcome == "remediated" and result.changes else result.reason
    label = _LABEL.get(result.outcome, result.outcome.capitalize())
    return Update(_STATUS.get(result.outcome), note_text(label, detail, result.run_id))


def note_text(label: str, detail: str, run_id: str = "") -> str:
    """`label: detail [run id]` on one line, secret-looking values masked, cut to the 512-character limit
    inside the detail so the label and the run id survive."""
    detail = _ACCESS_KEY.sub("[redacted]", _SECRETISH.sub(r"\1\2[redacted]", " ".join(detail.split())))
    head, tail = f"{label}: ", f" [{UPDATED_BY} run {run_id}]" if run_id else ""
    room = NOTE_MAX_CHARS - len(head) - len(tail)
    if len(detail) > room:
        detail = detail[: max(0, room - 1)].rstrip() + "…"
    return (head + (detail or "-") + tail)[:NOTE_MAX_CHARS]


@dataclass(frozen=True)
class Unwritten:
    """A finding whose update never got through."""

    finding_id: str
    product_arn: str
    error_code: str
    message: str


@dataclass
class WriteBackReport:
    requests: int = 0
    updated: int = 0
    ignored: int = 0
    failed: list[Unwritten] = field(default_factory=list)


class SecurityHubWriteBack:
    """Collects updates with ``add`` and sends them with ``flush``; not thread-safe (one per consumer)."""

    def __init__(
        self,
        client: Any,
        max_attempts: int = 4,  # requests per group: the first, then re-sends of its unprocessed identifiers
        max_wait: float = 10.0,
        min_interval: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max_wait
        self.min_interval = min_interval
        self._sleep = sleep
        self._clock = clock
        self._pending: dict[tuple[str, str], tuple[int, Update]] = {}
        self._ignored = 0
        self._last_call: float | None = None

    def add(self, finding: Finding, result: Result) -> bool:
        """Queue the update for one finding; False (and counted as ignored) when it is not Security Hub's."""
        if result.finding_id != finding.finding_id:
            raise ValueError(f"result of {result.finding_id} given for finding {finding.finding_id}")
        if not finding.product_arn:
            self._ignored += 1
            return False
        identifier = (finding.finding_id, finding.product_arn)
        weight = _WEIGHT.get(result.outcome, 0)
        queued = self._pending.get(identifier)
        if queued is None or weight >= queued[0]:
            self._pending[identifier] = (weight, update_for(result))
        return True

    def flush(self) -> WriteBackReport:
        """Send everything queued; the report says how many were updated and which never were."""
        groups: dict[Update, list[tuple[str, str]]] = defaultdict(list)
        for identifier, (_, update) in self._pending.items():
            groups[update].append(identifier)
        report = WriteBackReport(ignored=self._ignored)
        self._pending, self._ignored = {}, 0
        for update, identifiers in groups.items():
            for start in range(0, len(identifiers), BATCH_MAX):
                self._send(update, identifiers[start : start + BATCH_MAX], report)
        if report.failed:
            log.warning("Security Hub write-back: %d finding(s) not updated: %s", len(report.failed),
                        failure_causes(report.failed))
        return report

    def _send(self, update: Update, identifiers: list[tuple[str, str]], report: WriteBackReport) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._call(update.request(identifiers))
            except (ClientError, BotoCoreError) as error:
                code = aws_error_code(error) or type(error).__name__
                report.failed += [Unwritten(i, arn, code, str(error)) for i, arn in identifiers]
                return
            finally:
                report.requests += 1
            report.updated += len(response.get("ProcessedFindings", []))
            retry: list[tuple[str, str]] = []
            for item in response.get("UnprocessedFindings", []):
                ident, code = item["FindingIdentifier"], item["ErrorCode"]
                if code in RETRYABLE_UNPROCESSED and attempt < self.max_attempts:
                    retry.append((ident["Id"], ident["ProductArn"]))
                else:
                    report.failed.append(Unwritten(ident["Id"], ident["ProductArn"], code, item["ErrorMessage"]))
            if not retry:
                return
            identifiers = retry
            self._sleep(random.uniform(0, min(self.max_wait, 0.5 * 2**attempt)))

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request, paced to the quota (throttling and transient errors are retried by the client)."""
        if self._last_call is not None:
            wait = self._last_call + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()
        response: dict[str, Any] = self._client.batch_update_findings(**request)
        return response



def failure_causes(failed: list[Unwritten]) -> str:
    """Why write-backs failed, one clause per error code: "12 AccessDeniedException (User: ... is not
    authorized ...)"; the messages are cut to their first sentence."""
    by_code: dict[str, list[Unwritten]] = defaultdict(list)
    for item in failed:
        by_code[item.error_code].append(item)
    return "; ".join(f"{len(items)} {code} ({first_sentence(items[0].message, 160)})"
                     for code, items in sorted(by_code.items(), key=lambda kv: -len(kv[1])))
