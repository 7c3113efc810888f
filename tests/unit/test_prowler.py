"""Prowler output (json-ocsf and json-asff) → Finding: the documented shapes, the rule mapping, rejections.

Fixtures tests/fixtures/prowler_ocsf.json and prowler_asff.json follow Prowler's writers field by field
(prowler/lib/outputs/ocsf/ocsf.py, prowler/lib/outputs/asff/asff.py).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import prowler
from connectors.finding import Finding, FindingError
from connectors.prowler_checks import ACCOUNT_LEVEL_RULES, CHECK_RULES
from functions.engine.catalog import CATALOG
from functions.engine.pipeline import PullStats, pull_prowler

FIXTURES = Path(__file__).parent.parent / "fixtures"


def ocsf() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "prowler_ocsf.json").read_text())


def asff() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "prowler_asff.json").read_text())


def parsed(payload: Any) -> list[Finding | FindingError]:
    return list(prowler.parse_payload(payload))


# -- OCSF ---------------------------------------------------------------------------------------
def test_ocsf_fixture_maps_every_documented_field():
    ssh = parsed(ocsf())[0]
    assert isinstance(ssh, Finding)
    assert (ssh.source, ssh.rule_id, ssh.source_rule) == (
        "prowler", "EC2.13", "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22")
    assert (ssh.account_id, ssh.region, ssh.resource_type, ssh.resource_id) == (
        "123456789012", "us-east-1", "AwsEc2SecurityGroup", "sg-0123456789abcdef0")
    assert ssh.resource_arn == "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0"
    assert ssh.finding_id == ocsf()[0]["finding_info"]["uid"]
    assert (ssh.severity, ssh.compliance_status, ssh.workflow_status) == ("HIGH", "FAILED", "NEW")
    assert ssh.tags == {"team": "web"}
    assert "CIS-3.0 5.2" in ssh.standards
    assert ssh.first_observed == "2026-11-30T08:10:03.913874Z" and ssh.product_arn is None
    assert prowler.is_open(ssh)


def test_ocsf_open_means_fail_and_not_muted():
    by_check = {f.source_rule: f for f in parsed(ocsf()) if isinstance(f, Finding)}
    assert not prowler.is_open(by_check["s3_bucket_secure_transport_policy"])  # PASS
    muted = by_check["ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389"]
    assert muted.compliance_status == "FAILED" and muted.workflow_status == "SUPPRESSED"
    assert not prowler.is_open(muted)
    assert not prowler.is_open(by_check["account_maintain_current_contact_details"])  # MANUAL


def test_rule_id_table_first_then_fsbp_control_then_prowler_check():
    by_check = {f.source_rule: f for f in parsed(ocsf()) if isinstance(f, Finding)}
    # The table wins over Prowler's coarse FSBP list (IAM.7, IAM.10): the CIS control for exactly this setting.
    assert by_check["iam_password_policy_minimum_length_14"].rule_id == "IAM.15"
    assert by_check["acm_certificates_expiration_check"].rule_id == "ACM.1"  # not in the table: FSBP id
    # Old Prowler versions wrote FSBP section names; those are not control ids.
    assert by_check["guardduty_no_high_severity_findings"].rule_id == "prowler:guardduty_no_high_severity_findings"


def test_cis_requirement_is_the_last_fallback():
    assert prowler.rule_for("some_new_check", {"CIS-1.2": ["4.1"]}) == "EC2.13"
    assert prowler.rule_for("some_new_check", {"CIS-3.0": ["no-such"]}) == "prowler:some_new_check"


def test_account_level_control_is_rewritten_to_the_account():
    policy = next(f for f in parsed(ocsf()) if isinstance(f, Finding) and f.rule_id == "IAM.15")
    assert (policy.resource_type, policy.resource_id) == ("AwsAccount", "123456789012")
    assert policy.resource_arn == "arn:aws:iam:us-east-1:123456789012:password-policy"


def test_exclusion_tag_with_a_colon_in_its_key_is_seen():
    bucket = next(f for f in parsed(ocsf()) if isinstance(f, Finding) and f.rule_id == "S3.8")
    assert bucket.tags["cspm-remediation:exclude"] == "no"
    exact = copy.deepcopy(ocsf()[1])
    exact["resources"][0]["data"]["metadata"]["tags"] = [{"Key": "cspm-remediation:exclude", "Value": "yes"}]
    assert dict(prowler.parse_item(exact).tags) == {"cspm-remediation:exclude": "yes"}


def test_resource_account_wins_over_the_scanned_account():
    item = copy.deepcopy(ocsf()[0])
    item["cloud"]["account"]["uid"] = "999999999999"
    assert prowler.parse_item(item).account_id == "123456789012"


@pytest.mark.parametrize(("change", "reason"), [
    (lambda i: i.pop("metadata"), "metadata must be an object"),
    (lambda i: i["metadata"].pop("event_code"), "metadata.event_code"),
    (lambda i: i.update(status_code="BROKEN"), "status_code must be FAIL, PASS or MANUAL"),
    (lambda i: i.update(resources=[]), "resources must be a non-empty list"),
    (lambda i: i["resources"][0].update(uid="arn:aws:ec2"), "resource uid"),
    (lambda i: i["cloud"].update(provider="azure"), "only AWS findings"),
    (lambda i: i.update(class_uid=2001), "not an OCSF Detection Finding"),
])
def test_a_bad_item_is_rejected_with_its_position_and_the_rest_kept(change, reason):
    items = ocsf()
    change(items[2])
    results = parsed(items)
    assert len(results) == len(items)
    error = results[2]
    assert isinstance(error, FindingError) and str(error).startswith("finding #2") and reason in str(error)
    assert all(isinstance(r, Finding) for i, r in enumerate(results) if i != 2)


# -- ASFF ---------------------------------------------------------------------------------------
def test_asff_fixture_gets_the_same_mapping_as_ocsf():
    ssh, policy, muted, acm = parsed(asff())
    assert (ssh.source, ssh.rule_id, ssh.resource_id, ssh.product_arn) == (
        "prowler", "EC2.13", "sg-0123456789abcdef0", None)
    assert (policy.rule_id, policy.resource_type, policy.resource_id) == ("IAM.15", "AwsAccount", "123456789012")
    assert muted.compliance_status == "WARNING" and not prowler.is_open(muted)  # Prowler writes muted as WARNING
    assert acm.rule_id == "ACM.1"  # from "AWS-Foundational-Security-Best-Practices ACM.1"
    assert prowler.is_open(ssh) and prowler.is_open(policy)


def test_asff_from_another_product_is_rejected():
    item = asff()[0]
    item["ProductArn"] = "arn:aws:securityhub:us-east-1::product/aws/securityhub"
    (error,) = parsed([item])
    assert isinstance(error, FindingError) and "not Prowler's" in str(error)


# -- files and the pull -------------------------------------------------------------------------
def test_json_lines_are_read_too():
    text = "\n".join(json.dumps(item) for item in ocsf())
    assert prowler.read_output(text, "scan.ocsf.json") == ocsf()
    with pytest.raises(FindingError, match=r"scan.json: neither a JSON array nor JSON Lines: line 2"):
        prowler.read_output('{"a": 1}\n{bad', "scan.json")


def test_pull_keeps_open_findings_and_names_bad_files(tmp_path):
    good = tmp_path / "scan.ocsf.json"
    good.write_text(json.dumps(ocsf()))
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    stats = PullStats()
    items = list(pull_prowler([str(tmp_path / "missing.json"), str(broken), str(good)], stats=stats))
    errors = [str(i) for i in items if isinstance(i, FindingError)]
    assert errors[0].startswith(f"{tmp_path / 'missing.json'}: cannot read it")
    assert errors[1].startswith(f"{broken}: not valid JSON")
    rules = sorted(i.rule_id for i in items if isinstance(i, Finding))
    assert rules == ["ACM.1", "EC2.13", "IAM.15", "S3.8", "prowler:guardduty_no_high_severity_findings"]
    assert (stats.findings, stats.rejected) == (5, 2)
    only = [i.rule_id for i in pull_prowler([str(good)], rule_ids=["S3.8"])]
    assert only == ["S3.8"]


# -- the table ----------------------------------------------------------------------------------
def test_table_names_prowler_checks_and_catalog_controls():
    for check, rule in CHECK_RULES.items():
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", check), check
        assert rule in CATALOG, f"{check} → {rule}: no remediator"


def test_account_level_rules_are_fixed_on_the_account():
    for rule in ACCOUNT_LEVEL_RULES & set(CATALOG):
        assert "AwsAccount" in CATALOG[rule].remediator.resource_types, rule


# -- never a crash ------------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_PATHS = [
    ("status_code",), ("status",), ("class_uid",), ("metadata",), ("metadata", "event_code"), ("resources",),
    ("cloud",), ("cloud", "account"), ("cloud", "account", "uid"), ("cloud", "provider"), ("finding_info",),
    ("finding_info", "uid"), ("unmapped", "compliance"), ("severity",), ("time_dt",), ("Resources",),
    ("GeneratorId",), ("ProductArn",), ("Compliance",), ("AwsAccountId",), ("Severity",),
]


def _mutate(item: dict[str, Any], path: tuple[str, ...], value: Any, resource_change: Any) -> dict[str, Any]:
    item = copy.deepcopy(item)
    node: Any = item
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node[path[-1]] = value
    resources = item.get("resources")
    if resource_change is not None and isinstance(resources, list) and resources and isinstance(resources[0], dict):
        resources[0][resource_change[0]] = resource_change[1]
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(ocsf() + asff()),
    path=st.sampled_from(_PATHS),
    value=_json,
    resource_change=st.none() | st.tuples(st.sampled_from(["uid", "type", "region", "labels", "data"]), _json),
)
def test_any_mutation_is_a_finding_or_a_rejection_with_a_reason(base, path, value, resource_change):
    item = _mutate(base, path, value, resource_change)
    (result,) = parsed([item])
    if isinstance(result, FindingError):
        assert str(result).startswith("finding #0") and len(str(result)) > len("finding #0: ")
    else:
        assert isinstance(result, Finding) and result.source == "prowler" and result.rule_id


@settings(max_examples=200, deadline=None)
@given(_json)
def test_any_json_is_findings_or_rejections(payload):
    try:
        results = parsed(payload)
    except FindingError as error:  # the payload as a whole is not Prowler output
        assert str(error)
        return
    assert all(isinstance(r, Finding) or (isinstance(r, FindingError) and str(r)) for r in results)


def test_admin_stack_prowler_source_reads_its_s3_object_only():
    from tools import templates

    admin = templates.admin_template()
    pull = admin["Resources"]["PullRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    grants = [s["Fn::If"] for s in pull if "Fn::If" in s and s["Fn::If"][1].get("Sid") == "ReadProwlerOutput"]
    assert grants and grants[0][0] == "UsesProwler"
    assert grants[0][1]["Action"] == ["s3:GetObject"]
    assert grants[0][1]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ProwlerBucket}/${ProwlerKey}"}
    env = admin["Resources"]["PullFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CSPM_PROWLER_INPUT"]["Fn::If"][0] == "UsesProwler"
    assert json.loads(admin["Resources"]["ProwlerSchedule"]["Properties"]["Target"]["Input"]) == {"source": "prowler"}
