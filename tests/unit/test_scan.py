"""tools/scan (in `make lint`): checkov and parliament find nothing outside the commented allowlist on the real
templates, and do find what is planted in a rendering."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tools.scan import all_renderings, scan
from tools.scan.__main__ import main, report
from tools.scan.checkov_run import CheckovRun, parse_report
from tools.scan.findings import Allowlist, Finding
from tools.scan.policies import Concretizer
from tools.templates.build import render
from tools.templates.resolve import target_renderings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_scan():
    return scan(all_renderings(), [], Allowlist.load())


def planted(rendering: dict, resource: str, statement: dict) -> dict:
    out = copy.deepcopy(rendering)
    out["Resources"][resource] = {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "Roles": [{"Ref": "RemediationRole"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}}
    return out


def test_the_real_templates_leave_nothing_outside_the_allowlist(real_scan):
    assert real_scan.renderings > 100  # each rule alone, not only the three file renderings
    assert real_scan.findings, "the linter ran and found the accepted findings"
    assert [f.line() for f in real_scan.unaccepted] == []


def test_every_allowlist_entry_is_used_and_says_why(real_scan):
    allowlist = Allowlist.load()
    allowlist.unaccepted(real_scan.findings)
    # checkov entries are used by `make lint`'s checkov run, not by this in-process scan.
    assert [e for e in allowlist.unused() if e.scanner != "checkov"] == []
    assert all(len(e.why) > 20 for e in allowlist.entries)


@pytest.mark.parametrize(("statement", "check"), [
    ({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}, "PERMISSIONS_MANAGEMENT_ACTIONS"),
    ({"Effect": "Allow", "Action": ["iam:AttachUserPolicy"], "Resource": "*"}, "PRIVILEGE_ESCALATION"),
    ({"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "arn:aws:s3:::bucket"}, "RESOURCE_MISMATCH"),
    ({"Effect": "Allow", "Action": ["ec2:DescribeInstancez"], "Resource": "*"}, "UNKNOWN_ACTION"),
])
def test_a_planted_policy_fails_the_scan(statement, check):
    rendering = planted(target_renderings()["target-all-enforce.yaml"], "PlantedPolicy", statement)
    result = scan([("target-planted.yaml", rendering)], [], Allowlist.load())
    assert {(f.check, f.where) for f in result.unaccepted} >= {(check, "PlantedPolicy/PolicyDocument")}


def test_an_allowlisted_check_on_a_new_action_fails_again():
    """RemediationPolicy* may manage permissions with the listed actions only."""
    rendering = planted(target_renderings()["target-all-enforce.yaml"], "RemediationPolicy99",
                        {"Effect": "Allow", "Action": ["iam:PutUserPolicy"], "Resource": "*"})
    result = scan([("target-planted.yaml", rendering)], [], Allowlist.load())
    assert any(f.where == "RemediationPolicy99/PolicyDocument" and "iam:putuserpolicy" in f.actions
               for f in result.unaccepted)


def test_the_command_exits_1_on_a_planted_finding_and_0_on_the_real_templates(monkeypatch, tmp_path, capsys):
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for name in ("target-defaults.yaml", "target-all-enforce.yaml", "admin-everything.yaml"):
        (rendered / name).write_text("AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\n", encoding="utf-8")
    monkeypatch.setattr("tools.scan.CheckovRun", lambda files: _NoCheckov())  # checkov has its own test below
    monkeypatch.setattr("tools.scan.__main__.all_renderings",
                        lambda: iter([("target-all-enforce.yaml", target_renderings()["target-all-enforce.yaml"])]))
    assert main(["--rendered", str(rendered)]) == 0
    bad = planted(target_renderings()["target-all-enforce.yaml"], "PlantedPolicy",
                  {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*"})
    monkeypatch.setattr("tools.scan.__main__.all_renderings", lambda: iter([("target-planted.yaml", bad)]))
    assert main(["--rendered", str(rendered)]) == 1
    assert "PRIVILEGE_ESCALATION target-planted.yaml:PlantedPolicy/PolicyDocument" in capsys.readouterr().out


class _NoCheckov:
    def start(self):
        return self

    def findings(self):
        return []


def test_checkov_finds_a_planted_admin_policy_and_the_report_parses(tmp_path):
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Planted": {
        "Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["iam:PassRole", "iam:AttachUserPolicy"], "Resource": "*"}]}}}}}
    path = tmp_path / "planted.yaml"
    path.write_text(render(template), encoding="utf-8")
    findings = CheckovRun([path]).start().findings()
    assert {"CKV_AWS_109", "CKV_AWS_110"} <= {f.check for f in findings if f.location == "planted.yaml:Planted"}
    assert Allowlist.load().unaccepted(findings)


def test_parse_report_takes_failed_checks_and_parsing_errors():
    report = [{"check_type": "cloudformation", "results": {
        "failed_checks": [{"check_id": "CKV_AWS_111", "check_name": "write", "file_path": "/build/rendered/t.yaml",
                           "resource": "AWS::IAM::ManagedPolicy.RemediationPolicy01"}],
        "parsing_errors": ["/x/broken.yaml"]}}, {"passed": 0, "failed": 0}]
    assert parse_report(report) == [Finding("checkov", "CKV_AWS_111", "t.yaml", "RemediationPolicy01", detail="write"),
                                    Finding("checkov", "PARSING_ERROR", "broken.yaml", "-")]


def test_allowlist_entries_need_every_field_and_match_actions_exactly():
    with pytest.raises(ValueError, match="needs scanner, check, where and why"):
        Allowlist.parse([{"scanner": "parliament", "check": "X", "where": "*"}])
    allowlist = Allowlist.parse([{"scanner": "parliament", "check": "X", "where": "t*:P*", "why": "because",
                                  "actions": ["iam:PassRole"]}])
    ok = Finding("parliament", "X", "t.yaml", "P1/PolicyDocument", frozenset({"iam:passrole"}))
    wider = Finding("parliament", "X", "t.yaml", "P1/PolicyDocument", frozenset({"iam:passrole", "iam:createrole"}))
    elsewhere = Finding("parliament", "X", "admin.yaml", "P1/PolicyDocument", frozenset({"iam:passrole"}))
    assert allowlist.unaccepted([ok, wider, elsewhere]) == [wider, elsewhere]


def test_report_folds_the_renderings_of_one_finding():
    findings = [Finding("parliament", "X", f"target-only-Rule{n}", "P1/PolicyDocument") for n in range(3)]
    assert report(findings) == ["parliament X target-only-Rule0:P1/PolicyDocument (+2 more renderings)"]


def test_concretizer_builds_the_strings_cloudformation_would():
    template = {"Parameters": {"Name": {"Type": "String", "Default": "r"}},
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    concrete = Concretizer(template)
    assert concrete({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Name}"}) == \
        "arn:aws:iam::111122223333:role/r"
    assert concrete({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:111122223333:Queue"
    assert concrete({"Fn::Select": [1, {"Fn::Split": [":", {"Fn::Join": ["", ["a:", {"Ref": "Name"}]]}]}]}) == "r"


def test_make_lint_runs_the_scan_after_writing_the_renderings():
    recipe = re.search(r"^lint:.*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert recipe
    lines = recipe.group(1).splitlines()
    resolve = next(i for i, line in enumerate(lines) if "tools.templates.resolve" in line)
    assert any("-m tools.scan" in line for line in lines[resolve + 1:])
