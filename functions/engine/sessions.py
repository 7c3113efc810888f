"""Cross-account sessions: one AssumeRole per account per run, one client per (account, region, service).

Credentials refresh themselves before expiry (botocore RefreshableCredentials), so a long run keeps working
without re-assuming for every finding. A failed AssumeRole is remembered for the run: the other findings of
that account fail fast with the same reason instead of hammering STS.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from connectors import log_hygiene, secrets
from functions.engine.failures import aws_error_code
from functions.engine.pacing import Pacer
from functions.model import AwsClient, ReadCache, Target

log = logging.getLogger(__name__)
log_hygiene.install()  # botocore logs AssumeRole's ExternalId and GetSecretValue's value at DEBUG

# The one retry layer for every AWS call of ours (connectors/backoff.py says why there is no other). Standard
# mode retries throttling, 5xx, timeouts and connection errors with jittered exponential backoff (at most 20 s a
# wait), within a retry quota per client that stops retrying when a service keeps failing. 5 attempts rather
# than the default 3: concurrent remediate invocations share each account's EC2/IAM request rate, and the
# backoff of 4 retries (~15 s at worst) fits well inside the remediate Lambda's margin (REMAINING_TIME_MARGIN_MS).
AWS_TOTAL_ATTEMPTS = 5
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": AWS_TOTAL_ATTEMPTS},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=20,
)


_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_ACCOUNT_HOST_PREFIX = re.compile(r"^\d{12}\.")


def _local_endpoint() -> bool:
    """True when AWS_ENDPOINT_URL points at a local emulator (moto server), never for real AWS endpoints."""
    host = urlsplit(os.environ.get("AWS_ENDPOINT_URL", "")).hostname or ""
    return host in _LOCAL_HOSTS or host.startswith("127.")


def _drop_account_host_prefix(request: Any, **_: Any) -> None:
    """S3 Control puts the account id in the host (`123456789012.s3-control…`); a local emulator's IP can't
    take a subdomain, so the prefix is removed before signing. Registered only for local endpoints."""
    parts = urlsplit(request.url)
    if _ACCOUNT_HOST_PREFIX.match(parts.netloc):
        request.url = urlunsplit(parts._replace(netloc=parts.netloc.split(".", 1)[1]))


def aws_client(session: boto3.Session, service: str, **kwargs: Any) -> AwsClient:
    """session.client for a service named at run time (boto3-stubs types only literal service names)."""
    make: Callable[..., AwsClient] = session.client
    return make(service, **kwargs)


def prepare_session(session: boto3.Session) -> boto3.Session:
    """Event hooks every session of ours carries."""
    if _local_endpoint():
        session.events.register("before-sign.s3-control", _drop_account_host_prefix)
    return session


def _share_exceptions(base: botocore.session.Session, session: botocore.session.Session) -> None:
    """Give `session` the base session's factory of modeled exception classes (client.exceptions.NoSuchEntity…).

    botocore builds a service's exception classes by walking every shape of its model, once per session and
    service, and caches them by service name in the session's factory: with a session per account that was
    ~40% of the CPU of creating each account's clients (300 clients: 2.1 s → 1.3 s), to build classes identical
    for every account. One session already shares them between its clients; this shares them between accounts
    too. The factory is botocore's internal component (no public setter): without it, nothing is shared."""
    internal = getattr(session, "_internal_components", None)
    get = getattr(base, "_get_internal_component", None)
    if internal is not None and get is not None:
        internal.register_component("exceptions_factory", get("exceptions_factory"))


# What AWS answers a request signed with a session token that has expired (or was cut short) before our clock
# said so: S3/STS/IAM, JSON-protocol services, EC2.
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


class _AssumedRoleCredentials(RefreshableCredentials):
    def force_refresh(self) -> None:
        """Re-assume now, whatever the expiry time says."""
        # botocore's own refresh machinery (RefreshableCredentials internals botocore-stubs does not declare)
        with self._refresh_lock:  # type: ignore[attr-defined]
            self._protected_refresh(is_mandatory=True)  # type: ignore[attr-defined]


def _retry_expired_token(
    credentials: _AssumedRoleCredentials, account_id: str, response: Any = None, request_dict: Any = None, **_: Any
) -> float | None:
    """botocore needs-retry handler: on an expired-token error, re-assume the role once and retry the call at
    once with the new credentials (botocore signs every attempt afresh). Without it, the cached session would
    keep failing until its expiry time came round. A second refusal of the same call is returned as it is."""
    if response is None or request_dict is None:
        return None
    code = response[1].get("Error", {}).get("Code")
    context = request_dict.setdefault("context", {})
    if code not in EXPIRED_TOKEN_CODES or context.get("cspm_credentials_refreshed"):
        return None
    context["cspm_credentials_refreshed"] = True
    try:
        credentials.force_refresh()
    except Exception as error:  # the call's own error is the one to report
        log.warning("account %s: %s, and re-assuming failed: %s", account_id, code, error)
        return None
    log.warning("account %s: %s; re-assumed the role, retrying the call", account_id, code)
    return 0.0


class TargetUnavailable(Exception):
    """No session can be had for an account. `skip` is True when this is by configuration, not an error."""

    def __init__(self, reason: str, skip: bool = False, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.skip = skip
        self.code = code  # AssumeRole's error code or exception name: its failure class (engine/failures.py)

    def again(self) -> TargetUnavailable:
        """A fresh copy to raise: re-raising the cached instance would grow its traceback with every raise and
        keep every frame (and finding) of the run alive."""
        return TargetUnavailable(self.reason, self.skip, self.code)


class ExternalIdUnavailable(Exception):
    """The ExternalId's secret cannot be read (the message names the secret and the error, never a value)."""


_EXTERNAL_ID_CACHES: dict[secrets.CacheKey, Any] = {}
_EXTERNAL_ID_LOCK = threading.Lock()


def external_id_from_secret(secret_id: str, client: Any = None) -> Callable[[], str]:
    """A callable returning the sts:ExternalId held (as a plain string) in a Secrets Manager secret: what the
    deployed functions get (REMEDIATION_EXTERNAL_ID_SECRET) instead of the id itself in their environment.

    Called on each AssumeRole, read through aws-secretsmanager-caching: once per container and refresh interval.
    Without `client`, one cache per (region, endpoint) for the process; with it, a cache bound to it."""
    own_cache = secrets.new_secret_cache(client) if client is not None else None

    def read() -> str:
        cache = own_cache or secrets.environment_cache(_EXTERNAL_ID_CACHES, _EXTERNAL_ID_LOCK)
        try:
            value = (secrets.secret_text(cache, secret_id) or "").strip()
        except ClientError as error:
            code = aws_error_code(error) or "ClientError"
            raise ExternalIdUnavailable(f"cannot read the ExternalId from secret {secret_id!r}: {code}") from None
        except (BotoCoreError, UnicodeDecodeError) as error:
            raise ExternalIdUnavailable(
                f"cannot read the ExternalId from secret {secret_id!r}: {type(error).__name__}") from None
        if not value:
            raise ExternalIdUnavailable(f"secret {secret_id!r} holds no ExternalId")
        return value

    return read


class AssumedSessions:
    """Session cache for one run.

    role_name None → act only in the caller's own account with the caller's own credentials, and refuse
    every other account with a clear reason (DESIGN §5).
    """

    def __init__(
        self,
        base_session: boto3.Session | None = None,
        role_name: str | None = None,
        external_id: str | None = None,
        session_name: str = "cspm-remediation",
        duration_seconds: int = 3600,
        client_config: Config = CLIENT_CONFIG,
        session_hook: Callable[[boto3.Session, str], None] | None = None,
        pacer: Pacer | None = None,
        external_id_provider: Callable[[], str] | None = None,
    ) -> None:
        """session_hook(session, account_id) is called for every session this cache opens (the caller's own
        with account "caller"), e.g. to register botocore event handlers for instrumentation or fault tests.
        `pacer` paces every call in each account (functions/engine/pacing.py); by default the one
        CSPM_MAX_CALLS_PER_SECOND describes. All workers of the run share its buckets.
        external_id_provider (external_id_from_secret) is asked for the ExternalId at each AssumeRole when no
        external_id is given (the CLI's --external-id / REMEDIATION_EXTERNAL_ID wins)."""
        self._session_hook = session_hook
        self.pacer = pacer if pacer is not None else Pacer.from_env()
        self._base = prepare_session(base_session or boto3.Session())
        if session_hook is not None:
            session_hook(self._base, "caller")
        self.role_name = role_name or None
        self.external_id = external_id or None
        self._external_id_provider = None if self.external_id else external_id_provider
        self.session_name = session_name
        self.duration_seconds = duration_seconds
        self._config = client_config
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        self._sessions: dict[str, boto3.Session] = {}
        self._failures: dict[str, TargetUnavailable] = {}
        self._clients: dict[tuple[str, str, str], AwsClient] = {}
        self._caller: dict[str, str] | None = None
        self._sts: AwsClient | None = None
        self._sts_lock = threading.Lock()
        # Services whose first client has been created (their models are in the shared loader's cache), and the
        # lock the first creations take turns under (_create_client says why).
        self._warm: set[str] = set()
        self._warming = threading.Lock()
        self.assume_role_calls = 0
        # AWS API calls made in target accounts, by "service.Operation" (measurement, not control).
        self.api_calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()  # its own lock: calls are made while self._lock is held
        self._base.events.register("before-call", self._count_call)
        self._base.events.register("before-call", self.pacer.hook("caller"))

    def forget_failures(self) -> None:
        """A warm Lambda keeps its sessions (they refresh themselves) but retries accounts that failed before."""
        with self._lock:
            self._failures.clear()

    # -- identity -------------------------------------------------------------------------------
    def caller_identity(self) -> dict[str, str]:
        with self._lock:
            if self._caller is None:
                self._caller = self._sts_client().get_caller_identity()
            return self._caller

    def _sts_client(self) -> AwsClient:
        """The one STS client of the run, on the caller's credentials: every AssumeRole (and every refresh, from
        botocore's refresh path on whichever thread finds the credentials near expiry) goes through it. boto3
        clients are thread-safe; one client instead of one per AssumeRole saves a client build (~10 ms of CPU,
        its own connection pool) per account."""
        with self._sts_lock:  # its own lock: caller_identity calls here while it holds self._lock
            if self._sts is None:
                self._sts = self._create_client(self._base, "sts", None)
            return self._sts

    @property
    def caller_account(self) -> str:
        return self.caller_identity()["Account"]

    @property
    def caller_partition(self) -> str:
        return self.caller_identity()["Arn"].split(":", 2)[1]

    # -- sessions -------------------------------------------------------------------------------
    def session_for(self, account_id: str, partition: str = "aws") -> boto3.Session:
        with self._lock:
            if account_id in self._sessions:
                return self._sessions[account_id]
            if account_id in self._failures:
                raise self._failures[account_id].again()
            account_lock = self._account_locks.setdefault(account_id, threading.Lock())
        # Per-account lock: parallel workers on other accounts are not blocked by this AssumeRole.
        with account_lock:
            with self._lock:
                if account_id in self._sessions:
                    return self._sessions[account_id]
                if account_id in self._failures:
                    raise self._failures[account_id].again()
            try:
                session = self._open_session(account_id, partition)
            except TargetUnavailable as unavailable:
                with self._lock:
                    self._failures[account_id] = unavailable
                raise
            with self._lock:
                self._sessions[account_id] = session
            return session

    def _open_session(self, account_id: str, partition: str) -> boto3.Session:
        if not self.role_name:
            if account_id == self.caller_account:
                return self._base
            raise TargetUnavailable(
                f"account {account_id} is not the caller's account ({self.caller_account}) and no "
                "--role-name/REMEDIATION_ROLE_NAME is configured",
                skip=True,
            )
        role_arn = f"arn:{partition}:iam::{account_id}:role/{self.role_name}"
        try:
            metadata = self._assume(role_arn)
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error) or type(error).__name__
            raise TargetUnavailable(f"cannot assume {role_arn}: {code}", code=code) from error
        except ExternalIdUnavailable as error:
            raise TargetUnavailable(f"cannot assume {role_arn}: {error}", code="ExternalIdUnavailable") from None
        credentials = _AssumedRoleCredentials.create_from_metadata(
            metadata=metadata,
            refresh_using=lambda: self._assume(role_arn),
            method="sts-assume-role",
        )
        botocore_session = botocore.session.get_session()
        botocore_session._credentials = credentials  # type: ignore[attr-defined]  # the documented way to plug refreshable credentials
        session = prepare_session(boto3.Session(botocore_session=botocore_session))
        # One parsed copy of each service model for all accounts (EC2's alone is ~25 MB and ~0.1 s to load),
        # not one per account. Set after boto3.Session, which appends its own data path to the session's loader.
        botocore_session.register_component("data_loader", self._base._session.get_component("data_loader"))
        _share_exceptions(self._base._session, botocore_session)
        session.events.register("before-call", self._count_call)
        session.events.register("before-call", self.pacer.hook(account_id))
        session.events.register_first(  # a needs-retry handler returns the delay (botocore-stubs says None)
            "needs-retry", functools.partial(_retry_expired_token, credentials, account_id))  # type: ignore[arg-type]
        if self._session_hook is not None:
            self._session_hook(session, account_id)
        return session

    def _assume(self, role_arn: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        external_id = self.external_id
        if external_id is None and self._external_id_provider is not None:
            external_id = self._external_id_provider()
        if external_id:
            kwargs["ExternalId"] = external_id
        sts = self._sts_client()
        with self._lock:
            self.assume_role_calls += 1
        log.info("assuming %s", role_arn)
        response = sts.assume_role(**kwargs)
        creds = response["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    def _count_call(self, event_name: str, **_: Any) -> None:
        # event_name is "before-call.<service>.<Operation>"
        with self._count_lock:
            self.api_calls[event_name.split(".", 1)[1]] += 1

    # -- clients --------------------------------------------------------------------------------
    def client(self, account_id: str, region: str, service: str, partition: str = "aws") -> AwsClient:
        key = (account_id, region, service)
        with self._lock:
            cached = self._clients.get(key)
        if cached is not None:
            return cached
        session = self.session_for(account_id, partition)
        new_client = self._create_client(session, service, region)
        with self._lock:
            return self._clients.setdefault(key, new_client)

    def _create_client(self, session: boto3.Session, service: str, region: str | None) -> AwsClient:
        """A client; the first of each service is made under a lock, so its models are parsed once.

        Every session of this cache reads models through the base session's loader (_open_session), whose cache
        is a plain dict filled on a miss (botocore's loaders.instance_cache): workers that create their first ec2
        client at the same moment would each miss and each parse the same ~25 MB model, and every client keeps
        the copy it was built from. Under the lock the first creation fills the cache (the service model, its
        endpoint rules, paginators, and the shared endpoints/partitions data) and the others read it. Later
        creations skip the lock: a dict read under the GIL is safe. Creating a client is CPU-bound, so waiting
        for another thread's creation costs no wall time. boto3 Sessions are not thread-safe, but nothing here
        changes a session after it is built: each worker only calls session.client(), as the engine did before.
        """
        kwargs: dict[str, Any] = {"config": self._config}
        if region is not None:
            kwargs["region_name"] = region
        if service in self._warm:
            return aws_client(session, service, **kwargs)
        with self._warming:
            made = aws_client(session, service, **kwargs)
            made.exceptions  # noqa: B018 - built lazily otherwise, by whichever threads first get an error answer
            self._warm.add(service)
        return made

    def target(self, account_id: str, region: str, partition: str = "aws", reads: ReadCache | None = None) -> Target:
        """A Target for remediators. Resolves the session now so an unreachable account fails early. `reads` is
        the run's read cache for this account (the engine's); without it every read is live."""
        self.session_for(account_id, partition)
        return Target(
            account_id=account_id,
            region=region,
            partition=partition,
            _client_for=lambda service, api_region: self.client(account_id, api_region, service, partition),
            reads=reads,
        )
