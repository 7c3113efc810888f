"""Shared helpers of the fault and idempotency suites: fault injection (AWS errors at the HTTP level, no
sleeping), a five-account org on moto (`Org`), and the Lambdas' stack on moto (`lambda_stack`).

AWS faults are injected where the network would be: a botocore ``before-send`` handler, registered first on
every session an AssumedSessions opens (``AssumedSessions(session_hook=faults.hook)``), answers a matching
request with the service's own error response (EC2 XML, query XML, JSON, REST-JSON or REST-XML, with the HTTP
status AWS uses) or raises the connection error botocore would raise. botocore then parses, classifies and
retries it exactly as it would a real answer from AWS (botocore's standard mode is the one retry layer for AWS
calls). A request that is not faulted goes on to moto.

moto's own ``before-send`` handler runs after ours whatever ours returns (botocore calls every handler and
keeps the first answer), so a faulted request is pointed at an address moto does not serve: a refused call
must not change moto's state behind the error.

``no_backoff`` makes every botocore retry wait zero seconds, and records the waits that would have happened.
``base_session`` gives every test session one botocore data loader, so service models are parsed once per
process, not once per test.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import UnknownServiceError
from botocore.retries import standard
from botocore.stub import ANY, Stubber
from moto.core.botocore_stubber import BotocoreStubber

from connectors import netskope
from demo.fake_netskope import FakeNetskope
from demo.moto_org import ADMIN_ROLE, WORLD_V4, open_security_group
from functions.aws_lambda import handlers
from functions.engine.ledger import create_table
from functions.engine.sessions import AssumedSessions
from tests.e2e.test_handlers import asff_for, receive_all

ANY_OPERATION = "*"
CALLER = "caller"  # the account label AssumedSessions gives its own (un-assumed) session: STS, pulls
_NOWHERE = "https://fault-injected.invalid/"  # no moto backend matches it

# The HTTP status AWS answers each error code with (the body says the code; botocore reads both).
STATUS = {
    "RequestLimitExceeded": 503,  # EC2
    "Throttling": 400,  # query protocol (STS, IAM...)
    "ThrottlingException": 400,
    "TooManyRequestsException": 429,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalServiceError": 500,  # Secrets Manager
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "UnauthorizedOperation": 403,  # EC2
    "ExpiredToken": 400,
    "ExpiredTokenException": 400,
    "RequestExpired": 400,
}


# -- responses AWS would send ------------------------------------------------------------------------------


class _Body(io.BytesIO):
    """What botocore reads an HTTP body from (``stream()``), as urllib3 would hand it over."""

    def stream(self, **_: Any):
        yield self.read()


@functools.cache
def protocol_of(service_id: str) -> str:
    """The wire protocol of a service, by its event name ("ec2", "secrets-manager") → "ec2", "json"..."""
    session = botocore.session.get_session()
    for name in (service_id, service_id.replace("-", "")):
        try:
            # The protocol the client speaks (several listed: botocore's priority; the tagging API's first is CBOR).
            return session.get_service_model(name).resolved_protocol
        except UnknownServiceError:
            continue
    raise ValueError(f"unknown service {service_id!r}")


def error_response(service_id: str, code: str, status: int | None = None, message: str | None = None,
                   url: str = _NOWHERE) -> AWSResponse:
    """The error response `service_id` sends for `code`, in its own protocol."""
    status = status or STATUS.get(code, 400)
    message = message or f"injected fault: {code}"
    request_id = "00000000-fault-0000-0000-000000000000"
    protocol = protocol_of(service_id)
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>")
        headers["Content-Type"] = "text/xml;charset=UTF-8"
    elif protocol == "query":
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        headers["Content-Type"] = "text/xml"
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        headers["Content-Type"] = "application/xml"
    elif protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        if protocol == "rest-json":
            headers["x-amzn-ErrorType"] = code
    else:
        raise ValueError(f"no error shape for protocol {protocol!r}")
    return AWSResponse(url, status, headers, _Body(body.encode()))


def role_arn_of(request: AWSPreparedRequest) -> str:
    """The RoleArn an sts:AssumeRole request asks for (query protocol: a form-encoded body)."""
    body = request.body or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    return urllib.parse.parse_qs(text).get("RoleArn", [""])[0]


def assuming(account: str) -> Callable[[AWSPreparedRequest], bool]:
    """`when=` for faults on AssumeRole into one account (AssumeRole goes through the caller's session)."""
    return lambda request: f":{account}:" in role_arn_of(request)


# -- the injector ------------------------------------------------------------------------------------------


@dataclass
class Fault:
    account: str
    operation: str  # "ec2.DescribeSecurityGroups" (botocore's service id and operation), or ANY_OPERATION
    answer: Callable[[str, AWSPreparedRequest], AWSResponse]  # raises for connection errors
    times: int | None  # None: until cleared
    when: Callable[[AWSPreparedRequest], bool] | None = None
    injected: int = 0

    def matches(self, account: str, operation: str, request: AWSPreparedRequest) -> bool:
        if self.account != account or self.operation not in (operation, ANY_OPERATION):
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        return self.when is None or self.when(request)


class FaultInjector:
    """Faults per (account, operation); counts every attempt that reaches the network, faulted or not."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.attempts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def hook(self, session: boto3.Session, account_id: str) -> None:
        """AssumedSessions' session_hook: see every request of every session it opens."""
        session.events.register_first(
            "before-send", functools.partial(self._before_send, account_id), unique_id=f"faults-{id(self)}"
        )

    def error(self, account: str, operation: str, code: str, times: int | None = None, status: int | None = None,
              when: Callable[[AWSPreparedRequest], bool] | None = None) -> Fault:
        """Answer `operation` in `account` with AWS error `code`, the first `times` times (None: until cleared)."""

        def answer(service_id: str, request: AWSPreparedRequest) -> AWSResponse:
            request.url = _NOWHERE  # moto must not carry out what AWS refused
            return error_response(service_id, code, status)

        return self._add(Fault(account, operation, answer, times, when))

    def connection_error(self, account: str, operation: str, error: type[Exception], times: int | None = None,
                         when: Callable[[AWSPreparedRequest], bool] | None = None) -> Fault:
        """Raise botocore's `error` (ConnectionClosedError, ReadTimeoutError...) instead of sending."""

        def answer(service_id: str, request: AWSPreparedRequest) -> AWSResponse:
            raise error(endpoint_url=request.url, request=request, error="injected fault")

        return self._add(Fault(account, operation, answer, times, when))

    def expire_session(self, account: str, after: int, code: str = "ExpiredToken") -> Fault:
        """After `after` requests in `account`, the session token in use expires: every request still signed
        with it gets `code` (as AWS answers an expired token), requests with newer credentials go through."""
        expired: set[str] = set()
        seen = Counter[str]()

        def when(request: AWSPreparedRequest) -> bool:
            token = request.headers.get("X-Amz-Security-Token")
            token = token.decode() if isinstance(token, bytes) else token
            seen["requests"] += 1
            if seen["requests"] > after and not expired:
                expired.add(token)
            return token in expired

        return self.error(account, ANY_OPERATION, code, when=when)

    def clear(self) -> None:
        """The fault is over: every later request goes through."""
        with self._lock:
            self.faults.clear()

    def count(self, account: str, operation: str) -> int:
        """Attempts that reached the network for `operation` in `account` (retries included)."""
        return self.attempts[(account, operation)]

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _before_send(self, account: str, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        operation = event_name.split(".", 1)[1]  # before-send.<service id>.<Operation>
        with self._lock:
            self.attempts[(account, operation)] += 1
            fault = next((f for f in self.faults if f.matches(account, operation, request)), None)
            if fault is not None:
                fault.injected += 1
        if fault is None:
            return None  # on to moto
        return fault.answer(operation.split(".", 1)[0], request)


# -- no waiting --------------------------------------------------------------------------------------------


@dataclass
class Waits:
    """The waits botocore's standard-mode retries asked for (and did not get)."""

    botocore: list[float] = field(default_factory=list)


def no_backoff(monkeypatch: pytest.MonkeyPatch) -> Waits:
    """Every retry of an AWS call waits 0 s (botocore's standard-mode backoff, the one retry layer for AWS), so
    a fault suite runs in no time and the number of retries can be asserted."""
    waits = Waits()
    compute = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: standard.ExponentialBackoff, context: Any) -> float:
        waits.botocore.append(compute(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    return waits


def reassume_outside_remediators(monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-assume triggered by an expired token happens inside a remediator's AWS call, but it is the session
    cache's doing, with the caller's credentials: run it in a fresh context so tests/permission_recorder.py
    does not count sts:AssumeRole among the actions the remediator needs in the target account."""
    assume = AssumedSessions._assume

    def _assume(self: AssumedSessions, role_arn: str) -> dict[str, Any]:
        return contextvars.Context().run(assume, self, role_arn)

    monkeypatch.setattr(AssumedSessions, "_assume", _assume)


def serialized_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto (in-process) answer one request at a time, as if each were atomic.

    moto's backends are plain dicts and lists without locks: under threads a request can see another half done
    (an EC2 describe iterating the groups while a revoke edits them, a DynamoDB conditional put checked and
    written in two steps) and answer with a moto-side error or a wrong success. AWS applies each request
    atomically; concurrency tests need that guarantee, so their verdict is about the product (who claims, who
    acts), not about moto's locking. Threads still interleave between requests, which is where the races the
    tests look for happen. Reentrant: a request moto serves by calling another service stays on its thread."""
    lock = threading.RLock()
    answer = BotocoreStubber.__call__

    def serialized(self: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        with lock:
            return answer(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", serialized)


# -- a small org on moto -----------------------------------------------------------------------------------

ACCOUNTS = tuple(f"{n}" * 12 for n in range(1, 6))  # 111111111111 … 555555555555
REGION = "us-east-1"
ROLE = "CSPMRemediationRole"
LEDGER_TABLE = "cspm-ledger"


_LOADER: Any = None


def base_session() -> boto3.Session:
    """A boto3 session whose botocore data loader is shared by every session made here: the service models
    (EC2's is large) are parsed once per test process instead of once per test. AssumedSessions gives its
    per-account sessions the base session's loader."""
    global _LOADER
    session = boto3.Session()
    if _LOADER is None:
        _LOADER = session._session.get_component("data_loader")
    else:
        session._session.register_component("data_loader", _LOADER)
    return session


def assumed_sessions(faults: FaultInjector | None = None, role_name: str = ROLE) -> AssumedSessions:
    """An AssumedSessions like the engine's, with the faults (if any) wired into every session it opens."""
    return AssumedSessions(base_session(), role_name=role_name, session_hook=faults.hook if faults else None)


class Org:
    """Member accounts on moto (reached through moto's multi-account AssumeRole), each with one security group
    open to the world on 22 and 443. One admin session cache for setting up and checking, so a test pays for
    one AssumeRole and one EC2 client per account, not one per check."""

    def __init__(self, accounts: tuple[str, ...] = ACCOUNTS) -> None:
        self._admin = assumed_sessions(role_name=ADMIN_ROLE)
        self.groups = {account: self.open_ssh_group(account) for account in accounts}

    def ec2(self, account: str) -> Any:
        return self._admin.client(account, REGION, "ec2")

    def open_ssh_group(self, account: str, name: str = "web") -> str:
        return open_security_group(self.ec2(account), name, [(22, WORLD_V4), (443, WORLD_V4)], "test",
                                   cidr_block="10.0.0.0/16")

    def ssh_open(self, account: str, group: str | None = None) -> bool:
        group = group or self.groups[account]
        permissions = self.ec2(account).describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        return any(
            p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
            for p in permissions
        )

    def ebs_encrypted_by_default(self, account: str) -> bool:
        return self.ec2(account).get_ebs_encryption_by_default()["EbsEncryptionByDefault"]

    def still_open(self) -> list[str]:
        """The accounts whose group is still open to the world on 22."""
        return [account for account in self.groups if self.ssh_open(account)]


# -- the Lambdas on moto -----------------------------------------------------------------------------------

NETSKOPE_TOKEN = "nsk-fault-suite-token"
NETSKOPE_SECRET = "netskope-token"
SG_RULE = (
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 to port 22"
)


def netskope_violations(groups: dict[str, str]) -> list[dict[str, Any]]:
    """One Netskope violation per account: its world-open SSH group (rule EC2.13). `groups`: account → group."""
    return [{"rule_name": SG_RULE, "account_id": account, "region_name": "US East (N. Virginia)",
             "resource_id": group, "resource_type": "SecurityGroup", "status": "Failed", "severity": "High"}
            for account, group in groups.items()]


@dataclass
class LambdaStack:
    sqs: Any
    queue: str
    rt: handlers.Runtime
    netskope: FakeNetskope

    def records(self) -> list[dict[str, Any]]:
        """Every queued message, as the Lambda service hands them to the remediate function (and deleted)."""
        return receive_all(self.sqs, self.queue)

    def finding_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if json.loads(r["body"])["kind"] == "finding"]


@contextlib.contextmanager
def lambda_stack(org: Org, monkeypatch: pytest.MonkeyPatch, faults: FaultInjector | None = None
                 ) -> Iterator[LambdaStack]:
    """What the admin stack creates, on moto — work queue, ledger table, Security Hub holding one EC2.53
    finding per account, the Netskope token secret — plus a fake Netskope tenant, and the Lambdas' runtime
    (EC2.53 and EC2.13 in enforce). The faults, if any, are wired into the runtime's sessions and into the
    default boto3 session (the Secrets Manager client of the Netskope pull). Security Hub write-back is
    stubbed: moto has no BatchUpdateFindings."""
    default = base_session()
    if faults is not None:
        faults.hook(default, CALLER)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", default)
    monkeypatch.setattr(netskope, "_SECRET_CACHES", {})  # no token cached by an earlier test
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="cspm-work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), LEDGER_TABLE)
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=[asff_for(a, g, i) for i, (a, g) in enumerate(org.groups.items())])
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=NETSKOPE_SECRET, SecretString=json.dumps({"token": NETSKOPE_TOKEN}))
    with FakeNetskope(netskope_violations(org.groups), NETSKOPE_TOKEN) as fake:
        for name, value in {
            "WORK_QUEUE_URL": queue, "LEDGER_TABLE": LEDGER_TABLE, "CSPM_REGIONS": REGION,
            "REMEDIATION_ROLE_NAME": ROLE, "CSPM_RULE_MODES": json.dumps({"EC2.53": "enforce", "EC2.13": "enforce"}),
            "CSPM_SUMMARY_DELAY_SECONDS": "0", "NETSKOPE_URL": fake.url, "NETSKOPE_TOKEN_SECRET": NETSKOPE_SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        handlers.reset_runtime()
        rt = handlers.runtime()
        rt.session, rt.sessions = base_session(), assumed_sessions(faults)
        writeback = Stubber(rt.client("securityhub"))
        for _ in range(40):
            writeback.add_response("batch_update_findings", {"ProcessedFindings": [], "UnprocessedFindings": []},
                                   {"FindingIdentifiers": ANY, "Workflow": ANY, "Note": ANY})
        try:
            with writeback:
                yield LambdaStack(sqs, queue, rt, fake)
        finally:
            handlers.reset_runtime()
