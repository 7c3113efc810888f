"""The ExternalId in the deployed functions: read from its Secrets Manager secret at AssumeRole, through the cache
(once per container), never logged; the CLI's id itself still works and wins."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest

from functions.aws_lambda import handlers
from functions.engine import sessions as sessions_module
from functions.engine.sessions import AssumedSessions, TargetUnavailable, external_id_from_secret
from functions.engine.settings import Settings

EXTERNAL_ID = "ext-canary-7f3a-never-logged"
TARGET_ACCOUNT = "210987654321"


@pytest.fixture
def secret(moto_aws, monkeypatch) -> str:
    monkeypatch.setattr(sessions_module, "_EXTERNAL_ID_CACHES", {})  # a cold start
    return boto3.client("secretsmanager").create_secret(Name="cspm/external-id", SecretString=EXTERNAL_ID)["ARN"]


def recorded(session: boto3.Session, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call made through clients of `session`."""
    calls: list[dict[str, Any]] = []
    session.events.register(f"provide-client-params.*.{operation}", lambda params, **_: calls.append(dict(params)))
    return calls


def test_assume_role_passes_the_id_read_from_the_secret_once(secret):
    base = boto3.Session()
    assumes = recorded(base, "AssumeRole")
    reads: list[str] = []
    client = boto3.client("secretsmanager")
    client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: reads.append("read"))
    sessions = AssumedSessions(base, role_name="CSPMRemediationRole",
                               external_id_provider=external_id_from_secret(secret, client=client))
    for account in (TARGET_ACCOUNT, "111111111111", "222222222222"):
        sessions.session_for(account)
    assert [call["ExternalId"] for call in assumes] == [EXTERNAL_ID] * 3
    assert reads == ["read"]  # aws-secretsmanager-caching: one read per refresh interval, not per AssumeRole


def test_the_lambda_runtime_reads_the_secret_named_in_its_environment(secret, monkeypatch):
    monkeypatch.setenv("REMEDIATION_ROLE_NAME", "CSPMRemediationRole")
    monkeypatch.setenv("REMEDIATION_EXTERNAL_ID_SECRET", secret)
    monkeypatch.delenv("REMEDIATION_EXTERNAL_ID", raising=False)
    runtime = handlers.Runtime.from_env()
    assert runtime.settings.external_id_secret == secret and runtime.sessions.external_id is None
    assumes = recorded(runtime.sessions._base, "AssumeRole")
    runtime.sessions.session_for(TARGET_ACCOUNT)
    assert assumes[0]["ExternalId"] == EXTERNAL_ID


def test_the_cli_id_itself_wins_and_the_secret_is_not_read(moto_aws):
    def unreadable() -> str:
        raise AssertionError("the secret must not be read when the id is given")

    base = boto3.Session()
    assumes = recorded(base, "AssumeRole")
    AssumedSessions(base, role_name="R", external_id="cli-id", external_id_provider=unreadable).session_for(
        TARGET_ACCOUNT)
    assert assumes[0]["ExternalId"] == "cli-id"
    settings = Settings.from_env({"REMEDIATION_EXTERNAL_ID": "cli-id"})
    assert settings.external_id == "cli-id" and settings.external_id_secret is None


def test_an_unreadable_secret_fails_the_account_with_a_reason_and_no_value(moto_aws, monkeypatch):
    monkeypatch.setattr(sessions_module, "_EXTERNAL_ID_CACHES", {})
    sessions = AssumedSessions(role_name="R", external_id_provider=external_id_from_secret("missing"))
    with pytest.raises(TargetUnavailable) as raised:
        sessions.session_for(TARGET_ACCOUNT)
    assert raised.value.code == "ExternalIdUnavailable"
    assert "cannot read the ExternalId from secret 'missing': ResourceNotFoundException" in raised.value.reason
    empty = boto3.client("secretsmanager").create_secret(Name="empty", SecretString=" ")["ARN"]
    with pytest.raises(TargetUnavailable, match="holds no ExternalId"):
        AssumedSessions(role_name="R", external_id_provider=external_id_from_secret(empty)).session_for(
            TARGET_ACCOUNT)


def test_the_id_is_in_no_log_record_even_at_debug(secret, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "urllib3", "functions", "connectors"):
        caplog.set_level(logging.DEBUG, logger=name)
    sessions = AssumedSessions(role_name="R", external_id_provider=external_id_from_secret(secret))
    sessions.session_for(TARGET_ACCOUNT)
    assert any(r.name.startswith("botocore") for r in caplog.records), "botocore debug logging must be on"
    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert EXTERNAL_ID not in text
