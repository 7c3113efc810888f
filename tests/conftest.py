"""Shared fixtures: every test runs against moto (in-process) with fake credentials; nothing reaches AWS."""

from __future__ import annotations

import os

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from demo.moto_serial import serialize_dynamodb_and_sqs
from demo.moto_tagging import list_cloudtrail_trails
from functions.engine.sessions import AssumedSessions
from functions.model import Target

ACCOUNT = "123456789012"  # moto's default account for unassumed credentials
REGION = "us-east-1"

# The undeclared-permissions check (one verdict for the whole run, xdist workers included); pytester for its test.
pytest_plugins = ("tests.permission_recorder", "pytester")

# moto seeds every EC2 backend (per account and region) with ~1,300 public AMIs and their snapshots: about 0.3 s
# of CPU per backend, for images no test uses (run_instances accepts any ami- id). Set before any backend exists;
# inherited by the demo's moto server, which does not need them either.
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"

serialize_dynamodb_and_sqs()  # the engine's worker threads share in-process moto (demo/moto_serial.py)
list_cloudtrail_trails()  # moto's GetResources leaves trails out, AWS's does not (demo/moto_tagging.py)


class _AppendOnce(list):
    """A shared loader's search path: boto3.Session appends its own data folder on every new session."""

    def append(self, path: object) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """One botocore data loader per process instead of one per session: every test (and every AssumedSessions
    the product opens per account) makes new sessions, and each parsed the service models again (EC2's JSON
    alone takes ~0.1 s) — a third of the suite's CPU. Clients get the loader's one parsed model, as they already
    did within one session."""
    if search_path_string not in _LOADERS:
        loader = botocore.loaders.create_loader(search_path_string)
        loader._search_paths = _AppendOnce(loader.search_paths)
        _LOADERS[search_path_string] = loader
    return _LOADERS[search_path_string]


botocore.session.create_loader = _shared_loader


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up real credentials, a profile or an endpoint from the developer's shell."""
    for name in list(os.environ):  # (CSPM_REQUIRE_*: how CI tells a test not to skip, not a product setting)
        if name.startswith(("AWS_", "CSPM_", "NETSKOPE_", "REMEDIATION_")) and not name.startswith("CSPM_REQUIRE_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


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
