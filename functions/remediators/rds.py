"""RDS remediators: auto minor version upgrade (RDS.13), no public access (RDS.2), snapshots not public (RDS.1),
encryption at rest by re-creation (RDS.3).

RDS.13 and RDS.2 flip one setting of the instance in place. Both settings take effect at once whatever
ApplyImmediately says (ModifyDBInstance reference: PubliclyAccessible "applied immediately regardless";
AutoMinorVersionUpgrade "applies the change as soon as possible" — only the upgrades themselves wait for the
maintenance window). ApplyImmediately=True would additionally push through every *other* modification pending on
the instance (class, storage, ...), which can mean a reboot nobody asked for, so it is off unless a rule's
`apply_immediately` param says otherwise.

RDS.3 cannot encrypt an instance in place. It builds an encrypted replacement next to it — snapshot, encrypted
copy, restore as `<id>-encrypted` — and never modifies or deletes the original, so the finding stays open until a
person switches clients over. Each step waits for the previous one to be available (AWS takes minutes to hours):
the names are fixed, so every run continues where the last one stopped and never starts a second copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import (
    Assessment,
    Grant,
    Param,
    RemediationError,
    Remediator,
    Rule,
    Runbook,
    live_tags,
)

_RUNBOOK_PERMISSIONS = (
    "rds:DescribeDBInstances",
    "rds:ModifyDBInstance",
)


def describe_db_instance(target: Target, identifier: str) -> dict[str, Any]:
    """The DB instance named by identifier or ARN; RemediationError when it does not exist."""
    try:
        instance: dict[str, Any] = target.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)[
            "DBInstances"][0]
        return instance
    except ClientError as error:
        if aws_error_code(error) == "DBInstanceNotFound":
            raise RemediationError(f"RDS DB instance {identifier} not found") from error
        raise


def _tags(instance: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("TagList", [])}


def _dbi_runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    """The runbooks take the instance's resource id (db-…), which only a Security Hub finding's details carry.

    Netskope findings name the instance only: use the boto3 executor for them.
    """
    raw = finding.raw if isinstance(finding.raw, dict) else {}
    resources = raw.get("Resources") or [{}]
    dbi_resource_id = ((resources[0].get("Details") or {}).get("AwsRdsDbInstance") or {}).get("DbiResourceId")
    if not dbi_resource_id:
        raise RemediationError(
            f"finding {finding.finding_id} carries no Details.AwsRdsDbInstance.DbiResourceId for the SSM runbook; "
            "use executor boto3"
        )
    return {"DbiResourceId": [dbi_resource_id], "AutomationAssumeRole": [automation_role_arn]}


class AutoMinorVersionUpgrade(Remediator):
    """RDS.13: let RDS apply minor engine upgrades (security patches) in the maintenance window.

    Enabling the flag causes no outage by itself; an upgrade, when one is due, happens in the maintenance window
    with the short restart any minor upgrade needs. The class flips one boolean `setting` of a DB instance with
    ModifyDBInstance, recording the old value; RDS.2 (InstanceNotPublic) is the same flip of another setting.
    """

    rules = (Rule("RDS.13", "RDS automatic minor version upgrades should be enabled", cis=("2.3.2",)),)
    setting: ClassVar[str] = "AutoMinorVersionUpgrade"
    wanted: ClassVar[bool] = True
    runbook = Runbook(
        document="AWSConfigRemediation-EnableMinorVersionUpgradeOnRDSDBInstance",
        parameters=_dbi_runbook_parameters,
        permissions=_RUNBOOK_PERMISSIONS,
    )
    resource_types = ("AwsRdsDbInstance",)
    read_permissions = ("rds:DescribeDBInstances",)
    write_permissions = ("rds:ModifyDBInstance",)
    restore_permissions = ("rds:ModifyDBInstance",)
    reversible = True
    side_effects = "minor engine upgrades are applied in the maintenance window, each with a brief restart"
    params_schema = {"apply_immediately": Param(False, bool)}

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        return {self.setting: state[self.setting]} if self.setting in state else None

    def assess(self, target: Target, finding: Finding) -> Assessment:
        instance = describe_db_instance(target, finding.resource_id)
        identifier, current = instance["DBInstanceIdentifier"], bool(instance.get(self.setting))
        change = f"set {self.setting}={self.wanted} on RDS DB instance {identifier}"
        changes = [] if current == self.wanted else [change]
        return Assessment(
            compliant=not changes,
            changes=changes,
            pre_state={self.setting: current},
            tags=_tags(instance),
            context={"DBInstanceIdentifier": identifier},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._modify(target, assessment.context["DBInstanceIdentifier"], self.wanted)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        previous = bool(pre_state[self.setting])
        instance = describe_db_instance(target, finding.resource_id)
        identifier = instance["DBInstanceIdentifier"]
        if bool(instance.get(self.setting)) == previous:
            return [f"{self.setting} of RDS DB instance {identifier} is already {previous}"]
        self._modify(target, identifier, previous)
        return [f"set {self.setting} back to {previous} on RDS DB instance {identifier}"]

    def _modify(self, target: Target, identifier: str, value: bool) -> None:
        target.client("rds").modify_db_instance(
            DBInstanceIdentifier=identifier,
            ApplyImmediately=bool(self.params["apply_immediately"]),
            **{self.setting: value},
        )


class InstanceNotPublic(AutoMinorVersionUpgrade):
    """RDS.2: make the instance's endpoint resolve to its private address only.

    Disruptive: clients outside the VPC (over the internet) lose access at once. Security groups are not touched.
    Subclasses RDS.13's remediator only for its in-place flip of one instance setting.
    """

    rules = (
        Rule(
            "RDS.2",
            "RDS DB instances should prohibit public access, as determined by the PubliclyAccessible configuration",
            cis=("2.3.3",),
            disruptive=True,
            disruption="traffic",
            because="clients outside the VPC lose their connection",
        ),
    )
    setting = "PubliclyAccessible"
    wanted = False
    side_effects = ""
    runbook = Runbook(
        document="AWSConfigRemediation-DisablePublicAccessToRDSInstance",
        parameters=_dbi_runbook_parameters,
        permissions=_RUNBOOK_PERMISSIONS,
    )


@dataclass(frozen=True)
class _SnapshotApi:
    """The DB snapshot and DB cluster snapshot flavours of the same API."""

    kind: str
    id_param: str
    describe: str
    result_key: str
    attributes_key: str
    modify: str
    not_found: str
    list: str  # Describe{DB,DBCluster}Snapshots: the snapshots (with their TagList)
    list_key: str
    owner_param: str  # how that call filters by instance or cluster


_SNAPSHOT_APIS = {
    "AwsRdsDbSnapshot": _SnapshotApi(
        "DB snapshot",
        "DBSnapshotIdentifier",
        "describe_db_snapshot_attributes",
        "DBSnapshotAttributesResult",
        "DBSnapshotAttributes",
        "modify_db_snapshot_attribute",
        "DBSnapshotNotFound",
        "describe_db_snapshots",
        "DBSnapshots",
        "DBInstanceIdentifier",
    ),
    "AwsRdsDbClusterSnapshot": _SnapshotApi(
        "DB cluster snapshot",
        "DBClusterSnapshotIdentifier",
        "describe_db_cluster_snapshot_attributes",
        "DBClusterSnapshotAttributesResult",
        "DBClusterSnapshotAttributes",
        "modify_db_cluster_snapshot_attribute",
        "DBClusterSnapshotNotFoundFault",
        "describe_db_cluster_snapshots",
        "DBClusterSnapshots",
        "DBClusterIdentifier",
    ),
}
_EVERYONE = "all"  # the `restore` attribute value that makes a manual snapshot public


class SnapshotNotPublic(Remediator):
    """RDS.1: stop sharing manual DB (and DB cluster) snapshots with every AWS account.

    Only the value "all" is removed from a snapshot's `restore` attribute; shares with named accounts stay. A
    finding on a snapshot covers that snapshot. Netskope's rule is about DB *instances* with public snapshots: a
    finding on an instance covers its manual snapshots and, for a cluster member, its cluster's manual snapshots
    (only manual snapshots can be shared). The snapshot's (or instance's) tags are read for the exclusion tag.
    """

    rules = (Rule("RDS.1", "RDS snapshot should be private"),)
    resource_types = (*_SNAPSHOT_APIS, "AwsRdsDbInstance")
    read_permissions = (
        "rds:DescribeDBSnapshotAttributes",
        "rds:DescribeDBClusterSnapshotAttributes",
        "rds:DescribeDBSnapshots",  # tags; an instance's snapshots
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBInstances",  # instance findings
    )
    write_permissions = ("rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute")
    restore_permissions = ("rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute")
    reversible = True

    def assess(self, target: Target, finding: Finding) -> Assessment:
        if finding.resource_type == "AwsRdsDbInstance":
            return self._assess_instance(target, finding)
        api = _SNAPSHOT_APIS[finding.resource_type]
        public = _EVERYONE in self._restore_values(target, finding.resource_id, api)
        tags = live_tags(finding, lambda: self._snapshot_tags(target, finding.resource_id, api))
        if not public:
            return Assessment(compliant=True, tags=tags)
        return Assessment(
            compliant=False,
            changes=[f'remove "{_EVERYONE}" from the restore attribute of {api.kind} {finding.resource_id}'],
            pre_state={"RestoreValuesRemoved": [_EVERYONE]},
            tags=tags,
        )

    def _assess_instance(self, target: Target, finding: Finding) -> Assessment:
        instance = describe_db_instance(target, finding.resource_id)
        owners = [("AwsRdsDbSnapshot", instance["DBInstanceIdentifier"])]
        if instance.get("DBClusterIdentifier"):
            owners.append(("AwsRdsDbClusterSnapshot", instance["DBClusterIdentifier"]))
        public = [
            {"ResourceType": resource_type, "Identifier": snapshot[api.id_param]}
            for resource_type, owner in owners
            for api in [_SNAPSHOT_APIS[resource_type]]
            for snapshot in self._manual_snapshots(target, api, owner)
            if _EVERYONE in self._restore_values(target, snapshot[api.id_param], api)
        ]
        return Assessment(
            compliant=not public,
            changes=[
                f'remove "{_EVERYONE}" from the restore attribute of {_SNAPSHOT_APIS[s["ResourceType"]].kind} '
                f'{s["Identifier"]} (of RDS DB instance {instance["DBInstanceIdentifier"]})'
                for s in public
            ],
            pre_state={"RestoreValuesRemoved": [_EVERYONE], "Snapshots": public} if public else {},
            tags=_tags(instance),
            context={"Snapshots": public},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        for resource_type, identifier in self._snapshots(finding, assessment.context):
            self._modify(target, resource_type, identifier, ValuesToRemove=[_EVERYONE])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        lines = []
        for resource_type, identifier in self._snapshots(finding, pre_state):
            api = _SNAPSHOT_APIS[resource_type]
            current = self._restore_values(target, identifier, api)
            missing = [v for v in pre_state["RestoreValuesRemoved"] if v not in current]
            if not missing:
                lines.append(f"{api.kind} {identifier} is already shared with {pre_state['RestoreValuesRemoved']}")
                continue
            self._modify(target, resource_type, identifier, ValuesToAdd=missing)
            lines.append(f"shared {api.kind} {identifier} with {missing} again")
        return lines

    @staticmethod
    def _snapshots(finding: Finding, recorded: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(resource type, identifier) of the snapshots acted on: the finding's, or an instance's public ones."""
        if finding.resource_type == "AwsRdsDbInstance":
            return [(s["ResourceType"], s["Identifier"]) for s in recorded.get("Snapshots", [])]
        return [(finding.resource_type, finding.resource_id)]

    @staticmethod
    def _manual_snapshots(target: Target, api: _SnapshotApi, owner: str) -> list[dict[str, Any]]:
        pages = target.client("rds").get_paginator(api.list).paginate(
            **{api.owner_param: owner, "SnapshotType": "manual"}
        )
        return [snapshot for page in pages for snapshot in page.get(api.list_key, [])]

    @staticmethod
    def _snapshot_tags(target: Target, identifier: str, api: _SnapshotApi) -> dict[str, str]:
        snapshots = getattr(target.client("rds"), api.list)(**{api.id_param: identifier}).get(api.list_key, [])
        return _tags(snapshots[0]) if snapshots else {}

    @staticmethod
    def _restore_values(target: Target, identifier: str, api: _SnapshotApi) -> list[str]:
        try:
            result = getattr(target.client("rds"), api.describe)(**{api.id_param: identifier})
        except ClientError as error:
            if aws_error_code(error) == api.not_found:
                raise RemediationError(f"{api.kind} {identifier} not found") from error
            raise
        attributes = result[api.result_key][api.attributes_key]
        return [value for a in attributes if a["AttributeName"] == "restore" for value in a.get("AttributeValues", [])]

    @staticmethod
    def _modify(target: Target, resource_type: str, identifier: str, **values: list[str]) -> None:
        api = _SNAPSHOT_APIS[resource_type]
        getattr(target.client("rds"), api.modify)(**{api.id_param: identifier}, AttributeName="restore", **values)


# RDS.3 builds these, in this order, each from the one before. Fixed names make every run continue the same copy.
_STEPS = ("db_snapshot", "encrypted_db_snapshot", "db_instance")
_COPY_OF_TAG = "cspm-remediation:encrypted-copy-of"
_MAX_INSTANCE_ID = 63


def _replacement_names(identifier: str) -> dict[str, str]:
    return {
        "db_snapshot": f"{identifier}-cspm-unencrypted",
        "encrypted_db_snapshot": f"{identifier}-cspm-encrypted",
        "db_instance": f"{identifier}-encrypted",
    }


# gp3 takes its own IOPS and throughput only from 400 GiB (below, RDS refuses them and applies the baseline).
_GP3_PROVISIONED_FROM_GIB = 400


def _storage_settings(instance: Mapping[str, Any]) -> dict[str, Any]:
    storage_type = instance.get("StorageType")
    settings: dict[str, Any] = {"StorageType": storage_type}
    if storage_type in ("io1", "io2") or (
        storage_type == "gp3" and int(instance.get("AllocatedStorage") or 0) >= _GP3_PROVISIONED_FROM_GIB
    ):
        settings["Iops"] = instance.get("Iops")
        if storage_type == "gp3":
            settings["StorageThroughput"] = instance.get("StorageThroughput")
    return settings


def _restore_settings(instance: Mapping[str, Any]) -> dict[str, Any]:
    """RestoreDBInstanceFromDBSnapshot arguments that make the replacement sit where the original sits and behave
    as it does: network, port, storage, protections (deletion protection, IAM authentication), log exports and
    backups. Otherwise the restore takes the engine's defaults (port, no deletion protection, 1-day backups …).

    Default option groups are left to RDS (it picks the engine's default on restore).
    """
    parameter_groups = instance.get("DBParameterGroups") or [{}]
    options = [o["OptionGroupName"] for o in instance.get("OptionGroupMemberships", [])]
    settings = {
        "Port": (instance.get("Endpoint") or {}).get("Port") or instance.get("DbInstancePort") or None,
        "DeletionProtection": instance.get("DeletionProtection"),
        "EnableIAMDatabaseAuthentication": instance.get("IAMDatabaseAuthenticationEnabled"),
        "EnableCloudwatchLogsExports": list(instance.get("EnabledCloudwatchLogsExports") or []),
        "BackupRetentionPeriod": instance.get("BackupRetentionPeriod"),
        "PreferredBackupWindow": instance.get("PreferredBackupWindow"),
        "AutoMinorVersionUpgrade": instance.get("AutoMinorVersionUpgrade"),
        "CopyTagsToSnapshot": instance.get("CopyTagsToSnapshot"),
        **_storage_settings(instance),
        "DBInstanceClass": instance["DBInstanceClass"],
        "MultiAZ": bool(instance.get("MultiAZ")),
        "PubliclyAccessible": bool(instance.get("PubliclyAccessible")),
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups", [])],
        "DBSubnetGroupName": (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
        "DBParameterGroupName": parameter_groups[0].get("DBParameterGroupName"),
        "OptionGroupName": next((name for name in options if not name.startswith("default:")), None),
    }
    return {name: value for name, value in settings.items() if value not in (None, [])}


class EncryptedReplacement(Remediator):
    """RDS.3: build an encrypted copy of an unencrypted instance, `<id>-encrypted`, next to it.

    Opt-in twice: the rule is disruptive (its own entry must say enforce) and needs `allow_reencryption`. The
    original is never modified or deleted, so its finding stays open until a person moves clients to the copy and
    retires the original; verification therefore cannot pass in place (`verifies_in_place`). The copy holds the
    data as of its snapshot: writes made to the original afterwards are not in it.
    """

    rules = (
        Rule(
            "RDS.3",
            "RDS DB instances should have encryption at-rest enabled",
            cis=("2.3.1",),
            disruptive=True,
            disruption="cost",
            because="a snapshot, its encrypted copy and a second instance are billed",
        ),
    )
    resource_types = ("AwsRdsDbInstance",)
    read_permissions = ("rds:DescribeDBInstances", "rds:DescribeDBSnapshots")
    write_permissions = (
        "rds:CreateDBSnapshot",
        "rds:CopyDBSnapshot",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:AddTagsToResource",  # the Tags given to the three create calls
        "kms:DescribeKey",  # RDS uses the key with the caller's credentials to encrypt the copy
        "kms:CreateGrant",  # for RDS only (kms:GrantIsForAWSResource in the target role)
    )
    reversible = False
    side_effects = (
        "a snapshot, its encrypted copy and the replacement instance <id>-encrypted are billed until removed; "
        "a person switches clients over"
    )
    # Success is a new resource, not a compliant original: the engine should report `started`, not verify.
    verifies_in_place: ClassVar[bool] = False
    params_schema = {"allow_reencryption": Param(False, bool), "kms_key_id": Param("alias/aws/rds", str)}
    grants = (Grant(("kms:CreateGrant",), conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        instance = describe_db_instance(target, finding.resource_id)
        if instance.get("StorageEncrypted"):
            return Assessment(compliant=True, tags=_tags(instance))
        identifier = instance["DBInstanceIdentifier"]
        names = _replacement_names(identifier)
        existing = self._existing(target, names)
        progress = {step: _status(existing.get(name)) for step, name in names.items()}
        refusal = self._refusal(instance, names, existing)
        return Assessment(
            compliant=False,
            changes=self._plan(identifier, names, progress) + ([refusal] if refusal else []),
            tags=_tags(instance),
            context={
                "DBInstanceIdentifier": identifier,
                "names": names,
                "progress": progress,
                "refusal": refusal,
                "restore_settings": _restore_settings(instance),
                "tags": [t for t in instance.get("TagList", []) if not t["Key"].startswith("aws:")],
            },
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        """Start the next step(s); stop at the first one AWS is still working on — a later run continues there."""
        context = assessment.context
        if context["refusal"]:
            raise RemediationError(context["refusal"])
        progress, created = context["progress"], context.setdefault("created", {})
        furthest = max((i for i, step in enumerate(_STEPS) if progress[step]), default=0)
        for step in _STEPS[furthest:]:
            status = progress[step]
            if status is None:
                status = self._start(target, step, context)
                created[step] = context["names"][step]
            if status == "failed":
                raise RemediationError(f"{context['names'][step]} failed in RDS: delete it and run RDS.3 again")
            if status != "available":
                return

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        created = ", ".join(f"{step} {name}" for step, name in (pre_state.get("created") or {}).items())
        raise RemediationError(
            "RDS.3 changed nothing on the original instance, so there is nothing to put back; what it created is "
            f"kept because it may already hold data ({created or 'nothing recorded'}): delete it by hand if unwanted"
        )

    def _plan(self, identifier: str, names: dict[str, str], progress: dict[str, str | None]) -> list[str]:
        if progress["db_instance"]:
            return [
                f"encrypted copy {names['db_instance']} exists ({progress['db_instance']}): a person switches "
                f"clients over to it and retires {identifier}; RDS.3 never modifies or deletes the original"
            ]
        todo = {
            "db_snapshot": f"snapshot RDS DB instance {identifier} as {names['db_snapshot']}",
            "encrypted_db_snapshot": (
                f"copy it encrypted with KMS key {self.params['kms_key_id']} as {names['encrypted_db_snapshot']}"
            ),
            "db_instance": (
                f"restore that as new DB instance {names['db_instance']} with the class, subnet group, security "
                f"groups, parameter group, port, storage, deletion protection, IAM authentication, log exports and "
                f"backup retention of {identifier} (the original stays as it is)"
            ),
        }
        return [
            todo[step] if progress[step] is None else f"wait for {names[step]} ({progress[step]})"
            for step in _STEPS
            if progress[step] != "available"
        ]

    def _refusal(self, instance: Mapping[str, Any], names: dict[str, str], existing: dict[str, Any]) -> str | None:
        """Why apply must not act (None when it may)."""
        identifier, replacement = instance["DBInstanceIdentifier"], names["db_instance"]
        if not self.params["allow_reencryption"]:
            return (
                "not without opt-in: RDS.3 creates a snapshot, an encrypted copy and a new DB instance (cost, and a "
                "copy of the data) — set rules.RDS.3.params.allow_reencryption: true; the original is never changed"
            )
        if instance.get("DBClusterIdentifier"):
            return (
                f"{identifier} is part of Aurora cluster {instance['DBClusterIdentifier']}: encryption is a cluster "
                "setting — restore an encrypted cluster from a cluster snapshot by hand"
            )
        if len(replacement) > _MAX_INSTANCE_ID:
            return f"cannot name the copy {replacement}: more than {_MAX_INSTANCE_ID} characters"
        if replacement in existing and _tags(existing[replacement]).get(_COPY_OF_TAG) != identifier:
            return f"a DB instance named {replacement} exists without tag {_COPY_OF_TAG}={identifier}: not RDS.3's copy"
        return None

    @staticmethod
    def _existing(target: Target, names: dict[str, str]) -> dict[str, dict[str, Any]]:
        """What of the replacement already exists, by name (one call for the snapshots, one for the instance)."""
        rds = target.client("rds")
        snapshot_names = [names["db_snapshot"], names["encrypted_db_snapshot"]]
        snapshots = rds.describe_db_snapshots(Filters=[{"Name": "db-snapshot-id", "Values": snapshot_names}])
        instances = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [names["db_instance"]]}])
        found = {s["DBSnapshotIdentifier"]: s for s in snapshots["DBSnapshots"]}
        return found | {i["DBInstanceIdentifier"]: i for i in instances["DBInstances"]}

    def _start(self, target: Target, step: str, context: Mapping[str, Any]) -> str:
        """Create one step's resource; returns its status."""
        rds, names = target.client("rds"), context["names"]
        tags = [{"Key": _COPY_OF_TAG, "Value": context["DBInstanceIdentifier"]}]
        if step == "db_snapshot":
            response = rds.create_db_snapshot(
                DBInstanceIdentifier=context["DBInstanceIdentifier"], DBSnapshotIdentifier=names[step], Tags=tags
            )
            status: str = response["DBSnapshot"]["Status"]
            return status
        if step == "encrypted_db_snapshot":
            response = rds.copy_db_snapshot(
                SourceDBSnapshotIdentifier=names["db_snapshot"],
                TargetDBSnapshotIdentifier=names[step],
                KmsKeyId=self.params["kms_key_id"],
                Tags=tags,
            )
            status = response["DBSnapshot"]["Status"]
            return status
        response = rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=names[step],
            DBSnapshotIdentifier=names["encrypted_db_snapshot"],
            Tags=context["tags"] + tags,
            **context["restore_settings"],
        )
        status = response["DBInstance"]["DBInstanceStatus"]
        return status


def _status(resource: Mapping[str, Any] | None) -> str | None:
    """A snapshot's or an instance's status; None when it does not exist."""
    if resource is None:
        return None
    return str(resource.get("Status") or resource.get("DBInstanceStatus"))
