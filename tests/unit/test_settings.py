"""Settings from the environment: the same variables for the CLI and the Lambda handlers."""

import json

import pytest

from functions.engine.config import ConfigError
from functions.engine.settings import Settings


def test_reads_every_variable(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"rules": {"S3.8": {"mode": "dry-run", "executor": "ssm"}}}))
    settings = Settings.from_env({
        "REMEDIATION_ROLE_NAME": "Role", "REMEDIATION_EXTERNAL_ID": "x", "CSPM_REGIONS": "us-east-1, eu-west-1",
        "CSPM_SOURCE": "securityhub,netskope", "CSPM_MODE": "enforce", "CSPM_RULES": "S3.8,EC2.53",
        "CSPM_CONFIG": str(config), "CSPM_RULE_MODES": json.dumps({"S3.8": "enforce", "EC2.53": "off"}),
        "CSPM_MAX_WORKERS": "4", "LEDGER_TABLE": "t", "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
        "WORK_QUEUE_URL": "https://q",
    })
    assert settings.regions == ("us-east-1", "eu-west-1")
    assert settings.sources == ("securityhub", "netskope")
    assert settings.max_workers == 4
    cfg = settings.config()
    # The more cautious of toggle (enforce) and file (dry-run), the file's executor kept; the global mode and
    # filter apply on top.
    assert (cfg.rule("S3.8").mode, cfg.rule("S3.8").executor) == ("dry-run", "ssm")
    assert cfg.rule("EC2.53").mode == "off"
    assert cfg.mode == "enforce" and cfg.only_rules == {"S3.8", "EC2.53"}


def test_defaults_are_safe():
    settings = Settings.from_env({})
    assert settings.role_name is None and settings.mode is None
    assert settings.config().mode_for("EC2.53", "dry-run", False) == "dry-run"


@pytest.mark.parametrize(
    "environ",
    [{"CSPM_RULE_MODES": "{nope"}, {"CSPM_RULE_MODES": "[]"}, {"CSPM_RULE_MODES": '{"S3.8": "yolo"}'},
     {"CSPM_MAX_WORKERS": "many"}],
)
def test_bad_values_are_config_errors(environ):
    with pytest.raises(ConfigError):
        Settings.from_env(environ).config()


@pytest.mark.parametrize(("toggle", "document", "expected"), [
    ("enforce", None, "enforce"),  # no entry in the document: the toggle
    ("dry-run", "enforce", "dry-run"),  # the toggle is the ceiling
    ("enforce", "dry-run", "dry-run"),  # the document may hold a rule back
    ("enforce", "off", "off"),
    ("notify", "dry-run", "notify"),
    ("off", "enforce", "off"),
])
def test_a_rule_mode_is_the_more_cautious_of_toggle_and_document(tmp_path, toggle, document, expected):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"rules": {"EC2.53": {"mode": document} if document else {}}}))
    settings = Settings.from_env({"CSPM_CONFIG": str(path), "CSPM_RULE_MODES": json.dumps({"EC2.53": toggle})})
    assert settings.config().rule("EC2.53").mode == expected


def test_a_missing_config_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"^CSPM_CONFIG .*nope\.json: cannot read it \(No such file"):
        Settings.from_env({"CSPM_CONFIG": str(tmp_path / "nope.json")}).config()


def test_an_unknown_rule_id_names_its_source_with_a_suggestion(tmp_path):
    """The Lambdas check rule ids exactly as the CLI does (config.check_known_rules): the line names the setting
    that holds the id, and a near miss gets the same suggestion as `--config` on the CLI."""
    from functions.engine.catalog import CATALOG

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"rules": {"EC2.533": {"mode": "dry-run"}}}))
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"CSPM_CONFIG": str(path)}).config(known_rules=CATALOG)
    assert str(raised.value) == f"CSPM_CONFIG {path}: rules: unknown rule id(s) EC2.533 (did you mean EC2.53?)"
    toggles = {"CSPM_RULE_MODES": json.dumps({"s3.8": "enforce", "Nope.1": "off"})}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(toggles).config(known_rules=CATALOG)
    assert str(raised.value) == "CSPM_RULE_MODES: rules: unknown rule id(s) Nope.1, s3.8 (did you mean S3.8?)"
    assert Settings.from_env(toggles).config().rule("Nope.1").mode == "off"  # without the catalog: not checked
