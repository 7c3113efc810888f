"""Reviewed plans: `plan --out PLAN` writes what a change board approves; `apply --plan PLAN` does exactly that.

A plan file holds every finding with its decision (outcome, the assessed pre-state, the intended changes) and a
digest over both. Applying it acts only on the findings the plan would change, and for each one first re-reads the
resource: a pre-state or an intended change that differs from the plan's means the resource changed since the
review, and that finding is `skipped: changed since the plan` instead of acted on. A file whose digest does not
match (edited after it was written) is refused as a whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.finding import Finding, FindingError
from functions.model import Result
from functions.remediators.base import Assessment, Remediator

KIND = "cspm-remediate plan"
VERSION = 1


class PlanError(ValueError):
    """The plan file cannot be used (not a plan, edited, unreadable). The message is one line."""


def digest(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything but the digest itself."""
    canonical = json.dumps({k: v for k, v in body.items() if k != "digest"}, sort_keys=True, default=str,
                           separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def plan_document(findings: Sequence[Finding], results: Sequence[Result], run_id: str) -> dict[str, Any]:
    """The plan file's content: one item per finding (the finding as read, the plan's decision)."""
    body: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "items": [{"finding": f.to_dict(), "decision": r.to_dict()} for f, r in zip(findings, results, strict=True)],
    }
    body["digest"] = digest(body)
    plan: dict[str, Any] = _plain(body)
    return plan


def write_plan(path: str, findings: Sequence[Finding], results: Sequence[Result], run_id: str) -> str:
    """Written to a temporary file next to `path`, then renamed: a plan file is never half written. Returns the
    digest."""
    document = plan_document(findings, results, run_id)
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, ensure_ascii=False)
            out.write("\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return str(document["digest"])


def is_plan(payload: Any) -> bool:
    return isinstance(payload, Mapping) and payload.get("kind") == KIND


class Plan:
    """A verified plan: `findings` to apply (those the plan would change) and the decision of each."""

    def __init__(self, payload: Any, name: str) -> None:
        if not is_plan(payload):
            raise PlanError(f"{name}: not a plan file (write one with: cspm-remediate plan FILE --out {name})")
        if payload.get("version") != VERSION:
            raise PlanError(f"{name}: plan version {payload.get('version')!r} is not supported (expected {VERSION})")
        if payload.get("digest") != digest(payload):
            raise PlanError(f"{name}: the plan was altered after it was written (digest mismatch); write it again "
                            "with plan --out and review it")
        self.run_id: str = payload.get("run_id") or ""
        self.digest: str = payload["digest"]
        self.findings: list[Finding] = []
        self.decisions: dict[str, Mapping[str, Any]] = {}
        for index, item in enumerate(payload.get("items") or []):
            decision = item.get("decision") or {}
            if decision.get("outcome") != "planned":
                continue
            try:
                finding = Finding.from_dict(item["finding"])
            except (FindingError, TypeError, KeyError) as error:
                raise PlanError(f"{name}: item #{index}: {error}") from None
            self.findings.append(finding)
            self.decisions[finding.finding_id] = decision

    def changed_since(self, finding: Finding, remediator: Remediator, assessment: Assessment) -> str | None:
        """Why a finding must not be acted on: its live pre-state or the change to make is not the plan's."""
        decision = self.decisions.get(finding.finding_id)
        if decision is None:
            return "not in the plan"
        planned_state, live_state = _plain(decision.get("pre_state") or {}), _plain(assessment.pre_state or {})
        if planned_state != live_state:
            return "changed since the plan: " + _state_difference(remediator, planned_state, live_state)
        if list(decision.get("changes") or []) != list(assessment.changes):
            return "changed since the plan: the change to make is now " + "; ".join(assessment.changes)
        return None


def _state_difference(remediator: Remediator, planned: Mapping[str, Any], live: Mapping[str, Any]) -> str:
    before, now = remediator.state_fields(planned), remediator.state_fields(live)
    if before is not None and now is not None:
        names = [n for n in sorted({*before, *now}) if before.get(n) != now.get(n)]
        if names:
            return "; ".join(f"{n} was {_show(before.get(n))} at plan time, is {_show(now.get(n))} now" for n in names)
    keys = [k for k in sorted({*planned, *live}) if planned.get(k) != live.get(k)]
    return "its " + ", ".join(keys) + (" differs" if len(keys) == 1 else " differ") + " from the planned pre-state"


def _show(value: Any) -> str:
    return "not set" if value is None else value if isinstance(value, str) else json.dumps(value)


def _plain(value: Any) -> Any:
    """As it reads back from JSON (dates → strings, tuples → lists), so a plan compares with a live state."""
    return json.loads(json.dumps(value, default=str))

