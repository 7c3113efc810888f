"""The README's screenshot of the HTML report: a real `apply --report-html` on moto (in process), rendered by
headless Chromium. `python -m tools.report_screenshot docs/report-html.png` (needs the dev extras and chromium)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
ACCOUNT, OTHER = "123456789012", "210987654321"


def sample_report(work: Path) -> Path:
    """A run with every common outcome: remediated, noop, excluded (tag), skipped (other account), failed."""
    import boto3
    from moto import mock_aws

    from functions.cli import main as cli
    from tests.factories import make_finding

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    page = work / "report.html"
    with mock_aws():
        s3, ec2, iam = boto3.client("s3"), boto3.client("ec2"), boto3.client("iam")
        iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=3)
        buckets = ["billing-exports", "web-assets", "team-scratch", "audit-logs"]
        for name in buckets:
            s3.create_bucket(Bucket=name)
        s3.put_bucket_tagging(Bucket="team-scratch", Tagging={"TagSet": [
            {"Key": "cspm-remediation:exclude", "Value": "owner asked, ticket SEC-412"}]})
        s3.put_public_access_block(Bucket="audit-logs", PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True))
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="bastion", Description="bastion", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        findings = [
            *(make_finding("S3.8", "AwsS3Bucket", b) for b in buckets),
            make_finding("S3.8", "AwsS3Bucket", "gone-bucket"),
            make_finding("IAM.15", "AwsAccount", ACCOUNT), make_finding("IAM.16", "AwsAccount", ACCOUNT),
            make_finding("EC2.7", "AwsAccount", ACCOUNT),
            make_finding("EC2.53", "AwsEc2SecurityGroup", group),
            make_finding("EC2.7", "AwsAccount", OTHER, account_id=OTHER),
            make_finding("S3.8", "AwsS3Bucket", "partner-share", account_id=OTHER),
        ]
        (work / "findings.json").write_text(json.dumps([f.to_dict() for f in findings]))
        cli.main(["apply", str(work / "findings.json"), "--enforce", "--report-html", str(page)], out=io.StringIO())
    return page


def screenshot(page: Path, png: Path, work: Path, size: str = "1280,1260") -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    subprocess.run([binary, *CHROMIUM_FLAGS,  # noqa: S603 - our own flags and file f"--user-data-dir={work / 'profile'}", f"--screenshot={png.resolve()}",
                    f"--window-size={size}", "--hide-scrollbars", page.as_uri()],
                   check=True, capture_output=True, timeout=180)


def main(argv: list[str]) -> int:
    png = Path(argv[0] if argv else "docs/report-html.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        screenshot(sample_report(work), png, work)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
