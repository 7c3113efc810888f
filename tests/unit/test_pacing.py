"""Per-account pacing: the token bucket's arithmetic on an injected clock (nothing sleeps), its fairness under
threads, and one set of buckets per run that every worker of an account draws from."""

from __future__ import annotations

import threading

import boto3
import pytest

from functions.engine import settings
from functions.engine.config import ConfigError
from functions.engine.pacing import DEFAULT_CALLS_PER_SECOND, ENV_VAR, Pacer, TokenBucket, parse_rates
from functions.engine.sessions import AssumedSessions

ACCOUNT = "123456789012"


class FakeTime:
    """A clock that moves only when told, and a sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(round(seconds, 6))


def test_a_full_bucket_lets_a_burst_through_then_books_slots_at_the_rate():
    time = FakeTime()
    bucket = TokenBucket(rate=10, burst=3, clock=time.clock, sleep=time.sleep)
    waits = [bucket.take() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.2])  # the 5th queues behind the 4th
    assert time.slept == pytest.approx([0.1, 0.2])


def test_the_bucket_refills_at_its_rate_up_to_its_burst_only():
    time = FakeTime()
    bucket = TokenBucket(rate=10, burst=3, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        bucket.take()
    time.now += 0.25  # 2.5 tokens back
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]
    assert bucket.take() == pytest.approx(0.05)
    time.now += 3600  # an hour idle: still only `burst` saved up
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() > 0


def test_threads_taking_at_once_each_get_their_own_slot():
    time = FakeTime()
    bucket = TokenBucket(rate=100, burst=10, clock=time.clock, sleep=time.sleep)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait(timeout=10)
        for _ in range(5):
            bucket.take()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # 40 takes on a frozen clock: 10 from the burst, then one booked slot every 10 ms, none shared
    assert sorted(time.slept) == pytest.approx([round(0.01 * k, 6) for k in range(1, 31)])


def test_rates_from_the_environment():
    assert parse_rates(None) == parse_rates("") == {"*": DEFAULT_CALLS_PER_SECOND, "sts": 0.0}
    assert parse_rates("off") == {}
    assert parse_rates("25")["*"] == 25.0
    assert parse_rates("20, iam=10") == {"*": 20.0, "sts": 0.0, "iam": 10.0}
    assert parse_rates("0")["*"] == 0.0  # 0: unpaced
    for bad in ("fast", "iam=-1", "ec2=nan"):
        with pytest.raises(ConfigError, match=ENV_VAR):
            parse_rates(bad)
    assert settings.ENV["max_calls_per_second"] == ENV_VAR


def test_an_unpaced_service_costs_no_bucket():
    pacer = Pacer({"*": 0.0, "ec2": 5.0})
    assert pacer.bucket(ACCOUNT, "us-east-1", "iam") is None
    assert pacer.bucket(ACCOUNT, "us-east-1", "ec2") is not None
    assert Pacer({}).bucket(ACCOUNT, "us-east-1", "ec2") is None


def test_buckets_are_per_account_region_and_service_and_global_services_share_regions():
    pacer = Pacer({"*": 5.0})
    ec2_east = pacer.bucket(ACCOUNT, "us-east-1", "ec2")
    assert pacer.bucket(ACCOUNT, "us-east-1", "ec2") is ec2_east
    assert pacer.bucket(ACCOUNT, "eu-west-1", "ec2") is not ec2_east
    assert pacer.bucket("210987654321", "us-east-1", "ec2") is not ec2_east
    assert pacer.bucket(ACCOUNT, "us-east-1", "iam") is pacer.bucket(ACCOUNT, "eu-west-1", "iam")


def test_every_worker_of_an_account_draws_from_one_bucket_and_other_accounts_from_their_own(moto_aws):
    time = FakeTime()
    pacer = Pacer({"*": 1.0}, burst=2, clock=time.clock, sleep=time.sleep)
    sessions = AssumedSessions(boto3.Session(), role_name="CSPMRemediationRole", pacer=pacer)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(account: str) -> None:
        try:
            start.wait(timeout=10)
            ec2 = sessions.client(account, "us-east-1", "ec2")
            for _ in range(2):
                ec2.describe_security_groups()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(account,))
               for account in (ACCOUNT, ACCOUNT, ACCOUNT, "210987654321")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    # ACCOUNT: 6 calls from 3 workers on a 2-token bucket at 1/s: 2 free, then slots 1..4 s away. The other
    # account's 2 calls fit its own burst. (STS AssumeRole is not paced.)
    assert sorted(time.slept) == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert pacer.waits == 4
