"""Redshift.1 against moto: public cluster → private (independent reads), read-only assess, rollback."""

from __future__ import annotations

import boto3
import pytest

from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.redshift import ClusterNotPublic
from tests.factories import ACCOUNT, REGION, make_finding

CLUSTER = "analytics-cluster"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"


def cluster_finding(cluster: str = CLUSTER):
    return make_finding("Redshift.1", "AwsRedshiftCluster", cluster)


@pytest.fixture
def redshift(moto_aws):
    client = boto3.client("redshift", region_name=REGION)
    client.create_cluster(
        ClusterIdentifier=CLUSTER,
        NodeType="dc2.large",
        MasterUsername="admin_user",
        MasterUserPassword="Not-a-real-password1",
        PubliclyAccessible=True,
        Tags=[{"Key": "team", "Value": "analytics"}],
    )
    return client


def is_public(redshift) -> bool:
    """An independent read, not through the remediator."""
    return redshift.describe_clusters(ClusterIdentifier=CLUSTER)["Clusters"][0]["PubliclyAccessible"]


def test_public_cluster_is_made_private_verified_and_then_noop(target: Target, redshift) -> None:
    remediator, finding = ClusterNotPublic(), cluster_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.changes == [f"set PubliclyAccessible=False on Redshift cluster {CLUSTER}"]
    assert before.pre_state == {"PubliclyAccessible": True}
    assert before.tags == {"team": "analytics"}
    assert is_public(redshift)

    remediator.apply(target, finding, before)

    assert not is_public(redshift)
    after = remediator.assess(target, finding)
    assert after.compliant and after.changes == [] and after.tags == {"team": "analytics"}
    assert remediator.assess(target, finding).compliant


def test_assess_is_read_only(target: Target, redshift) -> None:
    calls: list[str] = []
    target.client("redshift").meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    assert not ClusterNotPublic().assess(target, cluster_finding()).compliant

    assert calls == ["DescribeClusters"]
    assert is_public(redshift)


def test_restore_makes_it_public_again_and_is_idempotent(target: Target, redshift) -> None:
    remediator, finding = ClusterNotPublic(), cluster_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    first = remediator.restore(target, finding, assessment.pre_state)
    second = remediator.restore(target, finding, assessment.pre_state)

    assert is_public(redshift)
    assert first == [f"set PubliclyAccessible back to True on Redshift cluster {CLUSTER}"]
    assert second == [f"PubliclyAccessible of Redshift cluster {CLUSTER} is already True"]


def test_missing_cluster_is_a_remediation_error(target: Target, redshift) -> None:
    with pytest.raises(RemediationError, match="Redshift cluster gone not found"):
        ClusterNotPublic().assess(target, cluster_finding("gone"))


def test_declarations_and_runbook() -> None:
    assert [(r.rule_id, r.disruptive) for r in ClusterNotPublic.rules] == [("Redshift.1", True)]
    assert ClusterNotPublic.permissions == ("redshift:DescribeClusters", "redshift:ModifyCluster")
    assert ClusterNotPublic.reversible
    runbook = ClusterNotPublic.runbook
    assert runbook is not None and runbook.document == "AWSConfigRemediation-DisablePublicAccessToRedshiftCluster"
    assert runbook.parameters(cluster_finding(), ROLE) == {
        "ClusterIdentifier": [CLUSTER],
        "AutomationAssumeRole": [ROLE],
    }
