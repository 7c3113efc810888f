"""Rollback that cannot do harm: put back what a run changed, only where it still holds what the run set.

The ledger holds each action's result with the pre_state its remediator recorded and, for remediators that
declare their fields (Remediator.state_fields), the post_state: each field the run changed and the value it set.
For those, rollback reads the live state first and, field by field:

* still what the run set → put back the value from before the run (`restore_fields` touches nothing else);
* changed since the run → left as is and reported (`skipped`: `MinimumPasswordLength changed since the run (now
  20, the run set 14): left as is`), unless `force`;
* already back to the value from before → nothing to do.

Remediators without fields put back their whole pre_state with `restore()`, as before. Dry-run first: without
`apply`, rollback reads and says what it would restore (`MinimumPasswordLength: 14 -> 8`). Irreversible actions
are refused with the reason. Rows of a failed apply that recorded what it `created` are undone too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.finding import Finding
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.engine.config import Config
from functions.engine.failures import aws_error_code
from functions.engine.sessions import AssumedSessions, TargetUnavailable
from functions.model import Result
from functions.remediators.base import RemediationError, Remediator

log = logging.getLogger(__name__)

# restored: something was put back; unchanged: nothing needed to be (already as before the run); skipped: what the
# run set was changed since, so it is left as is (the reason names the field and its value now; --force restores).
ROLLBACK_OUTCOMES = ("restored", "planned", "unchanged", "skipped", "refused", "failed")
FORCE_HINT = "--force puts it back"


@dataclass
class RollbackResult:
    finding_id: str
    rule_id: str
    account_id: str
    region: str
    resource_id: str
    outcome: str  # one of ROLLBACK_OUTCOMES
    reason: str
    restored: list[str]  # what was put back (or, at dry-run, would be)
    left: list[str] = field(default_factory=list)  # fields changed since the run, left as they are
    fields: dict[str, Any] = field(default_factory=dict)  # field → the value put back (field-level rollbacks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def undoable(row: Mapping[str, Any]) -> bool:
    """A result rollback acts on: a remediation, or a failed apply that recorded what it created."""
    if row.get("stage") == "rollback":
        return False
    return row.get("outcome") == "remediated" or bool((row.get("pre_state") or {}).get("created"))


def rollback(
    rows: Iterable[Mapping[str, Any]],
    sessions: AssumedSessions,
    apply: bool = False,
    finding_id: str | None = None,
    config: Config | None = None,
    catalog: Mapping[str, CatalogEntry] = CATALOG,
    force: bool = False,
) -> Iterator[tuple[Mapping[str, Any], RollbackResult]]:
    """(row, RollbackResult) per action of the run (rows from Ledger.results), newest first, so changes are undone
    in the reverse order they were made."""
    config = config or Config()
    actions = [r for r in rows if undoable(r) and (not finding_id or r["finding_id"] == finding_id)]
    for row in reversed(actions):
        yield row, _rollback_one(row, sessions, apply, config, catalog, force)


def _rollback_one(
    row: Mapping[str, Any], sessions: AssumedSessions, apply: bool, config: Config,
    catalog: Mapping[str, CatalogEntry], force: bool,
) -> RollbackResult:
    def result(outcome: str, reason: str, restored: list[str] | None = None, **extra: Any) -> RollbackResult:
        return RollbackResult(row["finding_id"], row["rule_id"], row["account_id"], row["region"],
                              row["resource_id"], outcome, reason, restored or [], **extra)

    entry = catalog.get(row["rule_id"])
    if entry is None:
        return result("refused", f"no remediator for rule {row['rule_id']} in this version")
    if not entry.remediator.reversible:
        return result("refused", f"{entry.remediator.__name__} is not reversible: {row.get('reason', '')}".strip())
    pre_state = row.get("pre_state")
    if not pre_state:
        return result("refused", "no pre-state was recorded for this action")
    remediator = entry.remediator(config.rule(entry.rule_id).params)
    post_state, before = row.get("post_state"), remediator.state_fields(pre_state)
    if post_state is None or before is None:
        return _restore_whole(row, remediator, pre_state, sessions, apply, result)
    if not post_state:
        return result("unchanged", "nothing to restore: the run changed no setting")

    finding = _finding_of(row)
    try:
        target = sessions.target(finding.account_id, finding.region, finding.partition)
        live = remediator.state_fields(remediator.assess(target, finding).pre_state) or {}
    except TargetUnavailable as unavailable:
        return result("failed", unavailable.reason)
    except (RemediationError, ClientError, BotoCoreError) as error:
        return result("failed", "cannot read the current state: " + _error(error))

    to_restore: dict[str, Any] = {}
    left: list[str] = []
    already: list[str] = []
    for name, set_value in post_state.items():
        now, previous = live.get(name), before.get(name)
        if now == previous:
            already.append(f"{name} is {_show(previous)} as before the run")
        elif now == set_value or force:
            to_restore[name] = previous
        else:
            left.append(f"{name} changed since the run (now {_show(now)}, the run set {_show(set_value)}): left as is")
    steps = [f"{name}: {_show(live.get(name))} -> {_show(value)}" for name, value in to_restore.items()]
    if not to_restore:
        if left:
            return result("skipped", "; ".join([*left, *already, FORCE_HINT]), left=left)
        return result("unchanged", "; ".join(already) or "nothing to restore")
    if not apply:
        return result("planned", "dry-run: would restore " + "; ".join(steps + left + already), steps, left=left,
                      fields=to_restore)
    try:
        done = remediator.restore_fields(target, finding, pre_state, to_restore)
    except (RemediationError, ClientError, BotoCoreError) as error:
        return result("failed", "restore failed: " + _error(error), left=left)
    log.info("restored %s %s in %s: %s", row["rule_id"], row["resource_id"], row["account_id"], "; ".join(steps))
    return result("restored", "; ".join(steps + left + already), done or steps, left=left, fields=to_restore)


def _restore_whole(row: Mapping[str, Any], remediator: Remediator, pre_state: Mapping[str, Any],
                   sessions: AssumedSessions, apply: bool, result: Callable[..., RollbackResult]) -> RollbackResult:
    """A remediator without declared fields (security group rules, policies…): its restore puts back exactly what
    it removed and removes what it added."""
    if not apply:
        undo = "; ".join(str(change) for change in row.get("changes") or [])
        return result("planned", "dry-run: would undo " + (f"the run's change ({undo})" if undo else "the run")
                      + " by putting back the recorded pre-state " + _brief(pre_state))
    finding = _finding_of(row)
    try:
        target = sessions.target(finding.account_id, finding.region, finding.partition)
        done = remediator.restore(target, finding, pre_state)
    except TargetUnavailable as unavailable:
        return result("failed", unavailable.reason)
    except (RemediationError, ClientError, BotoCoreError) as error:
        return result("failed", "restore failed: " + _error(error))
    log.info("restored %s %s in %s: %s", row["rule_id"], row["resource_id"], row["account_id"],
             "; ".join(done) or "nothing")
    if not done:
        return result("unchanged", "nothing to restore")
    return result("restored", "; ".join(done), done)


def ledger_result(row: Mapping[str, Any], rolled: RollbackResult, run_id: str) -> Result:
    """The rollback's own result for the ledger (stage `rollback`): `history` lists the rollback as a run, `show`
    says what was put back, and the pre_state is the row's (what the resource is back to)."""
    return Result(
        finding_id=rolled.finding_id, source=row.get("source") or "ledger", rule_id=rolled.rule_id,
        account_id=rolled.account_id, region=rolled.region, resource_type=row.get("resource_type") or "",
        resource_id=rolled.resource_id, outcome=rolled.outcome, reason=rolled.reason, mode="enforce",
        changes=list(rolled.restored), pre_state=row.get("pre_state"), run_id=run_id,
        resource_arn=row.get("resource_arn"), last_observed=row.get("last_observed"),
        product_arn=row.get("product_arn"), stage="rollback", post_state=rolled.fields or None,
    )


def _show(value: Any) -> str:
    return "not set" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _brief(pre_state: Mapping[str, Any], limit: int = 300) -> str:
    text = json.dumps(dict(pre_state), default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(error: Exception) -> str:
    code = aws_error_code(error)
    return f"{code + ': ' if code else ''}{error}"


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
