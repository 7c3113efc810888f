"""tools/templates/resolve.py: the renderings `make lint` checks are what CloudFormation would deploy."""

from __future__ import annotations

import json

import pytest

from tools.templates.resolve import ResolveError, resolve, target_renderings

SMALL = {
    "Parameters": {"Mode": {"Type": "String", "Default": "dry-run"}, "Extra": {"Type": "String", "Default": ""}},
    "Conditions": {
        "Enforced": {"Fn::Equals": [{"Ref": "Mode"}, "enforce"]},
        "HasExtra": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Extra"}, ""]}]},
        "Either": {"Fn::Or": [{"Condition": "Enforced"}, {"Condition": "HasExtra"}]},
        "Both": {"Fn::And": [{"Condition": "Enforced"}, {"Condition": "HasExtra"}]},
    },
    "Resources": {
        "Always": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Statement": [
            {"Fn::If": ["Enforced", {"Action": "write"}, {"Ref": "AWS::NoValue"}]},
            {"Action": "read"},
        ], "Name": {"Fn::If": ["HasExtra", {"Ref": "Extra"}, "plain"]}}},
        "OnlyEither": {"Type": "AWS::SNS::Topic", "Condition": "Either", "Properties": {}},
        "OnlyBoth": {"Type": "AWS::SNS::Topic", "Condition": "Both", "Properties": {}},
    },
    "Outputs": {"Both": {"Condition": "Both", "Value": "x"}},
}


def test_defaults_drop_false_branches_resources_and_outputs():
    out = resolve(SMALL)
    assert "Conditions" not in out
    assert out["Resources"]["Always"]["Properties"] == {"Statement": [{"Action": "read"}], "Name": "plain"}
    assert set(out["Resources"]) == {"Always"} and out["Outputs"] == {}


def test_values_pick_the_true_branches_and_the_condition_key_goes():
    out = resolve(SMALL, {"Mode": "enforce", "Extra": "x"})
    assert out["Resources"]["Always"]["Properties"]["Statement"] == [{"Action": "write"}, {"Action": "read"}]
    assert out["Resources"]["Always"]["Properties"]["Name"] == {"Ref": "Extra"}
    assert set(out["Resources"]) == {"Always", "OnlyEither", "OnlyBoth"}
    assert "Condition" not in out["Resources"]["OnlyBoth"] and out["Outputs"] == {"Both": {"Value": "x"}}


def test_unknown_parameters_and_functions_are_refused():
    with pytest.raises(ResolveError, match="no such parameter"):
        resolve(SMALL, {"Nope": "x"})
    broken = {**SMALL, "Conditions": {**SMALL["Conditions"], "Enforced": {"Fn::Contains": ["a", "b"]}}}
    with pytest.raises(ResolveError, match="unsupported condition function"):
        resolve(broken)


def test_target_renderings_hold_no_conditions_and_differ_as_the_toggles_say():
    renderings = target_renderings()
    for name, template in renderings.items():
        text = json.dumps(template)
        assert "Fn::If" not in text and "AWS::NoValue" not in text and "Conditions" not in template, name
        assert not any("Condition" in body for body in template["Resources"].values()), name
    enforce, defaults, off = (json.dumps(renderings[f"target-{n}.yaml"])
                              for n in ("all-enforce", "defaults", "all-off"))
    # A write the defaults (dry-run) never grant appears once every rule is enforced.
    assert "ec2:RevokeSecurityGroupIngress" in enforce and "ec2:RevokeSecurityGroupIngress" not in defaults
    assert "RollbackRole" in renderings["target-all-enforce.yaml"]["Resources"]
    assert len(off) < len(defaults) < len(enforce)



def test_conditions_may_read_a_parameter_through_join_split_select_and_pseudo_parameters():
    template = {
        "Parameters": {"Location": {"Type": "String", "Default": ""}, "Admin": {"Type": "String", "Default": "1"}},
        "Conditions": {
            "InSsm": {"Fn::Equals": [{"Fn::Select": [0, {"Fn::Split": [":", {"Fn::Join": ["", [
                {"Ref": "Location"}, ":"]]}]}]}, "ssm"]},
            "NotAdmin": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "Admin"}]}]},
        },
        "Resources": {"P": {"Type": "AWS::SSM::Parameter", "Condition": "InSsm", "Properties": {}},
                      "R": {"Type": "AWS::Events::Rule", "Condition": "NotAdmin", "Properties": {}}},
    }
    assert set(resolve(template)["Resources"]) == {"R"}
    assert set(resolve(template, {"Location": "ssm:/a/b"})["Resources"]) == {"P", "R"}
    assert set(resolve(template, pseudo={"AWS::AccountId": "1"})["Resources"]) == set()


def test_a_rendering_records_its_values_as_the_parameter_defaults():
    out = resolve(SMALL, {"Mode": "enforce"})
    assert out["Parameters"]["Mode"]["Default"] == "enforce" and out["Parameters"]["Extra"]["Default"] == ""


def test_each_rule_alone_grants_that_rule_only():
    from functions.engine.catalog import CATALOG
    from tools.templates.resolve import rule_alone_renderings
    from tools.templates.rules import toggle_name

    alone = dict(rule_alone_renderings())
    assert set(alone) == {f"target-only-{toggle_name(rule_id)}" for rule_id in CATALOG}
    text = json.dumps(alone["target-only-RuleEC2x53"])
    assert "ec2:RevokeSecurityGroupIngress" in text and "s3:PutBucketPolicy" not in text
    assert "RollbackRole" in alone["target-only-RuleEC2x53"]["Resources"]


def test_admin_renderings_resolve_every_optional_resource():
    from tools.templates.resolve import admin_renderings

    renderings = admin_renderings()
    defaults, everything = renderings["admin-defaults.yaml"], renderings["admin-everything.yaml"]
    assert "Fn::If" not in json.dumps(everything) and len(defaults["Resources"]) < len(everything["Resources"])
