"""How wide and how fast a run goes: the worker count, and a token bucket per (account, region, service).

Workers overlap AWS's answer times (20-200 ms a call), so more of them shorten a run — until one account's calls
come faster than that account's API rate allows, and throttling errors, retries and their backoff undo the gain.
The pacer keeps each account's rate under AWS's own bucket whatever the worker count: every call in a target
account takes a token from its (account, region, service) bucket first, and waits for one only when the bucket is
empty. Buckets live in the run's AssumedSessions, so every worker of the run shares them.

Not limited: the pacer sees one process. Concurrent Lambda invocations on one account each have their own buckets;
what keeps them apart is the work queue's batch size and the functions' concurrency, and botocore's standard
retry mode still backs off on a throttling answer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from functions.engine.config import ConfigError

# Measured with 50 ms added to every request (bench.client_probe; README "Performance"), the bench's 1,000-finding
# plan over 50 accounts: 4 workers 24.3 s, 8 13.3 s, 16 9.7 s, 32 9.1 s wall, the same CPU (4.9-5.3 s) and
# peak memory (363-368 MiB) for all; without added latency all four take the same time. 16 takes most of the gain;
# 32 adds 6% more for twice the threads and connections.
DEFAULT_MAX_WORKERS = 16

# Amazon EC2 documents its request throttling as a token bucket per account and Region: non-mutating (Describe*)
# actions hold 100 tokens refilled at 20 per second (mutating ones refill slower, per action). We hold every
# service of an account to that refill rate and burst by default — EC2's the most documented and among the
# tightest; IAM publishes no request rate — over all of a service's actions together, so below what AWS allows
# per action. CSPM_MAX_CALLS_PER_SECOND changes it (parse_rates).
DEFAULT_CALLS_PER_SECOND = 20.0
DEFAULT_BURST = 100
# Services whose quotas are account-wide, not per Region: one bucket per account whatever the client's region.
GLOBAL_SERVICES = frozenset({"iam", "organizations", "route53", "cloudfront", "sts"})
# STS is left unpaced: a run calls it once per account (AssumeRole, and a refresh an hour later), far below its
# quota, and pacing it would only delay the accounts' first calls.
DEFAULT_RATES: Mapping[str, float] = {"*": DEFAULT_CALLS_PER_SECOND, "sts": 0.0}
ENV_VAR = "CSPM_MAX_CALLS_PER_SECOND"


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up. take() returns at once while tokens remain; else it books
    the next free slot under the lock and sleeps until then outside it, so waiting workers are served in turn
    and none holds the lock while it waits. `clock` and `sleep` are injectable (tests run without waiting)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """One token; returns the seconds waited for it (0.0 when the bucket had one)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0  # below zero: a slot booked in the future, which the next taker queues behind
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class Pacer:
    """Token buckets per (account, region, service), made on first use. `rates`: service → calls per second, with
    "*" for every other service; a rate of 0 leaves that service unpaced. An empty mapping paces nothing."""

    def __init__(self, rates: Mapping[str, float] | None = None, burst: float = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[tuple[str, str, str], TokenBucket | None] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for tokens, all workers together (measurement)
        self.waits = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Pacer:
        return cls(parse_rates((environ if environ is not None else os.environ).get(ENV_VAR)))

    def bucket(self, account_id: str, region: str | None, service: str) -> TokenBucket | None:
        key = (account_id, "" if service in GLOBAL_SERVICES else region or "", service)
        try:
            return self._buckets[key]  # the common case: a dict read, no lock
        except KeyError:
            pass
        rate = self.rates.get(service, self.rates.get("*", 0.0))
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = TokenBucket(rate, self.burst, self._clock, self._sleep) if rate > 0 else None
            return self._buckets[key]

    def take(self, account_id: str, region: str | None, service: str) -> None:
        bucket = self.bucket(account_id, region, service)
        if bucket is None:
            return
        waited = bucket.take()
        if waited:
            with self._lock:
                self.waited += waited
                self.waits += 1

    def hook(self, account_id: str) -> Callable[..., None]:
        """A botocore `before-call` handler for one account's session: once per API call, before its first
        attempt (botocore's retries back off on their own). Returns None, so the call goes ahead."""
        def before_call(event_name: str, context: Mapping[str, Any] | None = None, **_: Any) -> None:
            # event_name is "before-call.<service>.<Operation>"; the client's region rides in the request context
            self.take(account_id, (context or {}).get("client_region"), event_name.split(".", 2)[1])
        return before_call


def parse_rates(text: str | None) -> dict[str, float]:
    """CSPM_MAX_CALLS_PER_SECOND: unset → the default for every service but STS; "0" or "off" → no pacing; "25" → 25 for
    every service; "20,iam=10" → 20 for every service but IAM, which gets 10 (service names as botocore's events
    spell them: ec2, iam, s3, s3-control, cloudwatch-logs, …)."""
    value = (text or "").strip()
    if not value:
        return dict(DEFAULT_RATES)
    if value.lower() == "off":
        return {}
    rates = dict(DEFAULT_RATES)
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        service, _, number = part.rpartition("=")
        try:
            rate = float(number)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}: {part!r} is not a number of calls per second (e.g. 20 or 20,iam=10)") \
                from None
        if rate < 0 or rate != rate or rate == float("inf"):
            raise ConfigError(f"{ENV_VAR}: {part!r} must be a finite number >= 0")
        rates[service.strip().lower() or "*"] = rate
    return rates
