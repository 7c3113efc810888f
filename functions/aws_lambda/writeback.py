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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Result
from functions.report import first_sentence

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)  # how a write-back names a finding

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


class BatchWriteBack(Generic[K]):
    """What the ASFF and OCSF write-backs share: one pending update per finding (a duplicate delivery's weightier
    outcome wins), findings with equal updates in one request of up to BATCH_MAX identifiers, requests paced to
    the quota, identifiers reported unprocessed for a transient reason re-sent a bounded number of times.
    Subclasses say how a finding is named (`_key`), how a request is written and sent, and how an unprocessed
    entry reads. Not thread-safe (one per consumer)."""

    retryable: ClassVar[frozenset[str]]
    label: ClassVar[str]  # for the log line

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
        self._pending: dict[K, tuple[int, Update, str]] = {}  # key → (weight, update, finding id)
        self._ignored = 0
        self._last_call: float | None = None

    # -- what differs ---------------------------------------------------------------------------------------------
    def _key(self, finding: Finding) -> K | None:
        """How the API names this finding; None when it is not this write-back's to update."""
        raise NotImplementedError

    def _request(self, update: Update, keys: list[K]) -> dict[str, Any]:
        raise NotImplementedError

    def _call_api(self, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _unprocessed(self, item: dict[str, Any]) -> tuple[K, str, str]:
        """(key, error code, message) of one UnprocessedFindings entry."""
        raise NotImplementedError

    def _unwritten(self, key: K, finding_id: str, code: str, message: str) -> Unwritten:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------------------
    def add(self, finding: Finding, result: Result) -> bool:
        """Queue the update for one finding; False (and counted as ignored) when it is not this write-back's."""
        if result.finding_id != finding.finding_id:
            raise ValueError(f"result of {result.finding_id} given for finding {finding.finding_id}")
        key = self._key(finding)
        if key is None:
            self._ignored += 1
            return False
        weight = _WEIGHT.get(result.outcome, 0)
        queued = self._pending.get(key)
        if queued is None or weight >= queued[0]:
            self._pending[key] = (weight, update_for(result), finding.finding_id)
        return True

    def flush(self) -> WriteBackReport:
        """Send everything queued; the report says how many were updated and which never were."""
        groups: dict[Update, list[K]] = defaultdict(list)
        ids = {key: finding_id for key, (_, _, finding_id) in self._pending.items()}
        for key, (_, update, _) in self._pending.items():
            groups[update].append(key)
        report = WriteBackReport(ignored=self._ignored)
        self._pending, self._ignored = {}, 0
        for update, keys in groups.items():
            for start in range(0, len(keys), BATCH_MAX):
                self._send(update, keys[start : start + BATCH_MAX], ids, report)
        if report.failed:
            log.warning("%s: %d finding(s) not updated: %s", self.label, len(report.failed),
                        failure_causes(report.failed))
        return report

    def _send(self, update: Update, keys: list[K], ids: dict[K, str], report: WriteBackReport) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._call(self._request(update, keys))
            except (ClientError, BotoCoreError) as error:
                code = aws_error_code(error) or type(error).__name__
                report.failed += [self._unwritten(k, ids[k], code, str(error)) for k in keys]
                return
            finally:
                report.requests += 1
            report.updated += len(response.get("ProcessedFindings", []))
            retry: list[K] = []
            for item in response.get("UnprocessedFindings", []):
                key, code, message = self._unprocessed(item)
                if code in self.retryable and attempt < self.max_attempts:
                    retry.append(key)
                else:
                    report.failed.append(self._unwritten(key, ids.get(key, ""), code, message))
            if not retry:
                return
            keys = retry
            self._sleep(random.uniform(0, min(self.max_wait, 0.5 * 2**attempt)))

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request, paced to the quota (throttling and transient errors are retried by the client)."""
        if self._last_call is not None:
            wait = self._last_call + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()
        return self._call_api(request)


class SecurityHubWriteBack(BatchWriteBack[tuple[str, str]]):
    """ASFF findings, named by (Id, ProductArn): BatchUpdateFindings. Findings without a ProductArn are ignored."""

    retryable = RETRYABLE_UNPROCESSED
    label = "Security Hub write-back"

    def _key(self, finding: Finding) -> tuple[str, str] | None:
        return (finding.finding_id, finding.product_arn) if finding.product_arn else None

    def _request(self, update: Update, keys: list[tuple[str, str]]) -> dict[str, Any]:
        return update.request(keys)

    def _call_api(self, request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self._client.batch_update_findings(**request)
        return response

    def _unprocessed(self, item: dict[str, Any]) -> tuple[tuple[str, str], str, str]:
        ident = item["FindingIdentifier"]
        return (ident["Id"], ident["ProductArn"]), item["ErrorCode"], item["ErrorMessage"]

    def _unwritten(self, key: tuple[str, str], finding_id: str, code: str, message: str) -> Unwritten:
        return Unwritten(key[0], key[1], code, message)


def failure_causes(failed: list[Unwritten]) -> str:
    """Why write-backs failed, one clause per error code: "12 AccessDeniedException (User: ... is not
    authorized ...)"; the messages are cut to their first sentence."""
    by_code: dict[str, list[Unwritten]] = defaultdict(list)
    for item in failed:
        by_code[item.error_code].append(item)
    return "; ".join(f"{len(items)} {code} ({first_sentence(items[0].message, 160)})"
                     for code, items in sorted(by_code.items(), key=lambda kv: -len(kv[1])))
