"""SSM.4 against moto: a public document stops being public, read back; a second assess is compliant; its share
with a named account and its content survive; rollback makes it public again. SSM.7 with a botocore Stubber (moto
has no SSM service settings)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.ssm_documents import PUBLIC_SHARING_SETTING, BlockPublicSharing, DocumentNotPublic
from tests.factories import make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions

REGION = "us-east-1"
DOC = "RestartWeb"
CONTENT = json.dumps({"schemaVersion": "2.2", "description": "restart", "mainSteps": [
    {"action": "aws:runShellScript", "name": "restart", "inputs": {"runCommand": ["systemctl restart web"]}}]})


@pytest.fixture
def ssm(moto_aws):
    client = boto3.client("ssm", region_name=REGION)
    client.create_document(Name=DOC, Content=CONTENT, DocumentType="Command", DocumentFormat="JSON")
    client.modify_document_permission(Name=DOC, PermissionType="Share", AccountIdsToAdd=["All", "111122223333"])
    return client


def shared(ssm) -> set[str]:
    return set(ssm.describe_document_permission(Name=DOC, PermissionType="Share")["AccountIds"])


def finding(**overrides):
    return make_finding("SSM.4", "AwsSsmDocument", DOC, **{"tags": {"team": "ops"}, **overrides})


def test_public_document_becomes_private_and_rollback_shares_it_again(
    target: Target, sessions: AssumedSessions, ssm
) -> None:
    remediator = DocumentNotPublic()

    before = remediator.assess(target, finding(tags={}))
    assert not before.compliant
    assert before.changes == [f"stop sharing SSM document {DOC} publicly (still shared with 111122223333)"]
    remediator.apply(target, finding(), before)

    assert {a.lower() for a in shared(ssm)} == {"111122223333"}
    assert remediator.assess(target, finding()).compliant
    assert json.loads(ssm.get_document(Name=DOC)["Content"]) == json.loads(CONTENT)

    assert remediator.restore(target, finding(), before.pre_state) == [f"shared SSM document {DOC} publicly again"]
    assert {a.lower() for a in shared(ssm)} == {"all", "111122223333"}
    assert remediator.restore(target, finding(), before.pre_state) == [f"SSM document {DOC} is already public"]
    # tag:GetResources: the engine's batched tag read (test_batched_tags_more.py)
    assert iam_actions(sessions.api_calls) | {"tag:GetResources"} == set(DocumentNotPublic.permissions)
    assert CATALOG["SSM.4"].rule.disruption == "access"


def test_missing_document_is_refused(target: Target, ssm) -> None:
    with pytest.raises(RemediationError, match="SSM document Gone not found"):
        DocumentNotPublic().assess(target, make_finding("SSM.4", "AwsSsmDocument", "Gone"))


def _stubbed() -> tuple[Target, object]:
    client = boto3.client("ssm", region_name=REGION)
    return Target("123456789012", REGION, "aws", _client_for=lambda service, region: client), client


def _setting(value: str) -> dict:
    return {"ServiceSetting": {"SettingId": PUBLIC_SHARING_SETTING, "SettingValue": value, "Status": "Customized"}}


@pytest.mark.stubber
def test_block_public_sharing_is_turned_on_and_rolled_back() -> None:
    """moto has no SSM service settings: GetServiceSetting / UpdateServiceSetting are stubbed with their documented
    shapes (the setting id and values are AWS's)."""
    target, client = _stubbed()
    remediator, finding = BlockPublicSharing(), make_finding("SSM.7", "AwsAccount", "123456789012")
    update = {"SettingId": PUBLIC_SHARING_SETTING}
    with Stubber(client) as stub:
        stub.add_response("get_service_setting", _setting("Enable"), update)
        stub.add_response("update_service_setting", {}, {**update, "SettingValue": "Disable"})
        stub.add_response("get_service_setting", _setting("Disable"), update)
        stub.add_response("get_service_setting", _setting("Disable"), update)
        stub.add_response("update_service_setting", {}, {**update, "SettingValue": "Enable"})
        before = remediator.assess(target, finding)
        assert before.changes == ["block public sharing of SSM documents in account 123456789012 (us-east-1)"]
        remediator.apply(target, finding, before)
        after = remediator.assess(target, finding)
        assert after.compliant and remediator.changed_fields(before.pre_state, after.pre_state) == {
            "SettingValue": "Disable"}
        assert remediator.restore(target, finding, before.pre_state) == [
            "set the public sharing setting of SSM documents back to Enable"]
        stub.assert_no_pending_responses()
