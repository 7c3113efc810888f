"""The config document the stack deploys (CSPM_CONFIG=ssm:/name or s3://bucket/key), as the Lambda handlers and the
CLI load it, on moto: applied when valid; when invalid or unreadable, the invocation fails at cold start with one
line naming the problem, and nothing runs on defaults.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.aws_lambda import handlers
from functions.cli.main import main
from functions.engine.config import ConfigError, load_config
from functions.engine.ledger import create_table
from tests.e2e.test_handlers import asff_for
from tests.factories import make_finding

REGION = "us-east-1"
PARAMETER = "/cspm-remediation/cspm/config"
MEMBER, EXCLUDED = "111111111111", "222222222222"
GOOD = {"exclude": {"accounts": [EXCLUDED]}, "limits": {"max_actions_per_rule": 3},
        "rules": {"IAM.3": {"params": {"max_age_days": 120}}}}
TYPO = {"rules": {"IAM.3": {"params": {"max_age_day": 120}}}}  # the key is max_age_days
TYPO_LINE = "rules.IAM.3.params: unknown parameter(s) max_age_day (known: max_age_days)"


def put_parameter(document: Any, name: str = PARAMETER) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    boto3.client("ssm", region_name=REGION).put_parameter(Name=name, Value=text, Type="String", Overwrite=True)


@pytest.fixture
def stack(moto_aws, monkeypatch) -> Iterator[dict[str, Any]]:
    """What the admin stack gives the functions, on moto, with CSPM_CONFIG pointing at the stack's parameter."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="cspm-work")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "cspm-ledger")
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    hub.batch_import_findings(Findings=[asff_for(MEMBER, "sg-0aaaaaaaaaaaaaaa1", 1),
                                        asff_for(EXCLUDED, "sg-0bbbbbbbbbbbbbbb2", 2)])
    for name, value in {"WORK_QUEUE_URL": queue, "LEDGER_TABLE": "cspm-ledger", "CSPM_SOURCE": "securityhub",
                        "REMEDIATION_ROLE_NAME": "CSPMRemediationRole", "CSPM_CONFIG": f"ssm:{PARAMETER}",
                        "CSPM_RULE_MODES": json.dumps({"EC2.53": "enforce", "IAM.3": "dry-run"})}.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    yield {"sqs": sqs, "queue": queue}
    handlers.reset_runtime()


def queued(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_the_handlers_apply_the_deployed_document(stack):
    put_parameter(GOOD)
    report = handlers.pull({})
    assert report["pulled"] == 2 and report["enqueued"] == 1
    assert report["decided_at_pull"] == {"excluded": 1}
    config = handlers.runtime().config
    assert config.limits.max_actions_per_rule == 3 and config.rule("IAM.3").params == {"max_age_days": 120}


@pytest.mark.parametrize(("document", "line"), [
    (TYPO, f"CSPM_CONFIG ssm:{PARAMETER}: {TYPO_LINE}"),
    ({"limits": {"max_actions_per_rule": "25"}}, f"CSPM_CONFIG ssm:{PARAMETER}: limits.max_actions_per_rule must be "
                                                 "a whole number ≥ 0, got '25'"),
    ("{not json", f"CSPM_CONFIG ssm:{PARAMETER}: not valid JSON: "),
    ({"rules": {"EC2.533": {"mode": "dry-run"}}},
     f"CSPM_CONFIG ssm:{PARAMETER}: rules: unknown rule id(s) EC2.533 (did you mean EC2.53?)"),
    (None, f"CSPM_CONFIG ssm:{PARAMETER}: cannot read it: ParameterNotFound"),
])
def test_an_invalid_or_missing_document_fails_the_invocation_at_cold_start(stack, caplog, document, line):
    if document is not None:
        put_parameter(document)
    for invoke in (lambda: handlers.pull({}),
                   lambda: handlers.remediate({"Records": [{"messageId": "m1", "body": "{}"}]})):
        caplog.clear()
        with pytest.raises(ConfigError) as raised:
            invoke()
        assert str(raised.value).startswith(line) and "\n" not in str(raised.value)
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert record.getMessage() == f"configuration rejected, nothing was done: {raised.value}"
    assert queued(stack["sqs"], stack["queue"]) == 0  # nothing pulled, nothing enqueued on defaults


def test_fixing_the_parameter_is_enough(stack):
    put_parameter(TYPO)
    with pytest.raises(ConfigError):
        handlers.pull({})
    put_parameter(GOOD)
    assert handlers.pull({})["decided_at_pull"] == {"excluded": 1}  # the next invocation loads it again


def test_a_warm_container_reads_a_changed_document_after_the_ttl(stack, monkeypatch):
    """A stack update rewrites the parameter but not the functions' environment: no new container is started."""
    put_parameter(GOOD)
    handlers.pull({})
    put_parameter({**GOOD, "limits": {"max_actions_per_rule": 7}})
    handlers.pull({})
    assert handlers.runtime().config.limits.max_actions_per_rule == 3  # within the TTL: the loaded one
    monkeypatch.setattr(handlers, "CONFIG_TTL_SECONDS", 0)
    handlers.pull({})
    assert handlers.runtime().config.limits.max_actions_per_rule == 7
    put_parameter(TYPO)  # a broken update fails the warm container's invocations too, never runs on the old one
    with pytest.raises(ConfigError, match="max_age_day"):
        handlers.pull({})


def test_the_document_may_live_in_s3(stack, monkeypatch):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cspm-config")
    s3.put_object(Bucket="cspm-config", Key="prod/config.json", Body=json.dumps(GOOD).encode())
    monkeypatch.setenv("CSPM_CONFIG", "s3://cspm-config/prod/config.json")
    assert handlers.pull({})["decided_at_pull"] == {"excluded": 1}
    s3.put_object(Bucket="cspm-config", Key="prod/config.json", Body=json.dumps(TYPO).encode())
    handlers.reset_runtime()
    with pytest.raises(ConfigError, match=r"^CSPM_CONFIG s3://cspm-config/prod/config.json: rules\.IAM\.3\.params"):
        handlers.pull({})
    monkeypatch.setenv("CSPM_CONFIG", "s3://cspm-config/absent.json")
    with pytest.raises(ConfigError, match=r"^CSPM_CONFIG s3://cspm-config/absent.json: cannot read it: NoSuchKey"):
        handlers.pull({})


# -- the loader -----------------------------------------------------------------------------------
def test_a_yaml_parameter_loads_and_without_pyyaml_the_error_says_json(moto_aws, monkeypatch):
    put_parameter("limits:\n  max_actions_per_rule: 4\n")
    assert load_config(f"ssm:{PARAMETER}").limits.max_actions_per_rule == 4
    monkeypatch.setitem(sys.modules, "yaml", None)  # as in the Lambda package, which leaves PyYAML out
    with pytest.raises(ConfigError, match=r"YAML config needs PyYAML .*give the config as a JSON object"):
        load_config(f"ssm:{PARAMETER}")
    put_parameter(GOOD)
    assert load_config(f"ssm:{PARAMETER}").exclude.accounts == {EXCLUDED}  # JSON needs nothing more


@pytest.mark.parametrize(("address", "message"), [
    ("ssm:", "no parameter name after ssm:"),
    ("s3://bucket-only", "expected s3://bucket/key"),
])
def test_malformed_addresses(moto_aws, address, message):
    with pytest.raises(ConfigError, match=message):
        load_config(address)


# -- the CLI reads the same addresses -------------------------------------------------------------
def test_the_cli_takes_the_same_addresses(moto_aws, tmp_path, capsys):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0bbbbbbbbbbbbbbb2",
                                                 account_id=EXCLUDED).to_dict()]))
    put_parameter(GOOD)
    out = io.StringIO()
    assert main(["plan", "--config", f"ssm:{PARAMETER}", str(findings)], out=out) == 0
    (result,) = json.loads(out.getvalue())
    assert (result["outcome"], result["reason"]) == ("excluded", f"account {EXCLUDED} is excluded")

    put_parameter(TYPO)
    out = io.StringIO()
    assert main(["plan", "--config", f"ssm:{PARAMETER}", str(findings)], out=out) == 2
    assert out.getvalue() == ""
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ERROR cspm_remediate: ssm:{PARAMETER}: {TYPO_LINE}"


def test_the_deploy_guide_example_is_a_valid_config(moto_aws, tmp_path, monkeypatch):
    """cloudformation/DEPLOY.md's worked example, checked as the guide says: `echo '[]' | cspm-remediate plan
    --config cspm-config.json -` prints [] and exits 0; the same text loads in the functions."""
    from pathlib import Path

    from functions.engine.catalog import CATALOG
    from functions.engine.settings import Settings

    guide = (Path(__file__).parents[2] / "cloudformation" / "DEPLOY.md").read_text(encoding="utf-8")
    text = guide.split("cat > cspm-config.json <<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0]
    path = tmp_path / "cspm-config.json"
    path.write_text(text)
    monkeypatch.setattr(sys, "stdin", io.StringIO("[]"))
    out = io.StringIO()
    assert main(["plan", "--config", str(path), "-"], out=out) == 0
    assert out.getvalue() == "[]\n"
    put_parameter(text)
    config = Settings.from_env({"CSPM_CONFIG": f"ssm:{PARAMETER}"}).config(known_rules=CATALOG)
    assert config.rule("IAM.3").params == {"max_age_days": 120} and config.limits.max_actions_per_account == 50
    assert "sg-0123456789abcdef0" in config.exclude.resources
