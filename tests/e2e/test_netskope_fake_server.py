"""The Netskope connector against the local fake API: real sockets, real `requests`/urllib3, on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.finding import Finding
from connectors.netskope import NetskopeConnector, NetskopeError
from connectors.netskope_rules import RULES
from demo.fake_netskope import FakeNetskope

TOKEN = "fake-netskope-token-0f9e8d"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "netskope_violations.json"
S3_RULE = "Ensure S3 Bucket is not publicly accessible."


def fixture_violations() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text())["data"]


def bulk(n: int) -> list[dict[str, Any]]:
    return [
        {
            "account_id": "123456789012",
            "region_name": "US East(N. Virginia)",
            "resource_id": f"bucket-{i}",
            "rule_name": S3_RULE,
            "severity": "Critical",
            "status": "Failed",
            "muted": "No",
            "cloud_provider": "aws",
        }
        for i in range(n)
    ]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeNetskope]:
    with FakeNetskope(fixture_violations(), TOKEN) as server:
        yield server


def test_pull_every_catalog_rule_through_the_fake(fake: FakeNetskope) -> None:
    conn = NetskopeConnector(fake.url, lambda: TOKEN, clock=lambda: 1718000000)
    findings = list(conn.fetch())
    assert all(isinstance(f, Finding) for f in findings)
    assert {f.source_rule for f in findings} >= set(RULES)
    assert len(findings) == 11
    assert conn.requests_made == 2  # the page, then the empty page that proves it was the last
    query = {"cloud_provider": "aws", "status": "Failed", "muted": "No", "limit": "5000", "as_of": "1718000000"}
    assert fake.requests == [{**query, "skip": "0"}, {**query, "skip": "11"}]


def test_paging_against_the_fake() -> None:
    with FakeNetskope(bulk(2001), TOKEN) as server:
        conn = NetskopeConnector(server.url, TOKEN, page_size=1000)
        assert len(list(conn.fetch())) == 2001
        assert conn.requests_made == 4
        assert [r["skip"] for r in server.requests] == ["0", "1000", "2000", "2001"]
        assert all("token" not in r for r in server.requests)


def test_exactly_full_pages_cost_one_empty_request() -> None:
    with FakeNetskope(bulk(2000), TOKEN) as server:
        conn = NetskopeConnector(server.url, TOKEN, page_size=1000)
        assert len(list(conn.fetch())) == 2000
        assert conn.requests_made == 3


def test_server_side_filters(fake: FakeNetskope) -> None:
    extra = [
        {**bulk(1)[0], "resource_id": "muted-bucket", "muted": "Yes"},
        {**bulk(1)[0], "resource_id": "passed-bucket", "status": "Passed"},
        {**bulk(1)[0], "resource_id": "azure-thing", "cloud_provider": "azure"},
    ]
    fake.violations.extend(extra)
    conn = NetskopeConnector(fake.url, TOKEN)
    s3 = list(conn.fetch(rule_names=[S3_RULE]))
    assert [f.resource_id for f in s3] == ["dev-public-assets"]
    by_account = list(conn.fetch(account_id="333333333333"))
    assert {f.account_id for f in by_account} == {"333333333333"} and len(by_account) == 3
    assert fake.requests[-1]["account_id"] == "333333333333"
    eu = list(conn.fetch(region="eu-west-1"))
    assert [f.resource_id for f in eu] == ["sg-0fedcba9876543210"]


def test_429_with_retry_after_then_success() -> None:
    with FakeNetskope(bulk(3), TOKEN, fail_first=2) as server:
        sleeps = Sleeps()
        conn = NetskopeConnector(server.url, TOKEN, sleep=sleeps)
        assert len(list(conn.fetch())) == 3
        assert sleeps == [0.0, 0.0]  # Retry-After: 0, honoured instead of the exponential backoff
        assert conn.requests_made == 4 == len(server.requests)


def test_503_then_success() -> None:
    with FakeNetskope(bulk(1), TOKEN, fail_first=1, fail_status=503) as server:
        sleeps = Sleeps()
        assert len(list(NetskopeConnector(server.url, TOKEN, sleep=sleeps).fetch())) == 1
        assert len(sleeps) == 1


def test_wrong_token_is_a_clear_error_without_the_token(fake: FakeNetskope) -> None:
    with pytest.raises(NetskopeError) as info:
        list(NetskopeConnector(fake.url, "not-the-right-token").fetch())
    assert info.value.status == 403
    assert "Authorization Error" in str(info.value) and "Invalid token" in str(info.value)
    assert "not-the-right-token" not in str(info.value)


def test_limit_above_the_server_maximum_is_an_error_not_silent_truncation() -> None:
    with (
        FakeNetskope(bulk(5), TOKEN, page_limit_max=1000) as server,
        pytest.raises(NetskopeError, match=r"HTTP 400.*limit"),
    ):
        list(NetskopeConnector(server.url, TOKEN, page_size=5000).fetch())


def test_token_never_in_urls_or_debug_logs(fake: FakeNetskope, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    conn = NetskopeConnector(fake.url, TOKEN, page_size=5)
    assert len(list(conn.fetch())) == 11
    assert conn.requests_made == 4
    urllib3_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/api/v1/security_assessment" in line for line in urllib3_lines), "urllib3 debug logging was captured"
    assert all("?" not in line.split("security_assessment", 1)[-1].split(" ")[0] for line in urllib3_lines)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_the_fake_rejects_a_token_in_the_query_string(fake: FakeNetskope) -> None:
    response = requests.get(f"{fake.url}/api/v1/security_assessment?token={TOKEN}&limit=1", timeout=5)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert "token" not in fake.requests[-1]


def test_the_fake_speaks_netskope(fake: FakeNetskope) -> None:
    endpoint = f"{fake.url}/api/v1/security_assessment"
    body = requests.post(endpoint, data={"token": TOKEN, "limit": "2", "skip": "1"}, timeout=5).json()
    assert body["status"] == "success" and body["msg"] == "" and len(body["data"]) == 2
    as_json = requests.post(endpoint, json={"token": TOKEN, "rule_name": S3_RULE}, timeout=5).json()
    assert [v["resource_id"] for v in as_json["data"]] == ["dev-public-assets"]
    missing = requests.post(endpoint, data={"limit": "1"}, timeout=5)
    assert missing.status_code == 403 and missing.json()["errorCode"] == "Authorization Error"
    assert requests.post(f"{fake.url}/api/v2/other", data={"token": TOKEN}, timeout=5).status_code == 404
    bad_skip = requests.post(endpoint, data={"token": TOKEN, "skip": "-1"}, timeout=5)
    assert bad_skip.status_code == 400


def test_start_stop() -> None:
    server = FakeNetskope([], TOKEN)
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    assert requests.post(url + "/api/v1/security_assessment", data={"token": TOKEN}, timeout=5).json()["data"] == []
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/api/v1/security_assessment", data={"token": TOKEN}, timeout=2)
