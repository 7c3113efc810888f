"""Lambda entry point for CloudTrail management events ("AWS API Call via CloudTrail" on EventBridge, issue #16).

A member account's EventBridge forwards the watched calls (connectors/cloudtrail_events.py) to the security
account's default bus, whose rule invokes this function. Each event becomes findings to re-check
(connectors/cloudtrail.py) that go through the same screening as a scheduled pull (rule modes, exclusions,
duplicates, notify-only) and into the same work queue; the remediate function then assesses each resource, so an
event that did not break the control ends `noop`, and the breaker, ledger claims and write-back apply as for any
finding.

Events of one hour share a run id (`<hour>-cloudtrail`), so the circuit breaker's per-run limits bound what a burst
of calls (a script opening 500 security groups) can trigger, as they bound one scheduled run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from connectors import cloudtrail
from connectors.finding import FindingError
from functions.aws_lambda.handlers import _enqueue_screened, runtime

log = logging.getLogger("cspm_remediate.cloudtrail_events")
log.setLevel(logging.INFO)


def events_run_id(now: float | None = None) -> str:
    """The run an event's work belongs to: one per UTC hour, sortable with the scheduled runs' ids."""
    return time.strftime("%Y%m%dT%H0000Z", time.gmtime(now)) + "-cloudtrail"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One EventBridge event → work items. A malformed event is logged and dropped (retrying cannot fix it)."""
    rt = runtime()
    try:  # our roles: the same REMEDIATION_* variables the runtime's settings read, plus CSPM_EVENTS_IGNORE_ROLES
        translation = cloudtrail.translate(event, cloudtrail.own_role_names())
    except FindingError as error:
        log.error("event %s rejected: %s", _event_id(event), error)
        return {"enqueued": 0, "rejected": 1}
    if translation.ignored:
        log.info("event %s ignored: %s", translation.event, translation.ignored)
        return {"event": translation.event, "ignored": translation.ignored, "enqueued": 0}
    run_id = events_run_id()
    summary = _enqueue_screened(rt, run_id, translation.findings, enforce=False)
    report = {"event": translation.event, "run_id": run_id, "findings": len(translation.findings), **summary}
    log.info("event %s", report)
    return report


def _event_id(event: Any) -> str:
    return str(event.get("id"))[:64] if isinstance(event, dict) else "(not an object)"
