"""Rollback: restore the recorded pre-state of a run's reversible actions (issue: never lose track of what
was changed). Dry-run first: without `apply`, it only says what it would restore.

The ledger holds each action's result with the pre_state its remediator recorded; the remediator's own
`restore()` puts it back. Irreversible actions are refused with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.backoff import aws_error_code
from connectors.finding import Finding
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.engine.config import Config
from functions.engine.sessions import AssumedSessions, TargetUnavailable
from functions.remediators.base import RemediationError

log = logging.getLogger(__name__)

ROLLBACK_OUTCOMES = ("restored", "planned", "refused", "failed")


@dataclass
class RollbackResult:
    finding_id: str
    rule_id: str
    account_id: str
    region: str
    resource_id: str
    outcome: str  # one of ROLLBACK_OUTCOMES
    reason: str
    restored: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollback(
    rows: Iterable[Mapping[str, Any]],
    sessions: AssumedSessions,
    apply: bool = False,
    finding_id: str | None = None,
    config: Config | None = None,
    catalog: Mapping[str, CatalogEntry] = CATALOG,
) -> Iterator[RollbackResult]:
    """One RollbackResult per action of the run (rows from Ledger.results), newest first, so changes are
    undone in the reverse order they were made."""
    config = config or Config()
    actions = [
        r for r in rows if r.get("outcome") == "remediated" and (not finding_id or r["finding_id"] == finding_id)
    ]
    for row in reversed(actions):
        yield _rollback_one(row, sessions, apply, config, catalog)


def _rollback_one(
    row: Mapping[str, Any], sessions: AssumedSessions, apply: bool, config: Config,
    catalog: Mapping[str, CatalogEntry],
) -> RollbackResult:
    def result(outcome: str, reason: str, restored: list[str] | None = None) -> RollbackResult:
        return RollbackResult(row["finding_id"], row["rule_id"], row["account_id"], row["region"],
                              row["resource_id"], outcome, reason, restored or [])

    entry = catalog.get(row["rule_id"])
    if entry is None:
        return result("refused", f"no remediator for rule {row['rule_id']} in this version")
    if not entry.remediator.reversible:
        return result("refused", f"{entry.remediator.__name__} is not reversible: {row.get('reason', '')}".strip())
    pre_state = row.get("pre_state")
    if not pre_state:
        return result("refused", "no pre-state was recorded for this action")
    if not apply:
        return result("planned", "dry-run: would restore the recorded pre-state of: " + row.get("reason", ""))
    finding = _finding_of(row)
    try:
        target = sessions.target(finding.account_id, finding.region, finding.partition)
        restored = entry.remediator(config.rule(entry.rule_id).params).restore(target, finding, pre_state)
    except TargetUnavailable as unavailable:
        return result("failed", unavailable.reason)
    except (RemediationError, ClientError, BotoCoreError) as error:
        code = aws_error_code(error)
        return result("failed", f"restore failed: {code + ': ' if code else ''}{error}")
    log.info("restored %s %s in %s: %s", row["rule_id"], row["resource_id"], row["account_id"], restored)
    return result("restored", "; ".join(restored) or "restored", restored)


def _finding_of(row: Mapping[str, Any]) -> Finding:
    """The finding as far as a restore needs it (the ledger keeps results, not the original payload)."""
    return Finding(
        source=row.get("source") or "ledger",
        finding_id=row["finding_id"],
        rule_id=row["rule_id"],
        source_rule=row["rule_id"],
        account_id=row["account_id"],
        region=row["region"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        resource_arn=row.get("resource_arn"),
        severity="INFORMATIONAL",
        title=f"rollback of {row['rule_id']}",
        compliance_status="FAILED",
        workflow_status=None,
        record_state=None,
        last_observed=row.get("last_observed"),
        product_arn=row.get("product_arn"),
    )
