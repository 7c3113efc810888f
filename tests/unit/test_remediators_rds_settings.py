"""RDS.8, RDS.7 and RDS.16 against moto: the one setting is turned on and read back, a second assess is compliant,
the other settings survive (what the finding is not about), deletion is then refused, and rollback puts the old
value back (twice is harmless)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.rds_settings import (
    ClusterCopyTagsToSnapshot,
    ClusterDeletionProtection,
    InstanceDeletionProtection,
    InstanceMultiAz,
)
from tests.factories import make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

REGION = "us-east-1"


@pytest.fixture
def rds(moto_aws):
    return boto3.client("rds", region_name=REGION)


def make_instance(rds, name: str = "billing-db") -> str:
    rds.create_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="admin1",
        MasterUserPassword="correct-horse-9", AllocatedStorage=20, BackupRetentionPeriod=9,
        AutoMinorVersionUpgrade=False, Tags=[{"Key": "env", "Value": "prod"}],
    )
    return name


def make_cluster(rds, name: str = "orders-aurora") -> str:
    rds.create_db_cluster(
        DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="admin1",
        MasterUserPassword="correct-horse-9", BackupRetentionPeriod=9, Tags=[{"Key": "env", "Value": "prod"}],
    )
    return name


def instance(rds, name: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def cluster(rds, name: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]


def test_instance_deletion_protection(target: Target, sessions: AssumedSessions, rds) -> None:
    name = make_instance(rds)
    remediator, finding = InstanceDeletionProtection(), make_finding("RDS.8", "AwsRdsDbInstance", name)
    calls = record_calls(target.client("rds"))

    before = remediator.assess(target, finding)
    assert not before.compliant and before.tags == {"env": "prod"}
    assert before.changes == [f"set DeletionProtection=True on RDS DB instance {name} (deleting it then needs "
                              "DeletionProtection turned off first)"]
    remediator.apply(target, finding, before)

    assert instance(rds, name)["DeletionProtection"] is True
    after = remediator.assess(target, finding)
    assert after.compliant and after.changes == []
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {"DeletionProtection": True}
    assert calls == ["DescribeDBInstances", "ModifyDBInstance", "DescribeDBInstances"]
    kept = instance(rds, name)
    assert (kept["BackupRetentionPeriod"], kept["AutoMinorVersionUpgrade"]) == (9, False)
    with pytest.raises(ClientError, match="deletion protection"):
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)

    assert remediator.restore(target, finding, before.pre_state) == [
        f"set DeletionProtection back to False on RDS DB instance {name}"]
    assert remediator.restore(target, finding, before.pre_state) == [
        f"DeletionProtection of RDS DB instance {name} is already False"]
    assert instance(rds, name)["DeletionProtection"] is False
    assert iam_actions(sessions.api_calls) == set(InstanceDeletionProtection.permissions)


@pytest.mark.parametrize(("remediator_class", "rule_id", "setting"), [
    (ClusterDeletionProtection, "RDS.7", "DeletionProtection"),
    (ClusterCopyTagsToSnapshot, "RDS.16", "CopyTagsToSnapshot"),
])
def test_cluster_settings(target: Target, sessions: AssumedSessions, rds, remediator_class, rule_id: str,
                          setting: str) -> None:
    name = make_cluster(rds)
    other = {"DeletionProtection": "CopyTagsToSnapshot", "CopyTagsToSnapshot": "DeletionProtection"}[setting]
    remediator, finding = remediator_class(), make_finding(rule_id, "AwsRdsDbCluster", name)
    calls = record_calls(target.client("rds"))

    before = remediator.assess(target, finding)
    assert not before.compliant and before.pre_state == {setting: False}
    assert before.changes[0].startswith(f"set {setting}=True on RDS DB cluster {name}")
    remediator.apply(target, finding, before)

    assert cluster(rds, name)[setting] is True
    after = remediator.assess(target, finding)
    assert after.compliant and after.changes == []
    assert calls == ["DescribeDBClusters", "ModifyDBCluster", "DescribeDBClusters"]
    kept = cluster(rds, name)
    assert (kept["BackupRetentionPeriod"], kept[other]) == (9, False)  # the other setting is not this finding's

    lines = remediator.restore(target, finding, before.pre_state)
    assert lines == [f"set {setting} back to False on RDS DB cluster {name}"]
    assert cluster(rds, name)[setting] is False
    assert iam_actions(sessions.api_calls) == set(remediator_class.permissions)


def test_missing_resources_are_refused(target: Target, rds) -> None:
    with pytest.raises(RemediationError, match="RDS DB instance gone not found"):
        InstanceDeletionProtection().assess(target, make_finding("RDS.8", "AwsRdsDbInstance", "gone"))
    with pytest.raises(RemediationError, match="RDS DB cluster gone not found"):
        ClusterDeletionProtection().assess(target, make_finding("RDS.7", "AwsRdsDbCluster", "gone"))


def test_instance_multi_az(target: Target, sessions: AssumedSessions, rds) -> None:
    name = make_instance(rds, "ledger-db")
    remediator = InstanceMultiAz({"apply_immediately": True})
    finding = make_finding("RDS.5", "AwsRdsDbInstance", name)

    before = remediator.assess(target, finding)
    assert before.changes == [f"set MultiAZ=True on RDS DB instance {name} (a standby in another Availability Zone)"]
    remediator.apply(target, finding, before)

    now = instance(rds, name)
    assert (now["MultiAZ"], now["DeletionProtection"], now["BackupRetentionPeriod"]) == (True, False, 9)
    assert remediator.assess(target, finding).compliant
    assert remediator.restore(target, finding, before.pre_state) == [
        f"set MultiAZ back to False on RDS DB instance {name}"]
    assert instance(rds, name)["MultiAZ"] is False
    assert CATALOG["RDS.5"].rule.disruption == "cost"
