"""Config: the ★ file format, mode precedence, exclusions, and loud errors for mistakes."""

import json

import pytest

from functions.engine.config import Config, ConfigError, config_from_dict, load_config

DESIGN_EXAMPLE = {
    "mode": "dry-run",
    "rules": {"EC2.53": {"mode": "enforce"}, "CloudTrail.4": {"mode": "enforce", "executor": "ssm"}},
    "exclude": {"tag": "cspm-remediation:exclude", "accounts": ["123456789012"], "resources": ["sg-0abc"],
                "rules_per_account": {"123456789012": ["IAM.3"]}},
    "limits": {"max_actions_per_rule": 25, "max_actions_per_account": 100},
}


def test_design_example_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(DESIGN_EXAMPLE))
    config = load_config(path)
    assert config.mode == "dry-run"
    assert config.rule("CloudTrail.4").executor == "ssm"
    assert config.exclude.accounts == {"123456789012"}
    assert config.limits.max_actions_per_rule == 25


def test_yaml_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("mode: enforce\nrules:\n  S3.8: {mode: 'off'}\n")
    config = load_config(path)
    assert (config.mode, config.rule("S3.8").mode) == ("enforce", "off")


def test_defaults_are_safe():
    config = Config()
    assert config.mode_for("EC2.53", "dry-run", False) == "dry-run"
    assert config.limits.max_actions_per_rule == 25


@pytest.mark.parametrize(
    ("config", "default", "disruptive", "expected"),
    [
        ({"mode": "enforce"}, "dry-run", False, "enforce"),
        ({"mode": "enforce", "rules": {"X.1": {"mode": "dry-run"}}}, "dry-run", False, "dry-run"),
        ({"mode": "enforce"}, "dry-run", True, "dry-run"),  # disruptive rules ignore the global mode
        ({"rules": {"X.1": {"mode": "enforce"}}}, "dry-run", True, "enforce"),
        ({"mode": "off"}, "dry-run", True, "off"),
        ({"mode": "enforce"}, "notify", False, "notify"),  # notify-only stays notify
        ({"rules": {"X.1": {"mode": "off"}}}, "notify", False, "off"),
    ],
)
def test_mode_precedence(config, default, disruptive, expected):
    assert config_from_dict(config).mode_for("X.1", default, disruptive) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "yolo"}, "mode must be one of"),
        ({"modes": "enforce"}, "unknown key"),
        ({"rules": {"EC2.53": {"mode": "enforced"}}}, "rules.EC2.53.mode"),
        ({"rules": {"EC2.53": {"executor": "lambda"}}}, "executor"),
        ({"limits": {"max_actions_per_rule": -1}}, "limits.max_actions_per_rule"),
        ({"exclude": {"accounts": "123456789012"}}, "exclude.accounts"),
        ([], "must be an object"),
    ],
)
def test_mistakes_are_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_unknown_rule_ids_are_errors_when_the_catalog_is_given():
    with pytest.raises(ConfigError, match=r"NOPE\.1"):
        config_from_dict({"rules": {"NOPE.1": {}}}, known_rules={"EC2.53": None})


def test_exclusion_reasons():
    exclude = config_from_dict(DESIGN_EXAMPLE).exclude
    assert "account" in exclude.reason("S3.8", "123456789012", "b", None)
    assert "resource sg-0abc" in exclude.reason("EC2.53", "111111111111", "sg-0abc", None)
    assert exclude.reason("EC2.53", "111111111111", "sg-other", None) is None
    assert exclude.tag_reason({"cspm-remediation:exclude": "true"})
    assert exclude.tag_reason({"cspm-remediation:exclude": "false"}) is None
    assert exclude.tag_reason({"other": "x"}) is None


def test_region_scope_skips_other_regions_but_never_global_resources():
    config = Config().with_overrides(regions=frozenset({"us-east-1", "eu-west-1"}))
    assert config.region_reason("us-east-1") is None and config.region_reason("global") is None
    assert config.region_reason("ap-south-1") == (
        "region ap-south-1 is outside the configured regions (eu-west-1, us-east-1)")
    assert Config().region_reason("ap-south-1") is None  # no scope set: every region
