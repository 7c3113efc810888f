"""Shared fixtures: every test runs against moto (in-process) with fake credentials; nothing reaches AWS."""

from __future__ import annotations

import os

import pytest
from moto import mock_aws

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from tests import permission_recorder

ACCOUNT = "123456789012"  # moto's default account for unassumed credentials
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up real credentials, a profile or an endpoint from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "CSPM_", "NETSKOPE_", "REMEDIATION_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True, scope="session")
def _record_remediator_api_calls():
    """Feeds the declared-permissions meta-test (tests/unit/test_catalog.py)."""
    uninstall = permission_recorder.install()
    yield
    uninstall()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The permissions meta-test judges the calls recorded by every other test, so it runs last."""
    last = [item for item in items if item.get_closest_marker("after_all_remediator_tests")]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture
def moto_aws():
    with mock_aws():
        yield


@pytest.fixture
def sessions(moto_aws) -> AssumedSessions:
    """Caller's own credentials, no role: acts in moto's default account only."""
    return AssumedSessions()


@pytest.fixture
def target(sessions: AssumedSessions) -> Target:
    return sessions.target(ACCOUNT, REGION)
