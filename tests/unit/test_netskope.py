"""Netskope connector: paging, retries, errors, token hygiene, Secrets Manager, and violation parsing."""

from __future__ import annotations

import copy
import json
import logging
import traceback
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from connectors import netskope
from connectors.finding import Finding, FindingError, stable_finding_id
from connectors.netskope import (
    MAX_PAGE_SIZE,
    TOKEN_HEADER,
    NetskopeConnector,
    NetskopeError,
    normalize_base_url,
    parse_payload,
    parse_violation,
    secret_token_provider,
    token_from_secret,
)
from connectors.netskope_rules import RULES, normalize_rule_name

TOKEN = "nsk-T0ken/with+odd=chars-7f3a"
BASE = "https://tenant.goskope.com"
URL = BASE + "/api/v1/security_assessment"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "netskope_violations.json"
SG_RULE = (
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 to port 22"
)


def violation(i: int = 0, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": "123456789012",
        "account_name": "prod",
        "cloud_provider": "aws",
        "muted": "No",
        "region_name": "US East(N. Virginia)",
        "resource_id": f"sg-{i:017x}",
        "resource_name": f"sg-name-{i}",
        "resource_type": "SecurityGroup",
        "rule_name": SG_RULE,
        "severity": "High",
        "status": "Failed",
        "timestamp": 1718000000,
    }
    item.update(overrides)
    return item


def _params(request: Any) -> dict[str, str]:
    body = request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


def serve_pages(items: list[dict[str, Any]]) -> None:
    """Register a callback that pages `items` by the request's limit/skip, like Netskope."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = _params(request)
        assert params.get("token") == TOKEN
        skip, limit = int(params["skip"]), int(params["limit"])
        return 200, {}, json.dumps({"status": "success", "msg": "", "data": items[skip : skip + limit]})

    responses.add_callback(responses.POST, URL, callback=callback, content_type="application/json")


def ok(data: list[Any]) -> dict[str, Any]:
    return {"json": {"status": "success", "msg": "", "data": data}, "status": 200}


def serve_once(data: list[Any]) -> None:
    """One page of `data`, then the empty page that ends the pull (the connector pages until an empty one)."""
    responses.add(responses.POST, URL, **ok(data))
    responses.add(responses.POST, URL, **ok([]))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def connector(**kwargs: Any) -> NetskopeConnector:
    kwargs.setdefault("sleep", Sleeps())
    return NetskopeConnector(BASE, lambda: TOKEN, **kwargs)


def assert_no_token(text: str) -> None:
    for form in (TOKEN, urllib.parse.quote_plus(TOKEN), urllib.parse.quote(TOKEN, safe="")):
        assert form not in text


def assert_error_clean(exc: BaseException) -> None:
    assert_no_token(str(exc))
    assert_no_token("".join(traceback.format_exception(exc)))


# ------------------------------------------------------------------------------------------------ base URL


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("tenant.goskope.com", "https://tenant.goskope.com"),
        ("  tenant.goskope.com/ ", "https://tenant.goskope.com"),
        ("https://tenant.goskope.com", "https://tenant.goskope.com"),
        ("https://tenant.goskope.com/api/v1/", "https://tenant.goskope.com"),
        ("HTTPS://tenant.goskope.com:8443", "https://tenant.goskope.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9000/", "http://localhost:9000"),
    ],
)
def test_base_url_normalization(given_url: str, expected: str) -> None:
    assert normalize_base_url(given_url) == expected


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(NetskopeError, match="in clear"):
        normalize_base_url("http://tenant.goskope.com")


@pytest.mark.parametrize("bad", ["", "   ", "ftp://tenant.goskope.com", "https://", "https://host:notaport"])
def test_bad_base_urls(bad: str) -> None:
    with pytest.raises(NetskopeError):
        normalize_base_url(bad)


@pytest.mark.parametrize(
    "bad", [f"https://tenant.goskope.com/?token={TOKEN}", f"https://user:{TOKEN}@tenant.goskope.com"]
)
def test_base_url_with_secrets_is_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(NetskopeError) as info:
        normalize_base_url(bad)
    assert_error_clean(info.value)


def test_constructor_validates_page_size_and_attempts() -> None:
    for bad in (0, 10000, 10001, -5):  # the v1 docs: limit below 10,000
        with pytest.raises(ValueError, match="page_size"):
            connector(page_size=bad)
    with pytest.raises(ValueError, match="max_attempts"):
        connector(max_attempts=0)
    assert connector().page_size == 5000
    assert connector(page_size=9999).page_size == MAX_PAGE_SIZE == 9999


# ------------------------------------------------------------------------------------------------- paging


@pytest.mark.parametrize(
    ("n_items", "expected_requests"),
    [(0, 1), (1, 2), (999, 2), (1000, 2), (1001, 3), (2000, 3), (2001, 4)],  # ⌈n/1000⌉ pages + the empty one
)
@responses.activate
def test_paging_request_count(n_items: int, expected_requests: int) -> None:
    serve_pages([violation(i) for i in range(n_items)])
    conn = connector(page_size=1000)
    findings = list(conn.fetch())
    assert len(findings) == n_items
    assert all(isinstance(f, Finding) for f in findings)
    assert conn.requests_made == expected_requests == len(responses.calls)
    skips = [int(_params(call.request)["skip"]) for call in responses.calls]
    assert skips == [min(1000 * i, n_items) for i in range(expected_requests)]
    assert {_params(call.request)["limit"] for call in responses.calls} == {"1000"}


@responses.activate
def test_request_shape_token_in_body_never_in_url() -> None:
    serve_once([violation()])
    list(connector(clock=lambda: 1718000000.7).fetch(rule_names=SG_RULE, account_id=123456789012))
    request = responses.calls[0].request
    assert request.method == "POST"
    assert request.url == URL  # no query string at all
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert _params(request) == {
        "cloud_provider": "aws",
        "status": "Failed",
        "muted": "No",
        "rule_name": SG_RULE,
        "account_id": "123456789012",
        "limit": "5000",
        "skip": "0",
        "as_of": "1718000000",
        "token": TOKEN,
    }
    assert TOKEN_HEADER not in request.headers


@responses.activate
def test_one_query_per_rule_name_and_none_means_all() -> None:
    serve_pages([violation()])
    names = [SG_RULE, "Ensure S3 Bucket is not publicly accessible.", SG_RULE]
    conn = connector()
    list(conn.fetch(rule_names=names))
    # each query: one page, then the empty page that ends it
    assert [_params(c.request)["rule_name"] for c in responses.calls] == [names[0]] * 2 + [names[1]] * 2
    assert conn.requests_made == 4
    list(conn.fetch())
    assert "rule_name" not in _params(responses.calls[-1].request)
    list(conn.fetch(rule_names=[]))
    assert conn.requests_made == 6


@responses.activate
def test_fetch_streams_page_by_page() -> None:
    serve_pages([violation(i) for i in range(2500)])
    conn = connector(page_size=1000)
    stream = conn.fetch()
    assert conn.requests_made == 0  # nothing happens until iterated
    next(stream)
    assert conn.requests_made == 1
    for _ in range(999):
        next(stream)
    assert conn.requests_made == 1
    next(stream)
    assert conn.requests_made == 2


@responses.activate
def test_region_and_account_filters_are_checked_client_side() -> None:
    items = [
        violation(1),
        violation(2, region_name="EU(Ireland)"),
        violation(3, account_id="210987654321"),
        violation(4, region_name="Atlantis (Central)"),
    ]
    serve_pages(items)
    results = list(connector().fetch(region="us-east-1"))
    assert [r.resource_id for r in results if isinstance(r, Finding)] == [
        violation(1)["resource_id"],
        violation(3)["resource_id"],
    ]
    assert any(isinstance(r, FindingError) and "Atlantis" in str(r) for r in results)
    results = list(connector().fetch(region="EU (Ireland)", account_id="123456789012"))
    assert [r.resource_id for r in results if isinstance(r, Finding)] == [violation(2)["resource_id"]]
    with pytest.raises(ValueError, match="unknown region"):
        list(connector().fetch(region="Narnia"))
    with pytest.raises(ValueError, match="bad account filter"):
        list(connector().fetch(account_id="12"))


@responses.activate
def test_bad_items_in_the_stream_become_errors_and_the_stream_goes_on() -> None:
    serve_once([violation(1), "junk", violation(2, account_id="12"), violation(3)])
    results = list(connector().fetch())
    assert [type(r) for r in results] == [Finding, FindingError, FindingError, Finding]
    assert "#1" in str(results[1]) and "#2" in str(results[2]) and "account_id" in str(results[2])


# ------------------------------------------------------------------------------------------------ retries


@responses.activate
def test_429_then_success_honours_retry_after() -> None:
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "7"}, json={"status": "error"})
    serve_once([violation()])
    sleeps = Sleeps()
    conn = connector(sleep=sleeps)
    assert len(list(conn.fetch())) == 1
    assert sleeps == [7.0]
    assert conn.requests_made == 3  # 429, the page, the empty page


@responses.activate
def test_retry_after_is_capped() -> None:
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "3600"})
    responses.add(responses.POST, URL, **ok([]))
    sleeps = Sleeps()
    list(connector(sleep=sleeps, max_wait=30).fetch())
    assert sleeps == [30.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@responses.activate
def test_5xx_is_retried_with_jittered_backoff(status: int) -> None:
    responses.add(responses.POST, URL, status=status, body="<html>maintenance</html>")
    responses.add(responses.POST, URL, status=status, body="")
    serve_once([violation()])
    sleeps = Sleeps()
    conn = connector(sleep=sleeps)
    assert len(list(conn.fetch())) == 1
    assert conn.requests_made == 4
    assert len(sleeps) == 2 and all(0 <= s <= 60 for s in sleeps)


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")]
)
@responses.activate
def test_connection_errors_and_timeouts_are_retried(error: Exception) -> None:
    responses.add(responses.POST, URL, body=error)
    serve_once([violation()])
    sleeps = Sleeps()
    conn = connector(sleep=sleeps)
    assert len(list(conn.fetch())) == 1
    assert conn.requests_made == 3 and len(sleeps) == 1


@responses.activate
def test_gives_up_after_max_attempts_with_a_clear_error() -> None:
    responses.add(responses.POST, URL, status=503, json={"status": "error", "errorCode": "Service Unavailable"})
    sleeps = Sleeps()
    conn = connector(sleep=sleeps, max_attempts=4)
    with pytest.raises(NetskopeError) as info:
        list(conn.fetch())
    assert "4 attempt" in str(info.value) and "503" in str(info.value) and "Service Unavailable" in str(info.value)
    assert info.value.status == 503
    assert conn.requests_made == 4 and len(sleeps) == 3
    assert_error_clean(info.value)


def test_every_request_has_a_timeout() -> None:
    seen: dict[str, Any] = {}

    class Session(requests.Session):
        def post(self, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            seen.update(kwargs)
            raise requests.ConnectTimeout("slow")

    conn = NetskopeConnector(BASE, TOKEN, http=Session(), sleep=Sleeps(), max_attempts=2, timeout=(5, 60))
    with pytest.raises(NetskopeError, match="2 attempt"):
        list(conn.fetch())
    assert seen["timeout"] == (5, 60)
    assert seen["allow_redirects"] is False


# ------------------------------------------------------------------------------------------------- errors


@responses.activate
def test_error_envelope_with_200_raises_with_status_and_message() -> None:
    responses.add(
        responses.POST,
        URL,
        json={"status": "error", "errorCode": "Authorization Error", "errors": ["Invalid token"]},
        status=200,
    )
    with pytest.raises(NetskopeError) as info:
        list(connector().fetch())
    message = str(info.value)
    assert "HTTP 200" in message and "Authorization Error" in message and "Invalid token" in message
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@responses.activate
def test_4xx_is_not_retried(status: int) -> None:
    responses.add(
        responses.POST, URL, status=status, json={"status": "error", "errorCode": "Denied", "errors": ["nope", "no"]}
    )
    sleeps = Sleeps()
    with pytest.raises(NetskopeError) as info:
        list(connector(sleep=sleeps).fetch())
    assert info.value.status == status
    assert f"HTTP {status}" in str(info.value) and "Denied: nope; no" in str(info.value)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_redirect_is_an_error_not_followed() -> None:
    responses.add(responses.POST, URL, status=302, headers={"Location": "https://elsewhere.example/login"})
    with pytest.raises(NetskopeError, match="HTTP 302"):
        list(connector().fetch())
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("<html><body>Gateway</body></html>", "not JSON"),
        ("", "not JSON"),
        (json.dumps({"status": "success"}), "no 'data' list"),
        (json.dumps({"status": "success", "data": {"a": 1}}), "no 'data' list"),
        (json.dumps([1, 2]), "no 'data' list"),
    ],
)
@responses.activate
def test_malformed_success_responses(body: str, fragment: str) -> None:
    responses.add(responses.POST, URL, body=body, status=200)
    with pytest.raises(NetskopeError, match=fragment):
        list(connector().fetch())


@responses.activate
def test_token_echoed_by_the_server_is_scrubbed() -> None:
    responses.add(
        responses.POST,
        URL,
        status=400,
        json={"status": "error", "errorCode": "Bad Request", "errors": [f"token {TOKEN} is malformed"]},
    )
    responses.add(responses.POST, URL, status=200, body=f"oops token={urllib.parse.quote_plus(TOKEN)}")
    for _ in range(2):
        with pytest.raises(NetskopeError) as info:
            list(connector().fetch())
        assert "***" in str(info.value)
        assert_error_clean(info.value)


@responses.activate
def test_token_never_in_urls_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.add(responses.POST, URL, status=429, headers={"Retry-After": "0"}, json={"errors": [TOKEN]})
    responses.add(responses.POST, URL, body=requests.ConnectionError(f"refused {TOKEN}"))
    responses.add(responses.POST, URL, status=500, body=f"trace: {TOKEN}")
    responses.add(responses.POST, URL, status=403, json={"status": "error", "errors": [f"bad {TOKEN}"]})
    with pytest.raises(NetskopeError) as info:
        list(connector().fetch())
    assert_error_clean(info.value)
    assert len(responses.calls) == 4
    for call in responses.calls:
        assert_no_token(call.request.url)
    assert caplog.records, "the retries should have been logged"
    assert_no_token(caplog.text)
    assert_no_token("\n".join(str(r.args) for r in caplog.records))


def test_token_provider_must_give_a_token() -> None:
    conn = NetskopeConnector(BASE, lambda: "  ", sleep=Sleeps())
    with pytest.raises(NetskopeError, match="empty token"):
        list(conn.fetch())


# ----------------------------------------------------------------------------------------- Secrets Manager


@pytest.fixture
def fresh_secret_caches() -> Any:
    netskope._SECRET_CACHES.clear()
    yield netskope._SECRET_CACHES
    netskope._SECRET_CACHES.clear()


@mock_aws
def test_secret_json_token(fresh_secret_caches: dict) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="netskope/api", SecretString=json.dumps({"token": TOKEN}))
    provider = secret_token_provider("netskope/api")
    assert provider() == TOKEN
    assert provider() == TOKEN
    assert secret_token_provider("netskope/api")() == TOKEN
    assert len(fresh_secret_caches) == 1  # one module-level cache, reused across providers (warm Lambdas)


@mock_aws
def test_secret_plain_token_with_explicit_client(fresh_secret_caches: dict) -> None:
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="netskope-plain", SecretString=f"  {TOKEN}\n")["ARN"]
    assert secret_token_provider(arn, client=client)() == TOKEN
    assert fresh_secret_caches == {}  # an explicit client gets its own cache


@mock_aws
def test_secret_errors_are_clear_and_do_not_leak(fresh_secret_caches: dict) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    with pytest.raises(NetskopeError, match="ResourceNotFoundException"):
        secret_token_provider("missing", client=client)()
    client.create_secret(Name="wrong-shape", SecretString=json.dumps({"api_key": TOKEN}))
    with pytest.raises(NetskopeError, match='"token"') as info:
        secret_token_provider("wrong-shape", client=client)()
    assert_error_clean(info.value)
    with pytest.raises(NetskopeError, match="no Netskope token secret"):
        secret_token_provider("")


@mock_aws
@responses.activate
def test_connector_with_secret_token(fresh_secret_caches: dict) -> None:
    responses.add_passthru("https://secretsmanager.us-east-1.amazonaws.com")
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="netskope/api", SecretString=json.dumps({"token": TOKEN})
    )
    serve_pages([violation(1)])
    conn = NetskopeConnector(BASE, secret_token_provider("netskope/api"), sleep=Sleeps())
    assert [f.resource_id for f in conn.fetch()] == [violation(1)["resource_id"]]


@pytest.mark.parametrize(
    ("text", "token"),
    [(TOKEN, TOKEN), (f" {TOKEN} ", TOKEN), (json.dumps({"token": TOKEN}), TOKEN), (json.dumps(TOKEN), TOKEN)],
)
def test_token_from_secret(text: str, token: str) -> None:
    assert token_from_secret(text, "s") == token


@pytest.mark.parametrize("text", [None, "", "  ", "{not json", json.dumps({"token": ""}), json.dumps({"token": 5})])
def test_token_from_secret_rejects(text: str | None) -> None:
    with pytest.raises(NetskopeError):
        token_from_secret(text, "s")


# ------------------------------------------------------------------------------------------------ parsing


def test_fixture_covers_catalog_c_and_an_unknown_rule() -> None:
    payload = json.loads(FIXTURE.read_text())
    results = list(parse_payload(payload))
    assert all(isinstance(r, Finding) for r in results), [str(r) for r in results if not isinstance(r, Finding)]
    by_rule = {f.source_rule: f for f in results}
    assert set(RULES) <= set(by_rule)
    assert len(results) == 11
    unknown = [f for f in results if f.source_rule not in RULES]
    assert [f.rule_id for f in unknown] == ["netskope:Ensure EC2 instances do not have a public IP address"]
    expected = {
        "EC2.6": ("AwsEc2Vpc", "vpc-0a1b2c3d4e5f60718", "us-east-1"),
        "EC2.13": ("AwsEc2SecurityGroup", "sg-0123456789abcdef0", "us-east-1"),
        "EC2.14": ("AwsEc2SecurityGroup", "sg-0fedcba9876543210", "eu-west-1"),
        "RDS.1": ("AwsRdsDbSnapshot", "orders-db-snapshot-2024-06-01", "eu-central-1"),
        "Redshift.1": ("AwsRedshiftCluster", "analytics-cluster", "ap-south-1"),
        "CloudTrail.4": ("AwsCloudTrailTrail", "org-trail", "us-east-2"),
        "S3.8": ("AwsS3Bucket", "dev-public-assets", "us-west-1"),
        "IAM.3": ("AwsIamUser", "etl-service", "global"),
    }
    for f in results:
        if f.rule_id in expected:
            assert (f.resource_type, f.resource_id, f.region) == expected[f.rule_id]
    nacl = [f for f in results if f.rule_id == "netskope:nacl-allow-all-ingress"]
    assert {(f.region, f.resource_type) for f in nacl} == {
        ("sa-east-1", "AwsEc2NetworkAcl"),
        ("us-west-2", "AwsEc2NetworkAcl"),
    }
    trail = next(f for f in results if f.rule_id == "CloudTrail.4")
    assert trail.resource_arn == "arn:aws:cloudtrail:us-east-2:333333333333:trail/org-trail"
    sg3389 = next(f for f in results if f.rule_id == "EC2.14")
    assert sg3389.account_id == "222222222222"  # sent as an int


def test_finding_fields() -> None:
    item = violation(
        1,
        compliance_standards=[{"standard": "CIS-AWS-1.2.0", "section": "4", "control": "1"}, "NIST-800-53 AC-4", 7],
    )
    original = copy.deepcopy(item)
    f = parse_violation(item)
    assert f.source == "netskope"
    assert f.rule_id == "EC2.13" and f.source_rule == SG_RULE
    assert f.account_id == "123456789012" and f.region == "us-east-1"
    assert f.resource_type == "AwsEc2SecurityGroup" and f.resource_id == item["resource_id"]
    assert f.resource_arn is None and f.product_arn is None
    assert f.severity == "HIGH" and f.compliance_status == "FAILED"
    assert f.workflow_status is None and f.record_state is None
    assert f.standards == ("CIS-AWS-1.2.0 4.1", "NIST-800-53 AC-4")
    assert f.last_observed == "2024-06-10T06:13:20Z" and f.first_observed is None
    assert dict(f.tags) == {}
    assert f.raw is item and item == original
    assert f.finding_id == stable_finding_id(
        "netskope", normalize_rule_name(SG_RULE), "123456789012", "us-east-1", item["resource_id"]
    )
    json.dumps(f.to_dict())


def test_finding_id_is_stable_across_spelling_and_uses_a_real_id_when_present() -> None:
    a = parse_violation(violation(1))
    b = parse_violation(violation(1, rule_name="  " + SG_RULE.upper().replace(": ", " :  ")))
    assert a.finding_id == b.finding_id and a.finding_id.startswith("netskope:")
    assert parse_violation(violation(1, _id="65f0c0ffee")).finding_id == "netskope:65f0c0ffee"
    assert parse_violation(violation(2)).finding_id != a.finding_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123456789012, "123456789012"),
        (12345678901, "012345678901"),
        (0, "000000000000"),
        (" 123456789012 ", "123456789012"),
    ],
)
def test_account_ids(value: Any, expected: str) -> None:
    assert parse_violation(violation(account_id=value)).account_id == expected


@pytest.mark.parametrize("value", ["12345678901", "1234567890123", "abc", 10**12, -1, True, 1.2e11, None, [], {}])
def test_bad_account_ids(value: Any) -> None:
    with pytest.raises(FindingError, match="account_id"):
        parse_violation(violation(account_id=value))


def test_regions() -> None:
    assert parse_violation(violation(region_name="EU(Ireland)")).region == "eu-west-1"
    assert parse_violation(violation(region_name="global")).region == "global"
    assert parse_violation(violation(region_name="ap-southeast-2")).region == "ap-southeast-2"
    with pytest.raises(FindingError, match=r"region_name: unknown region 'Moon \(Tranquility\)'"):
        parse_violation(violation(region_name="Moon (Tranquility)"))
    with pytest.raises(FindingError, match="region_name: missing"):
        parse_violation({k: v for k, v in violation().items() if k != "region_name"})
    with pytest.raises(FindingError, match="region_name: must be a string"):
        parse_violation(violation(region_name=5))


def test_arn_resources_resolve_to_api_ids_and_resource_account_wins() -> None:
    sg = parse_violation(
        violation(resource_id="arn:aws:ec2:eu-west-1:210987654321:security-group/sg-0abc1234def567890")
    )
    assert (sg.resource_id, sg.account_id, sg.region) == ("sg-0abc1234def567890", "210987654321", "eu-west-1")
    assert sg.resource_arn.endswith("sg-0abc1234def567890")
    user = parse_violation(
        violation(
            rule_name="Remote access: Ensure access keys are rotated every 90 days or less.",
            region_name="global",
            resource_id="arn:aws:iam::123456789012:user/engineering/alice",
        )
    )
    assert (user.resource_type, user.resource_id, user.region) == ("AwsIamUser", "alice", "global")
    bucket = parse_violation(
        violation(rule_name="Ensure S3 Bucket is not publicly accessible.", resource_id="arn:aws:s3:::my-bucket")
    )
    assert (bucket.resource_type, bucket.resource_id, bucket.region) == ("AwsS3Bucket", "my-bucket", "us-east-1")
    snap = parse_violation(
        violation(
            rule_name="Some new RDS rule",
            resource_type=None,
            resource_id="arn:aws-us-gov:rds:us-gov-west-1:123456789012:snapshot:snap1",
        )
    )
    assert (snap.resource_type, snap.resource_id, snap.region) == ("AwsRdsDbSnapshot", "snap1", "us-gov-west-1")
    assert snap.partition == "aws-us-gov"
    with pytest.raises(FindingError, match="resource_id"):
        parse_violation(violation(resource_id="arn:aws:ec2:us-east-1:12:security-group/sg-1"))


def test_resource_name_is_the_fallback_and_missing_resource_is_an_error() -> None:
    assert parse_violation(violation(resource_id="", resource_name="bucket-x")).resource_id == "bucket-x"
    with pytest.raises(FindingError, match="resource_id: missing"):
        parse_violation(violation(resource_id=None, resource_name=None))
    with pytest.raises(FindingError, match="resource_id: must be a string"):
        parse_violation(violation(resource_id=12345))


def test_unknown_rule_gets_resource_type_from_netskope_or_other() -> None:
    f = parse_violation(violation(rule_name="Ensure EBS encryption", resource_type="Volume", resource_id="vol-0123"))
    assert (f.rule_id, f.resource_type) == ("netskope:Ensure EBS encryption", "AwsEc2Volume")
    g = parse_violation(violation(rule_name="Custom thing", resource_type="Gizmo", resource_id="gizmo-1"))
    assert g.resource_type == "Other"
    h = parse_violation(violation(rule_name="Custom thing", resource_type=None, object_type="Bucket", resource_id="b"))
    assert h.resource_type == "AwsS3Bucket"


def test_extra_rules_mapping() -> None:
    f = parse_violation(violation(rule_name="Ensure EBS encryption"), extra_rules={"ensure ebs encryption": "EC2.7"})
    assert f.rule_id == "EC2.7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Critical", "CRITICAL"),
        ("high", "HIGH"),
        (" Medium ", "MEDIUM"),
        ("LOW", "LOW"),
        ("Informational", "INFORMATIONAL"),
        ("info", "INFORMATIONAL"),
        ("Severe", "MEDIUM"),
        (None, "MEDIUM"),
        (3, "MEDIUM"),
        ({"x": 1}, "MEDIUM"),
    ],
)
def test_severity(value: Any, expected: str) -> None:
    assert parse_violation(violation(severity=value)).severity == expected


def test_compliance_status() -> None:
    assert parse_violation(violation(status="Failed")).compliance_status == "FAILED"
    assert parse_violation(violation(status="Passed")).compliance_status == "PASSED"
    assert parse_violation(violation(status="Something")).compliance_status == "NOT_AVAILABLE"
    assert parse_violation({k: v for k, v in violation().items() if k != "status"}).compliance_status == "FAILED"
    with pytest.raises(FindingError, match="status"):
        parse_violation(violation(status=["Failed"]))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timestamp": 1718000000}, "2024-06-10T06:13:20Z"),
        ({"timestamp": 1718000000123}, "2024-06-10T06:13:20Z"),
        ({"timestamp": "1718000000"}, "2024-06-10T06:13:20Z"),
        ({"timestamp": None, "last_update": "2024-06-10T08:13:20+02:00"}, "2024-06-10T06:13:20Z"),
        ({"timestamp": "2024-06-10T06:13:20Z"}, "2024-06-10T06:13:20Z"),
        ({"timestamp": "2024-06-10 06:13:20"}, "2024-06-10T06:13:20Z"),
        ({"timestamp": "yesterday"}, None),
        ({"timestamp": 1e300}, None),
        ({"timestamp": float("nan")}, None),
        ({"timestamp": True}, None),
        ({"timestamp": None}, None),
    ],
)
def test_last_observed(fields: dict[str, Any], expected: str | None) -> None:
    assert parse_violation(violation(**fields)).last_observed == expected


@pytest.mark.parametrize("value", [None, "", "  ", 5, ["x"]])
def test_rule_name_is_required(value: Any) -> None:
    with pytest.raises(FindingError, match="rule_name"):
        parse_violation(violation(rule_name=value))


# ---------------------------------------------------------------------------------------- payload shapes


def test_payload_shapes() -> None:
    item = violation(1)
    for payload in ({"data": [item]}, {"status": "success", "msg": "", "data": [item]}, [item], item):
        (result,) = list(parse_payload(payload))
        assert isinstance(result, Finding) and result.raw is item
    assert list(parse_payload({"status": "success", "data": []})) == []
    assert list(parse_payload([])) == []


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"status": "error", "errorCode": "Authorization Error", "errors": ["Invalid token"]}, "Invalid token"),
        ({"data": "nope"}, "'data' must be a list"),
        ({"data": None}, "'data' must be a list"),
        ({"Findings": []}, "keys: Findings"),
        (42, "got int"),
        ("text", "got str"),
        (None, "got NoneType"),
    ],
)
def test_bad_payloads_raise(payload: Any, fragment: str) -> None:
    with pytest.raises(FindingError, match=fragment):
        parse_payload(payload)


def test_bad_items_are_reported_with_index_and_field_and_the_batch_goes_on() -> None:
    results = list(parse_payload([violation(1), 5, violation(2, region_name="Nowhere"), {}, violation(3)]))
    assert [type(r).__name__ for r in results] == ["Finding", "FindingError", "FindingError", "FindingError", "Finding"]
    assert str(results[1]).startswith("item 1:") and "JSON object" in str(results[1])
    assert str(results[2]).startswith("item 2:") and "region_name" in str(results[2]) and "Nowhere" in str(results[2])
    assert str(results[3]).startswith("item 3:") and "rule_name" in str(results[3])


# -------------------------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
VIOLATION_KEYS = [
    "account_id",
    "region_name",
    "resource_id",
    "resource_name",
    "rule_name",
    "resource_type",
    "object_type",
    "severity",
    "status",
    "muted",
    "mute",
    "timestamp",
    "last_update",
    "compliance_standards",
    "_id",
    "region",
]
interesting_strings = st.sampled_from(
    [
        "",
        " ",
        "global",
        "US East(N. Virginia)",
        "EU(Ireland)",
        "us-east-1",
        "arn:",
        "arn:aws:s3:::b",
        "arn:aws:iam::123456789012:user/a",
        "arn:aws:ec2:xx:123456789012:vpc/",
        "123456789012",
        SG_RULE,
        "Failed",
        "Passed",
        "High",
        "2024-06-10T06:13:20Z",
        "sg-0123",
        "arn:aws-cn:ec2:cn-north-1:123456789012:vpc/vpc-1",
    ]
)
violation_like = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | interesting_strings | st.integers(min_value=-(10**13), max_value=10**13)
        for key in VIOLATION_KEYS
    },
)


def _check(payload: Any) -> None:
    try:
        results = list(parse_payload(payload))
    except FindingError:
        return
    for result in results:
        assert isinstance(result, Finding | FindingError), type(result)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_never_crashes(payload: Any) -> None:
    _check(payload)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(violation_like)
def test_violation_shaped_dicts_never_crash(item: dict[str, Any]) -> None:
    _check(item)
    _check([item])
    _check({"data": [item, 1]})


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(VIOLATION_KEYS), json_values | interesting_strings))
def test_partially_valid_violations_never_crash(overrides: dict[str, Any]) -> None:
    _check({**violation(1), **overrides})


def test_secret_value_never_reaches_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """botocore logs response bodies at DEBUG; GetSecretValue's must not get through (connectors.log_hygiene)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="hygiene-secret", SecretString=json.dumps({"token": TOKEN})
        )
        client = boto3.client("secretsmanager", region_name="us-east-1")
        assert secret_token_provider("hygiene-secret", client=client)() == TOKEN
    assert any(r.name == "botocore.parsers" for r in caplog.records), "botocore debug logging should be on"
    assert_no_token(caplog.text)
