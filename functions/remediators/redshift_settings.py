"""Redshift remediators that change one cluster setting in place: automated snapshot retention (Redshift.3) and
automatic major version upgrades (Redshift.6).

Neither restarts the cluster now. A longer snapshot retention keeps automated snapshots longer (storage beyond the
cluster's own size is billed); allowing version upgrades lets Redshift apply a new major version in the cluster's
maintenance window, with the restart any upgrade needs. One DescribeClusters reads the setting and the tags; rollback
puts the old value back while the cluster still holds what the run set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule, tag_dict


def describe_cluster(target: Target, identifier: str) -> dict[str, Any]:
    try:
        cluster: dict[str, Any] = target.client("redshift").describe_clusters(ClusterIdentifier=identifier)[
            "Clusters"][0]
        return cluster
    except ClientError as error:
        if aws_error_code(error) == "ClusterNotFound":
            raise RemediationError(f"Redshift cluster {identifier} not found") from error
        raise


class _ClusterSetting(Remediator):
    """Set `setting` of a Redshift cluster to `wanted(current)` when `compliant(current)` is false."""

    setting: ClassVar[str]
    resource_types = ("AwsRedshiftCluster",)
    read_permissions = ("redshift:DescribeClusters",)
    write_permissions = ("redshift:ModifyCluster",)
    restore_permissions = ("redshift:ModifyCluster",)
    reversible = True

    def compliant(self, current: Any) -> bool:
        raise NotImplementedError

    def wanted(self, current: Any) -> Any:
        raise NotImplementedError

    def state_fields(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        return {self.setting: state[self.setting]} if self.setting in state else None

    def assess(self, target: Target, finding: Finding) -> Assessment:
        cluster = describe_cluster(target, finding.resource_id)
        identifier, current = cluster["ClusterIdentifier"], cluster.get(self.setting)
        tags = tag_dict(cluster.get("Tags", []))
        if self.compliant(current):
            return Assessment(compliant=True, pre_state={self.setting: current}, tags=tags)
        value = self.wanted(current)
        return Assessment(
            compliant=False,
            changes=[f"set {self.setting}={value} on Redshift cluster {identifier} (was {current})"],
            pre_state={self.setting: current},
            tags=tags,
            context={"ClusterIdentifier": identifier, "value": value},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._modify(target, assessment.context["ClusterIdentifier"], assessment.context["value"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if self.setting not in pre_state:
            raise RemediationError(f"no previous {self.setting} recorded for Redshift cluster {finding.resource_id}")
        previous = pre_state[self.setting]
        cluster = describe_cluster(target, finding.resource_id)
        identifier = cluster["ClusterIdentifier"]
        if cluster.get(self.setting) == previous:
            return [f"{self.setting} of Redshift cluster {identifier} is already {previous}"]
        self._modify(target, identifier, previous)
        return [f"set {self.setting} back to {previous} on Redshift cluster {identifier}"]

    def _modify(self, target: Target, identifier: str, value: Any) -> None:
        try:
            target.client("redshift").modify_cluster(ClusterIdentifier=identifier, **{self.setting: value})
        except ClientError as error:
            if aws_error_code(error) == "InvalidClusterState":
                raise RemediationError(f"Redshift cluster {identifier} is not available (being modified, paused, "
                                       "…): try again later") from error
            raise


class SnapshotRetention(_ClusterSetting):
    """Redshift.3: automated snapshots kept at least `min_retention_days` (Security Hub's default minimum: 7).

    A retention already longer is compliant and never shortened; 0 (automated snapshots off) is raised too.
    """

    rules = (Rule("Redshift.3", "Amazon Redshift clusters should have automatic snapshots enabled"),)
    setting = "AutomatedSnapshotRetentionPeriod"
    side_effects = "automated snapshots are kept longer (snapshot storage beyond the cluster's size is billed)"
    params_schema = {"min_retention_days": Param(7, int, minimum=7, maximum=35,
                                                 description="the retention set when it is shorter")}

    def compliant(self, current: Any) -> bool:
        return int(current or 0) >= 7 and int(current or 0) >= self.params["min_retention_days"]

    def wanted(self, current: Any) -> Any:
        return int(self.params["min_retention_days"])


class AllowVersionUpgrade(_ClusterSetting):
    """Redshift.6: let Redshift apply major version upgrades in the maintenance window."""

    rules = (Rule("Redshift.6", "Amazon Redshift should have automatic upgrades to major versions enabled"),)
    setting = "AllowVersionUpgrade"
    side_effects = "a new major version is applied in the cluster's maintenance window (with a restart)"

    def compliant(self, current: Any) -> bool:
        return bool(current)

    def wanted(self, current: Any) -> Any:
        return True
