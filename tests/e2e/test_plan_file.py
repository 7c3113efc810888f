"""Reviewed plans through the CLI on moto: plan --out PLAN, then apply --plan PLAN acts on exactly those findings,
skips the ones whose resources changed since the plan, and refuses a plan file edited after it was written."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from functions.cli import main as cli
from tests.factories import make_finding

SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def run_cli(*argv: str) -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, json.loads(out.getvalue() or "[]")


def block_public_access(s3, bucket: str) -> dict | None:
    try:
        return s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError:
        return None


@pytest.fixture
def twenty_buckets(moto_aws, tmp_path):
    """20 buckets without Block Public Access and one that has it (the plan's noop), with their S3.8 findings."""
    s3 = boto3.client("s3", region_name="us-east-1")
    names = [f"plan-bucket-{n:02d}" for n in range(20)]
    for name in [*names, "already-blocked"]:
        s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket="already-blocked",
                               PublicAccessBlockConfiguration=dict.fromkeys(SETTINGS, True))
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([make_finding("S3.8", "AwsS3Bucket", n, region="us-east-1").to_dict()
                                    for n in [*names, "already-blocked"]]))
    return s3, names, findings


def test_apply_plan_acts_on_the_reviewed_items_and_skips_what_changed_since(twenty_buckets, tmp_path, capsys):
    s3, names, findings = twenty_buckets
    plan = tmp_path / "plan.json"
    code, planned = run_cli("plan", str(findings), "--out", str(plan))
    assert code == 0 and [r["outcome"] for r in planned].count("planned") == 20
    document = json.loads(plan.read_text())
    assert document["kind"] == "cspm-remediate plan" and document["digest"].startswith("sha256:")
    decided = [i["decision"] for i in document["items"]]
    assert len(decided) == 21 and [d["outcome"] for d in decided].count("noop") == 1
    assert all(d["pre_state"] == {"PublicAccessBlockConfiguration": None} for d in decided if d["outcome"] == "planned")

    # After the review, someone changes three of the buckets (one setting each, still non-compliant).
    changed = names[3], names[9], names[15]
    for bucket in changed:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    capsys.readouterr()

    code, applied = run_cli("apply", "--plan", str(plan), "--enforce")
    assert code == 0 and len(applied) == 20  # the noop of the plan is not acted on again
    outcomes = {r["resource_id"]: r for r in applied}
    assert [b for b in names if outcomes[b]["outcome"] == "skipped"] == list(changed)
    assert sum(r["outcome"] == "remediated" for r in applied) == 17
    assert outcomes[changed[0]]["reason"] == ("changed since the plan: BlockPublicAcls was false at plan time, "
                                              "is true now")
    for bucket in names:
        config = block_public_access(s3, bucket)
        assert config == ({"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                           "RestrictPublicBuckets": False} if bucket in changed else dict.fromkeys(SETTINGS, True))


def test_an_altered_plan_is_refused(twenty_buckets, tmp_path, capsys):
    s3, names, findings = twenty_buckets
    plan = tmp_path / "plan.json"
    run_cli("plan", str(findings), "--out", str(plan))
    document = json.loads(plan.read_text())
    document["items"] = document["items"][:1]  # "approve" only one item by hand
    plan.write_text(json.dumps(document))
    capsys.readouterr()

    code, applied = run_cli("apply", "--plan", str(plan), "--enforce")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and applied == []
    assert err == [f"ERROR cspm_remediate: {plan}: the plan was altered after it was written (digest mismatch); "
                   "write it again with plan --out and review it"]
    assert all(block_public_access(s3, b) is None for b in names)  # nothing was done


def test_plan_file_misuse_is_one_line(twenty_buckets, tmp_path, capsys):
    _, _, findings = twenty_buckets
    plan = tmp_path / "plan.json"
    run_cli("plan", str(findings), "--out", str(plan))
    capsys.readouterr()
    code, _ = run_cli("apply", str(plan), "--enforce")
    assert code == 2 and f"apply it with: cspm-remediate apply --plan {plan}" in capsys.readouterr().err
    code, _ = run_cli("apply", str(findings), "--plan", str(plan))
    assert code == 2 and "not both" in capsys.readouterr().err
    code, _ = run_cli("apply", "--plan", str(findings))
    assert code == 2 and "not a plan file" in capsys.readouterr().err
    code, _ = run_cli("plan", str(findings), "--out", str(tmp_path / "missing" / "plan.json"))
    assert code == 2 and "does not exist" in capsys.readouterr().err
