"""The remediator contract: self-describing, check-before-write, verifiable.

Each remediator declares, next to its code, the rules it handles, the IAM actions it calls per stage (read for
assess, write for apply, restore for rollback), the schema of its tunable params, the roles it hands to AWS
services, whether its change is reversible and (optionally) the AWS-owned SSM runbook that does the same job. The
catalog, the target-account roles, the CloudFormation toggles and the README table are all derived from these
declarations.

Life of one finding in a remediator:
    assess(target, finding)  → Assessment   read-only; compliant → the engine reports `noop`
    apply(target, finding, assessment)      the minimal write that makes the resource compliant
    assess(...) again                       verification; the engine reports `remediated` only if compliant
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from connectors.finding import Finding
from functions.model import Target

MODES = ("off", "notify", "dry-run", "enforce")
# What every runbook's AutomationAssumeRole needs besides the runbook's own calls (per AWS's runbook reference);
# added once here (Runbook.role_permissions), never spread into each runbook's declaration.
AUTOMATION_CALLS = ("ssm:StartAutomationExecution", "ssm:GetAutomationExecution")
EXECUTORS = ("boto3", "ssm")
# Which calls a stage makes: `read` assess/verify (granted at dry-run), `write` apply (enforce only), `restore`
# rollback (a separate role, off by default).
PermissionStage = Literal["read", "write", "restore"]
STAGES: tuple[PermissionStage, ...] = ("read", "write", "restore")
# Name patterns for params_schema (IAM and S3's own rules).
ROLE_NAME = r"[\w+=,.@-]{1,64}"
BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"


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
    permissions: tuple[str, ...] = ()  # the runbook's own calls only

    @property
    def role_permissions(self) -> tuple[str, ...]:
        """What its AutomationAssumeRole needs: the runbook's calls and the automation calls every runbook makes."""
        return tuple(dict.fromkeys((*AUTOMATION_CALLS, *self.permissions)))


_JSON_TYPES: dict[type, str] = {bool: "true/false", int: "an integer", str: "a string", float: "a number"}


@dataclass(frozen=True)
class Param:
    """One tunable a user may override per rule (`rules.<id>.params` in the config file), checked at config load.

    kind: the JSON type (bool, int, str, float); None is accepted only when `nullable` (a None default implies it).
    """

    default: Any
    kind: type
    allowed: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # a str value must match it (re.fullmatch)
    nullable: bool = False
    description: str = ""

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        if value is None:
            return None if self.nullable or self.default is None else "must not be null"
        if self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool))
        if not ok:
            return f"must be {_JSON_TYPES.get(self.kind, self.kind.__name__)}, got {value!r}"
        if self.allowed is not None and value not in self.allowed:
            return f"must be one of {', '.join(map(str, self.allowed))}, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be ≥ {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be ≤ {self.maximum:g}, got {value!r}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"must match {self.pattern}, got {value!r}"
        return None


@dataclass(frozen=True)
class ServiceRole:
    """A role a remediator hands to an AWS service with iam:PassRole (VPC flow logs → CloudWatch Logs).

    Its name comes from the params (`name_param`), so a user who overrides it gets a PassRole for that name; the
    target template creates it when one of the remediator's rules may act. `statements` are what AWS documents the
    service needs, as (actions, resources): a resource may name params as `{param}` and use CloudFormation's
    `${AWS::Partition}` / `${AWS::AccountId}`.
    """

    logical_id: str
    name_param: str
    service: str
    statements: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

    def role_name(self, params: Mapping[str, Any]) -> str:
        return str(params[self.name_param])

    def params_used(self) -> tuple[str, ...]:
        """The params the role's name and resources depend on, in order of appearance."""
        found = [self.name_param]
        for _, resources in self.statements:
            for resource in resources:
                found.extend(re.findall(r"(?<!\$)\{(\w+)\}", resource))
        return tuple(dict.fromkeys(found))


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


@dataclass(frozen=True)
class Grant:
    """Narrows some of a remediator's declared actions: instead of `Resource: "*"`, these resources (a param as
    `{param}`, CloudFormation's `${AWS::Partition}` / `${AWS::AccountId}`), under these IAM conditions. The
    actions stay declared in their stage; the grant applies wherever they are granted (role or runbook role).

    Actions that can hand out more than the call itself must be narrowed this way (the template generator
    refuses them otherwise): iam:CreateServiceLinkedRole (iam:AWSServiceName), kms:CreateGrant
    (kms:GrantIsForAWSResource), and role or policy writes an attacker could point at anything.
    """

    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def params_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for r in self.resources for p in re.findall(r"(?<!\$)\{(\w+)\}", r)))


def live_tags(finding: Finding, read: Callable[[], Mapping[str, str]]) -> dict[str, str] | None:
    """The resource's live tags for the exclusion tag, read (one call, `read`) only when the finding carries none.

    Security Hub findings carry the resource's tags; Netskope's and Prowler's may not, and the exclusion tag must
    hold whatever the source. None (nothing read) leaves the decision to the finding's own tags.
    """
    return None if finding.tags else dict(read())


def tag_dict(items: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """[{Key, Value}, …] (or another pair of names: KMS uses TagKey/TagValue) as a dict; a dict passes through."""
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    return {str(item[key]): str(item.get(value, "")) for item in items or []}


class RemediationError(Exception):
    """The remediator cannot act on this finding (resource gone, unsupported shape...). Message is the reason."""


class Remediator(ABC):
    rules: ClassVar[tuple[Rule, ...]]
    resource_types: ClassVar[tuple[str, ...]]
    # IAM actions per stage: what assess (and the verification read) calls, what apply calls beyond those reads,
    # what restore calls. The target role grants reads at dry-run, adds writes at enforce; restore actions live in
    # the separate rollback role.
    read_permissions: ClassVar[tuple[str, ...]] = ()
    write_permissions: ClassVar[tuple[str, ...]] = ()
    restore_permissions: ClassVar[tuple[str, ...]] = ()
    # Derived (read, write, restore and iam:PassRole for the service roles): the `rules` listing's column.
    permissions: ClassVar[tuple[str, ...]] = ()
    service_roles: ClassVar[tuple[ServiceRole, ...]] = ()
    # Narrower resources / conditions for some of the actions above (see Grant).
    grants: ClassVar[tuple[Grant, ...]] = ()
    # True when the writes could grant arbitrary privileges whatever the condition (IAM.2 copies any policy to a
    # new group): the deployed roles then never hold them; such a rule enforces only from the command line with
    # an operator's own credentials.
    grants_privileges: ClassVar[bool] = False
    reversible: ClassVar[bool]
    runbook: ClassVar[Runbook | None] = None
    # False when success is a new resource and the finding's own resource stays non-compliant by design
    # (RDS.3 restores an encrypted copy): the engine then reports `started`, never a failed verification.
    verifies_in_place: ClassVar[bool] = True
    # Tunables a user may override per rule in the config file (`rules.<id>.params`): type, allowed values,
    # default. `default_params` is derived from it.
    params_schema: ClassVar[Mapping[str, Param]] = {}
    default_params: ClassVar[dict[str, Any]] = {}
    # The pre_state keys that each hold one setting (EbsEncryptionByDefault), compared one by one at rollback (see
    # state_fields); assess then reports them also when compliant.
    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "permissions" in cls.__dict__ or "default_params" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare read_/write_/restore_permissions and params_schema; "
                            "permissions and default_params are derived")
        if "iam:PassRole" in (*cls.read_permissions, *cls.write_permissions, *cls.restore_permissions):
            raise TypeError(f"{cls.__name__}: declare the role it passes in service_roles, not iam:PassRole")
        cls.default_params = {name: param.default for name, param in cls.params_schema.items()}
        passes = ("iam:PassRole",) if cls.service_roles else ()
        cls.permissions = tuple(dict.fromkeys(
            (*cls.read_permissions, *cls.write_permissions, *passes, *cls.restore_permissions)))
        for role in cls.service_roles:
            missing = [p for p in role.params_used() if p not in cls.params_schema]
            if missing:
                raise TypeError(f"{cls.__name__}: service role {role.logical_id} uses undeclared params {missing}")
        for grant in cls.grants:
            missing = [p for p in grant.params_used() if p not in cls.params_schema]
            if missing:
                raise TypeError(f"{cls.__name__}: a grant uses undeclared params {missing}")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        problem = self.params_problem(params or {})
        if problem:
            raise ValueError(f"{type(self).__name__}: {problem}")
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}

    @classmethod
    def params_problem(cls, params: Mapping[str, Any]) -> str | None:
        """The first thing wrong with a user's params for this remediator (one line), or None."""
        unknown = sorted(set(params) - set(cls.params_schema))
        if unknown:
            known = ", ".join(cls.params_schema) or "none"
            return f"unknown parameter(s) {', '.join(map(str, unknown))} (known: {known})"
        for name, value in params.items():
            problem = cls.params_schema[name].problem(value)
            if problem:
                return f"{name} {problem}"
        return None

    @classmethod
    def permissions_for(cls, stage: PermissionStage, params: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        """The IAM actions a stage calls; with `params` (the user's overrides) for parity with `passed_roles`."""
        if stage == "read":
            return cls.read_permissions
        if stage == "write":
            return (*cls.write_permissions, *(("iam:PassRole",) if cls.service_roles else ()))
        if stage == "restore":
            return cls.restore_permissions
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")

    @classmethod
    def passed_roles(cls, params: Mapping[str, Any] | None = None) -> tuple[tuple[str, str], ...]:
        """(role name, passed-to service) of every role apply hands over, named from the (overridden) params."""
        merged = {**cls.default_params, **(params or {})}
        return tuple((role.role_name(merged), role.service) for role in cls.service_roles)

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

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """The settings a pre_state holds, one comparable value per field name, so a rollback cannot do harm: the
        engine records which fields the run changed and to what (`changed_fields`, at verification), and rollback
        puts back a field only while it still holds what the run set. `state` is an assessment's pre_state, before
        the change or after it, so an assess that declares fields reports their live values also when compliant.
        None: no field-level record; rollback puts back the whole pre_state with `restore`. The default reads the
        `state_keys` the remediator declares."""
        if not self.state_keys or any(key not in state for key in self.state_keys):
            return None
        return {key: state[key] for key in self.state_keys}

    def changed_fields(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any] | None:
        """The post-state of a change: each field whose value differs between two assessments (None when the
        remediator declares no fields)."""
        old, new = self.state_fields(before), self.state_fields(after)
        if old is None or new is None:
            return None
        return {name: new.get(name) for name in sorted({*old, *new}) if new.get(name) != old.get(name)}

    def restore_fields(
        self, target: Target, finding: Finding, pre_state: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> list[str]:
        """Put back only `fields` (name → value before the run); every other field keeps its live value. The
        default is the whole `restore`, which is exactly that for a remediator with a single field."""
        return self.restore(target, finding, pre_state)

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
