"""SSM Automation executor: start an AWS-owned runbook in the target account, and read its outcome later.

The Lambda never sleeps waiting for an execution; the status is checked later (a delayed SQS message in AWS,
the `status` command locally). The runbook runs with AutomationAssumeRole, a role in the target account
trusted by ssm.amazonaws.com.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.finding import Finding
from functions.model import Target
from functions.remediators.base import Runbook

DEFAULT_AUTOMATION_ROLE_NAME = "CSPMRemediationAutomation"

# AutomationExecutionStatus values that are final, and the engine outcome each means.
TERMINAL_STATUSES = {
    "Success": "remediated",
    "CompletedWithSuccess": "remediated",
    "Failed": "failed",
    "TimedOut": "failed",
    "Cancelled": "failed",
    "Rejected": "failed",
    "CompletedWithFailure": "failed",
    "ChangeCalendarOverrideRejected": "failed",
    "Exited": "failed",
}

# Namespace for deterministic ClientTokens: one run never starts the same finding's runbook twice.
_TOKEN_NAMESPACE = uuid.UUID("6f2a3f64-94d4-4b8e-9a1c-3f1d8f0c2b71")


def automation_role_arn(target: Target, role_name: str) -> str:
    return f"arn:{target.partition}:iam::{target.account_id}:role/{role_name}"


def client_token(run_id: str, finding_id: str) -> str:
    """Deterministic idempotency token (SSM requires UUID format): one start per finding per run, whichever
    worker gets there."""
    return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{run_id}\x1f{finding_id}"))


def start_runbook(
    target: Target, runbook: Runbook, finding: Finding, role_name: str, run_id: str,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Start the runbook for this finding with the rule's params; returns the AutomationExecutionId."""
    parameters = runbook.arguments(finding, automation_role_arn(target, role_name), params or {})
    response = target.client("ssm").start_automation_execution(
        DocumentName=runbook.document,
        Parameters=parameters,
        ClientToken=client_token(run_id, finding.finding_id),
        Tags=[{"Key": "cspm-remediation:rule", "Value": finding.rule_id}],
    )
    execution_id: str = response["AutomationExecutionId"]
    return execution_id


@dataclass(frozen=True)
class ExecutionStatus:
    execution_id: str
    status: str
    outcome: str | None  # None while the execution is still running
    reason: str


def execution_status(target: Target, execution_id: str) -> ExecutionStatus:
    execution = target.client("ssm").get_automation_execution(AutomationExecutionId=execution_id)[
        "AutomationExecution"
    ]
    status = execution.get("AutomationExecutionStatus", "Unknown")
    outcome = TERMINAL_STATUSES.get(status)
    reason = f"SSM execution {execution_id} {status}"
    if execution.get("FailureMessage"):
        reason += f": {execution['FailureMessage']}"
    return ExecutionStatus(execution_id, status, outcome, reason)
