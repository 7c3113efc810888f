"""ASFF → Finding: every payload shape, every rule-id form, the resource's account, and malformed input."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.asff import control_ids, iter_asff, parse_finding, parse_payload
from connectors.finding import Finding, FindingError

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name):
    return json.loads((FIXTURES / name).read_text())


def findings_of(payload):
    items = list(parse_payload(payload))
    assert all(isinstance(i, Finding) for i in items), items
    return items


def test_single_consolidated_finding():
    (finding,) = findings_of(load("asff_ec2_53.json"))
    assert finding.rule_id == "EC2.53"
    assert finding.source == "securityhub"
    assert finding.resource_id == "sg-0a1b2c3d4e5f60718"
    assert finding.resource_type == "AwsEc2SecurityGroup"
    # The resource lives in 222222222222 even though 111111111111 (the aggregator) reported it.
    assert finding.account_id == "222222222222"
    assert finding.region == "eu-west-1"
    assert finding.severity == "HIGH"
    assert finding.compliance_status == "FAILED"
    assert finding.workflow_status == "NEW"
    assert finding.record_state == "ACTIVE"
    assert finding.standards == ("cis-aws-foundations-benchmark/v/3.0.0 5.2",)
    assert finding.tags == {"team": "payments", "env": "prod"}
    assert finding.product_arn == "arn:aws:securityhub:eu-west-1::product/aws/securityhub"
    assert finding.first_observed == "2026-10-01T08:15:02.311000Z"
    assert finding.raw == load("asff_ec2_53.json")


@pytest.mark.parametrize("name", ["asff_ec2_53.json", "asff_list.json", "eventbridge_imported.json"])
def test_every_envelope_gives_the_same_finding(name):
    (finding,) = findings_of(load(name))
    assert finding == parse_finding(load("asff_ec2_53.json"))


def test_getfindings_response_with_standard_specific_ids():
    cis, fsbp = findings_of(load("asff_cis120_4_1_getfindings.json"))
    assert (cis.rule_id, cis.source_rule) == (
        "EC2.13", "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/4.1",
    )
    assert cis.workflow_status == "NOTIFIED"
    assert (fsbp.rule_id, fsbp.resource_id, fsbp.account_id) == ("IAM.3", "ci-deployer", "333333333333")


def test_custom_action_event_in_govcloud():
    bucket, account = findings_of(load("eventbridge_custom_action.json"))
    assert (bucket.rule_id, bucket.resource_id, bucket.account_id, bucket.partition) == (
        "S3.8", "reports-444444444444", "444444444444", "aws-us-gov",
    )
    assert (account.rule_id, account.resource_type, account.resource_id, account.region) == (
        "EC2.7", "AwsAccount", "444444444444", "us-gov-west-1",
    )


@pytest.mark.parametrize(
    ("asff", "expected"),
    [
        ({"Compliance": {"SecurityControlId": "KMS.4"}, "GeneratorId": "x"}, ("KMS.4", "KMS.4")),
        ({"GeneratorId": "security-control/CloudTrail.4"}, ("CloudTrail.4", "security-control/CloudTrail.4")),
        ({"GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/EC2.2"},
         ("EC2.2", "aws-foundational-security-best-practices/v/1.0.0/EC2.2")),
        ({"GeneratorId": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.8",
          "ProductFields": {"RuleId": "2.8"}},
         ("KMS.4", "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.8")),
        ({"GeneratorId": "pci-dss/v/3.2.1/PCI.KMS.1", "ProductFields": {"ControlId": "PCI.KMS.1"}},
         ("KMS.4", "pci-dss/v/3.2.1/PCI.KMS.1")),
        # Standard-specific ids with no mapping stay as they are (and are reported as "no remediator").
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/1.4.0/9.9", "ProductFields": {"ControlId": "9.9"}},
         ("cis-aws-foundations-benchmark/v/1.4.0/9.9", "cis-aws-foundations-benchmark/v/1.4.0/9.9")),
        ({"GeneratorId": "custom-scanner-rule-7"}, ("custom-scanner-rule-7", "custom-scanner-rule-7")),
    ],
)
def test_rule_id_forms(asff, expected):
    assert control_ids(asff) == expected


def test_one_bad_finding_does_not_stop_the_batch():
    good = load("asff_ec2_53.json")
    bad = copy.deepcopy(good)
    bad["Resources"][0]["Id"] = "arn:aws:ec2:eu-west-1:not-an-account:security-group/sg-1"
    items = list(parse_payload([bad, good, "not an object"]))
    assert isinstance(items[0], FindingError) and "finding #0" in str(items[0]) and "12 digits" in str(items[0])
    assert isinstance(items[1], Finding)
    assert isinstance(items[2], FindingError) and "finding #2" in str(items[2])


@pytest.mark.parametrize("payload", [42, "text", None, {"foo": 1}, {"detail": {"findings": "x"}}, {"Findings": {}}])
def test_unknown_shapes_raise_a_clear_error(payload):
    with pytest.raises(FindingError):
        list(iter_asff(payload))


def test_missing_resources_is_reported():
    asff = load("asff_ec2_53.json")
    del asff["Resources"]
    with pytest.raises(FindingError, match="Resources"):
        parse_finding(asff)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
ASFF_KEYS = ["Id", "Resources", "Compliance", "GeneratorId", "AwsAccountId", "Region", "Severity", "Title",
             "Workflow", "RecordState", "ProductFields", "FirstObservedAt", "ProductArn"]


@st.composite
def mutated_asff(draw):
    """A real finding with some fields replaced by random JSON: the shapes a broken producer sends."""
    asff = load("asff_ec2_53.json")
    for key in draw(st.lists(st.sampled_from(ASFF_KEYS), max_size=5, unique=True)):
        if draw(st.booleans()):
            asff.pop(key, None)
        else:
            asff[key] = draw(json_values)
    resources = asff.get("Resources")
    if draw(st.booleans()) and isinstance(resources, list) and resources and isinstance(resources[0], dict):
        asff["Resources"][0] = {**asff["Resources"][0], "Id": draw(st.text(max_size=80))}
    return asff


def _parse_never_crashes(payload):
    try:
        items = list(parse_payload(payload))
    except FindingError:
        return
    for item in items:
        assert isinstance(item, Finding | FindingError)
        if isinstance(item, Finding):
            json.dumps(item.to_dict(), default=str)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_gives_a_clear_error_or_a_finding(payload):
    _parse_never_crashes(payload)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_asff(), max_size=3))
def test_mutated_findings_give_a_clear_error_or_a_finding(payload):
    _parse_never_crashes({"Findings": payload})


# -- provenance (#12) ------------------------------------------------------------------------------------------------
def test_a_foreign_product_is_skipped_with_its_reason():
    from connectors.asff import Provenance, UntrustedFinding

    member_product = "arn:aws:securityhub:eu-west-1:333333333333:product/333333333333/default"
    finding = {**load("asff_ec2_53.json"), "ProductArn": member_product}
    with pytest.raises(UntrustedFinding, match="untrusted ProductArn"):
        parse_finding(finding)
    allowlisted = Provenance(product_arns=frozenset({finding["ProductArn"]}))
    assert parse_finding(finding, allowlisted).rule_id == "EC2.53"


def test_a_cross_account_resource_needs_a_configured_aggregator():
    from connectors.asff import Provenance, UntrustedFinding

    finding = load("asff_ec2_53.json")  # reported by 111111111111, resource in 222222222222
    with pytest.raises(UntrustedFinding, match="account 111111111111 reports a resource of account 222222222222"):
        parse_finding(finding, Provenance(aggregators=frozenset()))
    assert parse_finding(finding, Provenance(aggregators=frozenset({"111111111111"}))).account_id == "222222222222"
    (error,) = list(parse_payload(finding, Provenance(aggregators=frozenset({"444444444444"}))))
    assert str(error).startswith("finding #0 (") and "reports a resource" in str(error)  # named, one line


def test_provenance_from_the_environment():
    from connectors.asff import Provenance

    assert Provenance.from_env({}) == Provenance()  # cross-account check off until an aggregator is configured
    assert Provenance.from_env({"CSPM_SECURITYHUB_AGGREGATORS": "none"}).aggregators == frozenset()
    env = {"CSPM_SECURITYHUB_AGGREGATORS": "111111111111, 222222222222", "CSPM_SECURITYHUB_PRODUCT_ARNS": "arn:x"}
    assert Provenance.from_env(env) == Provenance(frozenset({"arn:x"}), frozenset({"111111111111", "222222222222"}))
    with pytest.raises(ValueError, match="12-digit"):
        Provenance.from_env({"CSPM_SECURITYHUB_AGGREGATORS": "admin"})
    with pytest.raises(ValueError, match="12-digit"):  # the finding model's account id: ASCII digits only
        Provenance.from_env({"CSPM_SECURITYHUB_AGGREGATORS": "\u0661" * 12})
