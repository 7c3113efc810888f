"""RDS remediators that flip one setting in place: instance deletion protection (RDS.8), cluster deletion protection
(RDS.7), cluster copy-tags-to-snapshots (RDS.16).

None of these restarts anything or changes how clients connect: deletion protection only refuses DeleteDBInstance /
DeleteDBCluster until it is turned off again (a stack or script deleting the database must do that first, which the
plan says), and copying tags to snapshots only changes what future snapshots carry. RDS applies all three at once,
whatever ApplyImmediately says. One Describe call reads the setting and the tags; rollback puts the old value back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule, tag_dict
from functions.remediators.rds import describe_db_instance


def describe_db_cluster(target: Target, identifier: str) -> dict[str, Any]:
    """One DB cluster by identifier or ARN; RemediationError when there is none."""
    try:
        cluster: dict[str, Any] = target.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)[
            "DBClusters"][0]
        return cluster
    except ClientError as error:
        if aws_error_code(error) == "DBClusterNotFoundFault":
            raise RemediationError(f"RDS DB cluster {identifier} not found") from error
        raise


class _OneSetting(Remediator):
    """Set one boolean `setting` of an RDS resource to `wanted` (the plan adds `consequence`)."""

    setting: ClassVar[str]
    wanted: ClassVar[bool] = True
    kind: ClassVar[str]
    consequence: ClassVar[str] = ""
    reversible = True

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        return {self.setting: state[self.setting]} if self.setting in state else None

    def assess(self, target: Target, finding: Finding) -> Assessment:
        resource = self._describe(target, finding.resource_id)
        identifier, current = self._identifier(resource), bool(resource.get(self.setting))
        changes = [] if current == self.wanted else [
            f"set {self.setting}={self.wanted} on RDS {self.kind} {identifier}{self.consequence}"]
        return Assessment(
            compliant=not changes,
            changes=changes,
            pre_state={self.setting: current},
            tags=tag_dict(resource.get("TagList", [])),
            context={"identifier": identifier},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._modify(target, assessment.context["identifier"], self.wanted)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        previous = bool(pre_state[self.setting])
        resource = self._describe(target, finding.resource_id)
        identifier = self._identifier(resource)
        if bool(resource.get(self.setting)) == previous:
            return [f"{self.setting} of RDS {self.kind} {identifier} is already {previous}"]
        self._modify(target, identifier, previous)
        return [f"set {self.setting} back to {previous} on RDS {self.kind} {identifier}"]

    def _describe(self, target: Target, identifier: str) -> dict[str, Any]:
        raise NotImplementedError

    def _identifier(self, resource: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def _modify(self, target: Target, identifier: str, value: bool) -> None:
        raise NotImplementedError


class InstanceDeletionProtection(_OneSetting):
    """RDS.8: turn on DeletionProtection of a DB instance."""

    rules = (Rule("RDS.8", "RDS DB instances should have deletion protection enabled"),)
    resource_types = ("AwsRdsDbInstance",)
    read_permissions = ("rds:DescribeDBInstances",)
    write_permissions = ("rds:ModifyDBInstance",)
    restore_permissions = ("rds:ModifyDBInstance",)
    setting = "DeletionProtection"
    side_effects = "deleting the instance (a stack delete too) needs deletion protection turned off first"
    kind = "DB instance"
    consequence = " (deleting it then needs DeletionProtection turned off first)"

    def _describe(self, target: Target, identifier: str) -> dict[str, Any]:
        return describe_db_instance(target, identifier)

    def _identifier(self, resource: Mapping[str, Any]) -> str:
        return str(resource["DBInstanceIdentifier"])

    def _modify(self, target: Target, identifier: str, value: bool) -> None:
        target.client("rds").modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=value)


class ClusterDeletionProtection(_OneSetting):
    """RDS.7: turn on DeletionProtection of a DB cluster (Aurora, Multi-AZ DB clusters)."""

    rules = (Rule("RDS.7", "RDS clusters should have deletion protection enabled"),)
    resource_types = ("AwsRdsDbCluster",)
    read_permissions = ("rds:DescribeDBClusters",)
    write_permissions = ("rds:ModifyDBCluster",)
    restore_permissions = ("rds:ModifyDBCluster",)
    setting = "DeletionProtection"
    side_effects = "deleting the cluster (a stack delete too) needs deletion protection turned off first"
    kind = "DB cluster"
    consequence = " (deleting it then needs DeletionProtection turned off first)"

    def _describe(self, target: Target, identifier: str) -> dict[str, Any]:
        return describe_db_cluster(target, identifier)

    def _identifier(self, resource: Mapping[str, Any]) -> str:
        return str(resource["DBClusterIdentifier"])

    def _modify(self, target: Target, identifier: str, value: bool) -> None:
        target.client("rds").modify_db_cluster(DBClusterIdentifier=identifier, **{self.setting: value})


class ClusterCopyTagsToSnapshot(ClusterDeletionProtection):
    """RDS.16: let a DB cluster copy its tags to its snapshots (future snapshots only)."""

    rules = (Rule("RDS.16", "Aurora DB clusters should be configured to copy tags to DB snapshots"),)
    setting = "CopyTagsToSnapshot"
    side_effects = "snapshots taken from now on carry the cluster's tags (and whoever reads them sees the tags)"
    consequence = " (snapshots taken from now on carry the cluster's tags)"


class InstanceMultiAz(InstanceDeletionProtection):
    """RDS.5: make a DB instance Multi-AZ (a standby in another Availability Zone).

    Disruptive (cost): the standby doubles the instance's price. RDS adds it without downtime (a snapshot of the
    primary seeds it; I/O can be slower meanwhile), in the maintenance window unless `apply_immediately`.
    """

    rules = (Rule("RDS.5", "RDS DB instances should be configured with multiple Availability Zones",
                  disruptive=True, disruption="cost", because="the standby instance is billed like the primary"),)
    setting = "MultiAZ"
    side_effects = "I/O may be slower while the standby is created from a snapshot of the primary"
    consequence = " (a standby in another Availability Zone)"
    params_schema = {"apply_immediately": Param(False, bool, description="add the standby now, not in the "
                                                                         "maintenance window")}

    def _modify(self, target: Target, identifier: str, value: bool) -> None:
        target.client("rds").modify_db_instance(DBInstanceIdentifier=identifier, MultiAZ=value,
                                                ApplyImmediately=bool(self.params["apply_immediately"]))
