"""Redshift.3 and Redshift.6 against moto: the one setting is changed and read back, a second assess is compliant,
the cluster's other settings survive (public access, node type, the other setting), a longer retention is never
shortened, and rollback puts the old value back (twice is harmless)."""

from __future__ import annotations

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.redshift_settings import AllowVersionUpgrade, SnapshotRetention
from tests.factories import REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

CLUSTER = "analytics"


@pytest.fixture
def redshift(moto_aws):
    return boto3.client("redshift", region_name=REGION)


def make_cluster(redshift, retention: int = 1, upgrades: bool = False) -> None:
    redshift.create_cluster(
        ClusterIdentifier=CLUSTER, NodeType="ra3.xlplus", MasterUsername="admin", MasterUserPassword="Correct9Horse",
        ClusterType="single-node", AutomatedSnapshotRetentionPeriod=retention, AllowVersionUpgrade=upgrades,
        PubliclyAccessible=False, Tags=[{"Key": "env", "Value": "prod"}])


def cluster(redshift) -> dict:
    return redshift.describe_clusters(ClusterIdentifier=CLUSTER)["Clusters"][0]


@pytest.mark.parametrize(("remediator_class", "rule_id", "setting", "before_value", "after_value", "other"), [
    (SnapshotRetention, "Redshift.3", "AutomatedSnapshotRetentionPeriod", 1, 7, "AllowVersionUpgrade"),
    (AllowVersionUpgrade, "Redshift.6", "AllowVersionUpgrade", False, True, "AutomatedSnapshotRetentionPeriod"),
])
def test_setting_is_changed_and_the_rest_kept(target: Target, sessions: AssumedSessions, redshift, remediator_class,
                                              rule_id, setting, before_value, after_value, other) -> None:
    make_cluster(redshift)
    remediator, finding = remediator_class(), make_finding(rule_id, "AwsRedshiftCluster", CLUSTER)
    calls = record_calls(target.client("redshift"))
    kept = cluster(redshift)[other]

    before = remediator.assess(target, finding)
    assert not before.compliant and before.tags == {"env": "prod"}
    assert before.changes == [f"set {setting}={after_value} on Redshift cluster {CLUSTER} (was {before_value})"]
    remediator.apply(target, finding, before)

    now = cluster(redshift)
    assert now[setting] == after_value
    assert (now[other], now["PubliclyAccessible"], now["NodeType"]) == (kept, False, "ra3.xlplus")
    after = remediator.assess(target, finding)
    assert after.compliant and after.changes == []
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {setting: after_value}
    assert calls == ["DescribeClusters", "ModifyCluster", "DescribeClusters"]

    assert remediator.restore(target, finding, before.pre_state) == [
        f"set {setting} back to {before_value} on Redshift cluster {CLUSTER}"]
    assert remediator.restore(target, finding, before.pre_state) == [
        f"{setting} of Redshift cluster {CLUSTER} is already {before_value}"]
    assert cluster(redshift)[setting] == before_value
    assert iam_actions(sessions.api_calls) == set(remediator_class.permissions)


def test_a_longer_retention_is_compliant_and_never_shortened(target: Target, redshift) -> None:
    make_cluster(redshift, retention=14)

    assert SnapshotRetention().assess(target, make_finding("Redshift.3", "AwsRedshiftCluster", CLUSTER)).compliant
    assert not SnapshotRetention({"min_retention_days": 21}).assess(
        target, make_finding("Redshift.3", "AwsRedshiftCluster", CLUSTER)).compliant


def test_missing_cluster_is_refused(target: Target, redshift) -> None:
    with pytest.raises(RemediationError, match="Redshift cluster gone not found"):
        AllowVersionUpgrade().assess(target, make_finding("Redshift.6", "AwsRedshiftCluster", "gone"))
