"""`cspm-remediate` as a user runs it (DESIGN §5): `functions.cli.main:main` in-process, against moto and the fake
Netskope API on 127.0.0.1. JSON on stdout, logs, progress and the report on stderr, exit codes 0 / 1 / 2.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from connectors.netskope_rules import RULES as NETSKOPE_RULES
from demo.fake_netskope import FakeNetskope
from functions.cli.main import main
from functions.engine.sessions import AssumedSessions
from functions.remediators.s3 import BucketPublicAccessBlock
from tests.factories import make_finding

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECURITYHUB_FIXTURES = (
    "asff_ec2_53.json",
    "asff_list.json",
    "asff_cis120_4_1_getfindings.json",
    "eventbridge_imported.json",
    "eventbridge_custom_action.json",
)
FINDING_FIELDS = {
    "source", "finding_id", "rule_id", "source_rule", "account_id", "region", "resource_type", "resource_id",
    "resource_arn", "severity", "title", "compliance_status", "workflow_status", "record_state", "standards",
    "first_observed", "last_observed", "tags", "product_arn", "raw",
}
OWN = "123456789012"  # moto's account for the caller's own credentials
OTHER = "111111111111"
REGION = "us-east-1"
BUCKET = "public-reports"
TOKEN = "nsk-test-token-7c1e55d0a9"


# -- helpers --------------------------------------------------------------------------------------
def cli(*argv: str | Path) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stdout)."""
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out)
    return code, out.getvalue()


def cli_json(*argv: str | Path) -> tuple[int, Any]:
    code, text = cli(*argv)
    return code, json.loads(text)


def outcomes(results: list[dict[str, Any]]) -> dict[str, str]:
    return {r["rule_id"]: r["outcome"] for r in results}


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def ec2(account: str = OWN):
    if account == OWN:
        return boto3.client("ec2", region_name=REGION)
    return AssumedSessions(role_name="OrganizationAccountAccessRole").target(account, REGION).client("ec2")


def open_ssh_group(account: str = OWN) -> str:
    client = ec2(account)
    vpc = client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = client.create_security_group(GroupName="web", Description="test", VpcId=vpc)["GroupId"]
    client.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    return group


def ssh_open(group: str, account: str = OWN) -> bool:
    perms = ec2(account).describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return any(p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p["IpRanges"]) for p in perms)


def bucket_blocked(bucket: str = BUCKET) -> bool:
    try:
        config = boto3.client("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError:
        return False
    return all(config.values())


def store_token(value: str) -> str:
    """A fresh secret per test: connectors.netskope caches secret values per secret id, module-wide."""
    name = f"netskope-token-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=name, SecretString=json.dumps({"token": value})
    )
    return name


def netskope_violations() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "netskope_violations.json").read_text())["data"]


def own_bucket_violation() -> dict[str, Any]:
    return {
        "account_id": OWN, "region_name": "US East(N. Virginia)", "resource_id": BUCKET, "resource_type": "Bucket",
        "rule_name": "Ensure S3 Bucket is not publicly accessible.", "severity": "High", "status": "Failed",
        "muted": "No", "cloud_provider": "aws",
    }


def asff_for(group: str) -> dict[str, Any]:
    """The real-shaped EC2.53 fixture, moved to the caller's account and us-east-1."""
    item = copy.deepcopy(json.loads((FIXTURES / "asff_ec2_53.json").read_text()))
    item["Id"] = f"arn:aws:securityhub:{REGION}:{OWN}:security-control/EC2.53/finding/{uuid.uuid4()}"
    item["ProductArn"] = f"arn:aws:securityhub:{REGION}::product/aws/securityhub"
    item["Region"] = REGION
    item["AwsAccountId"] = OWN
    resource = item["Resources"][0]
    resource["Id"] = f"arn:aws:ec2:{REGION}:{OWN}:security-group/{group}"
    resource["Region"] = REGION
    resource["Details"]["AwsEc2SecurityGroup"].update(GroupId=group, OwnerId=OWN)
    return item


def other_account_findings(tmp_path: Path, group: str) -> Path:
    finding = make_finding("EC2.53", "AwsEc2SecurityGroup", group, account_id=OTHER)
    return write_json(tmp_path / "other.json", [finding.to_dict()])


def import_to_security_hub(*findings: dict[str, Any]) -> None:
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    assert hub.batch_import_findings(Findings=list(findings))["FailedCount"] == 0


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def world(moto_aws) -> dict[str, str]:
    """In the caller's account: a security group with 22 open to the world, a bucket without a PAB."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return {"group": open_ssh_group(), "bucket": BUCKET}


@pytest.fixture
def findings_file(world: dict[str, str], tmp_path: Path) -> Path:
    findings = [
        make_finding("EC2.53", "AwsEc2SecurityGroup", world["group"]).to_dict(),
        make_finding("S3.8", "AwsS3Bucket", world["bucket"]).to_dict(),
    ]
    return write_json(tmp_path / "findings.json", findings)


@pytest.fixture
def netskope() -> Iterator[FakeNetskope]:
    with FakeNetskope([*netskope_violations(), own_bucket_violation()], TOKEN) as fake:
        yield fake


# -- the console script ---------------------------------------------------------------------------
def test_console_script_is_installed():
    script = Path(sys.executable).parent / "cspm-remediate"
    done = subprocess.run([script, "rules", "--json"], capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    assert "EC2.53" in {row["rule_id"] for row in json.loads(done.stdout)}


# -- normalize ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SECURITYHUB_FIXTURES)
def test_normalize_securityhub_prints_findings_with_exactly_the_model_fields(name):
    code, findings = cli_json("normalize", "--source", "securityhub", FIXTURES / name)
    assert code == 0
    assert isinstance(findings, list) and findings
    assert all(set(f) == FINDING_FIELDS for f in findings)
    assert all(f["source"] == "securityhub" for f in findings)


def test_normalize_netskope_maps_catalog_rules_and_keeps_unknown_ones():
    code, findings = cli_json("normalize", "--source", "netskope", FIXTURES / "netskope_violations.json")
    assert code == 0
    assert all(set(f) == FINDING_FIELDS for f in findings)
    by_name = {f["source_rule"]: f["rule_id"] for f in findings}
    assert {name: by_name[name] for name in NETSKOPE_RULES} == NETSKOPE_RULES  # all 10 CATALOG C names
    unknown = "Ensure EC2 instances do not have a public IP address"
    assert by_name[unknown] == f"netskope:{unknown}"


@pytest.mark.parametrize(
    ("source", "content", "message"),
    [
        ("securityhub", "{not json", "not valid JSON at line 1 column 2: Expecting property name"),
        ("securityhub", '{"hello": "world"}', "not an ASFF payload"),
        ("netskope", '{"hello": "world"}', "not a Netskope payload"),
        ("netskope", '{"data": {"rule_name": "x"}}', "'data' must be a list"),
    ],
    ids=["invalid-json", "asff-wrong-shape", "netskope-wrong-shape", "netskope-data-not-list"],
)
def test_normalize_rejects_a_bad_file_and_goes_on_with_the_others(tmp_path, capsys, source, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    good = FIXTURES / ("asff_ec2_53.json" if source == "securityhub" else "netskope_violations.json")
    code, findings = cli_json("normalize", "--source", source, bad, good)
    err = capsys.readouterr().err
    assert code == 1
    assert (f"rejected: {bad}" in err or f"{bad}: rejected" in err) and message in err
    assert findings and all(f["source"] == source for f in findings)


def test_normalize_rejects_one_bad_finding_and_prints_the_good_ones(tmp_path, capsys):
    good = json.loads((FIXTURES / "asff_ec2_53.json").read_text())
    mixed = write_json(tmp_path / "mixed.json", [good, {"Id": "broken", "Resources": []}, good])
    code, findings = cli_json("normalize", "--source", "securityhub", mixed)
    err = capsys.readouterr().err
    assert code == 1
    assert f"{mixed}: rejected: finding #1 (broken): Resources must be a non-empty list" in err
    assert [f["finding_id"] for f in findings] == [good["Id"], good["Id"]]


def test_normalize_missing_file_is_reported_and_the_others_still_print(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    code, findings = cli_json("normalize", "--source", "securityhub", missing, FIXTURES / "asff_list.json")
    err = capsys.readouterr().err
    assert code == 1
    assert f"rejected: {missing}: no such file" in err
    assert len(findings) == 1


# -- rules ----------------------------------------------------------------------------------------
REQUIRED_RULES = {
    "EC2.53", "S3.8", "IAM.15", "IAM.16", "IAM.3", "CloudTrail.4", "EC2.6", "KMS.4", "EC2.7", "S3.1",
    "EC2.13", "EC2.14",
}
ROW_KEYS = {"rule_id", "title", "cis", "mode", "executor", "permissions", "reversible"}


def test_rules_json_lists_the_catalog_safely():
    code, rows = cli_json("rules", "--json")
    assert code == 0
    assert all(set(row) >= ROW_KEYS for row in rows)
    assert {row["rule_id"] for row in rows} >= REQUIRED_RULES
    assert {row["mode"] for row in rows} <= {"dry-run", "notify"}
    assert all(row["permissions"] for row in rows if row["mode"] != "notify")  # notify-only rules call no API
    assert not [p for row in rows for p in row["permissions"] if "*" in p]


def test_rules_table_fits_100_columns_with_a_disruptive_column(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, text = cli("rules")
    header, _rule, *lines = text.splitlines()
    assert code == 0
    assert header.split() == ["rule_id", "mode", "disruptive", "reversible", "executor", "cis", "title"]
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = {line.split()[0]: line.split() for line in lines if not line.startswith(" ")}
    assert set(rows) >= REQUIRED_RULES
    _, rows_json = cli_json("rules", "--json")
    for row in rows_json:  # every rule is in the table, with its disruptive flag; titles wrap, never cut
        cells = rows[row["rule_id"]]
        if len(cells) == 1:  # an id too long for its column stands on its own line, its cells on the next
            after = lines[lines.index(row["rule_id"]) + 1].split()
            cells = [row["rule_id"], *after]
        assert cells[1:3] == [row["mode"], "yes" if row["disruptive"] else "no"]
    assert "…" not in text
    title_words = " ".join(line[header.index("title"):] for line in lines).split()
    assert " ".join(title_words).count(rows_json[0]["title"]) == 1


def test_help_documents_exit_codes_every_argument_and_no_missing_document(capsys):
    from functions.cli.main import build_parser

    parser = build_parser()
    parsers = [parser, *next(a for a in parser._actions if a.dest == "command").choices.values()]
    undocumented = [f"{p.prog} {a.dest}" for p in parsers for a in p._actions if not a.help]
    assert undocumented == []
    for argv in (["--help"], ["plan", "--help"], ["pull", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv, out=io.StringIO())
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "exit codes:" in text and "2  usage, configuration or environment error" in text
        assert "DESIGN" not in text and "§" not in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"], out=io.StringIO())
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("cspm-remediate 0.")


# -- plan / apply ---------------------------------------------------------------------------------
def test_plan_plans_and_changes_nothing(findings_file, world):
    code, results = cli_json("plan", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "planned", "S3.8": "planned"}
    assert all(r["reason"].startswith("dry-run: would") for r in results)
    assert ssh_open(world["group"]) and not bucket_blocked()


def test_apply_without_config_is_dry_run(findings_file, world):
    code, results = cli_json("apply", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "planned", "S3.8": "planned"}
    assert ssh_open(world["group"]) and not bucket_blocked()


def test_apply_enforce_remediates_then_is_a_noop(findings_file, world):
    code, results = cli_json("apply", "--enforce", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "remediated", "S3.8": "remediated"}
    assert not ssh_open(world["group"]) and bucket_blocked()

    code, again = cli_json("apply", "--enforce", findings_file)
    assert code == 0
    assert outcomes(again) == {"EC2.53": "noop", "S3.8": "noop"}


def test_apply_with_config_enforces_only_the_rules_it_names(findings_file, world, tmp_path):
    config = write_json(tmp_path / "cfg.json", {"rules": {"EC2.53": {"mode": "enforce"}}})
    code, results = cli_json("apply", "--config", config, findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "remediated", "S3.8": "planned"}
    assert not ssh_open(world["group"]) and not bucket_blocked()


def test_apply_rules_flag_restricts(findings_file, world):
    code, results = cli_json("apply", "--enforce", "--rules", "S3.8", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "skipped", "S3.8": "remediated"}
    assert results[0]["reason"] == "rule not selected (--rules)"
    assert ssh_open(world["group"]) and bucket_blocked()


def test_env_mode_works_like_the_flag(findings_file, world, monkeypatch):
    monkeypatch.setenv("CSPM_MODE", "enforce")
    code, results = cli_json("apply", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "remediated", "S3.8": "remediated"}


def test_env_rules_works_like_the_flag(findings_file, world, monkeypatch):
    monkeypatch.setenv("CSPM_RULES", "EC2.53")
    code, results = cli_json("apply", "--enforce", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "remediated", "S3.8": "skipped"}
    assert not bucket_blocked()


def test_env_config_works_like_the_flag(findings_file, world, monkeypatch, tmp_path):
    config = write_json(tmp_path / "cfg.json", {"rules": {"S3.8": {"mode": "enforce"}}})
    monkeypatch.setenv("CSPM_CONFIG", str(config))
    code, results = cli_json("apply", findings_file)
    assert code == 0
    assert outcomes(results) == {"EC2.53": "planned", "S3.8": "remediated"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rulez": {"EC2.53": {"mode": "enforce"}}}, "unknown key(s) rulez"),
        ({"rules": {"EC2.53": {"mode": "enforced"}}}, "rules.EC2.53.mode must be one of"),
        ({"rules": {"EC2.99": {"mode": "enforce"}}}, "unknown rule id(s) EC2.99"),
        ({"mode": "enforce", "limits": {"max_actions": 3}}, "limits: unknown key(s) max_actions"),
    ],
    ids=["unknown-key", "bad-mode", "unknown-rule", "unknown-limit"],
)
def test_config_mistake_is_a_usage_error_and_changes_nothing(findings_file, world, tmp_path, capsys, config, message):
    path = write_json(tmp_path / "cfg.json", config)
    code, out = cli("apply", "--enforce", "--config", path, findings_file)
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and message in err
    assert out == ""
    assert ssh_open(world["group"]) and not bucket_blocked()


def test_bad_mode_flag_is_a_usage_error(findings_file, world, capsys):
    code, out = cli("apply", "--mode", "enforced", findings_file)
    assert code == 2
    assert "--mode must be one of" in capsys.readouterr().err
    assert out == ""
    assert ssh_open(world["group"])


def test_plan_reads_stdin(findings_file, world, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(findings_file.read_text()))
    code, results = cli_json("plan", "-")
    assert code == 0
    assert outcomes(results) == {"EC2.53": "planned", "S3.8": "planned"}


def test_plan_of_normalize_output(world, tmp_path):
    """The documented pipe: normalize → plan, with a real-shaped ASFF payload."""
    raw = write_json(tmp_path / "raw.json", asff_for(world["group"]))
    code, text = cli("normalize", "--source", "securityhub", raw)
    assert code == 0
    code, results = cli_json("plan", write_json(tmp_path / "findings.json", json.loads(text)))
    assert code == 0
    assert [(r["rule_id"], r["account_id"], r["outcome"]) for r in results] == [("EC2.53", OWN, "planned")]


def test_plan_of_a_file_that_is_not_a_findings_array(tmp_path, capsys, moto_aws):
    raw = FIXTURES / "asff_ec2_53.json"  # raw ASFF, not normalize output
    code, out = cli("plan", raw)
    assert code == 2
    assert "not a findings array: this is raw Security Hub (ASFF) data" in capsys.readouterr().err
    assert out == ""


def test_other_account_is_skipped_without_a_role(moto_aws, tmp_path):
    group = open_ssh_group(OTHER)
    path = other_account_findings(tmp_path, group)
    code, (result,) = cli_json("apply", "--enforce", path)
    assert code == 0
    assert result["outcome"] == "skipped"
    assert f"account {OTHER} is not the caller's account ({OWN})" in result["reason"]
    assert "--role-name" in result["reason"]
    assert ssh_open(group, OTHER)


def test_other_account_is_remediated_through_assume_role(moto_aws, tmp_path):
    group = open_ssh_group(OTHER)
    path = other_account_findings(tmp_path, group)
    code, (result,) = cli_json("apply", "--enforce", "--role-name", "CSPMRemediationRole", path)
    assert code == 0
    assert (result["account_id"], result["outcome"]) == (OTHER, "remediated")
    assert not ssh_open(group, OTHER)


def test_a_bad_finding_in_the_input_is_rejected_and_the_rest_run(findings_file, world, capsys):
    findings = [*json.loads(findings_file.read_text()), {"source": "securityhub"}]
    write_json(findings_file, findings)
    code, results = cli_json("apply", "--enforce", findings_file)
    err = capsys.readouterr().err
    assert code == 1
    assert f"{findings_file}: finding #2 rejected: missing field(s)" in err
    assert outcomes(results) == {"EC2.53": "remediated", "S3.8": "remediated"}


# -- pull -----------------------------------------------------------------------------------------
def test_pull_securityhub(world, capsys):
    import_to_security_hub(asff_for(world["group"]))
    code, findings = cli_json("pull", "--source", "securityhub", "--regions", REGION)
    assert code == 0
    err = capsys.readouterr().err
    assert "pulled 1 finding(s), rejected 0; requests: " in err and f" securityhub:{REGION}\n" in err
    assert "{'" not in err  # a person reads the log: no Python dict
    assert [(f["rule_id"], f["account_id"], f["region"], f["resource_id"]) for f in findings] == [
        ("EC2.53", OWN, REGION, world["group"])
    ]
    assert all(set(f) == FINDING_FIELDS for f in findings)


def test_pull_securityhub_rules_filter(world):
    import_to_security_hub(asff_for(world["group"]))
    code, findings = cli_json("pull", "--source", "securityhub", "--region", REGION, "--rules", "S3.8")
    assert code == 0
    assert findings == []


def test_pull_netskope_with_the_token_from_secrets_manager(moto_aws, netskope, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    secret = store_token(TOKEN)
    code, text = cli("pull", "--source", "netskope", "--netskope-url", netskope.url, "--netskope-token-secret", secret)
    err = capsys.readouterr().err
    findings = json.loads(text)
    assert code == 0
    assert len(findings) == len(netskope_violations()) + 1
    assert {f["source"] for f in findings} == {"netskope"}
    assert "pulled 12 finding(s)" in caplog.text  # caplog does see the CLI's log records
    assert TOKEN not in text and TOKEN not in err and TOKEN not in caplog.text


def test_pull_netskope_env_variables_work_like_flags(moto_aws, netskope, monkeypatch):
    monkeypatch.setenv("NETSKOPE_URL", netskope.url)
    monkeypatch.setenv("NETSKOPE_TOKEN_SECRET", store_token(TOKEN))
    monkeypatch.setenv("CSPM_SOURCE", "netskope")
    code, findings = cli_json("pull", "--rules", "S3.8")
    assert code == 0
    assert [(f["rule_id"], f["account_id"]) for f in findings] == [("S3.8", "222222222222"), ("S3.8", OWN)]


def test_pull_netskope_wrong_token_is_a_clear_error(moto_aws, netskope, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "nsk-wrong-token-31b9e0f2"
    secret = store_token(wrong)
    code, out = cli("pull", "--source", "netskope", "--netskope-url", netskope.url, "--netskope-token-secret", secret)
    err = capsys.readouterr().err
    assert code == 2  # nothing could be pulled: a configuration error, and no `[]` for the next command
    assert out == ""
    assert "HTTP 403" in err and "Invalid token" in err
    assert "Traceback" not in err
    for text in (out, err, caplog.text):
        assert wrong not in text and TOKEN not in text


def test_pull_netskope_missing_secret_is_a_clear_error(moto_aws, netskope, capsys):
    code, out = cli("pull", "--source", "netskope", "--netskope-url", netskope.url, "--netskope-token-secret", "nope")
    err = capsys.readouterr().err
    assert code == 2 and out == ""  # preflight: nothing was pulled
    assert "cannot read the Netskope token from secret 'nope': ResourceNotFoundException" in err


def test_pull_without_credentials_is_a_clear_error(monkeypatch, capsys):
    """No moto here: botocore finds no credentials and says so before any request is made."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # another test's default session may hold credentials
    code, out = cli("pull", "--source", "securityhub", "--region", REGION)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "ERROR cspm_remediate: no AWS credentials found: run `aws configure` or `aws sso login`, set AWS_PROFILE, "
        "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]


# -- run ------------------------------------------------------------------------------------------
def run_args(netskope: FakeNetskope, *extra: str) -> list[str]:
    return [
        "run", "--source", "securityhub", "--source", "netskope", "--regions", REGION,
        "--netskope-url", netskope.url, "--netskope-token-secret", store_token(TOKEN), *extra,
    ]


def test_run_end_to_end(world, netskope, capsys):
    import_to_security_hub(asff_for(world["group"]))
    code, results = cli_json(*run_args(netskope, "--enforce"))
    err = capsys.readouterr().err
    # Every finding outside the caller's account is skipped (no --role-name) and the unknown rules have no
    # remediator: skipped is not a failure, so the exit code is 0.
    assert code == 0
    assert len(results) == 1 + len(netskope_violations()) + 1
    mine = {(r["source"], r["rule_id"]): r["outcome"] for r in results if r["account_id"] == OWN}
    assert mine == {("securityhub", "EC2.53"): "remediated", ("netskope", "S3.8"): "remediated"}
    assert {r["outcome"] for r in results if r["account_id"] != OWN} == {"skipped"}
    assert not ssh_open(world["group"]) and bucket_blocked()

    assert "Run " in err and "(apply)" in err
    assert any(line.split()[:2] == ["EC2.53", OWN] for line in err.splitlines())  # a per-rule row
    assert "progress" not in err and "\r" not in err  # stderr is not a terminal: no bar
    assert TOKEN not in err


def test_run_plan_only_changes_nothing(world, netskope, capsys):
    import_to_security_hub(asff_for(world["group"]))
    code, results = cli_json(*run_args(netskope, "--enforce", "--plan-only"))
    assert code == 0
    mine = {r["rule_id"]: r["outcome"] for r in results if r["account_id"] == OWN}
    assert mine == {"EC2.53": "planned", "S3.8": "planned"}
    assert "(plan)" in capsys.readouterr().err
    assert ssh_open(world["group"]) and not bucket_blocked()


def s3_keeps_failing(monkeypatch) -> None:
    """S3 answers 500 InternalError on every read, after botocore's attempts (a transient failure)."""
    def assess(self, target, finding):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error."},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetPublicAccessBlock")

    monkeypatch.setattr(BucketPublicAccessBlock, "assess", assess)


def test_run_exits_1_when_a_finding_fails(moto_aws, netskope, monkeypatch):
    netskope.violations = [own_bucket_violation()]
    s3_keeps_failing(monkeypatch)
    code, (result,) = cli_json(
        "run", "--source", "netskope", "--enforce",
        "--netskope-url", netskope.url, "--netskope-token-secret", store_token(TOKEN),
    )
    assert code == 1
    assert result["outcome"] == "failed" and "InternalError" in result["reason"]


def test_run_skips_a_finding_whose_resource_no_longer_exists(moto_aws, netskope):
    """A Netskope violation for a bucket that does not exist (deleted since the scan): skipped, not failed."""
    netskope.violations = [own_bucket_violation()]  # the bucket of `world` is not created here
    code, (result,) = cli_json(
        "run", "--source", "netskope", "--enforce",
        "--netskope-url", netskope.url, "--netskope-token-secret", store_token(TOKEN),
    )
    assert code == 0
    assert result["outcome"] == "skipped" and result["reason"].startswith("resource no longer exists: ")
    assert f"S3 bucket {BUCKET} does not exist" in result["reason"] and result["error"] == "NoSuchBucket"


# -- usage errors ---------------------------------------------------------------------------------
def test_pull_without_source_is_a_usage_error(capsys):
    code, out = cli("pull")
    assert code == 2
    assert "--source is required" in capsys.readouterr().err
    assert out == ""


def test_pull_netskope_without_url_or_secret_is_a_usage_error(capsys):
    code, out = cli("pull", "--source", "netskope")
    assert code == 2
    assert "--netskope-url and --netskope-token-secret" in capsys.readouterr().err
    assert out == ""


def test_unknown_source_in_the_environment_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("CSPM_SOURCE", "securityhub,splunk")
    code, out = cli("pull")
    assert code == 2
    assert "unknown source(s) splunk" in capsys.readouterr().err
    assert out == ""


def test_unknown_source_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["normalize", "--source", "splunk", "x.json"], out=io.StringIO())
    assert exit_info.value.code == 2
    assert "invalid choice: 'splunk'" in capsys.readouterr().err


# -- what a new user runs into (issue #18): the exit code and the one line on stderr -----------------------
def one_error_line(err: str) -> str:
    """stderr holds exactly one ERROR line and no traceback; return its message."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, err
    return errors[0].split(": ", 1)[1]


def missing_bucket_findings(tmp_path: Path, count: int = 3) -> Path:
    findings = [make_finding("S3.8", "AwsS3Bucket", f"no-such-bucket-{i}").to_dict() for i in range(count)]
    return write_json(tmp_path / "findings.json", findings)


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_exit_1_when_every_finding_failed(moto_aws, tmp_path, command, monkeypatch):
    s3_keeps_failing(monkeypatch)
    code, results = cli_json(command, "--enforce" if command == "apply" else "--mode=dry-run",
                             missing_bucket_findings(tmp_path))
    assert code == 1
    assert {r["outcome"] for r in results} == {"failed"}


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_no_credentials_is_one_line_and_exit_2(findings_file, monkeypatch, capsys, command):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, out = cli(command, findings_file)
    assert code == 2 and out == ""
    assert one_error_line(capsys.readouterr().err).startswith("no AWS credentials found: run `aws configure`")


@pytest.mark.parametrize("argv", [["pull", "--source", "securityhub"], ["plan"], ["apply", "--enforce"]])
def test_no_region_is_one_line_and_exit_2_never_a_silent_us_east_1(findings_file, monkeypatch, capsys, argv):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, out = cli(*argv, *([] if argv[0] == "pull" else [findings_file]))
    assert code == 2 and out == ""
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("no AWS region configured: set AWS_REGION")
    assert ("--region" in line) == (argv[0] == "pull")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # Open-ended: the hint also lists whatever later regions the installed botocore knows (eu-west-4, …).
        (["pull", "--source", "securityhub", "--region", "eu-west-9"],
         "--region: unknown AWS region 'eu-west-9' (known: eu-west-1, eu-west-2, eu-west-3"),
        (["pull", "--source", "securityhub", "--regions", "us-east-1,us-wets-2"],
         "--regions: unknown AWS region 'us-wets-2' (did you mean us-west-2?)"),
        (["pull", "--source", "securityhub", "--region", REGION, "--rules", "EC2.99"],
         "--rules: unknown rule id 'EC2.99' (did you mean EC2.1"),
        (["plan", "--rules", "ec2.53"], "--rules: unknown rule id 'ec2.53' (did you mean EC2.53?)"),
        (["apply", "--rules", "Nope.1"], "--rules: unknown rule id 'Nope.1' (cspm-remediate rules lists them)"),
    ],
    ids=["region", "regions", "pull-rules", "plan-rules-case", "apply-rules-unknown"],
)
def test_unknown_region_or_rule_is_one_line_with_a_suggestion(findings_file, world, capsys, argv, message):
    code, out = cli(*argv, *([] if argv[0] == "pull" else [findings_file]))
    assert code == 2 and out == ""
    assert one_error_line(capsys.readouterr().err).startswith(message)
    assert ssh_open(world["group"])


def test_raw_asff_given_to_plan_says_normalize_first(moto_aws, tmp_path, capsys):
    raw = write_json(tmp_path / "raw.json", [json.loads((FIXTURES / "asff_ec2_53.json").read_text())] * 3)
    code, out = cli("plan", raw)
    assert code == 2 and out == ""
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"{raw}: not a findings array: these are raw Security Hub (ASFF) findings")
    assert f"cspm-remediate normalize --source securityhub {raw}" in line


@pytest.mark.parametrize(
    ("fixture", "source"),
    [("asff_cis120_4_1_getfindings.json", "securityhub"), ("eventbridge_imported.json", "securityhub"),
     ("netskope_violations.json", "netskope")],
)
def test_raw_payloads_given_to_plan_name_the_normalize_command(moto_aws, capsys, fixture, source):
    code, _ = cli("plan", FIXTURES / fixture)
    assert code == 2
    assert f"run `cspm-remediate normalize --source {source} {FIXTURES / fixture}` first" in one_error_line(
        capsys.readouterr().err)


def test_plan_output_given_to_apply_says_it_is_a_results_file(findings_file, world, tmp_path, capsys):
    code, text = cli("plan", findings_file)
    assert code == 0
    results = tmp_path / "results.json"
    results.write_text(text)
    capsys.readouterr()
    code, out = cli("apply", "--enforce", results)
    assert code == 2 and out == ""
    assert "that is a results file (the output of plan, apply or run), not findings" in one_error_line(
        capsys.readouterr().err)
    assert ssh_open(world["group"])


@pytest.mark.parametrize(
    ("content", "message"),
    [("[\n  {\"source\": \"securityhub\",\n  oops\n]", "not valid JSON at line 3 column 3: Expecting property name"),
     ("", "empty; expected JSON")],
    ids=["bad-json", "empty"],
)
def test_a_findings_file_that_is_not_json_names_the_file_and_position(moto_aws, tmp_path, capsys, content, message):
    path = tmp_path / "findings.json"
    path.write_text(content)
    code, out = cli("plan", path)
    assert code == 2 and out == ""
    assert one_error_line(capsys.readouterr().err).startswith(f"{path}: {message}")


def test_a_missing_findings_file_is_one_line(moto_aws, tmp_path, capsys):
    code, _ = cli("plan", tmp_path / "nope.json")
    assert code == 2
    assert one_error_line(capsys.readouterr().err) == f"{tmp_path / 'nope.json'}: no such file"


def test_a_missing_config_names_the_path(findings_file, world, tmp_path, capsys):
    code, out = cli("apply", "--config", tmp_path / "cfg.json", findings_file)
    assert code == 2 and out == ""
    assert one_error_line(capsys.readouterr().err).startswith(
        f"--config {tmp_path / 'cfg.json'}: cannot read it (No such file or directory)")


def test_an_unknown_rule_in_the_config_suggests_the_near_one(findings_file, world, tmp_path, capsys):
    config = write_json(tmp_path / "cfg.json", {"rules": {"EC2.533": {"mode": "enforce"}}})
    code, _ = cli("apply", "--config", config, findings_file)
    assert code == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"{config}: rules: unknown rule id(s) EC2.533 (did you mean EC2.53?)")


@pytest.mark.parametrize("kind", ["text", "directory"])
def test_a_ledger_that_is_not_a_database_is_one_line(findings_file, world, tmp_path, capsys, kind):
    ledger = tmp_path / "ledger.db"
    if kind == "text":
        ledger.write_text("these are my notes, not a database\n" * 100)
    else:
        ledger.mkdir()
    code, out = cli("apply", "--enforce", "--ledger", ledger, findings_file)
    assert code == 2 and out == ""
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"--ledger {ledger}: ")
    assert ("not a CSPM ledger" if kind == "text" else "is a directory") in line
    assert ssh_open(world["group"])
    if kind == "text":
        assert ledger.read_text().startswith("these are my notes")  # nothing written into the user's file


def test_pull_names_the_region_that_failed_and_keeps_the_others(world, monkeypatch, capsys):
    import functions.cli.main as cli_main

    import_to_security_hub(asff_for(world["group"]))
    real = cli_main.pull_securityhub

    def flaky(regions, *args, **kwargs):  # fault injection: Security Hub is not enabled in eu-west-1
        if regions == ["eu-west-1"]:
            raise ClientError({"Error": {"Code": "InvalidAccessException", "Message": "Account is not subscribed "
                               "to AWS Security Hub. Enable it first."},
                               "ResponseMetadata": {"HTTPStatusCode": 401}}, "GetFindings")
        return real(regions, *args, **kwargs)

    monkeypatch.setattr(cli_main, "pull_securityhub", flaky)
    code, findings = cli_json("pull", "--source", "securityhub", "--regions", f"eu-west-1,{REGION}")
    assert code == 1
    assert [f["region"] for f in findings] == [REGION]
    assert one_error_line(capsys.readouterr().err) == (
        "securityhub eu-west-1: pull failed, its findings are missing from the output: InvalidAccessException "
        "(HTTP 401): Account is not subscribed to AWS Security Hub.")

    monkeypatch.setattr(cli_main, "pull_securityhub", lambda *a, **k: flaky(["eu-west-1"]))
    code, out = cli("pull", "--source", "securityhub", "--regions", "eu-west-1")
    assert code == 2 and out == ""  # not `[]`: the next command must not read it as "no findings"
    assert "nothing could be pulled (securityhub eu-west-1 failed" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_and_the_traceback_needs_vv(findings_file, world, monkeypatch, capsys):
    import functions.cli.main as cli_main

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(cli_main, "render_text", broken)
    code, _ = cli("plan", findings_file)
    assert code == 2
    assert one_error_line(capsys.readouterr().err).startswith(
        "unexpected error: RuntimeError: something inside broke (")
    code, _ = cli("-vv", "plan", findings_file)
    assert "Traceback" in capsys.readouterr().err


def test_circuit_breaker_is_one_warning_and_one_report_line(moto_aws, tmp_path, capsys):
    s3 = boto3.client("s3")
    names = [f"open-bucket-{i}" for i in range(4)]
    for name in names:
        s3.create_bucket(Bucket=name)
    findings = write_json(tmp_path / "f.json", [make_finding("S3.8", "AwsS3Bucket", n).to_dict() for n in names])
    config = write_json(tmp_path / "cfg.json", {"limits": {"max_actions_per_rule": 1}})
    code, results = cli_json("apply", "--enforce", "--config", config, findings)
    err = capsys.readouterr().err
    assert code == 0
    assert sorted(r["outcome"] for r in results) == ["planned", "planned", "planned", "remediated"]
    assert len([line for line in err.splitlines() if line.startswith("WARNING") and "circuit breaker" in line]) == 1
    assert "circuit breaker tripped for rule S3.8 after 1 actions; 3 finding(s) planned only" in err
    assert "repeated warning" not in err  # the engine warns once per limit: nothing left for the CLI to fold


def test_dry_run_wording_reads_as_a_sentence(moto_aws, tmp_path):
    boto3.client("iam").update_account_password_policy(MinimumPasswordLength=8)
    findings = write_json(tmp_path / "f.json", [make_finding("IAM.15", "AwsAccount", OWN).to_dict()])
    code, (result,) = cli_json("plan", findings)
    assert code == 0
    assert result["reason"] == ("dry-run: would set the password policy's MinimumPasswordLength to 14 (now 8)")


class Terminal(io.StringIO):
    """stderr as a terminal: the progress bar draws (it never does on a pipe)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("command", ["plan", "apply", "pull"])
def test_plan_apply_and_pull_show_progress_on_a_terminal_only(findings_file, world, monkeypatch, capsys, command):
    """Issue 18: plan and apply showed no progress. On a terminal each draws a bar that ends at the total, and the
    log lines print on lines of their own; on a pipe (capsys) stderr holds no bar at all."""
    argv = ["pull", "--source", "securityhub", "--regions", REGION] if command == "pull" else [command, findings_file]
    if command == "pull":
        import_to_security_hub(asff_for(world["group"]))
    code, _ = cli(*argv)
    piped = capsys.readouterr().err
    assert code == 0 and "\r" not in piped and "findings (" not in piped

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, _ = cli(*argv)
    text = terminal.getvalue()
    assert code == 0
    # What the terminal shows: on each line, what was written after its last carriage return.
    shown = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in text.split("\n")]
    bars = [line for line in shown if line.endswith("/s)")]
    assert len(bars) == 1  # the bar's final state, on a line of its own
    assert bars[0].startswith("1 findings pulled (" if command == "pull" else "[###")
    assert command == "pull" or "] 2/2 findings (" in bars[0]
    logged = [line for line in shown if "cspm_remediate" in line]
    assert logged and all(line.startswith("INFO ") for line in logged)  # never after a bar on the same line
