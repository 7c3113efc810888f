"""Redshift remediators: cluster not publicly accessible (Redshift.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, Runbook


def _runbook_parameters(finding: Finding, automation_role_arn: str) -> dict[str, list[str]]:
    return {"ClusterIdentifier": [finding.resource_id], "AutomationAssumeRole": [automation_role_arn]}


class ClusterNotPublic(Remediator):
    """Redshift.1: turn off PubliclyAccessible, so the cluster endpoint resolves to its private address only.

    Disruptive: clients outside the VPC lose access at once. The cluster's Elastic IP, if any, stays allocated
    (a rollback can make the cluster public again with it); security groups are not touched.
    """

    rules = (Rule(
    "Redshift.1",
    "Amazon Redshift clusters should prohibit public access",
    disruptive=True,
    disruption="traffic",
    because="clients outside the VPC lose their connection",
),)
    resource_types = ("AwsRedshiftCluster",)
    read_permissions = ("redshift:DescribeClusters",)
    write_permissions = ("redshift:ModifyCluster",)
    restore_permissions = ("redshift:ModifyCluster",)
    reversible = True
    state_keys = ("PubliclyAccessible",)
    # Not named in the catalog document, but AWS-owned and taking only the cluster identifier.
    runbook = Runbook(
        document="AWSConfigRemediation-DisablePublicAccessToRedshiftCluster",
        parameters=_runbook_parameters,
        permissions=(
            "redshift:DescribeClusters",
            "redshift:ModifyCluster",
        ),
    )

    def assess(self, target: Target, finding: Finding) -> Assessment:
        cluster = self._describe(target, finding.resource_id)
        tags = {tag["Key"]: tag["Value"] for tag in cluster.get("Tags", [])}
        if not cluster.get("PubliclyAccessible"):
            return Assessment(compliant=True, pre_state={"PubliclyAccessible": False}, tags=tags)
        return Assessment(
            compliant=False,
            changes=[f"set PubliclyAccessible=False on Redshift cluster {finding.resource_id}"],
            pre_state={"PubliclyAccessible": True},
            tags=tags,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("redshift").modify_cluster(ClusterIdentifier=finding.resource_id, PubliclyAccessible=False)

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        previous = bool(pre_state["PubliclyAccessible"])
        if bool(self._describe(target, finding.resource_id).get("PubliclyAccessible")) == previous:
            return [f"PubliclyAccessible of Redshift cluster {finding.resource_id} is already {previous}"]
        target.client("redshift").modify_cluster(ClusterIdentifier=finding.resource_id, PubliclyAccessible=previous)
        return [f"set PubliclyAccessible back to {previous} on Redshift cluster {finding.resource_id}"]

    @staticmethod
    def _describe(target: Target, cluster_id: str) -> dict[str, Any]:
        try:
            cluster: dict[str, Any] = target.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)[
                "Clusters"][0]
            return cluster
        except ClientError as error:
            if aws_error_code(error) == "ClusterNotFound":
                raise RemediationError(f"Redshift cluster {cluster_id} not found") from error
            raise
