"""GetFindings pulling: paging at 100, server-side filters (chunked at 20 values), client-side re-check, retry."""

import copy
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from connectors.finding import Finding, FindingError
from connectors.securityhub import SecurityHubConnector, build_filters

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "asff_ec2_53.json").read_text())


def asff(index, **changes):
    item = copy.deepcopy(FIXTURE)
    item["Id"] = f"{FIXTURE['Id']}-{index}"
    item["Region"] = "us-east-1"
    item["ProductArn"] = "arn:aws:securityhub:us-east-1::product/aws/securityhub"
    item["Resources"][0]["Region"] = "us-east-1"
    item["Resources"][0]["Id"] = f"arn:aws:ec2:us-east-1:222222222222:security-group/sg-{index:017x}"
    for key, value in changes.items():
        item[key] = value
    return item


@pytest.fixture
def hub(moto_aws):
    client = boto3.client("securityhub", region_name="us-east-1")
    client.enable_security_hub()
    return client


def import_findings(client, findings):
    for start in range(0, len(findings), 100):
        response = client.batch_import_findings(Findings=findings[start : start + 100])
        assert response["FailedCount"] == 0


def test_pages_at_the_maximum_and_counts_requests(hub):
    import_findings(hub, [asff(i) for i in range(250)])
    connector = SecurityHubConnector(hub)
    findings = list(connector.fetch(["EC2.53"]))
    assert len(findings) == 250 and all(isinstance(f, Finding) for f in findings)
    assert connector.requests_made == 3  # ceil(250 / 100)


def test_client_side_recheck_drops_what_the_filter_should_have(hub):
    """moto ignores Filters, like any backend that might drop one: closed or passed findings never come out."""
    import_findings(
        hub,
        [
            asff(1),
            asff(2, Compliance={"Status": "PASSED", "SecurityControlId": "EC2.53"}),
            asff(3, RecordState="ARCHIVED"),
            asff(4, Workflow={"Status": "SUPPRESSED"}),
            asff(5, Compliance={"Status": "FAILED", "SecurityControlId": "S3.8"}),
        ],
    )
    findings = list(SecurityHubConnector(hub).fetch(["EC2.53"]))
    assert [f.finding_id.rsplit("-", 1)[-1] for f in findings] == ["1"]


def test_malformed_finding_is_reported_and_the_rest_go_on(hub):
    bad = asff(2)
    bad["Resources"][0]["Id"] = "arn:aws:ec2:us-east-1:nope:security-group/sg-1"
    import_findings(hub, [asff(1), bad, asff(3)])
    items = list(SecurityHubConnector(hub).fetch(["EC2.53"]))
    assert [type(i) for i in items] == [Finding, FindingError, Finding]


@pytest.mark.stubber  # moto ignores Filters, so the exact request shape is checked with Stubber.
def test_filters_are_chunked_at_twenty_control_ids():
    client = boto3.client("securityhub", region_name="us-east-1")
    rule_ids = [f"EC2.{n}" for n in range(1, 26)]
    with Stubber(client) as stub:
        for chunk in (sorted(rule_ids)[:20], sorted(rule_ids)[20:]):
            stub.add_response("get_findings", {"Findings": []}, {"Filters": build_filters(chunk), "MaxResults": 100})
        assert list(SecurityHubConnector(client).fetch(rule_ids)) == []
        stub.assert_no_pending_responses()


def test_filters_select_open_failed_findings():
    filters = build_filters(["EC2.53"])
    assert filters["ComplianceStatus"] == [{"Value": "FAILED", "Comparison": "EQUALS"}]
    assert filters["RecordState"] == [{"Value": "ACTIVE", "Comparison": "EQUALS"}]
    assert {f["Value"] for f in filters["WorkflowStatus"]} == {"NEW", "NOTIFIED"}
    assert filters["ComplianceSecurityControlId"] == [{"Value": "EC2.53", "Comparison": "EQUALS"}]
    with pytest.raises(ValueError):
        build_filters([str(i) for i in range(21)])


@pytest.mark.stubber
def test_an_error_the_client_gave_up_on_is_raised_not_retried_again():
    """Throttling is retried once, by the client's standard mode (tests/e2e/test_faults.py counts the attempts
    on the wire); the Stubber answers before that layer, so this is the puller alone: no second layer."""
    client = boto3.client("securityhub", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_findings", "TooManyRequestsException", http_status_code=429)
        with pytest.raises(Exception, match="TooManyRequests"):
            list(SecurityHubConnector(client).fetch(["EC2.53"]))
        stub.assert_no_pending_responses()


def test_more_than_twenty_rules_yield_each_finding_once_even_if_filters_are_ignored(hub):
    """moto ignores Filters: with 25 rules (2 chunks) every page holds every finding; each must come out once."""
    import_findings(hub, [asff(i) for i in range(5)])
    connector = SecurityHubConnector(hub)
    rules = ["EC2.53", *[f"X.{n}" for n in range(24)]]
    findings = list(connector.fetch(rules))
    assert len(findings) == 5 and len({f.finding_id for f in findings}) == 5
    assert connector.requests_made == 2
