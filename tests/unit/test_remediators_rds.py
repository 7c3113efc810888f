"""RDS remediators against moto: RDS.13 / RDS.2 (instance settings), RDS.1 (public snapshots), RDS.3 (encrypted
replacement). Each: non-compliant → apply → compliant (independent reads), read-only assess, rollback."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.model import Target
from functions.remediators.base import Assessment, RemediationError
from functions.remediators.rds import (
    AutoMinorVersionUpgrade,
    EncryptedReplacement,
    InstanceNotPublic,
    SnapshotNotPublic,
)
from tests.factories import ACCOUNT, REGION, make_finding

DB = "orders-db"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/cspm-automation"
SHARED_ACCOUNT = "111122223333"


def record_calls(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def record_params(client, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` request the client sends from now on."""
    sent: list[dict[str, Any]] = []
    client.meta.events.register(f"before-parameter-build.rds.{operation}", lambda params, **_: sent.append(params))
    return sent


def instance_finding(rule_id: str, identifier: str = DB, **overrides: Any):
    return make_finding(rule_id, "AwsRdsDbInstance", identifier, **overrides)


def engine_pre_state(assessment: Assessment) -> dict[str, Any]:
    """What the engine records for rollback: the assessment's pre_state plus what apply created."""
    created = assessment.context.get("created")
    return {**assessment.pre_state, **({"created": created} if created else {})}


@pytest.fixture
def rds(moto_aws):
    return boto3.client("rds", region_name=REGION)


def create_instance(rds, identifier: str = DB, **settings: Any) -> dict[str, Any]:
    return rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t3.small",
        Engine="postgres",
        MasterUsername="admin_user",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        **settings,
    )["DBInstance"]


def read_instance(rds, identifier: str = DB) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


# -- RDS.13 and RDS.2: one setting flipped in place ---------------------------------------------------------------

SETTINGS = [
    pytest.param(AutoMinorVersionUpgrade, "RDS.13", "AutoMinorVersionUpgrade", False, id="RDS.13"),
    pytest.param(InstanceNotPublic, "RDS.2", "PubliclyAccessible", True, id="RDS.2"),
]


@pytest.mark.parametrize(("remediator_class", "rule_id", "setting", "bad_value"), SETTINGS)
def test_instance_setting_is_remediated_verified_and_then_noop(
    target: Target, rds, remediator_class, rule_id: str, setting: str, bad_value: bool
) -> None:
    create_instance(rds, Tags=[{"Key": "team", "Value": "orders"}], **{setting: bad_value})
    remediator, finding = remediator_class(), instance_finding(rule_id)

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.changes == [f"set {setting}={not bad_value} on RDS DB instance {DB}"]
    assert before.pre_state == {setting: bad_value}
    assert before.tags == {"team": "orders"}
    assert read_instance(rds)[setting] is bad_value

    remediator.apply(target, finding, before)

    assert read_instance(rds)[setting] is (not bad_value)
    after = remediator.assess(target, finding)
    assert after.compliant and after.changes == []
    assert after.pre_state == {setting: not bad_value}  # the live value: what rollback compares with the run's
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {setting: not bad_value}
    assert remediator.assess(target, finding).compliant  # a rerun is a noop


@pytest.mark.parametrize(("remediator_class", "rule_id", "setting", "bad_value"), SETTINGS)
def test_instance_setting_assess_is_read_only(
    target: Target, rds, remediator_class, rule_id: str, setting: str, bad_value: bool
) -> None:
    create_instance(rds, **{setting: bad_value})
    calls = record_calls(target.client("rds"))

    assert not remediator_class().assess(target, instance_finding(rule_id)).compliant

    assert calls == ["DescribeDBInstances"]
    assert read_instance(rds)[setting] is bad_value


@pytest.mark.parametrize(("remediator_class", "rule_id", "setting", "bad_value"), SETTINGS)
def test_instance_setting_restore_puts_back_the_old_value_and_is_idempotent(
    target: Target, rds, remediator_class, rule_id: str, setting: str, bad_value: bool
) -> None:
    create_instance(rds, **{setting: bad_value})
    remediator, finding = remediator_class(), instance_finding(rule_id)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    first = remediator.restore(target, finding, engine_pre_state(assessment))
    second = remediator.restore(target, finding, engine_pre_state(assessment))

    assert read_instance(rds)[setting] is bad_value
    assert first == [f"set {setting} back to {bad_value} on RDS DB instance {DB}"]
    assert second == [f"{setting} of RDS DB instance {DB} is already {bad_value}"]


@pytest.mark.parametrize(("apply_immediately", "params"), [(False, None), (True, {"apply_immediately": True})])
def test_apply_immediately_is_off_unless_configured(
    target: Target, rds, apply_immediately: bool, params: dict[str, Any] | None
) -> None:
    """Both settings apply at once anyway; ApplyImmediately would also push other pending modifications."""
    create_instance(rds, PubliclyAccessible=True)
    sent = record_params(target.client("rds"), "ModifyDBInstance")
    remediator, finding = InstanceNotPublic(params), instance_finding("RDS.2")

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert sent == [{"DBInstanceIdentifier": DB, "ApplyImmediately": apply_immediately, "PubliclyAccessible": False}]


def test_instance_arn_as_resource_id(target: Target, rds) -> None:
    arn = create_instance(rds, AutoMinorVersionUpgrade=False)["DBInstanceArn"]
    remediator, finding = AutoMinorVersionUpgrade(), instance_finding("RDS.13", arn)

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert read_instance(rds)["AutoMinorVersionUpgrade"] is True


@pytest.mark.parametrize("remediator_class", [AutoMinorVersionUpgrade, InstanceNotPublic, EncryptedReplacement])
def test_missing_instance_is_a_remediation_error(target: Target, rds, remediator_class) -> None:
    with pytest.raises(RemediationError, match="RDS DB instance no-such-db not found"):
        remediator_class().assess(target, instance_finding(remediator_class.rules[0].rule_id, "no-such-db"))


@pytest.mark.parametrize(
    ("remediator_class", "document"),
    [
        (AutoMinorVersionUpgrade, "AWSConfigRemediation-EnableMinorVersionUpgradeOnRDSDBInstance"),
        (InstanceNotPublic, "AWSConfigRemediation-DisablePublicAccessToRDSInstance"),
    ],
)
def test_runbook_takes_the_dbi_resource_id_from_the_security_hub_details(remediator_class, document: str) -> None:
    runbook = remediator_class.runbook
    details = {"AwsRdsDbInstance": {"DBInstanceIdentifier": DB, "DbiResourceId": "db-ABCDEFGHIJKLMNOP"}}
    finding = instance_finding(
        remediator_class.rules[0].rule_id, raw={"Resources": [{"Type": "AwsRdsDbInstance", "Details": details}]}
    )

    assert runbook is not None and runbook.document == document
    assert runbook.parameters(finding, ROLE) == {
        "DbiResourceId": ["db-ABCDEFGHIJKLMNOP"],
        "AutomationAssumeRole": [ROLE],
    }
    with pytest.raises(RemediationError, match="use executor boto3"):
        runbook.parameters(instance_finding(remediator_class.rules[0].rule_id, source="netskope"), ROLE)


def test_declarations() -> None:
    assert [(r.rule_id, r.cis, r.disruptive) for r in AutoMinorVersionUpgrade.rules] == [("RDS.13", ("2.3.2",), False)]
    assert [(r.rule_id, r.cis, r.disruptive) for r in InstanceNotPublic.rules] == [("RDS.2", ("2.3.3",), True)]
    assert [(r.rule_id, r.cis, r.disruptive) for r in EncryptedReplacement.rules] == [("RDS.3", ("2.3.1",), True)]
    assert [(r.rule_id, r.disruptive) for r in SnapshotNotPublic.rules] == [("RDS.1", False)]
    assert InstanceNotPublic.permissions == ("rds:DescribeDBInstances", "rds:ModifyDBInstance")
    assert SnapshotNotPublic.resource_types == ("AwsRdsDbSnapshot", "AwsRdsDbClusterSnapshot", "AwsRdsDbInstance")
    assert AutoMinorVersionUpgrade.reversible and InstanceNotPublic.reversible and SnapshotNotPublic.reversible
    assert not EncryptedReplacement.reversible
    assert EncryptedReplacement.verifies_in_place is False


# -- RDS.1: public snapshots --------------------------------------------------------------------------------------

SNAPSHOT = "orders-db-snapshot-2024-06-01"


def instance_snapshot(rds) -> tuple[str, str]:
    create_instance(rds)
    rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=SNAPSHOT)
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier=SNAPSHOT, AttributeName="restore", ValuesToAdd=["all", SHARED_ACCOUNT]
    )
    return "AwsRdsDbSnapshot", SNAPSHOT


def cluster_snapshot(rds) -> tuple[str, str]:
    rds.create_db_cluster(
        DBClusterIdentifier="orders-cluster",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="not-a-real-password",
    )
    rds.create_db_cluster_snapshot(DBClusterIdentifier="orders-cluster", DBClusterSnapshotIdentifier=SNAPSHOT)
    rds.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier=SNAPSHOT, AttributeName="restore", ValuesToAdd=["all", SHARED_ACCOUNT]
    )
    return "AwsRdsDbClusterSnapshot", SNAPSHOT


def shared_with(rds, resource_type: str) -> list[str]:
    """An independent read of the snapshot's restore attribute."""
    if resource_type == "AwsRdsDbSnapshot":
        result = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=SNAPSHOT)["DBSnapshotAttributesResult"]
        attributes = result["DBSnapshotAttributes"]
    else:
        result = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=SNAPSHOT)
        attributes = result["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
    return sorted(v for a in attributes if a["AttributeName"] == "restore" for v in a["AttributeValues"])


@pytest.mark.parametrize("make_snapshot", [instance_snapshot, cluster_snapshot])
def test_public_snapshot_is_made_private_keeping_account_shares(target: Target, rds, make_snapshot) -> None:
    resource_type, snapshot = make_snapshot(rds)
    remediator, finding = SnapshotNotPublic(), make_finding("RDS.1", resource_type, snapshot)

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state == {"RestoreValuesRemoved": ["all"]}
    assert before.changes[0].startswith('remove "all" from the restore attribute of DB')

    remediator.apply(target, finding, before)

    assert shared_with(rds, resource_type) == [SHARED_ACCOUNT]
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []


@pytest.mark.parametrize("make_snapshot", [instance_snapshot, cluster_snapshot])
def test_snapshot_restore_shares_it_with_everyone_again(target: Target, rds, make_snapshot) -> None:
    resource_type, snapshot = make_snapshot(rds)
    remediator, finding = SnapshotNotPublic(), make_finding("RDS.1", resource_type, snapshot)
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    first = remediator.restore(target, finding, engine_pre_state(assessment))
    second = remediator.restore(target, finding, engine_pre_state(assessment))

    assert shared_with(rds, resource_type) == sorted(["all", SHARED_ACCOUNT])
    assert first[0].startswith("shared DB") and first[0].endswith("with ['all'] again")
    assert "is already shared with ['all']" in second[0]


def test_snapshot_assess_is_read_only(target: Target, rds) -> None:
    resource_type, snapshot = instance_snapshot(rds)
    calls = record_calls(target.client("rds"))

    assert not SnapshotNotPublic().assess(target, make_finding("RDS.1", resource_type, snapshot)).compliant

    assert calls == ["DescribeDBSnapshotAttributes", "DescribeDBSnapshots"]  # the latter: tags (the finding has none)
    assert shared_with(rds, resource_type) == sorted(["all", SHARED_ACCOUNT])


def test_instance_finding_makes_its_public_manual_and_cluster_snapshots_private(target: Target, rds) -> None:
    """Netskope's RDS.1 ("RDS Instances do not have Publicly Accessible Snapshots") names the instance: its public
    manual snapshots and its cluster's are made private; shares with named accounts and private snapshots stay,
    and other instances' public snapshots are not touched (they have their own findings)."""
    rds.create_db_cluster(
        DBClusterIdentifier="orders-cluster", Engine="aurora-postgresql",
        MasterUsername="admin_user", MasterUserPassword="not-a-real-password",
    )
    rds.create_db_instance(
        DBInstanceIdentifier=DB, DBInstanceClass="db.r5.large", Engine="aurora-postgresql",
        DBClusterIdentifier="orders-cluster",
    )
    create_instance(rds, "other-db")
    for instance, name, shares in [(DB, "pub", ["all", SHARED_ACCOUNT]), (DB, "priv", [SHARED_ACCOUNT]),
                                   ("other-db", "other-pub", ["all"])]:
        rds.create_db_snapshot(DBInstanceIdentifier=instance, DBSnapshotIdentifier=name)
        rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=shares)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="orders-cluster", DBClusterSnapshotIdentifier="cpub")
    rds.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier="cpub", AttributeName="restore", ValuesToAdd=["all"]
    )

    def shares(name: str) -> list[str]:
        if name == "cpub":
            result = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=name)
            attributes = result["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
        else:
            result = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=name)["DBSnapshotAttributesResult"]
            attributes = result["DBSnapshotAttributes"]
        return sorted(v for a in attributes if a["AttributeName"] == "restore" for v in a["AttributeValues"])

    remediator = SnapshotNotPublic()
    finding = make_finding("RDS.1", "AwsRdsDbInstance", DB, source="netskope", tags={})

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.pre_state["Snapshots"] == [
        {"ResourceType": "AwsRdsDbSnapshot", "Identifier": "pub"},
        {"ResourceType": "AwsRdsDbClusterSnapshot", "Identifier": "cpub"},
    ]
    remediator.apply(target, finding, before)

    assert (shares("pub"), shares("priv"), shares("cpub")) == ([SHARED_ACCOUNT], [SHARED_ACCOUNT], [])
    assert shares("other-pub") == ["all"]
    assert remediator.assess(target, finding).compliant

    lines = remediator.restore(target, finding, engine_pre_state(before))
    assert (shares("pub"), shares("cpub")) == (sorted(["all", SHARED_ACCOUNT]), ["all"])
    assert lines == ["shared DB snapshot pub with ['all'] again", "shared DB cluster snapshot cpub with ['all'] again"]


EXCLUDE = {"cspm-remediation:exclude": "true"}


@pytest.mark.parametrize("on", ["instance", "snapshot"])
def test_netskope_rds1_finding_on_a_tagged_resource_is_excluded(target: Target, rds, on: str) -> None:
    """The exclusion tag holds for a Netskope finding (no tags): on the instance (DescribeDBInstances' TagList) or
    on the snapshot (DescribeDBSnapshots' TagList); nothing is written under a global enforce."""
    from functions.engine.config import config_from_dict
    from functions.engine.engine import Engine
    from functions.engine.sessions import AssumedSessions

    tags = [{"Key": k, "Value": v} for k, v in EXCLUDE.items()]
    create_instance(rds, Tags=tags if on == "instance" else [])
    rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=SNAPSHOT,
                           Tags=tags if on == "snapshot" else [])
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=SNAPSHOT, AttributeName="restore", ValuesToAdd=["all"])
    resource_type, resource_id = ("AwsRdsDbInstance", DB) if on == "instance" else ("AwsRdsDbSnapshot", SNAPSHOT)
    finding = make_finding("RDS.1", resource_type, resource_id, source="netskope", tags={})

    (result,) = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply").run([finding])

    assert result.outcome == "excluded"
    assert shared_with(rds, "AwsRdsDbSnapshot") == ["all"]


@pytest.mark.parametrize("resource_type", ["AwsRdsDbSnapshot", "AwsRdsDbClusterSnapshot"])
def test_missing_snapshot_is_a_remediation_error(target: Target, rds, resource_type: str) -> None:
    with pytest.raises(RemediationError, match="snapshot no-such-snapshot not found"):
        SnapshotNotPublic().assess(target, make_finding("RDS.1", resource_type, "no-such-snapshot"))


# -- RDS.3: encrypted replacement ---------------------------------------------------------------------------------

OPT_IN = {"allow_reencryption": True}
COPY = f"{DB}-encrypted"


@pytest.fixture
def placed_instance(rds) -> dict[str, Any]:
    """An unencrypted instance in its own subnet group, security group and parameter group."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]]
    group_id = ec2.create_security_group(GroupName="orders-db", Description="orders db", VpcId=vpc_id)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName="orders", DBSubnetGroupDescription="orders", SubnetIds=subnets[:2])
    rds.create_db_parameter_group(
        DBParameterGroupName="orders-pg", DBParameterGroupFamily="postgres16", Description="x"
    )
    return create_instance(
        rds,
        DBSubnetGroupName="orders",
        VpcSecurityGroupIds=[group_id],
        DBParameterGroupName="orders-pg",
        Tags=[{"Key": "team", "Value": "orders"}],
    )


def manual_snapshots(rds) -> dict[str, bool]:
    return {
        s["DBSnapshotIdentifier"]: s["Encrypted"]
        for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def instance_ids(rds) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])


def test_encrypted_instance_is_compliant(target: Target, rds) -> None:
    create_instance(rds, StorageEncrypted=True)

    assessment = EncryptedReplacement(OPT_IN).assess(target, instance_finding("RDS.3"))

    assert assessment.compliant and assessment.changes == []


def test_without_opt_in_the_plan_is_shown_and_apply_refuses(target: Target, rds, placed_instance) -> None:
    remediator, finding = EncryptedReplacement(), instance_finding("RDS.3")

    assessment = remediator.assess(target, finding)

    assert not assessment.compliant
    assert assessment.changes[:3] == [
        f"snapshot RDS DB instance {DB} as {DB}-cspm-unencrypted",
        f"copy it encrypted with KMS key alias/aws/rds as {DB}-cspm-encrypted",
        f"restore that as new DB instance {COPY} with the class, subnet group, security groups, parameter group, "
        f"port, storage, deletion protection, IAM authentication, log exports and backup retention of {DB} "
        "(the original stays as it is)",
    ]
    assert "allow_reencryption: true" in assessment.changes[3]
    assert assessment.pre_state == {}
    with pytest.raises(RemediationError, match="allow_reencryption: true"):
        remediator.apply(target, finding, assessment)
    assert manual_snapshots(rds) == {}
    assert instance_ids(rds) == [DB]


def test_the_copy_keeps_port_storage_protections_log_exports_and_backups(target: Target, rds) -> None:
    """RestoreDBInstanceFromDBSnapshot would otherwise give the engine's defaults: port 5432, no deletion
    protection, no IAM authentication, no log exports, gp2 storage, 1-day backups. Each is read back on the copy."""
    create_instance(
        rds, Port=6543, DeletionProtection=True, EnableIAMDatabaseAuthentication=True,
        EnableCloudwatchLogsExports=["postgresql"], StorageType="io1", Iops=1000, BackupRetentionPeriod=14,
    )
    sent = record_params(target.client("rds"), "RestoreDBInstanceFromDBSnapshot")
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")

    remediator.apply(target, finding, remediator.assess(target, finding))

    (request,) = sent
    assert {k: request[k] for k in ("Port", "DeletionProtection", "EnableIAMDatabaseAuthentication",
                                    "EnableCloudwatchLogsExports", "StorageType", "Iops",
                                    "BackupRetentionPeriod")} == {
        "Port": 6543, "DeletionProtection": True, "EnableIAMDatabaseAuthentication": True,
        "EnableCloudwatchLogsExports": ["postgresql"], "StorageType": "io1", "Iops": 1000,
        "BackupRetentionPeriod": 14,
    }
    copy = read_instance(rds, COPY)
    assert (copy["Endpoint"]["Port"], copy["DeletionProtection"], copy["StorageType"]) == (6543, True, "io1")
    assert copy["EnabledCloudwatchLogsExports"] == ["postgresql"]


def test_gp3_below_400_gib_takes_the_baseline() -> None:
    from functions.remediators.rds import _restore_settings

    small = {"DBInstanceClass": "db.t3.small", "StorageType": "gp3", "AllocatedStorage": 20, "Iops": 3000,
             "StorageThroughput": 125}
    assert "Iops" not in _restore_settings(small) and "StorageThroughput" not in _restore_settings(small)
    large = {**small, "AllocatedStorage": 500, "Iops": 12000, "StorageThroughput": 500}
    assert (_restore_settings(large)["Iops"], _restore_settings(large)["StorageThroughput"]) == (12000, 500)


def test_opt_in_builds_an_encrypted_copy_and_leaves_the_original_alone(
    target: Target, rds, placed_instance: dict[str, Any]
) -> None:
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")
    assessment = remediator.assess(target, finding)

    remediator.apply(target, finding, assessment)

    assert assessment.context["created"] == {
        "db_snapshot": f"{DB}-cspm-unencrypted",
        "encrypted_db_snapshot": f"{DB}-cspm-encrypted",
        "db_instance": COPY,
    }
    assert manual_snapshots(rds) == {f"{DB}-cspm-unencrypted": False, f"{DB}-cspm-encrypted": True}
    copy, original = read_instance(rds, COPY), read_instance(rds, DB)
    assert copy["StorageEncrypted"] is True
    for same in ("DBInstanceClass", "VpcSecurityGroups", "DBParameterGroups"):
        assert copy[same] == original[same]
    assert copy["DBSubnetGroup"]["DBSubnetGroupName"] == "orders"
    assert {t["Key"]: t["Value"] for t in copy["TagList"]} == {
        "team": "orders",
        "cspm-remediation:encrypted-copy-of": DB,
    }
    unchanged = set(placed_instance) - {"DBInstanceStatus", "LatestRestorableTime"}
    assert {k: original[k] for k in unchanged} == {k: placed_instance[k] for k in unchanged}
    assert original["StorageEncrypted"] is False


def test_after_the_copy_the_original_stays_non_compliant_and_reruns_create_nothing(
    target: Target, rds, placed_instance
) -> None:
    """The finding is about the original: it stays open until a person switches over (hence verifies_in_place)."""
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")
    remediator.apply(target, finding, remediator.assess(target, finding))

    again = remediator.assess(target, finding)
    remediator.apply(target, finding, again)

    assert not again.compliant
    assert again.changes == [
        f"encrypted copy {COPY} exists (available): a person switches clients over to it and retires {DB}; "
        "RDS.3 never modifies or deletes the original"
    ]
    assert again.context["created"] == {}
    assert instance_ids(rds) == [DB, COPY]
    assert len(manual_snapshots(rds)) == 2
    assert remediator.assess(target, instance_finding("RDS.3", COPY)).compliant


def test_a_later_run_continues_from_what_exists(target: Target, rds, placed_instance) -> None:
    rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier=f"{DB}-cspm-unencrypted")
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")

    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    assert assessment.changes[0].startswith("copy it encrypted")
    assert list(assessment.context["created"]) == ["encrypted_db_snapshot", "db_instance"]
    assert read_instance(rds, COPY)["StorageEncrypted"] is True


@pytest.mark.parametrize(("status", "error"), [("creating", None), ("failed", "failed in RDS")])
def test_apply_stops_at_a_step_aws_is_still_working_on(
    target: Target, rds, placed_instance, status: str, error: str | None
) -> None:
    """moto finishes every step at once; AWS takes minutes. A snapshot still being created ends this run."""
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")
    assessment = remediator.assess(target, finding)
    assessment.context["progress"]["db_snapshot"] = status
    calls = record_calls(target.client("rds"))

    if error:
        with pytest.raises(RemediationError, match=error):
            remediator.apply(target, finding, assessment)
    else:
        remediator.apply(target, finding, assessment)

    assert calls == []
    assert assessment.context["created"] == {}


def test_custom_kms_key_encrypts_the_copy(target: Target, rds, placed_instance) -> None:
    key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    remediator, finding = EncryptedReplacement({**OPT_IN, "kms_key_id": key_arn}), instance_finding("RDS.3")

    remediator.apply(target, finding, remediator.assess(target, finding))

    snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=f"{DB}-cspm-encrypted")["DBSnapshots"][0]
    assert snapshot["KmsKeyId"] == key_arn
    assert read_instance(rds, COPY)["KmsKeyId"] == key_arn


def test_assess_is_read_only(target: Target, rds, placed_instance) -> None:
    calls = record_calls(target.client("rds"))

    assert not EncryptedReplacement(OPT_IN).assess(target, instance_finding("RDS.3")).compliant

    assert calls == ["DescribeDBInstances", "DescribeDBSnapshots", "DescribeDBInstances"]
    assert manual_snapshots(rds) == {}


def test_refuses_an_aurora_member(target: Target, rds) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier="orders-cluster",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="not-a-real-password",
    )
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        DBInstanceClass="db.r5.large",
        Engine="aurora-postgresql",
        DBClusterIdentifier="orders-cluster",
    )
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")

    assessment = remediator.assess(target, finding)

    with pytest.raises(RemediationError, match="Aurora cluster orders-cluster"):
        remediator.apply(target, finding, assessment)


@pytest.mark.parametrize("encrypted", [False, True])
def test_refuses_when_an_unrelated_instance_has_the_copy_name(target: Target, rds, encrypted: bool) -> None:
    create_instance(rds)
    create_instance(rds, COPY, StorageEncrypted=encrypted)
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")

    with pytest.raises(RemediationError, match=f"exists without tag cspm-remediation:encrypted-copy-of={DB}"):
        remediator.apply(target, finding, remediator.assess(target, finding))
    assert manual_snapshots(rds) == {}


def test_restore_refuses_and_names_what_was_created(target: Target, rds, placed_instance) -> None:
    remediator, finding = EncryptedReplacement(OPT_IN), instance_finding("RDS.3")
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)

    with pytest.raises(RemediationError, match=f"db_instance {COPY}"):
        remediator.restore(target, finding, engine_pre_state(assessment))
    assert instance_ids(rds) == [DB, COPY]
