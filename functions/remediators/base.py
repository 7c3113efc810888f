"""The remediator contract: self-describing, check-before-write, verifiable.

Each remediator declares, next to its code, the rules it handles, the IAM actions it calls, whether its change
is reversible and (optionally) the AWS-owned SSM runbook that does the same job. The catalog, the target-role
policy, the CloudFormation toggles and the README table are all derived from these declarations.

Life of one finding in a remediator:
    assess(target, finding)  → Assessment   read-only; compliant → the engine reports `noop`
    apply(target, finding, assessment)      the minimal write that makes the resource compliant
    assess(...) again                       verification; the engine reports `remediated` only if compliant
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.finding import Finding
from functions.model import Target

MODES = ("off", "notify", "dry-run", "enforce")
# What every runbook's AutomationAssumeRole needs besides the runbook's own calls (per AWS's runbook reference).
AUTOMATION_CALLS = ("ssm:StartAutomationExecution", "ssm:GetAutomationExecution")
EXECUTORS = ("boto3", "ssm")


@dataclass(frozen=True)
class Rule:
    """One rule a remediator handles.

    disruptive: the action can cut traffic, lose data or cost money; such a rule ignores the global mode
    and acts only when its own config entry says `enforce` (DESIGN §5).
    """

    rule_id: str
    title: str
    cis: tuple[str, ...] = ()
    default_mode: str = "dry-run"
    disruptive: bool = False

    def __post_init__(self) -> None:
        if self.default_mode not in MODES:
            raise ValueError(f"{self.rule_id}: unknown default mode {self.default_mode!r}")


@dataclass(frozen=True)
class Runbook:
    """An AWS-owned SSM Automation document that performs the same remediation.

    parameters(finding, automation_role_arn) returns the document's input parameters (SSM wants lists of
    strings). permissions are what the automation role needs in the target account.
    """

    document: str
    parameters: Callable[[Finding, str], dict[str, list[str]]]
    permissions: tuple[str, ...] = ()


@dataclass
class Assessment:
    """The result of reading the resource's current state.

    changes: human-readable list of what apply would do (empty when compliant).
    pre_state: the values apply would overwrite, recorded for rollback.
    tags: the resource's live tags when the read returned them (for exclusion by tag).
    context: whatever apply needs from the read, so it never reads twice.
    disruptive: why this particular change is disruptive although its rule is not (no narrow change exists: all
        traffic loses the protocols a security group cannot keep, …); non-empty → the engine acts only when the
        rule's own config entry says `enforce`, as for a disruptive rule, and the plan says why.
    """

    compliant: bool
    changes: list[str] = field(default_factory=list)
    pre_state: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    disruptive: str = ""


class RemediationError(Exception):
    """The remediator cannot act on this finding (resource gone, unsupported shape...). Message is the reason."""


class Remediator(ABC):
    rules: ClassVar[tuple[Rule, ...]]
    resource_types: ClassVar[tuple[str, ...]]
    permissions: ClassVar[tuple[str, ...]]
    reversible: ClassVar[bool]
    runbook: ClassVar[Runbook | None] = None
    # False when success is a new resource and the finding's own resource stays non-compliant by design
    # (RDS.3 restores an encrypted copy): the engine then reports `started`, never a failed verification.
    verifies_in_place: ClassVar[bool] = True
    # Tunables a user may override per rule in the config file (`rules.<id>.params`), with their defaults.
    default_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        unknown = set(params or {}) - set(self.default_params)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}")
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}

    @abstractmethod
    def assess(self, target: Target, finding: Finding) -> Assessment:
        """Read the current state. Must not write."""

    @abstractmethod
    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        """Make the resource compliant, using assessment.context; raise RemediationError to refuse."""

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Put back what apply changed, from the pre_state it recorded (rollback). Returns what was done.

        Reversible remediators override this; the default refuses, which is right for irreversible ones.
        """
        raise RemediationError(f"{type(self).__name__} is not reversible: nothing to restore")

    def notify_message(self, finding: Finding) -> str:
        """What a person should do, for rules in notify mode."""
        return (
            f"{finding.rule_id} on {finding.resource_type} {finding.resource_id} in account "
            f"{finding.account_id} ({finding.region}): {finding.title}"
        )

    @classmethod
    def executors(cls) -> tuple[str, ...]:
        return ("boto3", "ssm") if cls.runbook else ("boto3",)


class NotifyOnlyRemediator(Remediator):
    """Rules that need a human (root MFA, MFA delete, …): the engine reports `notified` with `guidance`.

    Subclasses declare rules with default_mode="notify" and a `guidance` per rule id: what to do, where, and
    the console or CLI step. They never read or write AWS state.
    """

    resource_types: ClassVar[tuple[str, ...]] = ("AwsAccount",)
    permissions: ClassVar[tuple[str, ...]] = ()
    reversible: ClassVar[bool] = False
    guidance: ClassVar[dict[str, str]] = {}

    def assess(self, target: Target, finding: Finding) -> Assessment:
        raise RemediationError(f"{finding.rule_id} needs a person: it is notify-only")

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        raise RemediationError(f"{finding.rule_id} needs a person: it is notify-only")

    def notify_message(self, finding: Finding) -> str:
        steps = self.guidance.get(finding.rule_id, "")
        where = f"account {finding.account_id}" + (f" ({finding.region})" if finding.region != "global" else "")
        if finding.resource_id != finding.account_id:
            where = f"{finding.resource_id} in {where}"
        return f"{finding.rule_id} — {finding.title} — {where}. {steps}".strip()
