"""Warm start of AssumedSessions: one STS client for every AssumeRole, each service's models parsed once however
many worker threads create their first clients at the same moment, and the start-up GC tuning."""

from __future__ import annotations

import gc
import threading
from collections import Counter
from typing import Any

import boto3
import botocore.loaders
import pytest

from functions.engine import startup
from functions.engine.sessions import AssumedSessions

ACCOUNTS = [f"1000000000{i:02d}" for i in range(6)]


class CountingFileLoader(botocore.loaders.JSONFileLoader):
    """Counts the model files actually read and parsed (a loader cache hit reads none)."""

    def __init__(self) -> None:
        self.loaded: Counter[str] = Counter()
        self._lock = threading.Lock()

    def load_file(self, file_path: str) -> Any:
        data = super().load_file(file_path)
        if data is not None:
            with self._lock:
                self.loaded[file_path.rsplit("/data/", 1)[-1]] += 1
        return data


def fresh_base() -> tuple[boto3.Session, CountingFileLoader]:
    """A base session with a loader of its own (the test process shares one loader, already warm)."""
    base = boto3.Session()
    loader = botocore.loaders.create_loader()
    counting = CountingFileLoader()
    loader.file_loader = counting
    for path in base._session.get_component("data_loader").search_paths:
        if path not in loader.search_paths:
            loader.search_paths.append(path)
    base._session.register_component("data_loader", loader)
    return base, counting


def sts_clients_created(base: boto3.Session) -> list[str]:
    made: list[str] = []
    base.events.register("creating-client-class.sts", lambda **_: made.append("sts"))
    return made


def test_one_sts_client_for_every_account_and_still_one_assume_role_per_account(moto_aws):
    base = boto3.Session()
    made = sts_clients_created(base)
    sessions = AssumedSessions(base, role_name="CSPMRemediationRole")
    assumed: list[str] = []
    base.events.register("before-call.sts.AssumeRole", lambda **_: assumed.append("AssumeRole"))
    for account in ACCOUNTS * 3:  # each account asked for three times
        sessions.client(account, "us-east-1", "ec2")
    assert sessions.assume_role_calls == len(ACCOUNTS)
    assert len(assumed) == len(ACCOUNTS)
    assert sessions.caller_account  # GetCallerIdentity goes through the same client
    assert made == ["sts"]


def test_a_refresh_reuses_the_run_s_sts_client(moto_aws):
    base = boto3.Session()
    made = sts_clients_created(base)
    sessions = AssumedSessions(base, role_name="CSPMRemediationRole")
    session = sessions.session_for(ACCOUNTS[0])
    session._session.get_credentials().force_refresh()  # what an ExpiredToken answer or near-expiry does
    assert sessions.assume_role_calls == 2
    assert made == ["sts"]


def test_workers_creating_their_first_clients_at_once_parse_each_model_once(moto_aws):
    base, files = fresh_base()
    sessions = AssumedSessions(base, role_name="CSPMRemediationRole")
    for account in ACCOUNTS:  # sessions first: only client creation races below
        sessions.session_for(account)
    files.loaded.clear()
    start = threading.Barrier(len(ACCOUNTS) * 2)
    errors: list[BaseException] = []

    def worker(account: str, region: str) -> None:
        try:
            start.wait(timeout=10)
            for service in ("ec2", "iam", "s3"):
                sessions.client(account, region, service)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(a, r)) for a in ACCOUNTS for r in ("us-east-1", "eu-west-1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    models = {path: n for path, n in files.loaded.items() if path.split("/")[0] in ("ec2", "iam", "s3")}
    assert any(path.startswith("ec2/") and path.endswith("service-2") for path in models)
    assert all(n == 1 for n in models.values()), models
    assert all(n == 1 for n in files.loaded.values()), files.loaded  # endpoints, partitions, … too


def test_start_up_freezes_the_imports_and_spaces_out_collections(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(startup, "_tuned", False)
    before = gc.get_threshold()
    try:
        startup.tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == startup.GEN0_THRESHOLD
        frozen = gc.get_freeze_count()
        startup.tune_gc()  # a second entry point in the same process changes nothing
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_accounts_share_one_set_of_modeled_exception_classes(moto_aws):
    sessions = AssumedSessions(boto3.Session(), role_name="CSPMRemediationRole")
    first, second = (sessions.client(account, "us-east-1", "iam") for account in ACCOUNTS[:2])
    assert first.exceptions.NoSuchEntityException is second.exceptions.NoSuchEntityException
    with pytest.raises(second.exceptions.NoSuchEntityException):  # raised by one account, caught by the class
        first.get_user(UserName="nobody")
