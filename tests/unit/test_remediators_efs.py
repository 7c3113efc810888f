"""EFS.1 against moto: notify by default; in dry-run/enforce it still reads (encrypted → noop) and apply refuses
with the manual plan, creating nothing."""

from __future__ import annotations

import boto3
import pytest

from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.efs import FileSystemEncryption
from tests.factories import REGION, make_finding


@pytest.fixture
def efs(moto_aws):
    return boto3.client("efs", region_name=REGION)


def file_system(efs, encrypted: bool) -> str:
    return efs.create_file_system(
        CreationToken=f"cspm-{encrypted}", Encrypted=encrypted, Tags=[{"Key": "team", "Value": "media"}]
    )["FileSystemId"]


def efs_finding(file_system_id: str):
    return make_finding("EFS.1", "AwsEfsFileSystem", file_system_id)


def test_unencrypted_file_system_gets_a_manual_plan_and_apply_refuses(target: Target, efs) -> None:
    file_system_id = file_system(efs, encrypted=False)
    remediator, finding = FileSystemEncryption(), efs_finding(file_system_id)
    calls: list[str] = []
    target.client("efs").meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    assessment = remediator.assess(target, finding)

    assert not assessment.compliant
    assert assessment.tags == {"team": "media"}
    assert assessment.changes[0].startswith(f"manual: create an encrypted file system like {file_system_id}")
    assert "AWS DataSync" in assessment.changes[0]
    with pytest.raises(RemediationError, match="needs a person") as refusal:
        remediator.apply(target, finding, assessment)
    assert "create-file-system --encrypted" in str(refusal.value)
    assert calls == ["DescribeFileSystems"]
    assert [fs["FileSystemId"] for fs in efs.describe_file_systems()["FileSystems"]] == [file_system_id]


def test_encrypted_file_system_is_compliant(target: Target, efs) -> None:
    assessment = FileSystemEncryption().assess(target, efs_finding(file_system(efs, encrypted=True)))

    assert assessment.compliant and assessment.changes == []


def test_missing_file_system_is_a_remediation_error(target: Target, efs) -> None:
    with pytest.raises(RemediationError, match="EFS file system fs-00000000 not found"):
        FileSystemEncryption().assess(target, efs_finding("fs-00000000"))


def test_notify_message_says_what_where_and_how() -> None:
    message = FileSystemEncryption().notify_message(efs_finding("fs-0123abcd"))

    assert message.startswith("EFS.1 — EFS.1 test finding — fs-0123abcd in account 123456789012 (us-east-1).")
    for step in (
        "--encrypted",
        "DataSync",
        "switch clients",
        "Delete the old file system",
        "elasticfilesystem:Encrypted",
    ):
        assert step in message


def test_declarations() -> None:
    rule = FileSystemEncryption.rules[0]
    assert (rule.rule_id, rule.cis, rule.default_mode) == ("EFS.1", ("2.4.1",), "notify")
    assert FileSystemEncryption.permissions == ("elasticfilesystem:DescribeFileSystems",)
    assert FileSystemEncryption.resource_types == ("AwsEfsFileSystem",)
    assert not FileSystemEncryption.reversible
    with pytest.raises(RemediationError, match="not reversible"):
        FileSystemEncryption().restore(None, efs_finding("fs-0123abcd"), {})  # type: ignore[arg-type]
