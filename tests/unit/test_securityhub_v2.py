"""Security Hub's OCSF API: GetFindingsV2 → Finding, filters, paging, re-checks.

moto does not implement GetFindingsV2: the paging and filter tests use botocore's Stubber, which also validates
each request against botocore's service model (a filter of the wrong shape fails here as it would on AWS). The
fixture tests/fixtures/securityhub_v2_getfindings.json follows the OCSF Compliance Finding shape Security Hub
documents (compliance.control / status_id, status_id, activity_id, finding_info.uid, metadata.uid, resources[]).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import securityhub_v2 as v2
from connectors.finding import Finding, FindingError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "securityhub_v2_getfindings.json"


def response() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def findings() -> list[dict[str, Any]]:
    return response()["Findings"]


def client():
    return boto3.client("securityhub", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_fixture_maps_to_the_finding_model():
    first = next(iter(v2.parse_payload(response())))
    assert isinstance(first, Finding)
    assert (first.source, first.rule_id, first.source_rule) == ("securityhub-v2", "EC2.13", "EC2.13")
    assert (first.account_id, first.region, first.resource_type, first.resource_id) == (
        "123456789012", "us-east-1", "AwsEc2SecurityGroup", "sg-0123456789abcdef0")
    assert (first.compliance_status, first.workflow_status, first.record_state) == ("FAILED", "NEW", "ACTIVE")
    assert first.finding_id == findings()[0]["finding_info"]["uid"] and first.tags == {"team": "web"}
    assert v2.metadata_uid(first) == findings()[0]["metadata"]["uid"]  # what BatchUpdateFindingsV2 takes
    assert first.standards == ("aws-foundational-security-best-practices/v/1.0.0",
                               "cis-aws-foundations-benchmark/v/3.0.0")


def test_only_open_failed_active_findings_are_open():
    parsed = {f.rule_id: f for f in v2.parse_payload(response())}
    assert {r for r, f in parsed.items() if v2.is_open_failed(f)} == {"EC2.13", "S3.8", "IAM.15", "RDS.13"}
    assert parsed["S3.5"].compliance_status == "PASSED"
    assert parsed["EC2.14"].workflow_status == "SUPPRESSED"
    assert parsed["KMS.4"].record_state == "ARCHIVED"  # activity Close


@pytest.mark.parametrize(("cfn", "asff"), [
    ("AWS::EC2::SecurityGroup", "AwsEc2SecurityGroup"), ("AWS::S3::Bucket", "AwsS3Bucket"),
    ("AWS::RDS::DBInstance", "AwsRdsDbInstance"), ("AWS::CloudTrail::Trail", "AwsCloudTrailTrail"),
    ("AWS::IAM::User", "AwsIamUser"), ("AWS::::Account", "AwsAccount"), ("AwsKmsKey", "AwsKmsKey"),
])
def test_resource_types_become_asff_names(cfn, asff):
    assert v2.asff_resource_type(cfn) == asff


def test_another_product_is_untrusted_unless_allowlisted(monkeypatch):
    item = copy.deepcopy(findings()[0])
    item["metadata"]["product"] = {"name": "GuardDuty", "uid": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}
    (error,) = v2.parse_payload([item])
    assert isinstance(error, FindingError) and "only Security Hub CSPM's own findings" in str(error)
    (allowed,) = v2.parse_payload([item], frozenset({"arn:aws:securityhub:us-east-1::product/aws/guardduty"}))
    assert isinstance(allowed, Finding)


def test_bad_item_is_rejected_with_its_index_and_the_rest_kept():
    items = findings()
    del items[1]["compliance"]["control"]
    results = list(v2.parse_payload(items))
    assert isinstance(results[1], FindingError) and str(results[1]).startswith("finding #1 (")
    assert "compliance.control" in str(results[1])
    assert sum(isinstance(r, Finding) for r in results) == len(items) - 1


def test_event_shape_is_accepted():
    event = {"version": "0", "detail-type": v2.EVENT_DETAIL_TYPE, "source": "aws.securityhub",
             "detail": {"findings": [findings()[0]]}}
    (finding,) = v2.parse_payload(event)
    assert finding.rule_id == "EC2.13"


def test_fetch_pages_at_the_maximum_with_the_open_failed_filters():
    hub = client()
    with Stubber(hub) as stub:
        first = {"Findings": findings()[:3], "NextToken": "page-2"}
        stub.add_response("get_findings_v2", first, {"Filters": v2.build_filters(["EC2.13", "IAM.15", "S3.8"]),
                                                     "MaxResults": 100})
        stub.add_response("get_findings_v2", {"Findings": findings()[3:]},
                          {"Filters": ANY, "MaxResults": 100, "NextToken": "page-2"})
        connector = v2.SecurityHubV2Connector(hub)
        got = list(connector.fetch(["S3.8", "EC2.13", "IAM.15"]))
        stub.assert_no_pending_responses()
    # The backend ignored the control filter on page 2 (RDS.13): the client-side re-check drops it.
    assert sorted(f.rule_id for f in got) == ["EC2.13", "IAM.15", "S3.8"]
    assert connector.requests_made == 2


def test_more_than_20_controls_are_queried_in_chunks():
    hub = client()
    wanted = [f"EC2.{n}" for n in range(1, 26)]
    with Stubber(hub) as stub:
        stub.add_response("get_findings_v2", {"Findings": []},
                          {"Filters": v2.build_filters(sorted(wanted)[:20]), "MaxResults": 100})
        stub.add_response("get_findings_v2", {"Findings": []},
                          {"Filters": v2.build_filters(sorted(wanted)[20:]), "MaxResults": 100})
        assert list(v2.SecurityHubV2Connector(hub).fetch(wanted)) == []
        stub.assert_no_pending_responses()


def test_pull_uses_the_one_retry_layer_for_throttling():
    """Stubber answers before botocore's retry handler runs, so this checks the wiring: the client is built with
    CLIENT_CONFIG (standard retry mode with its quota, the project's one retry layer for throttling)."""
    from functions.engine import pipeline
    from functions.engine.sessions import CLIENT_CONFIG

    made: list[Any] = []

    class Session:
        def client(self, service, region_name, config):
            made.append((service, region_name, config))
            hub = client()
            stub = Stubber(hub)
            stub.add_response("get_findings_v2", {"Findings": findings()[:1]})
            stub.activate()
            return hub

    got = list(pipeline.pull_securityhub_v2(["eu-west-1"], ["EC2.13"], session=Session()))
    assert [f.rule_id for f in got] == ["EC2.13"]
    assert made == [("securityhub", "eu-west-1", CLIENT_CONFIG)]
    assert CLIENT_CONFIG.retries["mode"] == "standard"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 200) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
_PATHS = [("finding_info",), ("finding_info", "uid"), ("metadata",), ("metadata", "uid"), ("metadata", "product"),
          ("compliance",), ("compliance", "control"), ("compliance", "status_id"), ("status_id",), ("status",),
          ("activity_id",), ("resources",), ("cloud",), ("cloud", "account"), ("severity",), ("severity_id",)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(findings()), path=st.sampled_from(_PATHS), value=_json,
       resource=st.none() | st.tuples(st.sampled_from(["uid", "type", "region", "tags"]), _json))
def test_any_mutation_is_a_finding_or_a_rejection_with_a_reason(base, path, value, resource):
    item = copy.deepcopy(base)
    node: Any = item
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node[path[-1]] = value
    if resource and isinstance(item.get("resources"), list) and item["resources"] \
            and isinstance(item["resources"][0], dict):
        item["resources"][0][resource[0]] = resource[1]
    (result,) = v2.parse_payload([item], frozenset())
    assert isinstance(result, Finding) or (isinstance(result, FindingError) and str(result).startswith("finding #0"))


def test_the_roles_grant_what_the_v2_calls_are_authorized_by():
    """IAM authorizes GetFindingsV2 / BatchUpdateFindingsV2 with the V1 actions (botocore's documentation):
    the pull and remediate roles of the generated admin stack must carry them."""
    from tools.templates.lambdas import PULL, REMEDIATE, function_statements

    def actions(function) -> set[str]:
        found: set[str] = set()
        for statement in function_statements(function):
            body = statement.get("Fn::If", [None, statement])[1] if "Fn::If" in statement else statement
            found.update(body.get("Action", []))
        return found

    assert v2.IAM_ACTIONS["GetFindingsV2"] in actions(PULL)
    assert v2.IAM_ACTIONS["BatchUpdateFindingsV2"] in actions(REMEDIATE)


def _holds(condition: Any, source: str, conditions: dict[str, Any]) -> bool:
    """Evaluate an admin-stack condition for a Source value (the parameter is the only input these use)."""
    if "Condition" in condition:
        return _holds(conditions[condition["Condition"]], source, conditions)
    (function, args), = condition.items()
    if function == "Fn::Equals":
        left, right = (source if a == {"Ref": "Source"} else a for a in args)
        return left == right
    if function == "Fn::Not":
        return not _holds(args[0], source, conditions)
    values = [_holds(a, source, conditions) for a in args]
    return all(values) if function == "Fn::And" else any(values)


@pytest.mark.parametrize(("source", "expected"), [
    ("securityhub", {"UsesSecurityHub"}), ("securityhub-v2", {"UsesSecurityHubV2"}),
    ("netskope", {"UsesNetskope"}), ("prowler", {"UsesProwler"}),
    ("both", {"UsesSecurityHub", "UsesNetskope", "UsesBothSources"}),
])
def test_admin_stack_source_selects_its_schedule_and_event_rule(source, expected):
    from tools import templates

    admin = templates.admin_template()
    assert source in admin["Parameters"]["Source"]["AllowedValues"]
    conditions = admin["Conditions"]
    names = {"UsesSecurityHub", "UsesSecurityHubV2", "UsesNetskope", "UsesProwler", "UsesBothSources"}
    assert {n for n in names if _holds(conditions[n], source, conditions)} == expected
    netskope_rule = admin["Rules"]["NetskopeSettings"]["RuleCondition"]
    assert _holds(netskope_rule, source, conditions) == ("UsesNetskope" in expected)
    prowler_rule = admin["Rules"]["ProwlerSettings"]["RuleCondition"]
    assert _holds(prowler_rule, source, conditions) == (source == "prowler")
    resources = admin["Resources"]
    assert resources["SecurityHubV2Schedule"]["Condition"] == "UsesSecurityHubV2"
    assert json.loads(resources["SecurityHubV2Schedule"]["Properties"]["Target"]["Input"]) == {
        "source": "securityhub-v2"}
    pattern = resources["ImportedFindingsV2Rule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == [v2.EVENT_DETAIL_TYPE]
    assert pattern["detail"]["findings"]["compliance"]["status_id"] == [3]


def test_ocsf_grants_exist_only_with_source_securityhub_v2_and_never_touch_severity():
    """Security Hub's OCSF generation has no resource-level permissions: the V2 grants are on "*", so they must
    exist only in a stack that pulls Security Hub V2, and the write-back grant must forbid setting the severity."""
    from tools.templates.lambdas import PULL, REMEDIATE, function_statements

    def conditioned(function, sid):
        return [s["Fn::If"] for s in function_statements(function)
                if "Fn::If" in s and s["Fn::If"][1].get("Sid") == sid]

    ((condition, read, _),) = conditioned(PULL, "ReadOcsfFindings")
    assert condition == "UsesSecurityHubV2" and read["Action"] == ["securityhub:GetFindings"]
    ((condition, write, _),) = conditioned(REMEDIATE, "WriteBackOcsfFindings")
    assert condition == "UsesSecurityHubV2" and write["Action"] == ["securityhub:BatchUpdateFindings"]
    assert write["Condition"] == {"Null": {"securityhub:OCSFSyntaxPath/SeverityId": "true"}}
