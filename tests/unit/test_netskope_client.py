"""Netskope client behaviour that follows the tenant (issue #15) and the item's own fields (issue #14, items 3 and
5): header auth, a tenant-side page cap, one `as_of` per pull, config-extended rule names and the
`compliance_standards` fallback, tags kept (so the exclusion tag works) and mute/status re-checked client-side."""

from __future__ import annotations

import io
import itertools
import json
import urllib.parse
from typing import Any

import boto3
import pytest
import responses

from connectors.finding import Finding, FindingError
from connectors.netskope import (
    TOKEN_HEADER,
    NetskopeConnector,
    NetskopeError,
    auth_style,
    is_open,
    parse_violation,
)
from functions.cli import main as cli
from functions.engine.config import ConfigError, config_from_dict, load_config
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions

TOKEN = "rbacv3-Svc/Acct+token=9e1f"
BASE = "https://tenant.goskope.com"
URL = BASE + "/api/v1/security_assessment"
S3_RULE = "Ensure S3 Bucket is not publicly accessible."
SG_RULE = (
    "Communications and control network protection: Ensure no security groups allow ingress from 0.0.0.0/0 to port 22"
)


def violation(i: int = 0, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "account_id": "123456789012", "cloud_provider": "aws", "muted": "No", "region_name": "US East(N. Virginia)",
        "resource_id": f"sg-{i:017x}", "resource_type": "SecurityGroup", "rule_name": SG_RULE, "severity": "High",
        "status": "Failed",
    }
    item.update(overrides)
    return item


def body_params(request: Any) -> dict[str, str]:
    body = request.body or ""
    body = body.decode() if isinstance(body, bytes) else body
    return {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


def tenant(items: list[dict[str, Any]], cap: int | None = None, auth: str = "v1-body") -> list[dict[str, str]]:
    """A `responses` tenant that pages `items` by limit/skip, serving at most `cap` per page, checking the token
    where `auth` says it travels. Returns the list of request parameters it saw."""
    seen: list[dict[str, str]] = []

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = body_params(request)
        assert "?" not in request.url
        if auth == "header":
            assert request.headers.get(TOKEN_HEADER) == TOKEN and "token" not in params
        else:
            assert params.get("token") == TOKEN and TOKEN_HEADER not in request.headers
        seen.append({k: v for k, v in params.items() if k != "token"})
        skip, limit = int(params["skip"]), int(params["limit"])
        served = min(limit, cap) if cap else limit
        return 200, {}, json.dumps({"status": "success", "msg": "", "data": items[skip : skip + served]})

    responses.add_callback(responses.POST, URL, callback=callback, content_type="application/json")
    return seen


def connector(**kwargs: Any) -> NetskopeConnector:
    kwargs.setdefault("sleep", lambda _s: None)
    return NetskopeConnector(BASE, lambda: TOKEN, **kwargs)


# ---------------------------------------------------------------------------------------------- auth style


@responses.activate
def test_header_auth_sends_the_token_as_netskope_api_token_and_nowhere_else() -> None:
    seen = tenant([violation(1), violation(2)], auth="header")
    findings = list(connector(auth="header").fetch())
    assert len(findings) == 2 and all(isinstance(f, Finding) for f in findings)
    for call in responses.calls:
        assert call.request.headers[TOKEN_HEADER] == TOKEN
        assert TOKEN not in call.request.url and urllib.parse.quote_plus(TOKEN) not in call.request.url
        assert "token" not in body_params(call.request)
    assert len(seen) == 2


@responses.activate
def test_default_auth_is_the_v1_body_field() -> None:
    tenant([violation(1)], auth="v1-body")
    assert len(list(connector().fetch())) == 1
    assert all(TOKEN_HEADER not in c.request.headers for c in responses.calls)


def test_auth_style_values() -> None:
    assert auth_style(None) == auth_style("") == "v1-body"
    assert auth_style(" Header ") == "header"
    with pytest.raises(NetskopeError, match="NETSKOPE_AUTH must be one of v1-body, header"):
        auth_style("bearer")


# -------------------------------------------------------------------------------------------------- paging


@responses.activate
def test_a_tenant_cap_below_the_page_size_loses_nothing() -> None:
    items = [violation(i) for i in range(4321)]
    seen = tenant(items, cap=1000)
    conn = connector(page_size=5000)
    findings = list(conn.fetch())
    assert sorted(f.resource_id for f in findings) == sorted(i["resource_id"] for i in items)
    assert [p["skip"] for p in seen] == ["0", "1000", "2000", "3000", "4000", "4321"]
    assert {p["limit"] for p in seen} == {"5000"}
    assert conn.requests_made == 6  # ⌈4321/1000⌉ pages + the empty one


@responses.activate
def test_as_of_is_one_snapshot_per_pull() -> None:
    seen = tenant([violation(i) for i in range(25)], cap=10)
    ticks = itertools.count(1718000000, 7)  # the clock moves on every reading
    conn = connector(page_size=10, clock=lambda: float(next(ticks)))
    list(conn.fetch(rule_names=[SG_RULE, S3_RULE]))  # two queries (this tenant ignores rule_name), one pull
    assert len(seen) == 2 * 4  # per query: 3 pages + the empty one
    assert {p["as_of"] for p in seen} == {"1718000000"}
    list(conn.fetch())
    assert {p["as_of"] for p in seen[8:]} == {"1718000007"}  # a new pull takes a new snapshot


@responses.activate
def test_a_server_that_ignores_skip_is_an_error_not_an_endless_pull() -> None:
    responses.add(responses.POST, URL, json={"status": "success", "data": [violation(1)]})
    with pytest.raises(NetskopeError, match="ignores skip"):
        list(connector().fetch())
    assert len(responses.calls) == 2


# ----------------------------------------------------------------------------------------------- rule names


def test_config_file_extends_the_rule_name_table(tmp_path) -> None:
    custom = "Custom: S3 buckets must block public ACLs"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"netskope": {"rules": {custom: "S3.8", SG_RULE: "EC2.53"}}}))
    rules = load_config(path).netskope_rules
    bucket = violation(resource_id="b", rule_name=custom, resource_type="Bucket")
    assert parse_violation(bucket, rules).rule_id == "S3.8"
    assert parse_violation(violation(), rules).rule_id == "EC2.53"  # an override of the built-in EC2.13
    assert parse_violation(violation(rule_name=custom)).rule_id == f"netskope:{custom}"  # without the config


def test_config_netskope_key_is_validated() -> None:
    for bad in ({"netskope": []}, {"netskope": {"rule": {}}}, {"netskope": {"rules": {"x": 1}}},
                {"netskope": {"rules": {"": "S3.8"}}}):
        with pytest.raises(ConfigError, match="netskope"):
            config_from_dict(bad)
    assert config_from_dict({}).netskope_rules == {}
    assert config_from_dict({"netskope": {"rules": {"a": "S3.8"}}}).with_overrides(mode="enforce").netskope_rules


def test_cli_normalize_and_pull_read_netskope_rules_from_the_config(tmp_path, monkeypatch) -> None:
    custom = "Custom: no public buckets"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"netskope": {"rules": {custom: "S3.8"}}}))
    payload = tmp_path / "v.json"
    payload.write_text(json.dumps({"data": [violation(resource_id="bucket-1", rule_name=custom)]}))
    out = io.StringIO()
    assert cli.main(["normalize", "--source", "netskope", "--config", str(config), str(payload)], out=out) == 0
    assert [f["rule_id"] for f in json.loads(out.getvalue())] == ["S3.8"]


def test_unknown_rule_name_falls_back_to_compliance_standards() -> None:
    unknown = "Tenant-renamed: SSH open to the world"
    cis = [{"standard": "CIS-AWS-1.2.0", "section": "4", "control": "1"}]
    assert parse_violation(violation(rule_name=unknown, compliance_standards=cis)).rule_id == "EC2.13"
    fsbp = [{"standard": "AWS Foundational Security Best Practices", "control": "EC2.53"}]
    assert parse_violation(violation(rule_name=unknown, compliance_standards=fsbp)).rule_id == "EC2.53"
    # standards that disagree, or that map to nothing, are not guessed from
    both = [*cis, {"standard": "CIS-AWS-1.2.0", "section": "4", "control": "2"}]
    assert parse_violation(violation(rule_name=unknown, compliance_standards=both)).rule_id == f"netskope:{unknown}"
    other = [{"standard": "CSA-CCM-3.0.1", "section": "SEF", "control": "02"}]
    assert parse_violation(violation(rule_name=unknown, compliance_standards=other)).rule_id == f"netskope:{unknown}"
    # a known name wins over its standards
    assert parse_violation(violation(compliance_standards=[{"standard": "AWS-FSBP", "control": "S3.8"}])).rule_id \
        == "EC2.13"


# ------------------------------------------------------------------------------------- tags, mute and status


def test_tags_are_kept_in_both_shapes_and_unreadable_tags_reject_the_item() -> None:
    as_dict = parse_violation(violation(tags={"cspm-remediation:exclude": "true", "team": "web"}))
    assert dict(as_dict.tags) == {"cspm-remediation:exclude": "true", "team": "web"}
    as_list = parse_violation(violation(tags=[{"key": "env", "value": "prod"}, {"Key": "n", "Value": 3}]))
    assert dict(as_list.tags) == {"env": "prod", "n": "3"}
    assert dict(parse_violation(violation()).tags) == {}
    for bad in ("env=prod", [["env", "prod"]], [{"value": "x"}], {"k": {"nested": 1}}):
        with pytest.raises(FindingError, match="tags"):
            parse_violation(violation(tags=bad))


def test_muted_and_status_are_read_from_the_item() -> None:
    assert parse_violation(violation(muted="Yes")).workflow_status == "SUPPRESSED"
    assert parse_violation(violation(muted=True)).workflow_status == "SUPPRESSED"
    assert parse_violation(violation(muted="No")).workflow_status is None
    assert parse_violation(violation(status="Passed")).compliance_status == "PASSED"
    with pytest.raises(FindingError, match="muted"):
        parse_violation(violation(muted="sometimes"))


def test_an_item_muted_by_its_mute_field_is_held_back() -> None:
    """Items name their mute state `muted` or `mute`: either one saying Yes suppresses the violation, so the
    pipeline's is_open never plans it."""
    assert parse_violation(violation(mute="Yes")).workflow_status == "SUPPRESSED"
    assert parse_violation(violation(muted="No", mute="Yes")).workflow_status == "SUPPRESSED"
    assert parse_violation(violation(muted="Yes", mute="No")).workflow_status == "SUPPRESSED"
    assert parse_violation(violation(mute="No")).workflow_status is None
    assert not is_open(parse_violation(violation(mute="yes")))
    with pytest.raises(FindingError, match=r"^mute: expected Yes or No"):
        parse_violation(violation(mute=2))


@responses.activate
def test_a_pull_never_yields_muted_or_non_failed_items_even_if_the_server_sends_them() -> None:
    items = [violation(1), violation(2, muted="Yes"), violation(3, status="Passed"), violation(4, muted="true")]
    tenant(items)  # ignores the muted/status filters, as a server might
    assert [f.resource_id for f in connector().fetch()] == [violation(1)["resource_id"]]


def test_a_muted_item_is_never_planned(moto_aws) -> None:
    boto3.client("ec2", region_name="us-east-1")  # moto up; the engine must not even look
    findings = [parse_violation(violation(7, muted="Yes"))]
    engine = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply")
    (result,) = engine.run(findings)
    assert result.outcome == "skipped" and "SUPPRESSED" in result.reason


def test_a_tagged_bucket_reported_by_netskope_ends_excluded(moto_aws) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="opted-out")
    s3.put_bucket_tagging(Bucket="opted-out", Tagging={"TagSet": [{"Key": "cspm-remediation:exclude", "Value": "1"}]})
    item = violation(resource_id="opted-out", rule_name=S3_RULE, resource_type="Bucket",
                     tags=[{"key": "cspm-remediation:exclude", "value": "1"}])
    engine = Engine(config_from_dict({"mode": "enforce"}), AssumedSessions(), stage="apply")
    (result,) = engine.run([parse_violation(item)])
    assert (result.rule_id, result.outcome) == ("S3.8", "excluded")
    assert "cspm-remediation:exclude" in result.reason
    with pytest.raises(s3.exceptions.ClientError):  # nothing was written: still no Block Public Access
        s3.get_public_access_block(Bucket="opted-out")
