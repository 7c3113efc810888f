"""SSM.4 against moto: a public document stops being public, read back; a second assess is compliant; its share
with a named account and its content survive; rollback makes it public again."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.ssm_documents import DocumentNotPublic
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
    assert iam_actions(sessions.api_calls) == set(DocumentNotPublic.permissions)
    assert CATALOG["SSM.4"].rule.disruption == "access"


def test_missing_document_is_refused(target: Target, ssm) -> None:
    with pytest.raises(RemediationError, match="SSM document Gone not found"):
        DocumentNotPublic().assess(target, make_finding("SSM.4", "AwsSsmDocument", "Gone"))
